//! The moving average of G's parameters (`ModelConfig::ema`) on every backend: the GPU trainer,
//! the CPU reference and the fast CPU path each keep it equal to its closed form over the
//! parameters its own steps produced; checkpoints carry it across backends (and start it from
//! G's parameters where a checkpoint has none); `fast::generator_of` draws from it, with
//! batchnorm statistics measured for it; the training backends' live grids draw it.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::steps::{close, small};
use pollster::block_on;
use webgan::fast::{self, FastGan};
use webgan::gpu::Gpu;
use webgan::model::checkpoint;
use webgan::model::{cpu, generator, KernelForm, Kind, ModelConfig};
use webgan::rng::Rng;
use webgan::shape::BatchNormConfig;
use webgan::train::{CpuGan, Trainer};

/// Large enough that every step's parameters weigh visibly in the average.
const DECAY: f32 = 0.8;
const STEPS: usize = 3;

fn config() -> ModelConfig {
    ModelConfig { ema: DECAY, ..small(Kind::Dcgan, KernelForm::Seed5x5) }
}

fn batch(cfg: &ModelConfig, step: usize) -> (Vec<u8>, Vec<f32>) {
    let real = (0..cfg.batch * cfg.image_len()).map(|i| ((i * 37 + step * 11) % 256) as u8).collect();
    let mut rng = Rng::new(100 + step as u64);
    (real, (0..cfg.batch * cfg.z_dim).map(|_| rng.normal()).collect())
}

/// ema_k = d^k p_0 + sum_{i=1..k} (1 - d) d^(k-i) p_i, in f64, from the parameters after each
/// step (`history[0]` the initial ones).
fn closed_form(history: &[Vec<Vec<f32>>]) -> Vec<Vec<f32>> {
    let (d, k) = (DECAY as f64, history.len() - 1);
    (0..history[0].len())
        .map(|t| {
            (0..history[0][t].len())
                .map(|j| {
                    let mut sum = d.powi(k as i32) * history[0][t][j] as f64;
                    for (i, p) in history.iter().enumerate().skip(1) {
                        sum += (1.0 - d) * d.powi((k - i) as i32) * p[t][j] as f64;
                    }
                    sum as f32
                })
                .collect()
        })
        .collect()
}

/// A backend under test: one step, G's parameters, G's average.
trait Backend {
    fn step(&mut self, cfg: &ModelConfig, real: &[u8], z: &[f32]);
    fn params(&self) -> Vec<Vec<f32>>;
    fn ema(&self) -> Vec<Vec<f32>>;
}

impl Backend for CpuGan {
    fn step(&mut self, cfg: &ModelConfig, real: &[u8], z: &[f32]) {
        CpuGan::step(self, cfg, real, z);
    }
    fn params(&self) -> Vec<Vec<f32>> {
        self.g_params.clone()
    }
    fn ema(&self) -> Vec<Vec<f32>> {
        self.g_ema.clone()
    }
}

impl Backend for FastGan {
    fn step(&mut self, cfg: &ModelConfig, real: &[u8], z: &[f32]) {
        FastGan::step(self, cfg, real, z);
    }
    fn params(&self) -> Vec<Vec<f32>> {
        self.g_params.clone()
    }
    fn ema(&self) -> Vec<Vec<f32>> {
        self.g_ema.clone()
    }
}

struct OnGpu(Gpu, Trainer);

impl Backend for OnGpu {
    fn step(&mut self, _: &ModelConfig, real: &[u8], z: &[f32]) {
        self.1.step(&self.0, real, z);
    }
    fn params(&self) -> Vec<Vec<f32>> {
        block_on(self.1.g.params.read(&self.0)).unwrap()
    }
    fn ema(&self) -> Vec<Vec<f32>> {
        block_on(self.1.g_ema.as_ref().expect("the trainer keeps an average").0.read(&self.0)).unwrap()
    }
}

fn follows_closed_form(name: &str, backend: &mut dyn Backend) {
    let cfg = config();
    let mut history = vec![backend.params()];
    assert!(backend.ema() == history[0], "{name}: the average starts at the initial parameters");
    for step in 0..STEPS {
        let (real, z) = batch(&cfg, step);
        backend.step(&cfg, &real, &z);
        history.push(backend.params());
        close(&format!("{name} step {step}: G's average"), &backend.ema(), &closed_form(&history));
    }
    // The average is neither the first nor the last parameters: it moved, and it lags.
    let (ema, last) = (backend.ema(), history.last().unwrap().clone());
    assert!(ema != history[0] && ema != last, "{name}: the average did not move, or moved all the way");
}

#[test]
fn the_average_follows_its_closed_form_on_every_backend() {
    let cfg = config();
    let gpu = block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)");
    let trainer = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    follows_closed_form("reference", &mut CpuGan::new(&cfg));
    follows_closed_form("fast CPU path", &mut FastGan::new(&cfg));
    follows_closed_form("GPU", &mut OnGpu(gpu, trainer));
}

#[test]
fn checkpoints_carry_the_average_across_backends() {
    let cfg = config();
    let mut fast = FastGan::new(&cfg);
    for step in 0..2 {
        let (real, z) = batch(&cfg, step);
        fast.step(&cfg, &real, &z);
    }
    let bytes = fast.save(&cfg, Vec::new());
    let gpu = block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)");
    let mut trainer = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    trainer.load(&gpu, &bytes).unwrap();
    let on_gpu = OnGpu(gpu, trainer);
    assert!(on_gpu.ema() == fast.g_ema, "the GPU trainer loaded another average");
    assert!(on_gpu.ema() != on_gpu.params(), "the average is G's parameters: nothing to carry");
    let back = block_on(on_gpu.1.save(&on_gpu.0, Vec::new())).unwrap();
    assert_eq!(checkpoint::from_bytes(&back, &cfg).unwrap().g_ema, fast.g_ema, "saved from the GPU");

    // A checkpoint without an average, resumed with one: it starts at G's parameters there.
    let plain = ModelConfig { ema: 0.0, ..cfg.clone() };
    let mut without = FastGan::new(&plain);
    let (real, z) = batch(&plain, 0);
    without.step(&plain, &real, &z);
    let bytes = without.save(&plain, Vec::new());
    assert!(checkpoint::from_bytes(&bytes, &plain).unwrap().g_ema.is_empty(), "no average saved without ema");
    let mut resumed = FastGan::new(&cfg);
    resumed.load(&cfg, &bytes).unwrap();
    assert!(resumed.g_ema == without.g_params, "the fast path starts the average at G's parameters");
    let OnGpu(gpu, mut trainer) = on_gpu;
    trainer.load(&gpu, &bytes).unwrap();
    assert!(OnGpu(gpu, trainer).ema() == without.g_params, "the GPU starts the average at G's parameters");
    // And loaded without ema, an average in the file is left aside.
    let mut plain_fast = FastGan::new(&plain);
    plain_fast.load(&plain, &fast.save(&cfg, Vec::new())).unwrap();
    assert!(plain_fast.g_ema.is_empty());
}

#[test]
fn a_generator_is_drawn_from_the_average_with_its_own_statistics() {
    let cfg = config();
    let mut fast = FastGan::new(&cfg);
    for step in 0..STEPS {
        let (real, z) = batch(&cfg, step);
        fast.step(&cfg, &real, &z);
    }
    let weights = fast::generator_of(&fast.save(&cfg, Vec::new())).unwrap();
    assert!(weights.params == fast.g_ema, "not the average's parameters");
    assert!(weights.info.iter().any(|(k, v)| k == "weights" && v.contains("moving average")), "{:?}", weights.info);

    // The statistics: each of the calibration batches' own (mean, unbiased variance), averaged,
    // here through the CPU reference network.
    let spec = generator(&cfg);
    let mut rng = Rng::new(cfg.seed ^ 0xca1b);
    let bn = BatchNormConfig { momentum: 1.0, ..cfg.bn };
    let mut want = vec![Vec::new(); spec.init_running().len()];
    for b in 0..fast::CALIBRATION_BATCHES {
        let z = webgan::model::latent::normal_z(&mut rng, cfg.batch, cfg.z_dim);
        let mut running = spec.init_running();
        cpu::forward(&spec, cfg.batch, &fast.g_ema, &mut running, &bn, &z, true);
        for (w, r) in want.iter_mut().zip(running) {
            if b == 0 {
                *w = vec![0.0; r.len()];
            }
            w.iter_mut().zip(r).for_each(|(w, r)| *w += r / fast::CALIBRATION_BATCHES as f32);
        }
    }
    close("the average's batchnorm statistics", &weights.running, &want);
    assert!(weights.running != fast.g_running, "the training G's statistics were kept");

    // A checkpoint without an average gives G as it trained.
    let plain = ModelConfig { ema: 0.0, ..cfg.clone() };
    let g = FastGan::new(&plain);
    let weights = fast::generator_of(&g.save(&plain, Vec::new())).unwrap();
    assert!(weights.params == g.g_params && weights.running == g.g_running);
}

#[test]
fn the_live_grid_draws_the_average_on_both_training_backends() {
    let cfg = config();
    let gpu = block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)");
    let mut trainer = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    let mut fast = FastGan::new(&cfg);
    for step in 0..STEPS {
        let (real, z) = batch(&cfg, step);
        fast.step(&cfg, &real, &z);
        trainer.step(&gpu, &real, &z);
    }
    let z = batch(&cfg, 99).1;
    // The reference: the average's parameters through the CPU reference network, batch statistics.
    let spec = generator(&cfg);
    let draw =
        |params: &[Vec<f32>]| cpu::forward(&spec, cfg.batch, params, &mut fast.g_running.clone(), &cfg.bn, &z, true).0;
    let want = draw(&fast.g_ema);
    assert!(want != draw(&fast.g_params), "the average draws what G draws: nothing to tell apart");
    close("fast path's grid vs the average", &[fast.preview(&cfg, &z)], std::slice::from_ref(&want));

    let on_gpu = OnGpu(gpu, trainer);
    let before = (on_gpu.params(), block_on(on_gpu.1.g.running.read(&on_gpu.0)).unwrap());
    close("GPU grid vs the average", &[block_on(on_gpu.1.preview(&on_gpu.0, &z)).unwrap()], &[want]);
    // G's own weights and statistics are swapped back after the draw, bit for bit.
    assert!(on_gpu.params() == before.0, "the GPU grid left the average in G's parameters");
    assert!(
        block_on(on_gpu.1.g.running.read(&on_gpu.0)).unwrap() == before.1,
        "the GPU grid changed the running statistics"
    );
}
