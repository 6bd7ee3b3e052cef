//! Sampling from shipped generator weights in the page: an 8x8 grid per seed and a walk
//! between two of its images. On the GPU, or on the fast CPU path compiled to wasm (sgemm with
//! SIMD: the same generator, and no pipelines to compile).

use std::rc::Rc;
use wasm_bindgen::prelude::*;

use super::{js_error, WebGpu};
use crate::gpu::{Gpu, Tuning};
use crate::model::generate::{grid_rgba, GpuGenerator};
use crate::model::latent::{normal_z, slerp};
use crate::model::weights::GeneratorWeights;
use crate::rng::Rng;

/// Images per grid (8x8) and grey pixels between them.
const GRID: usize = 64;
const GAP: usize = 2;

enum Engine {
    Gpu(Rc<Gpu>, Rc<GpuGenerator>),
    Cpu,
}

/// A generator ready to draw.
#[wasm_bindgen]
pub struct Painter {
    weights: Rc<GeneratorWeights>,
    engine: Engine,
}

#[wasm_bindgen]
impl Painter {
    /// Weights (a `webgan-generator-1` file or a full checkpoint) drawn on the GPU, with the
    /// adapter class's default tiles rather than the ones tuned for training: those are large
    /// register blocks that a CPU adapter compiles for a long time, and a visit draws each grid
    /// only a few times (a returning visit drew its first grid at 118 s with the tuned tiles
    /// against 27 s without, in Chromium on SwiftShader).
    pub fn on_gpu(gpu: &WebGpu, bytes: &[u8]) -> Result<Painter, JsValue> {
        let weights = GeneratorWeights::from_bytes(bytes).map_err(js_error)?;
        let g = gpu.gpu.clone();
        let generator = GpuGenerator::new(&g, &weights, GRID, &Tuning::for_adapter(&g.info)).map_err(js_error)?;
        Ok(Painter { weights: Rc::new(weights), engine: Engine::Gpu(g, Rc::new(generator)) })
    }

    /// The same weights drawn on the CPU (no WebGPU, a CPU emulation of one, or while the GPU's
    /// pipelines are still compiling).
    pub fn on_cpu(bytes: &[u8]) -> Result<Painter, JsValue> {
        let weights = GeneratorWeights::from_bytes(bytes).map_err(js_error)?;
        Ok(Painter { weights: Rc::new(weights), engine: Engine::Cpu })
    }

    /// "gpu" or "cpu".
    pub fn engine(&self) -> String {
        match self.engine {
            Engine::Gpu(..) => "gpu".into(),
            Engine::Cpu => "cpu".into(),
        }
    }

    /// Side of one image in pixels.
    pub fn image_size(&self) -> usize {
        self.weights.config.image_size
    }

    /// The model card: `key: value` lines (architecture, step, then the file's info lines).
    pub fn describe(&self) -> String {
        let w = &self.weights;
        let mut lines = vec![format!("model: {}", w.config), format!("step: {}", w.step)];
        lines.extend(w.info.iter().map(|(k, v)| format!("{k}: {v}")));
        lines.join("\n")
    }

    /// The 8x8 grid of the latent vectors drawn from `seed`: RGBA pixels of a square picture.
    pub fn grid(&self, seed: u32) -> js_sys::Promise {
        let z = normal_z(&mut Rng::new(seed as u64), GRID, self.weights.config.z_dim);
        self.draw(z, 8, GAP)
    }

    /// `frames` images walking along the great circle from grid image `a` to grid image `b` of
    /// `seed`'s grid (spherical interpolation of z): RGBA pixels, one image below the other.
    pub fn walk(&self, seed: u32, a: usize, b: usize, frames: usize) -> Result<js_sys::Promise, JsValue> {
        if a >= GRID || b >= GRID || frames < 2 {
            return Err(js_error(format!(
                "walk needs grid images below {GRID} and 2+ frames (got {a}, {b}, {frames})"
            )));
        }
        let dim = self.weights.config.z_dim;
        let z = normal_z(&mut Rng::new(seed as u64), GRID, dim);
        let (za, zb) = (&z[a * dim..(a + 1) * dim], &z[b * dim..(b + 1) * dim]);
        let path: Vec<f32> = (0..frames).flat_map(|i| slerp(za, zb, i as f32 / (frames - 1) as f32)).collect();
        Ok(self.draw(path, 1, 0))
    }
}

impl Painter {
    fn draw(&self, z: Vec<f32>, cols: usize, gap: usize) -> js_sys::Promise {
        let weights = self.weights.clone();
        let engine = match &self.engine {
            Engine::Gpu(gpu, g) => Some((gpu.clone(), g.clone())),
            Engine::Cpu => None,
        };
        wasm_bindgen_futures::future_to_promise(async move {
            let images = match engine {
                Some((gpu, g)) => g.generate(&gpu, &z).await.map_err(js_error)?,
                None => crate::fast::generate(&weights, &z),
            };
            let cfg = &weights.config;
            let (_, _, rgba) = grid_rgba(&images, cfg.channels, cfg.image_size, cols, gap);
            Ok(js_sys::Uint8ClampedArray::from(&rgba[..]).into())
        })
    }
}
