//! conv2d and conv_transpose2d as im2col + sgemm, NCHW, PyTorch semantics (as `reference::conv`).
//!
//! Per sample n, with col_n = im2col(x_n) [c_in*k*k, h_out*w_out]:
//!   forward         y_n  = W [c_out, c_in*k*k] col_n (+ bias)
//!   input gradient  dx_n = col2im(W^T dy_n)
//!   weight gradient dW  += dy_n col_n^T
//! A transposed conv is the adjoint of the conv with the same (k, stride, pad) mapping its output
//! shape back to its input shape (`ConvTranspose2d::adjoint`, same weight tensor): its forward is
//! that conv's input gradient, its input gradient that conv's forward, and its weight gradient
//! that conv's with x and dy swapped. So a transposed conv never multiplies the zeros a
//! "dilated input" formulation would insert.
//!
//! Forward and input gradient run one sample per rayon task; the weight gradient gives each task
//! a run of samples, packs several of them side by side so each product has a long inner
//! dimension, and sums the tasks' partial gradients at the end.

use super::gemm::{sgemm, Mat};
use crate::shape::{Conv2d, ConvTranspose2d};
use rayon::prelude::*;

/// The output columns ow in lo..hi whose tap kw lands inside the input row (0 <= ow*s + kw - p
/// < w_in), so the inner loops run without a bounds test per element.
fn valid(wo: usize, s: usize, kw: usize, p: usize, w_in: usize) -> (usize, usize) {
    let lo = p.saturating_sub(kw).div_ceil(s).min(wo);
    let hi = if w_in + p > kw { (w_in + p - kw).div_ceil(s).min(wo) } else { 0 };
    (lo, hi.max(lo))
}

/// Writes im2col(x_n) into `col` [c_in*k*k rows of `ld` floats, this sample's columns starting at
/// `at`]: col[(ci*k + kh)*k + kw][at + oh*w_out + ow] = x[ci, oh*s - p + kh, ow*s - p + kw], 0 outside.
fn im2col(g: &Conv2d, x: &[f32], col: &mut [f32], ld: usize, at: usize) {
    let (k, s, p, (ho, wo)) = (g.kernel, g.stride, g.pad, (g.h_out(), g.w_out()));
    for ci in 0..g.c_in {
        let plane = &x[ci * g.h_in * g.w_in..(ci + 1) * g.h_in * g.w_in];
        for kh in 0..k {
            for kw in 0..k {
                let row = &mut col[((ci * k + kh) * k + kw) * ld + at..][..ho * wo];
                for oh in 0..ho {
                    let out = &mut row[oh * wo..(oh + 1) * wo];
                    let ih = (oh * s + kh).wrapping_sub(p);
                    if ih >= g.h_in {
                        out.fill(0.0);
                        continue;
                    }
                    let line = &plane[ih * g.w_in..(ih + 1) * g.w_in];
                    let (lo, hi) = valid(wo, s, kw, p, g.w_in);
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    for (ow, v) in out.iter_mut().enumerate().take(hi).skip(lo) {
                        *v = line[ow * s + kw - p];
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: dx_n[ci, ih, iw] = sum of the col entries that copied it. Overwrites dx.
fn col2im(g: &Conv2d, col: &[f32], dx: &mut [f32]) {
    let (k, s, p, (ho, wo)) = (g.kernel, g.stride, g.pad, (g.h_out(), g.w_out()));
    dx.fill(0.0);
    for ci in 0..g.c_in {
        let plane = &mut dx[ci * g.h_in * g.w_in..(ci + 1) * g.h_in * g.w_in];
        for kh in 0..k {
            for kw in 0..k {
                let row = &col[((ci * k + kh) * k + kw) * ho * wo..][..ho * wo];
                for oh in 0..ho {
                    let ih = (oh * s + kh).wrapping_sub(p);
                    if ih >= g.h_in {
                        continue;
                    }
                    let line = &mut plane[ih * g.w_in..(ih + 1) * g.w_in];
                    let (lo, hi) = valid(wo, s, kw, p, g.w_in);
                    for (ow, &v) in row[oh * wo..(oh + 1) * wo].iter().enumerate().take(hi).skip(lo) {
                        line[ow * s + kw - p] += v;
                    }
                }
            }
        }
    }
}

fn rows_of(g: &Conv2d) -> usize {
    g.c_in * g.kernel * g.kernel
}

/// conv2d forward. x [batch, c_in, h_in, w_in], w [c_out, c_in, k, k], bias [c_out]
/// -> y [batch, c_out, h_out, w_out]
pub fn conv2d_forward(g: &Conv2d, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len(), "conv2d x");
    assert_eq!(w.len(), g.weight_len(), "conv2d w");
    let (kk, hw) = (rows_of(g), g.h_out() * g.w_out());
    let mut y = vec![0f32; g.output_len()];
    y.par_chunks_mut(g.c_out * hw).zip(x.par_chunks(g.input_len() / g.batch)).for_each_init(
        || vec![0f32; kk * hw],
        |col, (y, x)| {
            im2col(g, x, col, hw, 0);
            if let Some(b) = bias {
                y.chunks_mut(hw).zip(b).for_each(|(row, &b)| row.fill(b));
            }
            sgemm(g.c_out, hw, kk, Mat::rows(w, kk), Mat::rows(col, hw), y, bias.is_some(), false);
        },
    );
    y
}

/// conv2d input gradient (overwritten). w [c_out, c_in, k, k], dy [batch, c_out, h_out, w_out]
/// -> dx [batch, c_in, h_in, w_in]
pub fn conv2d_backward_input(g: &Conv2d, w: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(w.len(), g.weight_len(), "conv2d w");
    assert_eq!(dy.len(), g.output_len(), "conv2d dy");
    let (kk, hw) = (rows_of(g), g.h_out() * g.w_out());
    let mut dx = vec![0f32; g.input_len()];
    dx.par_chunks_mut(g.input_len() / g.batch).zip(dy.par_chunks(g.c_out * hw)).for_each_init(
        || vec![0f32; kk * hw],
        |col, (dx, dy)| {
            sgemm(kk, hw, g.c_out, Mat::t(w, kk), Mat::rows(dy, hw), col, false, false);
            col2im(g, col, dx);
        },
    );
    dx
}

/// conv2d weight gradient, *added* into dw [c_out, c_in, k, k].
/// x [batch, c_in, h_in, w_in], dy [batch, c_out, h_out, w_out]
pub fn conv2d_backward_weight(g: &Conv2d, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    assert_eq!(x.len(), g.input_len(), "conv2d x");
    assert_eq!(dy.len(), g.output_len(), "conv2d dy");
    assert_eq!(dw.len(), g.weight_len(), "conv2d dw");
    let (kk, hw, co) = (rows_of(g), g.h_out() * g.w_out(), g.c_out);
    let (x_len, dy_len) = (g.input_len() / g.batch, co * hw);
    let per_task = g.batch.div_ceil(rayon::current_num_threads());
    // Samples packed per product: enough that the inner dimension is at least ~1024 long.
    let pack = 1024usize.div_ceil(hw).clamp(1, per_task);
    let partials: Vec<Vec<f32>> = (0..g.batch.div_ceil(per_task))
        .into_par_iter()
        .map(|task| {
            let mut part = vec![0f32; dw.len()];
            let (mut col, mut dyt) = (vec![0f32; kk * pack * hw], vec![0f32; co * pack * hw]);
            let samples = task * per_task..((task + 1) * per_task).min(g.batch);
            for (i, start) in samples.clone().step_by(pack).enumerate() {
                let nb = pack.min(samples.end - start);
                let ld = nb * hw;
                for j in 0..nb {
                    let n = start + j;
                    im2col(g, &x[n * x_len..(n + 1) * x_len], &mut col, ld, j * hw);
                    for c in 0..co {
                        dyt[c * ld + j * hw..][..hw].copy_from_slice(&dy[n * dy_len + c * hw..][..hw]);
                    }
                }
                // part [c_out, kk] += dyt [c_out, ld] col^T [ld, kk]
                sgemm(co, kk, ld, Mat::rows(&dyt, ld), Mat::t(&col, ld), &mut part, i > 0, false);
            }
            part
        })
        .collect();
    for part in partials {
        dw.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
}

/// Per-channel sums of dy [batch, channels, spatial], *added* into db [channels]
/// (the bias gradient of a conv, a transposed conv, or a linear layer with spatial = 1).
pub fn channel_sum(dy: &[f32], channels: usize, spatial: usize, db: &mut [f32]) {
    for (i, chunk) in dy.chunks(spatial).enumerate() {
        db[i % channels] += chunk.iter().sum::<f32>();
    }
}

/// conv_transpose2d forward: the adjoint conv's input gradient, plus the bias.
/// x [batch, c_in, h_in, w_in], w [c_in, c_out, k, k] -> y [batch, c_out, h_out, w_out]
pub fn conv_transpose2d_forward(g: &ConvTranspose2d, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len(), "conv_transpose2d x");
    let mut y = conv2d_backward_input(&g.adjoint(), w, x);
    if let Some(b) = bias {
        let hw = g.h_out() * g.w_out();
        y.par_chunks_mut(hw).enumerate().for_each(|(i, plane)| plane.iter_mut().for_each(|v| *v += b[i % g.c_out]));
    }
    y
}

/// conv_transpose2d input gradient (overwritten): the adjoint conv's forward.
/// w [c_in, c_out, k, k], dy [batch, c_out, h_out, w_out] -> dx [batch, c_in, h_in, w_in]
pub fn conv_transpose2d_backward_input(g: &ConvTranspose2d, w: &[f32], dy: &[f32]) -> Vec<f32> {
    conv2d_forward(&g.adjoint(), dy, w, None)
}

/// conv_transpose2d weight gradient, *added* into dw [c_in, c_out, k, k]: the adjoint conv's,
/// with dy as that conv's input and x as its output gradient.
pub fn conv_transpose2d_backward_weight(g: &ConvTranspose2d, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    conv2d_backward_weight(&g.adjoint(), dy, x, dw);
}
