//! Batchnorm over (batch, space) per channel, exactly PyTorch's BatchNorm2d / BatchNorm1d.
//!
//! x is [batch, channels, spatial] (spatial = h * w, or 1 after a linear layer); every channel
//! has n = batch * spatial values, and gamma, beta and the running stats are [channels].

use num_traits::Float;

use super::{cast, count};
use crate::shape::{BatchNorm, BatchNormConfig};

/// What the training forward keeps for the backward, per channel:
/// the batch mean and invstd = 1 / sqrt(biased_var + eps).
pub struct BnSaved<F> {
    pub mean: Vec<F>,
    pub invstd: Vec<F>,
}

/// Gradients of a training-mode batchnorm.
pub struct BnGrads<F> {
    pub dx: Vec<F>,
    pub dgamma: Vec<F>,
    pub dbeta: Vec<F>,
}

/// Flat index of x[b, c, i] in a [batch, channels, spatial] tensor.
fn at(s: &BatchNorm, b: usize, c: usize, i: usize) -> usize {
    (b * s.channels + c) * s.spatial + i
}

/// Training forward: normalise each channel with its batch statistics,
///   y = gamma * (x - mean) * invstd + beta,
/// and update the running stats in place:
///   running_mean = (1-m) * running_mean + m * mean
///   running_var  = (1-m) * running_var  + m * var * n/(n-1)
/// Normalising uses the biased variance, the running estimate the unbiased one (PyTorch does
/// both); with n == 1 there is no unbiased estimate and the biased one (0) is used.
///
/// x [batch, channels, spatial], gamma/beta/running_* [channels] -> y like x, BnSaved
pub fn batchnorm_forward_train<F: Float>(
    s: &BatchNorm,
    cfg: &BatchNormConfig,
    x: &[F],
    gamma: &[F],
    beta: &[F],
    running_mean: &mut [F],
    running_var: &mut [F],
) -> (Vec<F>, BnSaved<F>) {
    assert_eq!(x.len(), s.len(), "batchnorm x");
    let (m, eps): (F, F) = (cast(cfg.momentum), cast(cfg.eps));
    let n = s.batch * s.spatial;
    let nf = count::<F>(n);
    let mut y = vec![F::zero(); x.len()];
    let mut saved = BnSaved { mean: vec![F::zero(); s.channels], invstd: vec![F::zero(); s.channels] };
    for c in 0..s.channels {
        // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which
        // cancels catastrophically when the mean is large against the spread.
        let mut sum = F::zero();
        for b in 0..s.batch {
            for i in 0..s.spatial {
                sum = sum + x[at(s, b, c, i)];
            }
        }
        let mean = sum / nf;
        let mut sq = F::zero();
        for b in 0..s.batch {
            for i in 0..s.spatial {
                let d = x[at(s, b, c, i)] - mean;
                sq = sq + d * d;
            }
        }
        let var = sq / nf;
        let invstd = F::one() / (var + eps).sqrt();
        for b in 0..s.batch {
            for i in 0..s.spatial {
                let j = at(s, b, c, i);
                y[j] = gamma[c] * (x[j] - mean) * invstd + beta[c];
            }
        }

        let unbiased = if n > 1 { sq / count(n - 1) } else { var };
        running_mean[c] = (F::one() - m) * running_mean[c] + m * mean;
        running_var[c] = (F::one() - m) * running_var[c] + m * unbiased;
        saved.mean[c] = mean;
        saved.invstd[c] = invstd;
    }
    (y, saved)
}

/// Eval forward: the running stats stand in for the batch statistics, so the op is a fixed
/// per-channel affine map, y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
///
/// x [batch, channels, spatial], gamma/beta/running_* [channels] -> y like x
pub fn batchnorm_forward_eval<F: Float>(
    s: &BatchNorm,
    cfg: &BatchNormConfig,
    x: &[F],
    gamma: &[F],
    beta: &[F],
    running_mean: &[F],
    running_var: &[F],
) -> Vec<F> {
    assert_eq!(x.len(), s.len(), "batchnorm x");
    let eps: F = cast(cfg.eps);
    x.iter()
        .enumerate()
        .map(|(j, &v)| {
            let c = (j / s.spatial) % s.channels;
            gamma[c] * (v - running_mean[c]) / (running_var[c] + eps).sqrt() + beta[c]
        })
        .collect()
}

/// Training-mode backward. With xhat = (x - mean) * invstd and y = gamma * xhat + beta:
///   dbeta  = sum dy,   dgamma = sum dy * xhat   (sums over the n values of the channel)
///   dx     = gamma * invstd / n * (n * dy - dbeta - xhat * dgamma)
/// The last two terms are there because mean and invstd are themselves functions of every x
/// in the channel: moving one x shifts the mean (the dbeta term) and the spread (the dgamma
/// term) seen by all the others.
///
/// x, dy [batch, channels, spatial], gamma [channels], saved from the training forward
/// -> dx like x, dgamma/dbeta [channels]
pub fn batchnorm_backward<F: Float>(s: &BatchNorm, x: &[F], gamma: &[F], saved: &BnSaved<F>, dy: &[F]) -> BnGrads<F> {
    assert_eq!(x.len(), s.len(), "batchnorm x");
    assert_eq!(dy.len(), s.len(), "batchnorm dy");
    assert_eq!(gamma.len(), s.channels, "batchnorm gamma");
    let nf = count::<F>(s.batch * s.spatial);
    let mut g = BnGrads {
        dx: vec![F::zero(); x.len()],
        dgamma: vec![F::zero(); s.channels],
        dbeta: vec![F::zero(); s.channels],
    };
    for (c, &gamma_c) in gamma.iter().enumerate() {
        let (mean, invstd) = (saved.mean[c], saved.invstd[c]);
        let (mut dbeta, mut dgamma) = (F::zero(), F::zero());
        for b in 0..s.batch {
            for i in 0..s.spatial {
                let j = at(s, b, c, i);
                dbeta = dbeta + dy[j];
                dgamma = dgamma + dy[j] * (x[j] - mean) * invstd;
            }
        }
        let scale = gamma_c * invstd / nf;
        for b in 0..s.batch {
            for i in 0..s.spatial {
                let j = at(s, b, c, i);
                let xhat = (x[j] - mean) * invstd;
                g.dx[j] = scale * (nf * dy[j] - dbeta - xhat * dgamma);
            }
        }
        g.dgamma[c] = dgamma;
        g.dbeta[c] = dbeta;
    }
    g
}
