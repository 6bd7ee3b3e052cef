//! `webgan-cli train`: the GAN training loop with progress, sample grids and checkpoints.

use crate::grid::save_grid;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use webgan::data::idx::load_mnist;
use webgan::data::{load_folder, ImagePool, Sampler, SamplerState};
use webgan::gpu::Gpu;
use webgan::model::latent::normal_z;
use webgan::model::ModelConfig;
use webgan::rng::Rng;
use webgan::train::{MetricsRing, Trainer};

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
}

/// An IDX file (MNIST, grey) or a folder of images.
fn load_data(path: &Path, cfg: &ModelConfig, max_images: Option<usize>) -> Result<ImagePool, String> {
    if path.is_dir() {
        let (pool, report) = load_folder(path, cfg.image_size, cfg.channels, max_images).map_err(|e| e.to_string())?;
        println!("{}: {report}", path.display());
        Ok(pool)
    } else {
        if cfg.channels != 1 {
            return Err(format!("{}: an IDX file holds grey images; use --channels 1", path.display()));
        }
        load_mnist(path, cfg.image_size).map_err(|e| e.to_string())
    }
}

/// The fixed z of every sample grid, so successive grids show the same 64 draws learning.
fn fixed_z(cfg: &ModelConfig, count: usize) -> Vec<f32> {
    normal_z(&mut Rng::new(cfg.seed ^ 0xf1ed), count, cfg.z_dim)
}

/// G's images for `z`, any count, in batches of the trainer's size.
pub fn generate(gpu: &Gpu, trainer: &Trainer, z: &[f32]) -> Result<Vec<f32>, String> {
    let cfg = &trainer.cfg;
    let (per, count) = (cfg.batch * cfg.z_dim, z.len() / cfg.z_dim);
    let mut out = Vec::with_capacity(count * cfg.image_len());
    for chunk in z.chunks(per) {
        let mut zb = chunk.to_vec();
        zb.resize(per, 0.0);
        let imgs = pollster::block_on(trainer.sample(gpu, &zb)).map_err(|e| e.to_string())?;
        out.extend_from_slice(&imgs[..chunk.len() / cfg.z_dim * cfg.image_len()]);
    }
    Ok(out)
}

fn run_pairs(sampler: &Sampler, rng: &Rng) -> Vec<(String, String)> {
    let s = sampler.state();
    let r = rng.state();
    vec![
        ("epoch".into(), s.epoch.to_string()),
        ("sampler".into(), format!("{} {} {} {}", s.len, s.seed, s.epoch, s.pos)),
        ("rng".into(), format!("{:016x} {:016x} {:016x} {:016x}", r[0], r[1], r[2], r[3])),
    ]
}

fn parse_run(run: &[(String, String)], pool_len: usize) -> Result<(Sampler, Rng), String> {
    let get =
        |k: &str| run.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).ok_or(format!("checkpoint has no {k}"));
    let n: Vec<u64> =
        get("sampler")?.split(' ').map(|v| v.parse().map_err(|_| "bad sampler state")).collect::<Result<_, _>>()?;
    let [len, seed, epoch, pos] = n[..] else { return Err("bad sampler state".into()) };
    if len as usize != pool_len {
        return Err(format!("the checkpoint was trained on {len} images, this data has {pool_len}"));
    }
    let sampler = Sampler::from_state(SamplerState { len, seed, epoch, pos }).map_err(|e| e.to_string())?;
    let r: Vec<u64> = get("rng")?
        .split(' ')
        .map(|v| u64::from_str_radix(v, 16).map_err(|_| "bad rng state"))
        .collect::<Result<_, _>>()?;
    let rng = Rng::from_state(r.try_into().map_err(|_| "bad rng state")?);
    Ok((sampler, rng))
}

fn save_checkpoint(gpu: &Gpu, trainer: &Trainer, sampler: &Sampler, rng: &Rng, path: &Path) -> Result<(), String> {
    let bytes = pollster::block_on(trainer.save(gpu, run_pairs(sampler, rng))).map_err(|e| e.to_string())?;
    // Write then rename: an interrupted save never leaves a truncated checkpoint behind.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn run(opts: Options) -> Result<(), String> {
    let cfg = &opts.cfg;
    cfg.validate()?;
    let gpu = pollster::block_on(Gpu::new()).map_err(|e| e.to_string())?;
    let pool = load_data(&opts.data, cfg, opts.max_images)?;
    println!("{} images of {}x{}x{}; {cfg}", pool.len(), cfg.channels, cfg.image_size, cfg.image_size);
    println!("adapter: {}, tiles {}", gpu.adapter_summary(), gpu.tiles);
    let mut trainer = Trainer::new(&gpu, cfg, &gpu.tiles).map_err(|e| e.to_string())?;
    let mut sampler = Sampler::new(pool.len(), cfg.seed);
    let mut rng = Rng::new(cfg.seed ^ 0x2);
    if let Some(path) = &opts.resume {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let run = trainer.load(&gpu, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        (sampler, rng) = parse_run(&run, pool.len())?;
        println!("resumed {} at step {}", path.display(), trainer.step);
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

    let z_grid = fixed_z(cfg, 64);
    let bar = ProgressBar::new(total as u64).with_position(trainer.step as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps {per_sec} ETA {eta} | {msg}")
            .unwrap()
            .progress_chars("=> "),
    );
    let mut ring = MetricsRing::new(&gpu, 4);
    let (mut real, start_step, t0) = (Vec::new(), trainer.step, std::time::Instant::now());
    let mut previous = None;
    while trainer.step < total && !stop.load(Ordering::SeqCst) {
        sampler.next_batch(&pool, cfg.batch, &mut real);
        let z = normal_z(&mut rng, cfg.batch, cfg.z_dim);
        let submitted = trainer.step(&gpu, &real, &z);
        // At most two steps in flight: the CPU prepares the next batch while the GPU works.
        if let Some(index) = previous.replace(submitted) {
            let _ = gpu.device.poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None });
        }
        if trainer.step % 10 == 0 {
            ring.record(&gpu, &trainer);
        }
        for (step, m) in ring.collect(&gpu).map_err(|e| e.to_string())? {
            if m.iter().any(|v| !v.is_finite()) {
                return Err(format!("step {step}: a loss became {m:?}; not saving this state"));
            }
            let ips = (trainer.step - start_step) as f64 * cfg.batch as f64 / t0.elapsed().as_secs_f64();
            let line = format!(
                "epoch {:.2} D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2} {ips:.1} img/s",
                sampler.epochs(),
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
        bar.set_position(trainer.step as u64);
        if trainer.step % opts.sample_every == 0 {
            let grid = opts.out.join(format!("samples/step_{:06}.png", trainer.step));
            save_grid(&grid, &generate(&gpu, &trainer, &z_grid)?, cfg.channels, cfg.image_size, 8)?;
        }
        if trainer.step % opts.checkpoint_every == 0 {
            save_checkpoint(&gpu, &trainer, &sampler, &rng, &checkpoint)?;
        }
    }
    bar.finish();
    save_checkpoint(&gpu, &trainer, &sampler, &rng, &checkpoint)?;
    save_grid(
        &opts.out.join("samples/last.png"),
        &generate(&gpu, &trainer, &z_grid)?,
        cfg.channels,
        cfg.image_size,
        8,
    )?;
    let secs = t0.elapsed().as_secs_f64();
    let steps = trainer.step - start_step;
    println!(
        "{} at step {} ({steps} steps in {secs:.0} s, {:.0} images/s); checkpoint {}",
        if stop.load(Ordering::SeqCst) { "interrupted, saved" } else { "done" },
        trainer.step,
        steps as f64 * cfg.batch as f64 / secs,
        checkpoint.display()
    );
    Ok(())
}
