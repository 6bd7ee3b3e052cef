//! A network on the CPU through `crate::reference`: the oracle the GPU training step is tested
//! against, and a way to sample without WebGPU.

use super::spec::{LayerSpec, NetSpec};
use crate::reference::{self as r, BnSaved};
use crate::shape::BatchNormConfig;

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
/// running ones, as the GPU's training forward does.
pub fn forward(
    spec: &NetSpec,
    batch: usize,
    params: &[Vec<f32>],
    running: &mut [Vec<f32>],
    bn: &BatchNormConfig,
    x: &[f32],
    train: bool,
) -> (Vec<f32>, Tape) {
    let starts = param_starts(spec);
    let mut tape = Tape { inputs: Vec::new(), saved: Vec::new() };
    let mut h = x.to_vec();
    let mut bn_index = 0;
    for (i, layer) in spec.layers.iter().enumerate() {
        let p = &params[starts[i]..];
        let mut saved = None;
        let out = match layer {
            LayerSpec::Linear { .. } => r::linear_forward(&layer.linear(batch), &h, &p[0], Some(&p[1])),
            LayerSpec::Conv { .. } => r::conv2d_forward(&layer.conv(batch), &h, &p[0], Some(&p[1])),
            LayerSpec::ConvTranspose { .. } => {
                r::conv_transpose2d_forward(&layer.conv_transpose(batch), &h, &p[0], Some(&p[1]))
            }
            LayerSpec::BatchNorm { channels: c, .. } => {
                let s = layer.batchnorm(batch);
                let (gamma, beta) = p[0].split_at(*c);
                let (mean, var) = running[bn_index].split_at_mut(*c);
                bn_index += 1;
                if train {
                    let (y, st) = r::batchnorm_forward_train(&s, bn, &h, gamma, beta, mean, var);
                    saved = Some(st);
                    y
                } else {
                    r::batchnorm_forward_eval(&s, bn, &h, gamma, beta, mean, var)
                }
            }
            LayerSpec::Act(act) => r::activation_forward(*act, &h),
        };
        tape.inputs.push(std::mem::replace(&mut h, out));
        tape.saved.push(saved);
    }
    (h, tape)
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
    let starts = param_starts(spec);
    let add = |into: &mut Vec<f32>, g: &[f32]| into.iter_mut().zip(g).for_each(|(a, b)| *a += b);
    let mut d = dy.to_vec();
    for (i, layer) in spec.layers.iter().enumerate().rev() {
        let (x, p, k) = (&tape.inputs[i], &params[starts[i]..], starts[i]);
        d = match layer {
            LayerSpec::Linear { .. } => {
                let g = r::linear_backward(&layer.linear(batch), x, &p[0], &d);
                add(&mut grads[k], &g.dw);
                add(&mut grads[k + 1], &g.db);
                g.dx
            }
            LayerSpec::Conv { .. } => {
                let g = r::conv2d_backward(&layer.conv(batch), x, &p[0], &d);
                add(&mut grads[k], &g.dw);
                add(&mut grads[k + 1], &g.db);
                g.dx
            }
            LayerSpec::ConvTranspose { .. } => {
                let g = r::conv_transpose2d_backward(&layer.conv_transpose(batch), x, &p[0], &d);
                add(&mut grads[k], &g.dw);
                add(&mut grads[k + 1], &g.db);
                g.dx
            }
            LayerSpec::BatchNorm { channels: c, .. } => {
                let saved = tape.saved[i].as_ref().expect("batchnorm backward needs a training forward");
                let g = r::batchnorm_backward(&layer.batchnorm(batch), x, &p[0][..*c], saved, &d);
                add(&mut grads[k], &[g.dgamma, g.dbeta].concat());
                g.dx
            }
            LayerSpec::Act(act) => r::activation_backward(*act, x, &d),
        };
    }
    d
}
