//! A network forward and backward on the fast ops: `model::cpu` with two savings the GAN step
//! can use, an input gradient only when asked for and parameter gradients only when wanted.

use super::{batchnorm as bn, conv, linear, pointwise};
use crate::model::{LayerSpec, NetSpec};
use crate::reference::BnSaved;
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
/// running ones in `running` (one [mean; var] per batchnorm layer); otherwise it uses them.
pub fn forward(
    spec: &NetSpec,
    batch: usize,
    params: &[Vec<f32>],
    running: &mut [Vec<f32>],
    cfg: &BatchNormConfig,
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
            LayerSpec::Linear { .. } => linear::linear_forward(&layer.linear(batch), &h, &p[0], Some(&p[1])),
            LayerSpec::Conv { .. } => conv::conv2d_forward(&layer.conv(batch), &h, &p[0], Some(&p[1])),
            LayerSpec::ConvTranspose { .. } => {
                conv::conv_transpose2d_forward(&layer.conv_transpose(batch), &h, &p[0], Some(&p[1]))
            }
            LayerSpec::BatchNorm { channels: c, .. } => {
                let s = layer.batchnorm(batch);
                let (gamma, beta) = p[0].split_at(*c);
                let (mean, var) = running[bn_index].split_at_mut(*c);
                bn_index += 1;
                if train {
                    let (y, st) = bn::batchnorm_forward_train(&s, cfg, &h, gamma, beta, mean, var);
                    saved = Some(st);
                    y
                } else {
                    bn::batchnorm_forward_eval(&s, cfg, &h, gamma, beta, mean, var)
                }
            }
            LayerSpec::Act(act) => pointwise::activation_forward(*act, &h),
        };
        tape.inputs.push(std::mem::replace(&mut h, out));
        tape.saved.push(saved);
    }
    (h, tape)
}

/// Backpropagates `dy` through the pass in `tape`. Parameter gradients are *added* into `grads`
/// (as on the GPU and in `model::cpu`) when it is given, and skipped otherwise; the gradient with
/// respect to the network's input is returned when `need_dx` (the first layer skips it otherwise).
pub fn backward(
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
        d = match layer {
            LayerSpec::Linear { .. } => {
                let gw = grads.as_deref_mut().map(|g| {
                    let (w, b) = g[k..k + 2].split_at_mut(1);
                    (w[0].as_mut_slice(), b[0].as_mut_slice())
                });
                match linear::linear_backward(&layer.linear(batch), x, &p[0], &d, gw, want_dx) {
                    Some(dx) => dx,
                    None => break,
                }
            }
            LayerSpec::Conv { .. } => {
                let g = layer.conv(batch);
                if let Some(gr) = grads.as_deref_mut() {
                    let (w, b) = gr[k..k + 2].split_at_mut(1);
                    conv::conv2d_backward_weight(&g, x, &d, &mut w[0]);
                    conv::channel_sum(&d, g.c_out, g.h_out() * g.w_out(), &mut b[0]);
                }
                if !want_dx {
                    break;
                }
                conv::conv2d_backward_input(&g, &p[0], &d)
            }
            LayerSpec::ConvTranspose { .. } => {
                let g = layer.conv_transpose(batch);
                if let Some(gr) = grads.as_deref_mut() {
                    let (w, b) = gr[k..k + 2].split_at_mut(1);
                    conv::conv_transpose2d_backward_weight(&g, x, &d, &mut w[0]);
                    conv::channel_sum(&d, g.c_out, g.h_out() * g.w_out(), &mut b[0]);
                }
                if !want_dx {
                    break;
                }
                conv::conv_transpose2d_backward_input(&g, &p[0], &d)
            }
            LayerSpec::BatchNorm { channels: c, .. } => {
                let saved = tape.saved[i].as_ref().expect("batchnorm backward needs a training forward");
                let g = bn::batchnorm_backward(&layer.batchnorm(batch), x, &p[0][..*c], saved, &d);
                if let Some(gr) = grads.as_deref_mut() {
                    let (dgamma, dbeta) = gr[k].split_at_mut(*c);
                    add_slice(dgamma, &g.dgamma);
                    add_slice(dbeta, &g.dbeta);
                }
                g.dx
            }
            LayerSpec::Act(act) => pointwise::activation_backward(*act, x, &d),
        };
        if i == 0 {
            return need_dx.then_some(d);
        }
    }
    None
}

fn add_slice(into: &mut [f32], g: &[f32]) {
    into.iter_mut().zip(g).for_each(|(a, b)| *a += b);
}
