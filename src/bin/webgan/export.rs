//! `export`: a generator as the page's compact weights file (F16, G only), from a training
//! checkpoint (its moving average of G when it keeps one) or from another weights file (to
//! change its model-card lines).

use std::path::Path;
use webgan::model::weights::GeneratorWeights;

/// Writes `out` from `checkpoint` (or a weights file), with `info` ("key=value") lines for the
/// model card added to any it holds; prints the size and the largest change f16 storage makes
/// to a generated image.
pub fn run(checkpoint: &Path, out: &Path, info: &[String]) -> Result<(), String> {
    let bytes = std::fs::read(checkpoint).map_err(|e| format!("{}: {e}", checkpoint.display()))?;
    let mut weights = crate::sample::load_generator(checkpoint)?;
    for kv in info {
        let (k, v) = kv.split_once('=').ok_or("--info takes key=value")?;
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        match weights.info.iter_mut().find(|(key, _)| *key == k) {
            Some(line) => line.1 = v,
            None => weights.info.push((k, v)),
        }
    }
    weights.info.sort();
    let file = weights.to_bytes();
    let back = GeneratorWeights::from_bytes(&file).map_err(|e| e.to_string())?;
    // What rounding to f16 does to the images: 64 draws through the CPU reference, both ways.
    let z = webgan::run::grid_z(&weights.config, 64);
    let (a, b) = (webgan::fast::generate(&weights, &z), webgan::fast::generate(&back, &z));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(out, &file).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{}: {} at step {}, {:.1} KiB (input {:.1} KiB); f16 moves a pixel by at most {:.4} of the [-1, 1] range ({:.2} grey levels)",
        out.display(),
        weights.config,
        weights.step,
        file.len() as f64 / 1024.0,
        bytes.len() as f64 / 1024.0,
        worst,
        worst * 127.5
    );
    Ok(())
}
