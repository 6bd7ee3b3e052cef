//! A network's forward and backward on the host (`Vec<f32>` tensors, NCHW), written once over
//! its `NetSpec` for any set of layer kernels ([`Kernels`]): the CPU reference's plain loops
//! (`model::cpu::Reference`, the oracle the tests trust) and the fast path's sgemms
//! (`fast::Fast`). The GPU builds its layers' dispatches once instead, with its fusions
//! (`model::network`).

use super::spec::{LayerSpec, NetSpec};
use crate::reference::{BnGrads, BnSaved};
use crate::shape::{Activation, AdamConfig, BatchNorm, BatchNormConfig, Conv2d, ConvTranspose2d, Linear};

/// The arithmetic a host backend brings: each layer kind's forward and backward, and Adam on one
/// tensor. A layer's backward adds its parameter gradients into `grads` (weight, bias) when they
/// are given, and returns its input gradient only when `need_dx` (the GAN step skips D's
/// parameter gradients when training G, and every network's first input gradient but D's).
pub trait Kernels {
    fn linear(g: &Linear, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32>;
    fn conv(g: &Conv2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32>;
    fn conv_transpose(g: &ConvTranspose2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32>;
    /// Batch statistics; the running ones updated.
    #[allow(clippy::too_many_arguments)]
    fn batchnorm_train(
        s: &BatchNorm,
        cfg: &BatchNormConfig,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        mean: &mut [f32],
        var: &mut [f32],
    ) -> (Vec<f32>, BnSaved<f32>);
    /// Running statistics.
    #[allow(clippy::too_many_arguments)]
    fn batchnorm_eval(
        s: &BatchNorm,
        cfg: &BatchNormConfig,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        var: &[f32],
    ) -> Vec<f32>;
    fn activation(act: Activation, x: &[f32]) -> Vec<f32>;

    fn linear_backward(g: &Linear, x: &[f32], w: &[f32], dy: &[f32], grads: Grads, need_dx: bool) -> Option<Vec<f32>>;
    fn conv_backward(g: &Conv2d, x: &[f32], w: &[f32], dy: &[f32], grads: Grads, need_dx: bool) -> Option<Vec<f32>>;
    fn conv_transpose_backward(
        g: &ConvTranspose2d,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        grads: Grads,
        need_dx: bool,
    ) -> Option<Vec<f32>>;
    fn batchnorm_backward(s: &BatchNorm, x: &[f32], gamma: &[f32], saved: &BnSaved<f32>, dy: &[f32]) -> BnGrads<f32>;
    fn activation_backward(act: Activation, x: &[f32], dy: &[f32]) -> Vec<f32>;

    /// Adam on one tensor (`step` counts from 1).
    fn adam(cfg: &AdamConfig, step: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]);
}

/// A layer's weight and bias gradients to add into, when they are wanted.
pub type Grads<'a> = Option<(&'a mut [f32], &'a mut [f32])>;

/// What a forward pass keeps for its backward: each layer's input and batchnorm statistics.
pub struct Tape {
    inputs: Vec<Vec<f32>>,
    saved: Vec<Option<BnSaved<f32>>>,
}

/// Index of each layer's first parameter tensor in `NetSpec::params` order.
fn param_starts(spec: &NetSpec) -> Vec<usize> {
    let mut at = 0;
    spec.layers
        .iter()
        .map(|l| {
            let start = at;
            at += l.params().len();
            start
        })
        .collect()
}

/// Runs `spec` forward on `x` (batch samples). `train` uses batch statistics and updates the
/// running ones in `running` (one [mean; var] per batchnorm layer), as the GPU's training
/// forward does; otherwise it uses them.
pub fn forward<K: Kernels>(
    spec: &NetSpec,
    batch: usize,
    params: &[Vec<f32>],
    running: &mut [Vec<f32>],
    bn: &BatchNormConfig,
    x: Vec<f32>,
    train: bool,
) -> (Vec<f32>, Tape) {
    let starts = param_starts(spec);
    let mut tape = Tape { inputs: Vec::with_capacity(spec.layers.len()), saved: Vec::new() };
    let mut h = x;
    let mut bn_index = 0;
    for (i, layer) in spec.layers.iter().enumerate() {
        let p = &params[starts[i]..];
        let mut saved = None;
        let out = match layer {
            LayerSpec::Linear { .. } => K::linear(&layer.linear(batch), &h, &p[0], &p[1]),
            LayerSpec::Conv { .. } => K::conv(&layer.conv(batch), &h, &p[0], &p[1]),
            LayerSpec::ConvTranspose { .. } => K::conv_transpose(&layer.conv_transpose(batch), &h, &p[0], &p[1]),
            LayerSpec::BatchNorm { channels: c, .. } => {
                let s = layer.batchnorm(batch);
                let (gamma, beta) = p[0].split_at(*c);
                let (mean, var) = running[bn_index].split_at_mut(*c);
                bn_index += 1;
                if train {
                    let (y, st) = K::batchnorm_train(&s, bn, &h, gamma, beta, mean, var);
                    saved = Some(st);
                    y
                } else {
                    K::batchnorm_eval(&s, bn, &h, gamma, beta, mean, var)
                }
            }
            LayerSpec::Act(act) => K::activation(*act, &h),
        };
        tape.inputs.push(std::mem::replace(&mut h, out));
        tape.saved.push(saved);
    }
    (h, tape)
}

/// Backpropagates `dy` through the pass in `tape`. Parameter gradients are *added* into `grads`
/// (as on the GPU) when it is given, and skipped otherwise; the gradient with respect to the
/// network's input is returned when `need_dx` (the first layer skips it otherwise).
pub fn backward<K: Kernels>(
    spec: &NetSpec,
    batch: usize,
    params: &[Vec<f32>],
    tape: &Tape,
    dy: Vec<f32>,
    mut grads: Option<&mut [Vec<f32>]>,
    need_dx: bool,
) -> Option<Vec<f32>> {
    let starts = param_starts(spec);
    let mut d = dy;
    for (i, layer) in spec.layers.iter().enumerate().rev() {
        let (x, p, k) = (&tape.inputs[i], &params[starts[i]..], starts[i]);
        let want_dx = i > 0 || need_dx;
        let dx = match layer {
            LayerSpec::Linear { .. } => {
                K::linear_backward(&layer.linear(batch), x, &p[0], &d, weight_and_bias(&mut grads, k), want_dx)
            }
            LayerSpec::Conv { .. } => {
                K::conv_backward(&layer.conv(batch), x, &p[0], &d, weight_and_bias(&mut grads, k), want_dx)
            }
            LayerSpec::ConvTranspose { .. } => K::conv_transpose_backward(
                &layer.conv_transpose(batch),
                x,
                &p[0],
                &d,
                weight_and_bias(&mut grads, k),
                want_dx,
            ),
            LayerSpec::BatchNorm { channels: c, .. } => {
                let saved = tape.saved[i].as_ref().expect("batchnorm backward needs a training forward");
                let g = K::batchnorm_backward(&layer.batchnorm(batch), x, &p[0][..*c], saved, &d);
                if let Some(gr) = grads.as_deref_mut() {
                    let (dgamma, dbeta) = gr[k].split_at_mut(*c);
                    add(dgamma, &g.dgamma);
                    add(dbeta, &g.dbeta);
                }
                Some(g.dx)
            }
            LayerSpec::Act(act) => Some(K::activation_backward(*act, x, &d)),
        };
        match dx {
            Some(dx) if want_dx => d = dx,
            _ => return None,
        }
    }
    Some(d)
}

/// The gradients of the layer whose weight is tensor `k` (its bias is `k + 1`), if wanted.
fn weight_and_bias<'a>(grads: &'a mut Option<&mut [Vec<f32>]>, k: usize) -> Grads<'a> {
    grads.as_deref_mut().map(|g| {
        let (w, b) = g[k..k + 2].split_at_mut(1);
        (w[0].as_mut_slice(), b[0].as_mut_slice())
    })
}

/// `into += g`, element by element.
pub fn add(into: &mut [f32], g: &[f32]) {
    into.iter_mut().zip(g).for_each(|(a, b)| *a += b);
}
