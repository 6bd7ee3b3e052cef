//! The step on host memory (`Vec<f32>` tensors, NCHW): one model struct and one set of passes
//! for both CPU backends, over the one host network walk (`model::walk`). A backend supplies
//! only its kernels ([`Kernels`]: the layers and Adam): the plain reference
//! (`model::cpu::Reference`, the code the tests trust) and the fast path (`fast::Fast`: im2col +
//! sgemm, rayon).

use std::marker::PhantomData;

use super::{gan_step, init_params, zeros_like, GanPasses, Judgement, METRICS};
use crate::model::checkpoint::{self, CheckpointError, NetState, TrainState};
use crate::model::walk::{self, Kernels, Tape};
use crate::model::{discriminator, generator, ModelConfig, NetSpec};
use crate::reference;

/// Adam on every tensor of a network.
fn adam_all<B: Kernels>(
    cfg: &ModelConfig,
    step: u32,
    params: &mut [Vec<f32>],
    grads: &[Vec<f32>],
    m: &mut [Vec<f32>],
    v: &mut [Vec<f32>],
) {
    for (((p, g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
        B::adam(&cfg.adam, step, p, g, m, v);
    }
}

/// Both networks, their Adam moments, running statistics and G's moving average, and the step
/// count: what a CPU backend keeps between steps (the same initial values as `Trainer::new`).
#[derive(Clone)]
pub struct HostGan<B> {
    pub g: NetSpec,
    pub d: NetSpec,
    pub g_params: Vec<Vec<f32>>,
    pub d_params: Vec<Vec<f32>>,
    pub g_running: Vec<Vec<f32>>,
    pub d_running: Vec<Vec<f32>>,
    pub g_m: Vec<Vec<f32>>,
    pub g_v: Vec<Vec<f32>>,
    pub d_m: Vec<Vec<f32>>,
    pub d_v: Vec<Vec<f32>>,
    /// The moving average of G's parameters; empty without `cfg.ema`.
    pub g_ema: Vec<Vec<f32>>,
    /// Steps taken (Adam's bias correction uses step + 1 for the next).
    pub step: u32,
    backend: PhantomData<B>,
}

impl<B: Kernels> HostGan<B> {
    /// Freshly initialised from the config's seed.
    pub fn new(cfg: &ModelConfig) -> Self {
        let (g_params, d_params) = init_params(cfg);
        HostGan::from_state(TrainState {
            config: cfg.clone(),
            step: 0,
            run: Vec::new(),
            g: NetState::fresh(&generator(cfg), g_params),
            d: NetState::fresh(&discriminator(cfg), d_params),
            g_ema: Vec::new(),
        })
    }

    /// One training step on `real` (batch images, NCHW u8) and `z` (batch x z_dim): [`gan_step`]
    /// over `HostPasses`; returns the metrics in [`METRICS`] order.
    pub fn step(&mut self, cfg: &ModelConfig, real: &[u8], z: &[f32]) -> [f32; METRICS] {
        assert_eq!(real.len(), cfg.batch * cfg.image_len(), "real batch size");
        assert_eq!(z.len(), cfg.batch * cfg.z_dim, "z batch size");
        self.step += 1;
        let mut passes = HostPasses {
            real: real.iter().map(|&b| b as f32 / 127.5 - 1.0).collect(),
            z,
            d_grads: zeros_like(&self.d_params),
            fake: Vec::new(),
            g_tape: None,
            d_fake: Vec::new(),
            g_grads: Vec::new(),
            metrics: [0.0; METRICS],
            gan: self,
            cfg,
        };
        gan_step(&mut passes);
        passes.metrics
    }

    /// A checkpoint in memory with `cfg` as its configuration and `run` as the caller's run state.
    pub fn to_state(&self, cfg: &ModelConfig, run: Vec<(String, String)>) -> TrainState {
        let net = |params: &[Vec<f32>], m: &[Vec<f32>], v: &[Vec<f32>], running: &[Vec<f32>]| NetState {
            params: params.to_vec(),
            adam_m: m.to_vec(),
            adam_v: v.to_vec(),
            running: running.to_vec(),
        };
        TrainState {
            config: cfg.clone(),
            step: self.step,
            run,
            g: net(&self.g_params, &self.g_m, &self.g_v, &self.g_running),
            d: net(&self.d_params, &self.d_m, &self.d_v, &self.d_running),
            g_ema: self.g_ema.clone(),
        }
    }

    /// The model a checkpoint holds (its config's architecture), with G's moving average when
    /// its config keeps one (starting from G's parameters if the checkpoint has none).
    pub fn from_state(state: TrainState) -> Self {
        let g_ema = if state.config.ema > 0.0 { state.ema_or_params().to_vec() } else { Vec::new() };
        let TrainState { config, step, g, d, .. } = state;
        HostGan {
            g_ema,
            g: generator(&config),
            d: discriminator(&config),
            g_params: g.params,
            d_params: d.params,
            g_running: g.running,
            d_running: d.running,
            g_m: g.adam_m,
            g_v: g.adam_v,
            d_m: d.adam_m,
            d_v: d.adam_v,
            step,
            backend: PhantomData,
        }
    }

    /// The safetensors checkpoint (`Trainer::save`'s format, byte for byte the same layout).
    pub fn save(&self, cfg: &ModelConfig, run: Vec<(String, String)>) -> Vec<u8> {
        self.to_state(cfg, run).to_bytes()
    }

    /// Checks a checkpoint completely against `cfg`'s architecture, then takes its state and
    /// returns its run pairs; on error nothing changes. As `Trainer::load`, the caller keeps its
    /// own hyperparameters (`cfg`); see `checkpoint::read_config` for the checkpoint's.
    pub fn load(&mut self, cfg: &ModelConfig, bytes: &[u8]) -> Result<Vec<(String, String)>, CheckpointError> {
        let mut state = checkpoint::from_bytes(bytes, cfg)?;
        let run = std::mem::take(&mut state.run);
        state.config.ema = cfg.ema;
        *self = HostGan::from_state(state);
        Ok(run)
    }
}

/// The passes over one step's batch, and what they hand each other. Tapes are dropped as soon
/// as their backward has run (they are the step's largest buffers).
struct HostPasses<'a, B: Kernels> {
    gan: &'a mut HostGan<B>,
    cfg: &'a ModelConfig,
    real: Vec<f32>,
    z: &'a [f32],
    d_grads: Vec<Vec<f32>>,
    fake: Vec<f32>,
    g_tape: Option<Tape>,
    /// The gradient of G's loss with respect to G(z).
    d_fake: Vec<f32>,
    g_grads: Vec<Vec<f32>>,
    metrics: [f32; METRICS],
}

impl<B: Kernels> GanPasses for HostPasses<'_, B> {
    fn judge(&mut self, j: Judgement) {
        let (gan, n, bn) = (&mut *self.gan, self.cfg.batch, &self.cfg.bn);
        let x = match j {
            Judgement::Real => std::mem::take(&mut self.real),
            Judgement::Fake => self.fake.clone(),
            Judgement::Gen => std::mem::take(&mut self.fake),
        };
        let (logits, tape) = walk::forward::<B>(&gan.d, n, &gan.d_params, &mut gan.d_running, bn, x, true);
        let loss = reference::bce_with_logits(&logits, j.label());
        // Gen computes no parameter gradients: nothing would read them (the GPU's are discarded).
        let grads = j.trains_d().then_some(&mut self.d_grads[..]);
        let dx = walk::backward::<B>(&gan.d, n, &gan.d_params, &tape, loss.dlogits, grads, !j.trains_d());
        if j == Judgement::Gen {
            self.d_fake = dx.expect("D's input gradient");
        }
        self.metrics[j.slot()..j.slot() + 2].copy_from_slice(&[loss.loss, loss.mean_prob]);
    }

    fn g_forward(&mut self) {
        let (gan, n, bn) = (&mut *self.gan, self.cfg.batch, &self.cfg.bn);
        let (fake, tape) = walk::forward::<B>(&gan.g, n, &gan.g_params, &mut gan.g_running, bn, self.z.to_vec(), true);
        (self.fake, self.g_tape) = (fake, Some(tape));
    }

    fn g_backward(&mut self) {
        let gan = &*self.gan;
        self.g_grads = zeros_like(&gan.g_params);
        let tape = self.g_tape.take().expect("G's forward first");
        let dy = std::mem::take(&mut self.d_fake);
        walk::backward::<B>(&gan.g, self.cfg.batch, &gan.g_params, &tape, dy, Some(&mut self.g_grads), false);
    }

    fn adam_d(&mut self) {
        let gan = &mut *self.gan;
        adam_all::<B>(self.cfg, gan.step, &mut gan.d_params, &self.d_grads, &mut gan.d_m, &mut gan.d_v);
    }

    fn adam_g(&mut self) {
        let gan = &mut *self.gan;
        adam_all::<B>(self.cfg, gan.step, &mut gan.g_params, &self.g_grads, &mut gan.g_m, &mut gan.g_v);
    }

    fn ema_g(&mut self) {
        for (e, p) in self.gan.g_ema.iter_mut().zip(&self.gan.g_params) {
            reference::ema_update(self.cfg.ema, e, p); // memory-bound: the plain loop is as fast
        }
    }
}
