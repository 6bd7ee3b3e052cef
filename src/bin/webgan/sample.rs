//! `webgan-cli sample`: an 8x8 grid and an interpolation strip from a checkpoint.

use crate::grid::save_grid;
use crate::train::generate;
use std::path::Path;
use webgan::model::checkpoint::read_config;
use webgan::model::latent::{normal_z, slerp};
use webgan::rng::Rng;
use webgan::train::Trainer;

/// Frames of the interpolation strip, ends included.
const FRAMES: usize = 10;

pub fn run(checkpoint: &Path, grid: &Path, strip: &Path, seed: u64) -> Result<(), String> {
    let bytes = std::fs::read(checkpoint).map_err(|e| format!("{}: {e}", checkpoint.display()))?;
    let cfg = read_config(&bytes).map_err(|e| format!("{}: {e}", checkpoint.display()))?;
    let gpu = crate::cli::open_tuned_gpu()?;
    let mut trainer = Trainer::new(&gpu, &cfg, &gpu.tuning()).map_err(|e| e.to_string())?;
    trainer.load(&gpu, &bytes).map_err(|e| format!("{}: {e}", checkpoint.display()))?;
    println!("{}: {cfg}, step {}", checkpoint.display(), trainer.step);

    let mut rng = Rng::new(seed);
    save_grid(grid, &generate(&gpu, &trainer, &normal_z(&mut rng, 64, cfg.z_dim))?, cfg.channels, cfg.image_size, 8)?;
    let (a, b) = (normal_z(&mut rng, 1, cfg.z_dim), normal_z(&mut rng, 1, cfg.z_dim));
    let path: Vec<f32> = (0..FRAMES).flat_map(|i| slerp(&a, &b, i as f32 / (FRAMES - 1) as f32)).collect();
    save_grid(strip, &generate(&gpu, &trainer, &path)?, cfg.channels, cfg.image_size, FRAMES)?;
    println!("wrote {} and {}", grid.display(), strip.display());
    Ok(())
}
