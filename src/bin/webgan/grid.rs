//! Sample grids as PNG files.

use std::path::Path;

/// Writes `images` (n x channels x size x size, values in [-1, 1]) as a grid `cols` wide with a
/// 2-pixel grey border.
pub fn save_grid(path: &Path, images: &[f32], channels: usize, size: usize, cols: usize) -> Result<(), String> {
    let n = images.len() / (channels * size * size);
    let rows = n.div_ceil(cols);
    let (pad, cell) = (2, size + 2);
    let (w, h) = (cols * cell + pad, rows * cell + pad);
    let mut rgb = vec![96u8; w * h * 3];
    for i in 0..n {
        let (x0, y0) = (pad + (i % cols) * cell, pad + (i / cols) * cell);
        let img = &images[i * channels * size * size..];
        for y in 0..size {
            for x in 0..size {
                for c in 0..3 {
                    let v = img[(c % channels) * size * size + y * size + x];
                    rgb[((y0 + y) * w + x0 + x) * 3 + c] = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
                }
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    image::save_buffer(path, &rgb, w as u32, h as u32, image::ExtendedColorType::Rgb8)
        .map_err(|e| format!("{}: {e}", path.display()))
}
