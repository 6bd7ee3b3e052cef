//! Batchnorm with `reference::batchnorm`'s exact conventions: batch statistics with the biased
//! variance for normalising, the unbiased one (n/(n-1); biased when n = 1) for the running
//! variance, running = (1 - momentum) running + momentum batch.
//!
//! x is [batch, channels, spatial]. Per-channel sums run in f64 (one rayon task per channel;
//! a channel's n = batch * spatial values may be 65,536, where an f32 running sum loses digits);
//! the elementwise passes run over (sample, channel) planes in parallel.

use crate::reference::{BnGrads, BnSaved};
use crate::shape::{BatchNorm, BatchNormConfig};
use rayon::prelude::*;

/// Per-channel sums of f(x[b, c, i], dy[b, c, i]) over b and i, in f64.
fn channel_sums<const K: usize>(
    s: &BatchNorm,
    a: &[f32],
    b: &[f32],
    f: impl Fn(usize, f32, f32) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    (0..s.channels)
        .into_par_iter()
        .map(|c| {
            let mut acc = [0f64; K];
            for n in 0..s.batch {
                let at = (n * s.channels + c) * s.spatial;
                for i in at..at + s.spatial {
                    let v = f(c, a[i], if b.is_empty() { 0.0 } else { b[i] });
                    acc.iter_mut().zip(v).for_each(|(x, y)| *x += y);
                }
            }
            acc
        })
        .collect()
}

/// y = scale[c] * x + shift[c] over [batch, channels, spatial].
fn affine(s: &BatchNorm, x: &[f32], scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(s.spatial).zip(x.par_chunks(s.spatial)).enumerate().for_each(|(j, (y, x))| {
        let c = j % s.channels;
        y.iter_mut().zip(x).for_each(|(y, &x)| *y = scale[c] * x + shift[c]);
    });
    y
}

/// Training forward; updates `running_mean` / `running_var` in place.
pub fn batchnorm_forward_train(
    s: &BatchNorm,
    cfg: &BatchNormConfig,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &mut [f32],
    running_var: &mut [f32],
) -> (Vec<f32>, BnSaved<f32>) {
    assert_eq!(x.len(), s.len(), "batchnorm x");
    let n = s.batch * s.spatial;
    let mean: Vec<f64> = channel_sums(s, x, &[], |_, v, _| [v as f64]).iter().map(|[v]| v / n as f64).collect();
    let sq: Vec<f64> = channel_sums(s, x, &[], |c, v, _| [(v as f64 - mean[c]).powi(2)]).iter().map(|[v]| *v).collect();
    let m = cfg.momentum;
    let mut saved = BnSaved { mean: vec![0.0; s.channels], invstd: vec![0.0; s.channels] };
    let (mut scale, mut shift) = (vec![0f32; s.channels], vec![0f32; s.channels]);
    for c in 0..s.channels {
        let var = sq[c] / n as f64;
        let invstd = (1.0 / (var + cfg.eps as f64).sqrt()) as f32;
        let unbiased = if n > 1 { sq[c] / (n - 1) as f64 } else { var };
        let mean_c = mean[c] as f32;
        running_mean[c] = (1.0 - m) * running_mean[c] + m * mean_c;
        running_var[c] = (1.0 - m) * running_var[c] + m * unbiased as f32;
        saved.mean[c] = mean_c;
        saved.invstd[c] = invstd;
        scale[c] = gamma[c] * invstd;
        shift[c] = beta[c] - mean_c * scale[c];
    }
    (affine(s, x, &scale, &shift), saved)
}

/// Eval forward: the running statistics in place of the batch's.
pub fn batchnorm_forward_eval(
    s: &BatchNorm,
    cfg: &BatchNormConfig,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
) -> Vec<f32> {
    assert_eq!(x.len(), s.len(), "batchnorm x");
    let scale: Vec<f32> = (0..s.channels).map(|c| gamma[c] / (running_var[c] + cfg.eps).sqrt()).collect();
    let shift: Vec<f32> = (0..s.channels).map(|c| beta[c] - running_mean[c] * scale[c]).collect();
    affine(s, x, &scale, &shift)
}

/// Training backward (dx overwritten, dgamma/dbeta returned):
///   dx = gamma * invstd / n * (n * dy - dbeta - xhat * dgamma), xhat = (x - mean) * invstd.
pub fn batchnorm_backward(s: &BatchNorm, x: &[f32], gamma: &[f32], saved: &BnSaved<f32>, dy: &[f32]) -> BnGrads<f32> {
    assert_eq!(dy.len(), s.len(), "batchnorm dy");
    let sums = channel_sums(s, x, dy, |c, x, d| [d as f64, d as f64 * ((x - saved.mean[c]) * saved.invstd[c]) as f64]);
    let dbeta: Vec<f32> = sums.iter().map(|v| v[0] as f32).collect();
    let dgamma: Vec<f32> = sums.iter().map(|v| v[1] as f32).collect();
    let nf = (s.batch * s.spatial) as f32;
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(s.spatial).zip(x.par_chunks(s.spatial).zip(dy.par_chunks(s.spatial))).enumerate().for_each(
        |(j, (dx, (x, dy)))| {
            let c = j % s.channels;
            let (mean, invstd) = (saved.mean[c], saved.invstd[c]);
            let scale = gamma[c] * invstd / nf;
            for ((dx, &x), &d) in dx.iter_mut().zip(x).zip(dy) {
                *dx = scale * (nf * d - dbeta[c] - (x - mean) * invstd * dgamma[c]);
            }
        },
    );
    BnGrads { dx, dgamma, dbeta }
}
