//! `webgan-cli train`: the GAN training loop with progress, sample grids and checkpoints, on the
//! GPU (`Trainer`) or on the fast CPU path (`FastGan`). Both take the same batches and z in the
//! same order and write the same checkpoint format, so a run can be resumed on the other backend.

use crate::grid::save_grid;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use webgan::data::idx::load_mnist;
use webgan::data::{load_folder_cropped, Crop, ImagePool};
use webgan::fast::FastGan;
use webgan::gpu::Gpu;
use webgan::model::ModelConfig;
use webgan::run::{grid_z, RunState};
use webgan::step::METRICS;
use webgan::train::{MetricsRing, Trainer};

/// Where the step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// WGSL kernels through wgpu (any adapter, lavapipe included).
    Gpu,
    /// `webgan::fast`: sgemm and rayon on the CPU's cores.
    Cpu,
}

pub struct Options {
    pub data: PathBuf,
    pub cfg: ModelConfig,
    pub steps: Option<u32>,
    pub epochs: Option<f64>,
    pub out: PathBuf,
    pub sample_every: u32,
    pub checkpoint_every: u32,
    pub resume: Option<PathBuf>,
    pub max_images: Option<usize>,
    pub backend: Backend,
    /// A pixel box cut from every image of a folder before the centre crop and resize.
    pub crop: Option<Crop>,
}

/// An IDX file (MNIST, grey) or a folder of images.
fn load_data(
    path: &Path,
    cfg: &ModelConfig,
    max_images: Option<usize>,
    crop: Option<Crop>,
) -> Result<ImagePool, String> {
    if path.is_dir() {
        let (pool, report) =
            load_folder_cropped(path, cfg.image_size, cfg.channels, max_images, crop).map_err(|e| e.to_string())?;
        println!("{}: {report}", path.display());
        Ok(pool)
    } else {
        if crop.is_some() {
            return Err("--crop applies to a folder of images, not an IDX file".into());
        }
        if cfg.channels != 1 {
            return Err(format!("{}: an IDX file holds grey images; use --channels 1", path.display()));
        }
        load_mnist(path, cfg.image_size).map_err(|e| e.to_string())
    }
}

/// G's images for `z`, any count, in batches of the trainer's size.
pub fn generate(gpu: &Gpu, trainer: &Trainer, z: &[f32]) -> Result<Vec<f32>, String> {
    pollster::block_on(trainer.generate(gpu, z)).map_err(|e| e.to_string())
}

/// The model being trained, on either backend.
enum Engine {
    Gpu { gpu: Box<Gpu>, trainer: Box<Trainer>, ring: MetricsRing, previous: Option<wgpu::SubmissionIndex> },
    Cpu { gan: Box<FastGan>, cfg: ModelConfig },
}

impl Engine {
    fn new(backend: Backend, cfg: &ModelConfig) -> Result<Engine, String> {
        Ok(match backend {
            Backend::Gpu => {
                let gpu = crate::cli::open_tuned_gpu()?;
                println!("adapter: {}, {}", gpu.adapter_summary(), gpu.tuning());
                let trainer = Trainer::new(&gpu, cfg, &gpu.tuning()).map_err(|e| e.to_string())?;
                let ring = MetricsRing::new(&gpu, 4);
                Engine::Gpu { gpu: Box::new(gpu), trainer: Box::new(trainer), ring, previous: None }
            }
            Backend::Cpu => {
                println!("backend: CPU (webgan::fast), {} threads", rayon::current_num_threads());
                Engine::Cpu { gan: Box::new(FastGan::new(cfg)), cfg: cfg.clone() }
            }
        })
    }

    fn step_count(&self) -> u32 {
        match self {
            Engine::Gpu { trainer, .. } => trainer.step,
            Engine::Cpu { gan, .. } => gan.step,
        }
    }

    fn load(&mut self, bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
        match self {
            Engine::Gpu { gpu, trainer, .. } => trainer.load(gpu, bytes),
            Engine::Cpu { gan, cfg } => gan.load(cfg, bytes),
        }
        .map_err(|e| e.to_string())
    }

    fn save(&self, run: Vec<(String, String)>) -> Result<Vec<u8>, String> {
        match self {
            Engine::Gpu { gpu, trainer, .. } => pollster::block_on(trainer.save(gpu, run)).map_err(|e| e.to_string()),
            Engine::Cpu { gan, cfg } => Ok(gan.save(cfg, run)),
        }
    }

    /// One step; returns the metrics that became available, as (step, values). The GPU's come
    /// every 10 steps through the readback ring (a little late); the CPU's every 10 steps at once.
    fn step(&mut self, real: &[u8], z: &[f32]) -> Result<Vec<(u32, [f32; METRICS])>, String> {
        match self {
            Engine::Gpu { gpu, trainer, ring, previous } => {
                let submitted = trainer.step(gpu, real, z);
                // At most two steps in flight: the CPU prepares the next batch while the GPU works.
                if let Some(index) = previous.replace(submitted) {
                    let _ = gpu.device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None });
                }
                if trainer.step % 10 == 0 {
                    ring.record(gpu, trainer);
                }
                ring.collect(gpu).map_err(|e| e.to_string())
            }
            Engine::Cpu { gan, cfg } => {
                let m = gan.step(cfg, real, z);
                Ok(if gan.step % 10 == 0 { vec![(gan.step, m)] } else { vec![] })
            }
        }
    }

    /// G's images (eval mode) for `z`, any count.
    fn generate(&self, z: &[f32]) -> Result<Vec<f32>, String> {
        match self {
            Engine::Gpu { gpu, trainer, .. } => generate(gpu, trainer, z),
            Engine::Cpu { gan, cfg } => Ok(gan.sample(cfg, z)),
        }
    }
}

fn save_checkpoint(engine: &Engine, run: &RunState, path: &Path) -> Result<(), String> {
    let bytes = engine.save(run.to_pairs())?;
    // Write then rename: an interrupted save never leaves a truncated checkpoint behind.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn run(opts: Options) -> Result<(), String> {
    let cfg = &opts.cfg;
    cfg.validate()?;
    let pool = load_data(&opts.data, cfg, opts.max_images, opts.crop)?;
    println!("{} images of {}x{}x{}; {cfg}", pool.len(), cfg.channels, cfg.image_size, cfg.image_size);
    let mut engine = Engine::new(opts.backend, cfg)?;
    let mut run = RunState::new(cfg, pool.len());
    if let Some(path) = &opts.resume {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let pairs = engine.load(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        run = if pairs.is_empty() {
            println!(
                "{}: no run state (data order, noise stream), as in a checkpoint from PyTorch: a fresh data order",
                path.display()
            );
            RunState::fresh_at(cfg, pool.len(), engine.step_count())
        } else {
            RunState::from_pairs(&pairs, pool.len()).map_err(|e| format!("{}: {e}", path.display()))?
        };
        println!("resumed {} at step {}", path.display(), engine.step_count());
    }
    let total = match (opts.steps, opts.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => (e * pool.len() as f64 / cfg.batch as f64).ceil() as u32,
        (None, None) => return Err("say how long: --steps N or --epochs E".into()),
    };
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let checkpoint = opts.out.join("checkpoint.safetensors");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).map_err(|e| e.to_string())?;

    let z_grid = grid_z(cfg, 64);
    let bar = ProgressBar::new(total as u64).with_position(engine.step_count() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps {per_sec} ETA {eta} | {msg}")
            .unwrap()
            .progress_chars("=> "),
    );
    let (mut real, start_step, t0) = (Vec::new(), engine.step_count(), std::time::Instant::now());
    while engine.step_count() < total && !stop.load(Ordering::SeqCst) {
        let z = run.next(cfg, &pool, &mut real);
        for (step, m) in engine.step(&real, &z)? {
            if m.iter().any(|v| !v.is_finite()) {
                return Err(format!("step {step}: a loss became {m:?}; not saving this state"));
            }
            let secs = t0.elapsed().as_secs_f64();
            let done = (engine.step_count() - start_step) as f64;
            let (ips, ms) = (done * cfg.batch as f64 / secs, 1e3 * secs / done);
            let line = format!(
                "epoch {:.2} D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2} {ms:.0} ms/step {ips:.1} img/s",
                run.sampler.epochs(),
                m[0] + m[2],
                m[4],
                m[1],
                m[3]
            );
            if bar.is_hidden() {
                // No terminal (a log file, CI): a plain line per readout instead of the bar.
                println!("step {step}/{total} {line}");
            } else {
                bar.set_message(line);
            }
        }
        let step = engine.step_count();
        bar.set_position(step as u64);
        if step % opts.sample_every == 0 {
            let grid = opts.out.join(format!("samples/step_{step:06}.png"));
            save_grid(&grid, &engine.generate(&z_grid)?, cfg.channels, cfg.image_size, 8)?;
        }
        if step % opts.checkpoint_every == 0 {
            save_checkpoint(&engine, &run, &checkpoint)?;
        }
    }
    bar.finish();
    save_checkpoint(&engine, &run, &checkpoint)?;
    save_grid(&opts.out.join("samples/last.png"), &engine.generate(&z_grid)?, cfg.channels, cfg.image_size, 8)?;
    let secs = t0.elapsed().as_secs_f64();
    let steps = engine.step_count() - start_step;
    println!(
        "{} at step {} ({steps} steps in {secs:.0} s, {:.0} ms/step, {:.0} images/s); checkpoint {}",
        if stop.load(Ordering::SeqCst) { "interrupted, saved" } else { "done" },
        engine.step_count(),
        1e3 * secs / steps.max(1) as f64,
        steps as f64 * cfg.batch as f64 / secs,
        checkpoint.display()
    );
    Ok(())
}
