//! The training step on the CPU, fast: the same model code (`model::spec`), the same step
//! ([`crate::step::host`] runs it for both CPU backends), the same network walk (`model::walk`;
//! this module supplies [`Fast`], the kernels) and the same checkpoints as
//! [`Trainer`](crate::train::Trainer), with every matrix layer an sgemm and the rest parallel
//! loops.
//!
//! Why it exists: on a CPU-only machine the WGSL kernels run through a Vulkan emulation
//! (lavapipe) at a few GFLOP/s, too slow to train the generators the page ships; this path runs
//! the same arithmetic at sgemm speed. `tests/fast_cpu.rs` checks its steps against the GPU
//! trainer and the CPU reference, and its checkpoints in both directions.
//!
//! - [`gemm`]: the one strided sgemm (and which library, and why).
//! - [`conv`]: conv2d as im2col + sgemm; conv_transpose2d as its adjoint.
//! - [`linear`], [`batchnorm`], [`pointwise`] (activations, Adam).
//! - [`kernels`]: all of them as the kernels of the host network walk (`model::walk`).
//!
//! Conventions as in `reference`: NCHW f32, PyTorch semantics; a backward's input gradient is
//! returned (overwritten), parameter gradients are added into the caller's buffers.

pub mod batchnorm;
pub mod conv;
pub mod gemm;
pub mod kernels;
pub mod linear;
pub mod pointwise;

use crate::model::checkpoint::{self, CheckpointError};
use crate::model::classifier::{classifier_spec, ClassifierWeights, SIZE};
use crate::model::weights::GeneratorWeights;
use crate::model::{generator, walk, ModelConfig, NetSpec};
use crate::step::host::HostGan;
use crate::step::zeros_like;

/// The fast path's kernels (`kernels`: the layers and Adam), as a backend of the host step and
/// of the host network walk (`model::walk`).
#[derive(Clone, Copy, Debug)]
pub struct Fast;

/// The training step on the fast CPU path.
pub type FastGan = HostGan<Fast>;

impl HostGan<Fast> {
    /// G's images for `z` (any number of z_dim vectors) with batchnorm in inference mode
    /// (running statistics), NCHW in [-1, 1], as `Trainer::sample`.
    pub fn sample(&self, cfg: &ModelConfig, z: &[f32]) -> Vec<f32> {
        assert_eq!(z.len() % cfg.z_dim, 0, "z holds whole vectors");
        let mut running = self.g_running.clone();
        walk::forward::<Fast>(&self.g, z.len() / cfg.z_dim, &self.g_params, &mut running, &cfg.bn, z.to_vec(), false).0
    }

    /// G's images for `z` as G makes them in training (batchnorm with the statistics of each run
    /// of `cfg.batch` vectors), leaving the running statistics as they were; with `cfg.ema`, the
    /// moving average's: [`Trainer::preview`](crate::train::Trainer::preview).
    pub fn preview(&self, cfg: &ModelConfig, z: &[f32]) -> Vec<f32> {
        let params = if self.g_ema.is_empty() { &self.g_params } else { &self.g_ema };
        let image_len = cfg.image_len();
        let mut out = Vec::with_capacity(z.len() / cfg.z_dim * image_len);
        for (run, n) in crate::model::latent::batches(z, cfg.z_dim, cfg.batch) {
            let mut running = self.g_running.clone();
            let images = walk::forward::<Fast>(&self.g, cfg.batch, params, &mut running, &cfg.bn, run, true).0;
            out.extend_from_slice(&images[..n * image_len]);
        }
        out
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
        walk::forward::<Fast>(&spec, cfg.batch, params, &mut running, &bn, z, true);
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
        out.extend(walk::forward::<Fast>(spec, n, params, &mut running, bn, chunk.to_vec(), false).0);
    }
    out
}
