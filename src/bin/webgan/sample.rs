//! `webgan-cli sample`: an 8x8 grid and an interpolation strip from a generator: a training
//! checkpoint or the page's F16 weights file. Drawn on the fast CPU path: one grid is a few
//! GFLOP, less than compiling the GPU pipelines would take on a CPU-only machine.

use crate::grid::save_grid;
use std::path::Path;
use std::time::Instant;
use webgan::fast;
use webgan::model::latent::{normal_z, slerp};
use webgan::model::weights::GeneratorWeights;
use webgan::rng::Rng;

/// Frames of the interpolation strip, ends included.
const FRAMES: usize = 10;

/// G of `path`: a generator weights file (F16, as the page ships) or a training checkpoint (its
/// moving average of G when it keeps one: see `fast::generator_of`).
pub fn load_generator(path: &Path) -> Result<GeneratorWeights, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let weights = fast::generator_of(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let averaged = if weights.info.iter().any(|(k, _)| k == "weights") { " (moving average)" } else { "" };
    println!("{}: {}, step {}{averaged}", path.display(), weights.config, weights.step);
    Ok(weights)
}

pub fn run(checkpoint: &Path, grid: &Path, strip: &Path, seed: u64) -> Result<(), String> {
    let weights = load_generator(checkpoint)?;
    let cfg = &weights.config;
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    save_grid(grid, &fast::generate(&weights, &normal_z(&mut rng, 64, cfg.z_dim)), cfg.channels, cfg.image_size, 8)?;
    let (a, b) = (normal_z(&mut rng, 1, cfg.z_dim), normal_z(&mut rng, 1, cfg.z_dim));
    let path: Vec<f32> = (0..FRAMES).flat_map(|i| slerp(&a, &b, i as f32 / (FRAMES - 1) as f32)).collect();
    save_grid(strip, &fast::generate(&weights, &path), cfg.channels, cfg.image_size, FRAMES)?;
    println!("wrote {} and {} in {:.2} s", grid.display(), strip.display(), started.elapsed().as_secs_f64());
    Ok(())
}
