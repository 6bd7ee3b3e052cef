//! The training step on the CPU, fast: the same model code (`model::spec`), the same step as
//! [`Trainer`](crate::train::Trainer) and [`CpuGan`](crate::train::CpuGan), and the same
//! checkpoints, with every matrix layer an sgemm and the rest parallel loops (native only).
//!
//! Why it exists: on a CPU-only machine the WGSL kernels run through a Vulkan emulation
//! (lavapipe) at a few GFLOP/s, too slow to train the generators the page ships; this path runs
//! the same arithmetic at sgemm speed. `tests/fast_cpu.rs` checks its steps against the GPU
//! trainer and the CPU reference, and its checkpoints in both directions.
//!
//! - [`gemm`]: the one strided sgemm (and which library, and why).
//! - [`conv`]: conv2d as im2col + sgemm; conv_transpose2d as its adjoint.
//! - [`linear`], [`batchnorm`], [`pointwise`] (activations, Adam).
//! - [`net`]: a network's forward tape and backward over a `NetSpec`.
//!
//! Conventions as in `reference`: NCHW f32, PyTorch semantics; a backward's input gradient is
//! returned (overwritten), parameter gradients are added into the caller's buffers.

pub mod batchnorm;
pub mod conv;
pub mod gemm;
pub mod linear;
pub mod net;
pub mod pointwise;

use crate::model::checkpoint::{self, CheckpointError, NetState, TrainState};
use crate::model::classifier::{classifier_spec, ClassifierWeights, SIZE};
use crate::model::weights::GeneratorWeights;
use crate::model::{discriminator, generator, ModelConfig, NetSpec};
use crate::reference::bce_with_logits;
use crate::step::{gan_step, init_params, zeros_like, GanPasses, Judgement, METRICS};

/// Both networks, their Adam moments and running statistics, and the step count: what
/// `CpuGan` keeps, with the same fields and the same initial values for a config.
#[derive(Clone)]
pub struct FastGan {
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
}

fn adam(
    cfg: &ModelConfig,
    step: u32,
    params: &mut [Vec<f32>],
    grads: &[Vec<f32>],
    m: &mut [Vec<f32>],
    v: &mut [Vec<f32>],
) {
    for (((p, g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
        pointwise::adam_update(&cfg.adam, step, p, g, m, v);
    }
}

impl FastGan {
    /// Freshly initialised from the config's seed (the same weights as `Trainer::new`).
    pub fn new(cfg: &ModelConfig) -> FastGan {
        let (g, d) = (generator(cfg), discriminator(cfg));
        let (g_params, d_params) = init_params(cfg);
        FastGan {
            g_running: g.init_running(),
            d_running: d.init_running(),
            g_m: zeros_like(&g_params),
            g_v: zeros_like(&g_params),
            d_m: zeros_like(&d_params),
            d_v: zeros_like(&d_params),
            g,
            d,
            g_ema: if cfg.ema > 0.0 { g_params.clone() } else { Vec::new() },
            g_params,
            d_params,
            step: 0,
        }
    }

    /// One training step on `real` (batch images, NCHW u8) and `z` (batch x z_dim):
    /// [`gan_step`] over `FastPasses`; returns the metrics in `METRICS` order.
    pub fn step(&mut self, cfg: &ModelConfig, real: &[u8], z: &[f32]) -> [f32; METRICS] {
        assert_eq!(real.len(), cfg.batch * cfg.image_len(), "real batch size");
        assert_eq!(z.len(), cfg.batch * cfg.z_dim, "z batch size");
        self.step += 1;
        let mut passes = FastPasses {
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

    /// G's images for `z` (any number of z_dim vectors) with batchnorm in inference mode
    /// (running statistics), NCHW in [-1, 1], as `Trainer::sample`.
    pub fn sample(&self, cfg: &ModelConfig, z: &[f32]) -> Vec<f32> {
        assert_eq!(z.len() % cfg.z_dim, 0, "z holds whole vectors");
        let mut running = self.g_running.clone();
        net::forward(&self.g, z.len() / cfg.z_dim, &self.g_params, &mut running, &cfg.bn, z.to_vec(), false).0
    }

    /// G's images for `z` as G makes them in training (batchnorm with the statistics of each run
    /// of `cfg.batch` vectors), leaving the running statistics as they were: [`Trainer::preview`](crate::train::Trainer::preview).
    pub fn preview(&self, cfg: &ModelConfig, z: &[f32]) -> Vec<f32> {
        let image_len = cfg.image_len();
        let mut out = Vec::with_capacity(z.len() / cfg.z_dim * image_len);
        for (run, n) in crate::model::latent::batches(z, cfg.z_dim, cfg.batch) {
            let mut running = self.g_running.clone();
            let images = net::forward(&self.g, cfg.batch, &self.g_params, &mut running, &cfg.bn, run, true).0;
            out.extend_from_slice(&images[..n * image_len]);
        }
        out
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
    pub fn from_state(state: TrainState) -> FastGan {
        let g_ema = if state.config.ema > 0.0 { state.ema_or_params().to_vec() } else { Vec::new() };
        let TrainState { config, step, g, d, .. } = state;
        FastGan {
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
        *self = FastGan::from_state(state);
        Ok(run)
    }
}

/// The fast path's passes over one step's batch, and what they hand each other. Tapes are
/// dropped as soon as their backward has run (they are the step's largest buffers).
struct FastPasses<'a> {
    gan: &'a mut FastGan,
    cfg: &'a ModelConfig,
    real: Vec<f32>,
    z: &'a [f32],
    d_grads: Vec<Vec<f32>>,
    fake: Vec<f32>,
    g_tape: Option<net::Tape>,
    /// The gradient of G's loss with respect to G(z).
    d_fake: Vec<f32>,
    g_grads: Vec<Vec<f32>>,
    metrics: [f32; METRICS],
}

impl GanPasses for FastPasses<'_> {
    fn judge(&mut self, j: Judgement) {
        let (gan, n, bn) = (&mut *self.gan, self.cfg.batch, &self.cfg.bn);
        let x = match j {
            Judgement::Real => std::mem::take(&mut self.real),
            Judgement::Fake => self.fake.clone(),
            Judgement::Gen => std::mem::take(&mut self.fake),
        };
        let (logits, tape) = net::forward(&gan.d, n, &gan.d_params, &mut gan.d_running, bn, x, true);
        let loss = bce_with_logits(&logits, j.label());
        // Gen computes no parameter gradients: nothing would read them (the GPU's are discarded).
        let grads = j.trains_d().then_some(&mut self.d_grads[..]);
        let dx = net::backward(&gan.d, n, &gan.d_params, &tape, loss.dlogits, grads, !j.trains_d());
        if j == Judgement::Gen {
            self.d_fake = dx.expect("D's input gradient");
        }
        self.metrics[j.slot()..j.slot() + 2].copy_from_slice(&[loss.loss, loss.mean_prob]);
    }

    fn g_forward(&mut self) {
        let (gan, n, bn) = (&mut *self.gan, self.cfg.batch, &self.cfg.bn);
        let (fake, tape) = net::forward(&gan.g, n, &gan.g_params, &mut gan.g_running, bn, self.z.to_vec(), true);
        (self.fake, self.g_tape) = (fake, Some(tape));
    }

    fn g_backward(&mut self) {
        let gan = &*self.gan;
        self.g_grads = zeros_like(&gan.g_params);
        let tape = self.g_tape.take().expect("G's forward first");
        let dy = std::mem::take(&mut self.d_fake);
        net::backward(&gan.g, self.cfg.batch, &gan.g_params, &tape, dy, Some(&mut self.g_grads), false);
    }

    fn adam_d(&mut self) {
        let gan = &mut *self.gan;
        adam(self.cfg, gan.step, &mut gan.d_params, &self.d_grads, &mut gan.d_m, &mut gan.d_v);
    }

    fn adam_g(&mut self) {
        let gan = &mut *self.gan;
        adam(self.cfg, gan.step, &mut gan.g_params, &self.g_grads, &mut gan.g_m, &mut gan.g_v);
    }

    fn ema_g(&mut self) {
        for (e, p) in self.gan.g_ema.iter_mut().zip(&self.gan.g_params) {
            crate::reference::ema_update(self.cfg.ema, e, p); // memory-bound: the plain loop is as fast
        }
    }
}

/// A generator file's images for `z` (any number of z_dim vectors), in inference mode: what
/// [`GpuGenerator::generate`](crate::model::generate::GpuGenerator::generate) and the reference
/// [`generate_cpu`](crate::model::generate::generate_cpu) draw, at sgemm speed (the page's
/// pretrained grids without a GPU, or before its pipelines are compiled).
pub fn generate(weights: &GeneratorWeights, z: &[f32]) -> Vec<f32> {
    let cfg = &weights.config;
    assert_eq!(z.len() % cfg.z_dim, 0, "z holds whole vectors");
    inference(&generator(cfg), &weights.params, &weights.running, &cfg.bn, z, cfg.z_dim)
}

/// Batches of z [`calibrate_running`] draws for an averaged generator: 1,024 images' statistics.
pub const CALIBRATION_BATCHES: usize = 16;

/// The generator to draw from, out of `bytes`: a generator weights file as it is, or a training
/// checkpoint's G. Where the checkpoint keeps a moving average of G's parameters, that average,
/// with batchnorm running statistics measured for it ([`calibrate_running`]: the training G's
/// statistics belong to its own weights, not to the average's).
pub fn generator_of(bytes: &[u8]) -> Result<GeneratorWeights, CheckpointError> {
    // A checkpoint is read once here (GeneratorWeights::from_bytes would read it too, for its G).
    let Ok(config) = checkpoint::read_config(bytes) else {
        return GeneratorWeights::from_bytes(bytes);
    };
    let state = checkpoint::from_bytes(bytes, &config)?;
    let mut weights = GeneratorWeights::from_state(&state, Vec::new());
    if !state.g_ema.is_empty() {
        weights.running = calibrate_running(&config, &state.g_ema, CALIBRATION_BATCHES, config.seed);
        weights.params = state.g_ema;
        let what = format!(
            "moving average of G's parameters (decay {}); batchnorm statistics of {} generated batches of {}",
            config.ema, CALIBRATION_BATCHES, config.batch
        );
        weights.info.push(("weights".into(), what));
    }
    Ok(weights)
}

/// Batchnorm running statistics for G with `params`: the mean over `batches` batches of
/// `cfg.batch` random z of each batch's statistics (mean, unbiased variance), as the
/// training-mode forward computes them. What BigGAN calls standing statistics.
pub fn calibrate_running(cfg: &ModelConfig, params: &[Vec<f32>], batches: usize, seed: u64) -> Vec<Vec<f32>> {
    let spec = generator(cfg);
    let mut rng = crate::rng::Rng::new(seed ^ 0xca1b);
    // Momentum 1: the running statistics become exactly each batch's.
    let bn = crate::shape::BatchNormConfig { momentum: 1.0, ..cfg.bn };
    let mut sum: Vec<Vec<f32>> = zeros_like(&spec.init_running());
    for _ in 0..batches {
        let z = crate::model::latent::normal_z(&mut rng, cfg.batch, cfg.z_dim);
        let mut running = spec.init_running();
        net::forward(&spec, cfg.batch, params, &mut running, &bn, z, true);
        for (s, r) in sum.iter_mut().zip(&running) {
            s.iter_mut().zip(r).for_each(|(s, r)| *s += r);
        }
    }
    sum.iter_mut().for_each(|s| s.iter_mut().for_each(|v| *v /= batches as f32));
    sum
}

/// The MNIST classifier's logits for `images` (NCHW, [-1, 1], 32x32 grey), in inference mode:
/// what [`Classifier::logits`](crate::model::classifier::Classifier::logits) computes on the GPU.
pub fn classify(weights: &ClassifierWeights, images: &[f32]) -> Vec<f32> {
    // The classifier's own batchnorm settings, as `Classifier::new` builds it (not the GAN's).
    let bn = crate::shape::BatchNormConfig::default();
    inference(&classifier_spec(weights.width), &weights.params, &weights.running, &bn, images, SIZE * SIZE)
}

/// Inputs per forward pass of [`inference`]: bounds the activations held at once (a 64x64 G
/// holds about 1 MiB of them per image) without costing speed.
const INFERENCE_CHUNK: usize = 256;

/// `spec` in inference mode over any number of inputs of `input_len` values, in chunks.
fn inference(
    spec: &NetSpec,
    params: &[Vec<f32>],
    running: &[Vec<f32>],
    bn: &crate::shape::BatchNormConfig,
    inputs: &[f32],
    input_len: usize,
) -> Vec<f32> {
    let mut running = running.to_vec(); // an inference pass only reads them
    let mut out = Vec::with_capacity(inputs.len() / input_len * spec.output_len());
    for chunk in inputs.chunks(INFERENCE_CHUNK * input_len) {
        let n = chunk.len() / input_len;
        out.extend(net::forward(spec, n, params, &mut running, bn, chunk.to_vec(), false).0);
    }
    out
}
