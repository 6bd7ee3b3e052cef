//! A network on the CPU through `crate::reference`: the oracle the GPU training step is tested
//! against, and a way to sample without WebGPU. The walk over the layers is `model::walk`'s;
//! this module gives it the reference's plain loops ([`Reference`]).

use super::spec::NetSpec;
pub use super::walk::Tape;
use super::walk::{self, add, Grads, Kernels};
use crate::reference::{self as r, BnGrads, BnSaved};
use crate::shape::{Activation, AdamConfig, BatchNorm, BatchNormConfig, Conv2d, ConvTranspose2d, Linear};

/// The CPU reference's kernels: the plain code the tests trust. Its backward computes every
/// gradient and keeps what is asked for.
#[derive(Clone, Copy, Debug)]
pub struct Reference;

/// Adds a layer's weight and bias gradients where they are wanted; its input gradient if needed.
fn keep(grads: Grads, dw: &[f32], db: &[f32], dx: Vec<f32>, need_dx: bool) -> Option<Vec<f32>> {
    if let Some((w, b)) = grads {
        add(w, dw);
        add(b, db);
    }
    need_dx.then_some(dx)
}

impl Kernels for Reference {
    fn linear(g: &Linear, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        r::linear_forward(g, x, w, Some(bias))
    }
    fn conv(g: &Conv2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        r::conv2d_forward(g, x, w, Some(bias))
    }
    fn conv_transpose(g: &ConvTranspose2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        r::conv_transpose2d_forward(g, x, w, Some(bias))
    }
    fn batchnorm_train(
        s: &BatchNorm,
        cfg: &BatchNormConfig,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        mean: &mut [f32],
        var: &mut [f32],
    ) -> (Vec<f32>, BnSaved<f32>) {
        r::batchnorm_forward_train(s, cfg, x, gamma, beta, mean, var)
    }
    fn batchnorm_eval(
        s: &BatchNorm,
        cfg: &BatchNormConfig,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        var: &[f32],
    ) -> Vec<f32> {
        r::batchnorm_forward_eval(s, cfg, x, gamma, beta, mean, var)
    }
    fn activation(act: Activation, x: &[f32]) -> Vec<f32> {
        r::activation_forward(act, x)
    }

    fn linear_backward(g: &Linear, x: &[f32], w: &[f32], dy: &[f32], grads: Grads, need_dx: bool) -> Option<Vec<f32>> {
        let gr = r::linear_backward(g, x, w, dy);
        keep(grads, &gr.dw, &gr.db, gr.dx, need_dx)
    }
    fn conv_backward(g: &Conv2d, x: &[f32], w: &[f32], dy: &[f32], grads: Grads, need_dx: bool) -> Option<Vec<f32>> {
        let gr = r::conv2d_backward(g, x, w, dy);
        keep(grads, &gr.dw, &gr.db, gr.dx, need_dx)
    }
    fn conv_transpose_backward(
        g: &ConvTranspose2d,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        grads: Grads,
        need_dx: bool,
    ) -> Option<Vec<f32>> {
        let gr = r::conv_transpose2d_backward(g, x, w, dy);
        keep(grads, &gr.dw, &gr.db, gr.dx, need_dx)
    }
    fn batchnorm_backward(s: &BatchNorm, x: &[f32], gamma: &[f32], saved: &BnSaved<f32>, dy: &[f32]) -> BnGrads<f32> {
        r::batchnorm_backward(s, x, gamma, saved, dy)
    }
    fn activation_backward(act: Activation, x: &[f32], dy: &[f32]) -> Vec<f32> {
        r::activation_backward(act, x, dy)
    }

    fn adam(cfg: &AdamConfig, step: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
        r::adam_update(cfg, step, params, grads, m, v);
    }
}

/// Runs `spec` forward on `x` (batch samples) through the reference. `train` uses batch
/// statistics and updates the running ones, as the GPU's training forward does.
pub fn forward(
    spec: &NetSpec,
    batch: usize,
    params: &[Vec<f32>],
    running: &mut [Vec<f32>],
    bn: &BatchNormConfig,
    x: &[f32],
    train: bool,
) -> (Vec<f32>, Tape) {
    walk::forward::<Reference>(spec, batch, params, running, bn, x.to_vec(), train)
}

/// Backpropagates `dy` through the pass recorded in `tape`: parameter gradients are added into
/// `grads` (as on the GPU); returns the gradient with respect to the network's input.
pub fn backward(
    spec: &NetSpec,
    batch: usize,
    params: &[Vec<f32>],
    tape: &Tape,
    dy: &[f32],
    grads: &mut [Vec<f32>],
) -> Vec<f32> {
    walk::backward::<Reference>(spec, batch, params, tape, dy.to_vec(), Some(grads), true).expect("asked for dx")
}
