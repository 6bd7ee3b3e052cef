//! `export`: a checkpoint's generator as the page's compact weights file (F16, G only).

use std::path::Path;
use webgan::model::checkpoint::{from_bytes, read_config};
use webgan::model::weights::GeneratorWeights;

/// Writes `out` from `checkpoint`, with `info` ("key=value") lines for the model card; prints
/// the size and the largest change f16 storage makes to a generated image.
pub fn run(checkpoint: &Path, out: &Path, info: &[String]) -> Result<(), String> {
    let bytes = std::fs::read(checkpoint).map_err(|e| format!("{}: {e}", checkpoint.display()))?;
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", checkpoint.display());
    let state = from_bytes(&bytes, &read_config(&bytes).map_err(|e| at(&e))?).map_err(|e| at(&e))?;
    let info = info
        .iter()
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect::<Option<Vec<_>>>()
        .ok_or("--info takes key=value")?;
    let weights = GeneratorWeights::from_state(&state, info);
    let file = weights.to_bytes();
    let back = GeneratorWeights::from_bytes(&file).map_err(|e| e.to_string())?;
    // What rounding to f16 does to the images: 64 draws through the CPU reference, both ways.
    let z = webgan::run::grid_z(&weights.config, 64);
    let (a, b) =
        (webgan::model::generate::generate_cpu(&weights, &z), webgan::model::generate::generate_cpu(&back, &z));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(out, &file).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{}: {} at step {}, {:.1} KiB (checkpoint {:.1} KiB); f16 moves a pixel by at most {:.4} of the [-1, 1] range ({:.2} grey levels)",
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
