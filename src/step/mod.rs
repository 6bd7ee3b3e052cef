//! The GAN training step, written once: the order of its passes, which every backend follows
//! (the GPU trainer, the CPU reference and the fast CPU path each supply the passes).
//!
//! One step (DCGAN-PyTorch's order):
//! 1. D judges the real batch: BCE against 1, backward into D's zeroed gradients;
//! 2. G(z) (training mode); D judges it: BCE against 0, backward (D's gradients accumulate);
//!    Adam on D;
//! 3. D (updated) judges the same G(z) for G's loss: BCE against 1 (the non-saturating loss),
//!    backward into G(z) only, then through G; Adam on G;
//! 4. with `ModelConfig::ema`, the moving average of G's parameters takes the new ones in.
//!
//! Each judgement gives two of the [`METRICS`]: its loss and D's mean output, in the order
//! [D loss real, D(x), D loss fake, D(G(z)), G loss, D(G(z)) after D's update].
//!
//! - [`host`]: the model and the passes of the two CPU backends (the plain reference,
//!   `train::CpuGan`, and the fast path, `fast::FastGan`), which supply only their network walk
//!   and Adam. The GPU's passes are `train::Trainer`'s.

pub mod host;

use crate::model::{discriminator, generator, ModelConfig};
use crate::rng::Rng;

/// How many figures a step reports (see the module's documentation for their order).
pub const METRICS: usize = 6;

/// D's three judgements in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// The real batch, label 1; D's parameter gradients.
    Real,
    /// G(z), label 0; D's parameter gradients.
    Fake,
    /// G(z) again after D's update, label 1 (G's loss); the gradient with respect to G(z) only.
    Gen,
}

impl Judgement {
    /// The BCE target.
    pub fn label(self) -> f32 {
        if self == Judgement::Fake {
            0.0
        } else {
            1.0
        }
    }

    /// Where its loss goes in the metrics (D's mean output follows).
    pub fn slot(self) -> usize {
        match self {
            Judgement::Real => 0,
            Judgement::Fake => 2,
            Judgement::Gen => 4,
        }
    }

    /// Whether it trains D (parameter gradients) rather than G (the input gradient).
    pub fn trains_d(self) -> bool {
        self != Judgement::Gen
    }
}

/// One backend's passes over a step's batch. Each keeps what it hands the next (G's tape, G(z),
/// the gradient with respect to G(z)) and writes its metrics where `Judgement::slot` says.
pub trait GanPasses {
    /// D forward on `j`'s batch (training mode), the BCE loss against `j.label()`, and D's
    /// backward: parameter gradients added up for Real and Fake, the input gradient for Gen.
    fn judge(&mut self, j: Judgement);
    /// G forward on the step's z, in training mode, keeping what its backward needs.
    fn g_forward(&mut self);
    /// G backward from the gradient the Gen judgement left, into G's zeroed gradients.
    fn g_backward(&mut self);
    fn adam_d(&mut self);
    fn adam_g(&mut self);
    /// The moving average of G's parameters, when the config keeps one.
    fn ema_g(&mut self);
}

/// One training step, in the order above. Every backend's `step` runs this.
pub fn gan_step(passes: &mut impl GanPasses) {
    passes.judge(Judgement::Real);
    passes.g_forward();
    passes.judge(Judgement::Fake);
    passes.adam_d();
    passes.judge(Judgement::Gen);
    passes.g_backward();
    passes.adam_g();
    passes.ema_g();
}

/// FLOPs of one training step, from the layer shapes. Each matrix layer's backward costs its
/// forward twice (input and weight gradients), but a network's first layer skips its input
/// gradient when nothing needs it. D runs forward and backward three times: on the real and the
/// fake batch for its weight gradients, and for G's loss for its input gradient only; G once.
pub fn step_flops(cfg: &ModelConfig) -> f64 {
    let (g, d) = (generator(cfg).layer_flops(cfg.batch), discriminator(cfg).layer_flops(cfg.batch));
    let (fg, fd): (f64, f64) = (g.iter().sum(), d.iter().sum());
    3.0 * fd + 2.0 * (2.0 * fd - d[0]) + fd + 3.0 * fg - g[0]
}

/// Both networks' initial parameters, drawn from the config's seed: G's first, then D's.
pub fn init_params(cfg: &ModelConfig) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = Rng::new(cfg.seed);
    let g = generator(cfg).init(&mut rng);
    let d = discriminator(cfg).init(&mut rng);
    (g, d)
}

/// Zeroed tensors of `v`'s lengths (gradients and Adam moments start so).
pub fn zeros_like(v: &[Vec<f32>]) -> Vec<Vec<f32>> {
    v.iter().map(|t| vec![0.0; t.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the calls, to pin the order every backend inherits.
    #[derive(Default)]
    struct Calls(Vec<String>);

    impl GanPasses for Calls {
        fn judge(&mut self, j: Judgement) {
            self.0.push(format!("judge {j:?}"));
        }
        fn g_forward(&mut self) {
            self.0.push("g_forward".into());
        }
        fn g_backward(&mut self) {
            self.0.push("g_backward".into());
        }
        fn adam_d(&mut self) {
            self.0.push("adam_d".into());
        }
        fn adam_g(&mut self) {
            self.0.push("adam_g".into());
        }
        fn ema_g(&mut self) {
            self.0.push("ema_g".into());
        }
    }

    #[test]
    fn the_step_runs_dcgan_pytorchs_order() {
        let mut calls = Calls::default();
        gan_step(&mut calls);
        let want = "judge Real, g_forward, judge Fake, adam_d, judge Gen, g_backward, adam_g, ema_g";
        assert_eq!(calls.0.join(", "), want);
    }
}
