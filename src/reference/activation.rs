//! Pointwise activations. Any shape: the tensors are treated as flat.

use num_traits::Float;

use super::cast;
use crate::shape::Activation;

/// The logistic function. 1/(1+exp(-x)) is already safe at both ends in floating point:
/// exp(-x) overflows to +inf for very negative x, giving exactly 0, never NaN.
pub(crate) fn sigmoid<F: Float>(x: F) -> F {
    F::one() / (F::one() + (-x).exp())
}

/// y = f(x) elementwise: relu max(x, 0); leaky x or alpha*x; tanh; sigmoid.
///
/// x [any] -> y like x
pub fn activation_forward<F: Float>(act: Activation, x: &[F]) -> Vec<F> {
    let f = |v: F| match act {
        Activation::Relu => v.max(F::zero()),
        Activation::LeakyRelu(alpha) => {
            if v > F::zero() {
                v
            } else {
                cast::<F>(alpha) * v
            }
        }
        Activation::Tanh => v.tanh(),
        Activation::Sigmoid => sigmoid(v),
    };
    x.iter().map(|&v| f(v)).collect()
}

/// dx = dy * f'(x), with x the activation's *input*. At the kink x = 0 the negative branch
/// is taken (relu'(0) = 0, leaky'(0) = alpha), as PyTorch does; the GPU kernels must agree.
///
/// x, dy [any, same length] -> dx like x
pub fn activation_backward<F: Float>(act: Activation, x: &[F], dy: &[F]) -> Vec<F> {
    assert_eq!(x.len(), dy.len(), "activation x/dy");
    let df = |v: F| match act {
        Activation::Relu => {
            if v > F::zero() {
                F::one()
            } else {
                F::zero()
            }
        }
        Activation::LeakyRelu(alpha) => {
            if v > F::zero() {
                F::one()
            } else {
                cast(alpha)
            }
        }
        Activation::Tanh => F::one() - v.tanh() * v.tanh(),
        Activation::Sigmoid => sigmoid(v) * (F::one() - sigmoid(v)),
    };
    x.iter().zip(dy).map(|(&v, &d)| d * df(v)).collect()
}
