//! The fast ops as the host network walk's kernels (`model::walk`): convs and linear layers as
//! threaded sgemms, batchnorm and activations as parallel loops. A parameter or input gradient
//! nobody asked for is not computed: the GAN step needs neither D's parameter gradients when it
//! trains G nor any network's first input gradient but D's.

use super::{batchnorm as bn, conv, linear, pointwise, Fast};
use crate::model::walk::{Grads, Kernels};
use crate::reference::{BnGrads, BnSaved};
use crate::shape::{Activation, AdamConfig, BatchNorm, BatchNormConfig, Conv2d, ConvTranspose2d, Linear};

impl Kernels for Fast {
    fn linear(g: &Linear, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        linear::linear_forward(g, x, w, Some(bias))
    }
    fn conv(g: &Conv2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        conv::conv2d_forward(g, x, w, Some(bias))
    }
    fn conv_transpose(g: &ConvTranspose2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        conv::conv_transpose2d_forward(g, x, w, Some(bias))
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
        bn::batchnorm_forward_train(s, cfg, x, gamma, beta, mean, var)
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
        bn::batchnorm_forward_eval(s, cfg, x, gamma, beta, mean, var)
    }
    fn activation(act: Activation, x: &[f32]) -> Vec<f32> {
        pointwise::activation_forward(act, x)
    }

    fn linear_backward(g: &Linear, x: &[f32], w: &[f32], dy: &[f32], grads: Grads, need_dx: bool) -> Option<Vec<f32>> {
        linear::linear_backward(g, x, w, dy, grads, need_dx)
    }
    fn conv_backward(g: &Conv2d, x: &[f32], w: &[f32], dy: &[f32], grads: Grads, need_dx: bool) -> Option<Vec<f32>> {
        if let Some((dw, db)) = grads {
            conv::conv2d_backward_weight(g, x, dy, dw);
            conv::channel_sum(dy, g.c_out, g.h_out() * g.w_out(), db);
        }
        need_dx.then(|| conv::conv2d_backward_input(g, w, dy))
    }
    fn conv_transpose_backward(
        g: &ConvTranspose2d,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        grads: Grads,
        need_dx: bool,
    ) -> Option<Vec<f32>> {
        if let Some((dw, db)) = grads {
            conv::conv_transpose2d_backward_weight(g, x, dy, dw);
            conv::channel_sum(dy, g.c_out, g.h_out() * g.w_out(), db);
        }
        need_dx.then(|| conv::conv_transpose2d_backward_input(g, w, dy))
    }
    fn batchnorm_backward(s: &BatchNorm, x: &[f32], gamma: &[f32], saved: &BnSaved<f32>, dy: &[f32]) -> BnGrads<f32> {
        bn::batchnorm_backward(s, x, gamma, saved, dy)
    }
    fn activation_backward(act: Activation, x: &[f32], dy: &[f32]) -> Vec<f32> {
        pointwise::activation_backward(act, x, dy)
    }

    fn adam(cfg: &AdamConfig, step: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
        pointwise::adam_update(cfg, step, params, grads, m, v);
    }
}
