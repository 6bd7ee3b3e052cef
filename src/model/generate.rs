//! Drawing images from generator weights: on the GPU (G alone, inference batchnorm; or, for a
//! trainer's live grid, batch statistics), or on the CPU reference (the oracle: the page draws
//! with `fast::generate`); and laying images out as an RGBA grid for a canvas.

use super::weights::GeneratorWeights;
use super::{cpu, generator, latent, Network};
use crate::gpu::{Gpu, GpuError, Tuning, View};

/// G built on the GPU for `batch` latent vectors at a time, in inference mode.
pub struct GpuGenerator {
    net: Network,
}

impl GpuGenerator {
    pub fn new(gpu: &Gpu, weights: &GeneratorWeights, batch: usize, tiles: &Tuning) -> Result<GpuGenerator, GpuError> {
        let cfg = &weights.config;
        let z = gpu.zeros("z", batch * cfg.z_dim);
        let net = Network::new(gpu, generator(cfg), batch, tiles, &cfg.adam, &cfg.bn, z, None, None)?;
        net.params.write(gpu, &weights.params);
        net.running.write(gpu, &weights.running);
        Ok(GpuGenerator { net })
    }

    /// Latent vectors per call.
    pub fn batch(&self) -> usize {
        self.net.batch
    }

    /// Images (NCHW, [-1, 1]) for `z`: any whole number of latent vectors, run `batch` at a time
    /// (the last run padded with zeros).
    pub async fn generate(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>, GpuError> {
        generate_with(gpu, &self.net, z).await
    }
}

/// The images of generator network `g` (built for `g.batch` latent vectors) for any whole
/// number of latent vectors in `z`, in inference mode, a batch at a time (the last padded with
/// zeros): NCHW values in [-1, 1]. The page's pretrained generators and a trainer's G share it.
pub async fn generate_with(gpu: &Gpu, g: &Network, z: &[f32]) -> Result<Vec<f32>, GpuError> {
    let (dim, image_len, batch) = (g.spec.input_len, g.spec.output_len(), g.batch);
    let mut out = Vec::with_capacity(z.len() / dim * image_len);
    for chunk in z.chunks(batch * dim) {
        let mut padded = chunk.to_vec();
        padded.resize(batch * dim, 0.0);
        gpu.write(&g.input, &padded);
        crate::ops::submit(gpu, "generate", |pass| g.forward(pass, false));
        let images = gpu.read(g.output()).await?;
        out.extend_from_slice(&images[..chunk.len() / dim * image_len]);
    }
    Ok(out)
}

/// What generator network `g` (built for `g.batch` latent vectors) makes of `z` in training:
/// batchnorm with the statistics of each run of `g.batch` vectors, as D sees G's images. The
/// running statistics are left as they were (saved and restored around each run). A trainer's
/// live grid uses it: early in training the running statistics still hold their initial values
/// (mean 0, variance 1) while G's activations are far smaller, so an inference pass draws flat
/// grey squares for the first few dozen steps.
///
/// With `params` (other weights in `g.params`' layout: G's moving average) those are drawn
/// instead, through `g`'s own dispatches: swapped into `g.params` for each run and back out.
pub async fn preview_with(gpu: &Gpu, g: &Network, params: Option<&View>, z: &[f32]) -> Result<Vec<f32>, GpuError> {
    let (dim, image_len, batch) = (g.spec.input_len, g.spec.output_len(), g.batch);
    // (what is swapped in, where it is kept meanwhile, what goes back)
    let running = &g.running.whole;
    let mut swaps = vec![(None, gpu.zeros("running stats kept", running.len), running)];
    if let Some(other) = params {
        assert_eq!(other.len, g.params.whole.len, "preview: the weights drawn are not G's layout");
        swaps.push((Some(other), gpu.zeros("G params kept", other.len), &g.params.whole));
    }
    let mut out = Vec::with_capacity(z.len() / dim * image_len);
    for (run, n) in latent::batches(z, dim, batch) {
        gpu.write(&g.input, &run);
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for (other, kept, live) in &swaps {
            encoder.copy_buffer_to_buffer(&live.buffer, live.offset, &kept.buffer, 0, live.bytes());
            if let Some(o) = other {
                encoder.copy_buffer_to_buffer(&o.buffer, o.offset, &live.buffer, live.offset, live.bytes());
            }
        }
        {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("preview"), timestamp_writes: None });
            g.forward(&mut pass, true);
        }
        for (_, kept, live) in &swaps {
            encoder.copy_buffer_to_buffer(&kept.buffer, 0, &live.buffer, live.offset, live.bytes());
        }
        gpu.queue.submit([encoder.finish()]);
        let images = gpu.read(g.output()).await?;
        out.extend_from_slice(&images[..n * image_len]);
    }
    Ok(out)
}

/// [`GpuGenerator::generate`] on the CPU reference: same semantics, no GPU.
pub fn generate_cpu(weights: &GeneratorWeights, z: &[f32]) -> Vec<f32> {
    let cfg = &weights.config;
    let n = z.len() / cfg.z_dim;
    let mut running = weights.running.clone(); // an inference pass only reads them
    cpu::forward(&generator(cfg), n, &weights.params, &mut running, &cfg.bn, z, false).0
}

/// `images` (NCHW, values in [-1, 1]) as one RGBA picture `cols` images wide, with `gap` grey
/// pixels around and between them (grey images repeat their channel). Returns (width, height,
/// pixels).
pub fn grid_rgba(images: &[f32], channels: usize, size: usize, cols: usize, gap: usize) -> (usize, usize, Vec<u8>) {
    let plane = size * size;
    let n = images.len() / (channels * plane);
    let rows = n.div_ceil(cols.max(1));
    let cell = size + gap;
    let (w, h) = (cols * cell + gap, rows * cell + gap);
    let mut rgba = vec![96u8; w * h * 4];
    rgba.chunks_exact_mut(4).for_each(|px| px[3] = 255);
    for (i, img) in images.chunks_exact(channels * plane).enumerate() {
        let (x0, y0) = (gap + (i % cols) * cell, gap + (i / cols) * cell);
        for y in 0..size {
            for x in 0..size {
                let at = ((y0 + y) * w + x0 + x) * 4;
                for c in 0..3 {
                    let v = img[(c % channels) * plane + y * size + x];
                    rgba[at + c] = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
                }
            }
        }
    }
    (w, h, rgba)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_each_image_and_maps_its_range() {
        // Two 1-channel 2x2 images: all -1 and all +1, side by side with a 1-pixel gap.
        let images = [[-1.0f32; 4], [1.0; 4]].concat();
        let (w, h, px) = grid_rgba(&images, 1, 2, 2, 1);
        assert_eq!((w, h), (7, 4));
        let at = |x: usize, y: usize| &px[(y * w + x) * 4..(y * w + x) * 4 + 4];
        assert_eq!(at(0, 0), &[96, 96, 96, 255]);
        assert_eq!(at(1, 1), &[0, 0, 0, 255]);
        assert_eq!(at(4, 2), &[255, 255, 255, 255]);
        assert_eq!(at(3, 1), &[96, 96, 96, 255]);
    }
}
