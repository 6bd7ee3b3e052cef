//! Activations and Adam: `reference`'s formulas as parallel loops. (The loss is over one logit
//! per sample, so `reference::bce_with_logits` is used as it is.)

use crate::reference::sigmoid;
use crate::shape::{Activation, AdamConfig};
use rayon::prelude::*;

/// Elements per rayon task: below this, splitting costs more than it saves.
const MIN_LEN: usize = 1 << 14;

/// y = f(x): relu, leaky relu (alpha x for x <= 0), tanh, sigmoid.
pub fn activation_forward(act: Activation, x: &[f32]) -> Vec<f32> {
    let f = move |v: f32| match act {
        Activation::Relu => v.max(0.0),
        Activation::LeakyRelu(alpha) => {
            if v > 0.0 {
                v
            } else {
                alpha * v
            }
        }
        Activation::Tanh => v.tanh(),
        Activation::Sigmoid => sigmoid(v),
    };
    x.par_iter().with_min_len(MIN_LEN).map(|&v| f(v)).collect()
}

/// dx = dy f'(x) with x the activation's input; at x = 0 the negative branch (as the reference).
pub fn activation_backward(act: Activation, x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), dy.len(), "activation x/dy");
    let df = move |v: f32| match act {
        Activation::Relu => {
            if v > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu(alpha) => {
            if v > 0.0 {
                1.0
            } else {
                alpha
            }
        }
        Activation::Tanh => 1.0 - v.tanh() * v.tanh(),
        Activation::Sigmoid => sigmoid(v) * (1.0 - sigmoid(v)),
    };
    x.par_iter().zip(dy).with_min_len(MIN_LEN).map(|(&v, &d)| d * df(v)).collect()
}

/// One Adam update in place, exactly `reference::adam_update` in f32 (PyTorch's Adam: bias
/// corrections with the 1-based `step`, eps after the square root).
pub fn adam_update(cfg: &AdamConfig, step: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    assert!(step >= 1, "adam step is 1-based");
    assert!(grads.len() == params.len() && m.len() == params.len() && v.len() == params.len(), "adam lengths");
    let (lr, b1, b2, eps) = (cfg.lr, cfg.beta1, cfg.beta2, cfg.eps);
    let t = i32::try_from(step).expect("adam step fits in i32");
    let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    params.par_iter_mut().zip(grads).zip(m).zip(v).with_min_len(MIN_LEN).for_each(|(((p, &g), m), v)| {
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *p -= lr * (*m / bc1) / ((*v / bc2).sqrt() + eps);
    });
}
