//! `webgan-cli score`: the sliced Wasserstein distance between a generator (a checkpoint or the
//! page's F16 weights file) and real images, per pyramid level (see `webgan::metrics::swd`). With `--baseline` it also scores two
//! disjoint sets of real images of the same size against each other: the floor a perfect
//! generator would reach with that many images, without which the numbers cannot be read.
//! `--baseline-data` takes the floor's second set from other real images instead (the training
//! identities, when `--data` holds identities kept out of training), so that all of `--data`
//! can be the generator's comparison set; either way the ratio to the floor is printed per level.
//! With `--classifier` (MNIST) it also reads the generated digits with the project's classifier
//! (see `webgan::metrics::digits`), and the real ones for comparison, with the pairs of classes
//! the unconfident ones hesitate between; `--unsure-grid` draws those. Everything runs on the fast
//! CPU path: no GPU pipeline is compiled.

use crate::grid::save_grid;
use crate::sample::load_generator;
use std::path::{Path, PathBuf};
use std::time::Instant;
use webgan::data::idx::load_mnist;
use webgan::data::{load_folder_cropped, thousands, Crop, ImagePool};
use webgan::fast;
use webgan::metrics::digits::CONFIDENT;
use webgan::metrics::{digit_report, swd, Images, SwdConfig, SwdReport};
use webgan::model::classifier::{ClassifierWeights, CLASSES, SIZE};
use webgan::model::latent::normal_z;
use webgan::model::ModelConfig;
use webgan::reference::softmax;
use webgan::rng::Rng;

pub struct Options {
    pub checkpoint: PathBuf,
    pub data: PathBuf,
    /// Images per set (real and generated).
    pub count: usize,
    pub seed: u64,
    pub baseline: bool,
    /// Real images for the floor's second set (instead of a second part of `data`).
    pub baseline_data: Option<PathBuf>,
    /// MNIST classifier weights: also report the digits' confident share and class coverage.
    pub classifier: Option<PathBuf>,
    /// A PNG for the first 64 generated digits the classifier reads without confidence.
    pub unsure_grid: Option<PathBuf>,
    /// The box cut from every image of a folder first (as the run trained with `--crop`).
    pub crop: Option<Crop>,
}

pub fn run(opts: &Options) -> Result<(), String> {
    let weights = load_generator(&opts.checkpoint)?;
    let cfg = weights.config.clone();

    let sets = if opts.baseline && opts.baseline_data.is_none() { 2 } else { 1 };
    let pool = load_data(&opts.data, &cfg, sets * opts.count, opts.crop)?;
    let count = opts.count.min(pool.len() / sets);
    if count == 0 {
        return Err(format!("{}: {} images, too few for {sets} set(s)", opts.data.display(), pool.len()));
    }
    if count < opts.count {
        println!("{}: only {} images, so {} per set", opts.data.display(), thousands(pool.len()), thousands(count));
    }
    // A seeded random subset, so a part of the data sorted by class still gives every class.
    let mut order: Vec<usize> = (0..pool.len()).collect();
    Rng::new(opts.seed).shuffle(&mut order);
    let real_set = |part: usize| {
        let pixels: Vec<u8> =
            order[part * count..(part + 1) * count].iter().flat_map(|&i| pool.image(i)).copied().collect();
        Images::from_u8(&pixels, cfg.channels, cfg.image_size)
    };
    let real = real_set(0)?;

    let started = Instant::now();
    let z = normal_z(&mut Rng::new(opts.seed ^ 0x5c0e), count, cfg.z_dim);
    let fake = Images::new(fast::generate(&weights, &z), cfg.channels, cfg.image_size)
        .map_err(|e| format!("the generator's images: {e}"))?;
    println!("generated {} images in {:.1} s", thousands(count), started.elapsed().as_secs_f64());

    let swd_cfg = SwdConfig { seed: opts.seed, ..SwdConfig::default() };
    let n = thousands(count);
    let timed = |what: &str, a: &Images, b: &Images| -> Result<SwdReport, String> {
        let started = Instant::now();
        let report = swd(a, b, &swd_cfg)?;
        println!("{what} ({n} vs {n}): {report}  [{:.1} s]", started.elapsed().as_secs_f64());
        Ok(report)
    };
    let generated = timed("generated vs real", &fake, &real)?;
    let other = match &opts.baseline_data {
        Some(path) => {
            let pool = load_data(path, &cfg, count, opts.crop)?;
            if pool.len() < count {
                return Err(format!("{}: {} images, fewer than the {count} of the set", path.display(), pool.len()));
            }
            let pixels: Vec<u8> = (0..count).flat_map(|i| pool.image(i)).copied().collect();
            Some(Images::from_u8(&pixels, cfg.channels, cfg.image_size)?)
        }
        None if opts.baseline => Some(real_set(1)?),
        None => None,
    };
    if let Some(other) = other {
        let floor = timed("real vs real     ", &other, &real)?;
        let ratios: Vec<String> = (generated.levels.iter().zip(&floor.levels))
            .map(|((side, g), (_, f))| format!("{side}px {:.2}", g / f))
            .collect();
        println!("generated / floor: {}, mean {:.2}", ratios.join(", "), generated.mean / floor.mean);
    }
    if let Some(path) = &opts.classifier {
        let fake_values = fake.data();
        let real_pixels: Vec<u8> = order[..count].iter().flat_map(|&i| pool.image(i)).copied().collect();
        digits(path, &cfg, fake_values, &real_pixels, opts.unsure_grid.as_deref())?;
    }
    Ok(())
}

/// The classifier's reading of the generated digits and of as many real ones; with `grid`, a
/// picture of the generated digits it doubts.
fn digits(path: &Path, cfg: &ModelConfig, fake: &[f32], real: &[u8], grid: Option<&Path>) -> Result<(), String> {
    if cfg.channels != 1 || cfg.image_size != SIZE {
        return Err(format!("the digit classifier reads {SIZE}x{SIZE} grey images; this generator draws {cfg}"));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let weights = ClassifierWeights::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let real = Images::from_u8(real, 1, SIZE)?;
    let (fake_logits, real_logits) = (fast::classify(&weights, fake), fast::classify(&weights, real.data()));
    let fake_probs = softmax(&fake_logits, CLASSES);
    for (what, probs) in [("generated digits", &fake_probs), ("real digits     ", &softmax(&real_logits, CLASSES))] {
        let report = digit_report(probs, CLASSES, CONFIDENT)?;
        println!("{what}: {report}\n{:16}  {}", "", report.doubts(8));
    }
    if let Some(grid) = grid {
        let n = SIZE * SIZE;
        let unsure: Vec<f32> = (fake_probs.chunks_exact(CLASSES).enumerate())
            .filter(|(_, row)| row.iter().all(|&p| p < CONFIDENT))
            .take(64)
            .flat_map(|(i, _)| fake[i * n..(i + 1) * n].iter().copied())
            .collect();
        if unsure.is_empty() {
            println!("no unconfident digits: {} not written", grid.display());
        } else {
            save_grid(grid, &unsure, 1, SIZE, 8)?;
            println!("wrote {} unconfident digits to {}", unsure.len() / n, grid.display());
        }
    }
    Ok(())
}

/// An IDX file (MNIST, grey; padded to the model's size) or a folder of images (at most `want`
/// of them, spread over the folder), in the checkpoint's size and channels.
fn load_data(path: &Path, cfg: &ModelConfig, want: usize, crop: Option<Crop>) -> Result<ImagePool, String> {
    if path.is_dir() {
        let (pool, report) =
            load_folder_cropped(path, cfg.image_size, cfg.channels, Some(want), crop).map_err(|e| e.to_string())?;
        println!("{}: {report}", path.display());
        Ok(pool)
    } else if cfg.channels != 1 {
        Err(format!("{}: an IDX file holds grey images, the checkpoint's model draws RGB", path.display()))
    } else {
        load_mnist(path, cfg.image_size).map_err(|e| e.to_string())
    }
}
