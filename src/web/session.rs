//! Training in the page: a dataset the page fills (MNIST from the bundled files, or pixels it
//! decoded from the user's images) and a training session over it.
//!
//! The page drives the loop: `train(data, k)` queues k steps and resolves once the GPU has run
//! them, so the tab's thread is free while the GPU works and never more than k steps are
//! queued. Nothing is read back inside a step; metrics arrive through a ring of staging buffers.

use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

use super::{js_error, WebGpu};
use crate::data::{mnist_pool, read_idx_images, ImagePool};
use crate::gpu::Gpu;
use crate::metrics::digits::{digit_report, CONFIDENT};
use crate::metrics::swd::{swd, Images, SwdConfig};
use crate::model::checkpoint::{from_bytes, read_config};
use crate::model::classifier::{Classifier, ClassifierWeights, CLASSES, SIZE};
use crate::model::generate::grid_rgba;
use crate::model::latent::normal_z;
use crate::model::ModelConfig;
use crate::reference::softmax;
use crate::rng::Rng;
use crate::run::{grid_z, RunState};
use crate::train::{step_flops, MetricsRing, Trainer, METRICS};

/// Square u8 images of one size and channel count, filled by the page.
#[wasm_bindgen]
pub struct Dataset {
    pool: ImagePool,
}

#[wasm_bindgen]
impl Dataset {
    /// An empty dataset of `size`x`size` images with 1 (grey) or 3 (RGB) channels that holds at
    /// most `max_bytes` of pixels.
    #[wasm_bindgen(constructor)]
    pub fn new(size: usize, channels: usize, max_bytes: f64) -> Result<Dataset, JsValue> {
        if size < 4 || !(channels == 1 || channels == 3) {
            return Err(js_error(format!("a dataset of {channels}-channel {size}x{size} images cannot be trained on")));
        }
        Ok(Dataset { pool: ImagePool::with_capacity_limit(size, channels, max_bytes as usize) })
    }

    /// MNIST from an IDX image file (gzipped or not), padded to `size`x`size`.
    pub fn mnist(bytes: &[u8], size: usize) -> Result<Dataset, JsValue> {
        let images = read_idx_images(bytes).map_err(js_error)?;
        Ok(Dataset { pool: mnist_pool(&images, size).map_err(js_error)? })
    }

    /// Appends one decoded image (RGBA, already cropped and resized to `size`x`size`); false when
    /// the memory budget is used up.
    pub fn push_rgba(&mut self, rgba: &[u8]) -> Result<bool, JsValue> {
        let want = self.pool.size * self.pool.size * 4;
        if rgba.len() != want {
            return Err(js_error(format!("an RGBA image of {} bytes, expected {want}", rgba.len())));
        }
        Ok(self.pool.push_rgba(rgba))
    }

    pub fn len(&self) -> usize {
        self.pool.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    /// The most images the memory budget allows.
    pub fn capacity(&self) -> f64 {
        self.pool.max_images() as f64
    }

    pub fn size(&self) -> usize {
        self.pool.size
    }

    pub fn channels(&self) -> usize {
        self.pool.channels
    }

    /// Up to 64 of its images as an RGBA 8x8 grid (what the model is shown).
    pub fn preview(&self) -> js_sys::Uint8ClampedArray {
        let n = self.pool.len().min(64);
        let values: Vec<f32> =
            self.pool.pixels()[..n * self.pool.image_len()].iter().map(|&b| b as f32 / 127.5 - 1.0).collect();
        let (_, _, rgba) = grid_rgba(&values, self.pool.channels, self.pool.size, 8, 2);
        js_sys::Uint8ClampedArray::from(&rgba[..])
    }
}

struct Inner {
    trainer: Trainer,
    /// Data order and noise; made on the first step over a dataset (or by a checkpoint).
    run: Option<RunState>,
    ring: MetricsRing,
    real: Vec<u8>,
    /// Collected metrics, rows of [step, METRICS values].
    history: Vec<f32>,
}

/// One model being trained: a DCGAN or BasicGAN with its optimiser state on the GPU.
#[wasm_bindgen]
pub struct Session {
    gpu: Rc<Gpu>,
    cfg: ModelConfig,
    inner: Rc<RefCell<Inner>>,
}

/// Metrics rows: the step, then [`METRICS`] values.
const ROW: usize = 1 + METRICS;

#[wasm_bindgen]
impl Session {
    /// A fresh model: MNIST's defaults changed by `options` (see [`ModelConfig::with_options`]).
    pub fn create(gpu: &WebGpu, options: &str) -> Result<Session, JsValue> {
        let cfg = ModelConfig::mnist().with_options(options).map_err(js_error)?;
        let g = gpu.gpu.clone();
        let trainer = Trainer::new(&g, &cfg, &g.tuning()).map_err(js_error)?;
        let inner = Inner { trainer, run: None, ring: MetricsRing::new(&g, 8), real: Vec::new(), history: Vec::new() };
        Ok(Session { gpu: g, cfg, inner: Rc::new(RefCell::new(inner)) })
    }

    /// The options of the model a checkpoint file holds (to create a session that can load it).
    pub fn checkpoint_options(bytes: &[u8]) -> Result<String, JsValue> {
        Ok(read_config(bytes).map_err(js_error)?.options())
    }

    /// This session's options (as [`Session::create`] reads them).
    pub fn options(&self) -> String {
        self.cfg.options()
    }

    /// One line describing the model.
    pub fn describe(&self) -> String {
        self.cfg.to_string()
    }

    pub fn image_size(&self) -> usize {
        self.cfg.image_size
    }

    pub fn channels(&self) -> usize {
        self.cfg.channels
    }

    pub fn batch(&self) -> usize {
        self.cfg.batch
    }

    /// FLOPs of one training step, from the layer shapes.
    pub fn flops_per_step(&self) -> f64 {
        step_flops(&self.cfg)
    }

    /// Steps taken.
    pub fn step(&self) -> Result<u32, JsValue> {
        Ok(self.inner.try_borrow().map_err(busy)?.trainer.step)
    }

    /// Epochs done over the current dataset, with the fraction of the current one.
    pub fn epochs(&self) -> Result<f64, JsValue> {
        Ok(self.inner.try_borrow().map_err(busy)?.run.as_ref().map_or(0.0, |r| r.sampler.epochs()))
    }

    /// Queues `steps` training steps on `data`; the promise resolves (to the step count) when the
    /// GPU has run them.
    pub fn train(&self, data: &Dataset, steps: u32) -> Result<js_sys::Promise, JsValue> {
        let pool = &data.pool;
        if (pool.size, pool.channels) != (self.cfg.image_size, self.cfg.channels) {
            return Err(js_error(format!(
                "the data holds {}-channel {}x{} images; this model makes {}-channel {}x{}",
                pool.channels, pool.size, pool.size, self.cfg.channels, self.cfg.image_size, self.cfg.image_size
            )));
        }
        if pool.is_empty() {
            return Err(js_error("there are no images to train on"));
        }
        {
            let mut inner = self.inner.try_borrow_mut().map_err(busy)?;
            let inner = &mut *inner;
            if inner.run.as_ref().is_none_or(|r| r.sampler.len() != pool.len()) {
                inner.run = Some(RunState::new(&self.cfg, pool.len()));
            }
            let run = inner.run.as_mut().unwrap();
            for _ in 0..steps {
                let z = run.next(&self.cfg, pool, &mut inner.real);
                inner.trainer.step(&self.gpu, &inner.real, &z);
                inner.ring.record(&self.gpu, &inner.trainer);
            }
        }
        let (gpu, inner) = (self.gpu.clone(), self.inner.clone());
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            gpu.finish().await.map_err(js_error)?;
            let mut inner = inner.try_borrow_mut().map_err(busy)?;
            let inner = &mut *inner;
            for (step, m) in inner.ring.collect(&gpu).map_err(js_error)? {
                inner.history.push(step as f32);
                inner.history.extend_from_slice(&m);
            }
            Ok(inner.trainer.step.into())
        }))
    }

    /// Metrics rows from row `from` on, flattened: each row is the step, D loss on real, D(x),
    /// D loss on fake, D(G(z)), G loss, D(G(z)) after D's update.
    pub fn metrics(&self, from: usize) -> Result<js_sys::Float32Array, JsValue> {
        let inner = self.inner.try_borrow().map_err(busy)?;
        let start = (from * ROW).min(inner.history.len());
        Ok(js_sys::Float32Array::from(&inner.history[start..]))
    }

    /// The 8x8 grid of G's images for the session's fixed z (the same 64 draws every time, so
    /// successive grids show learning): RGBA pixels of a square picture.
    // The session stays borrowed across the awaits: the page serialises its calls, and a second
    // caller gets "busy" instead of a half-updated model.
    #[allow(clippy::await_holding_refcell_ref)]
    pub fn grid(&self) -> js_sys::Promise {
        let (gpu, inner, cfg) = (self.gpu.clone(), self.inner.clone(), self.cfg.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let inner = inner.try_borrow().map_err(busy)?;
            let images = inner.trainer.generate(&gpu, &grid_z(&cfg, 64)).await.map_err(js_error)?;
            let (_, _, rgba) = grid_rgba(&images, cfg.channels, cfg.image_size, 8, 2);
            Ok(js_sys::Uint8ClampedArray::from(&rgba[..]).into())
        })
    }

    /// The sliced Wasserstein distance (x1e3, per level and mean, lower is better) between
    /// `count` of G's images and `count` images of `data` spread evenly over it; with
    /// `classifier` (MNIST classifier weights; empty for none, and only for 32x32 grey models)
    /// also the digit coverage of G's images: one line.
    #[allow(clippy::await_holding_refcell_ref)] // as in `grid`
    pub fn score(&self, data: &Dataset, count: usize, classifier: &[u8]) -> Result<js_sys::Promise, JsValue> {
        let judge = if classifier.is_empty() || (self.cfg.image_size, self.cfg.channels) != (SIZE, 1) {
            None
        } else {
            Some(ClassifierWeights::from_bytes(classifier).map_err(js_error)?)
        };
        let (gpu, inner, cfg) = (self.gpu.clone(), self.inner.clone(), self.cfg.clone());
        let pool = &data.pool;
        let n = count.clamp(16, pool.len().max(16));
        let real: Vec<u8> = (0..n.min(pool.len())).flat_map(|i| pool.image(i * pool.len() / n).to_vec()).collect();
        let (channels, size) = (pool.channels, pool.size);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let real = Images::from_u8(&real, channels, size).map_err(js_error)?;
            let z = normal_z(&mut Rng::new(cfg.seed ^ 0x5c0e), real.len(), cfg.z_dim);
            let inner = inner.try_borrow().map_err(busy)?;
            let images = inner.trainer.generate(&gpu, &z).await.map_err(js_error)?;
            let fake = Images::new(images, cfg.channels, cfg.image_size).map_err(js_error)?;
            let report = swd(&real, &fake, &SwdConfig::default()).map_err(js_error)?;
            let mut line = format!("{report} ({} vs {} images)", real.len(), fake.len());
            if let Some(weights) = judge {
                let c = Classifier::new(&gpu, &weights, 64, &gpu.tuning(), &cfg.adam).map_err(js_error)?;
                let logits = c.logits(&gpu, fake.data()).await.map_err(js_error)?;
                let digits = digit_report(&softmax(&logits, CLASSES), CLASSES, CONFIDENT).map_err(js_error)?;
                line += &format!("; digits: {digits}");
            }
            Ok(JsValue::from_str(&line))
        }))
    }

    /// A checkpoint of everything (weights, Adam moments, statistics, step, data order, noise):
    /// the bytes of a safetensors file the CLI reads too.
    #[allow(clippy::await_holding_refcell_ref)] // as in `grid`
    pub fn save(&self) -> js_sys::Promise {
        let (gpu, inner) = (self.gpu.clone(), self.inner.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let inner = inner.try_borrow().map_err(busy)?;
            let run = inner.run.as_ref().map(RunState::to_pairs).unwrap_or_default();
            let bytes = inner.trainer.save(&gpu, run).await.map_err(js_error)?;
            Ok(js_sys::Uint8Array::from(&bytes[..]).into())
        })
    }

    /// Loads a checkpoint to continue training on `data`, exactly where it stopped; returns its
    /// step. Everything is checked first: on an error nothing changes.
    pub fn load(&self, bytes: &[u8], data: &Dataset) -> Result<u32, JsValue> {
        let state = from_bytes(bytes, &self.cfg).map_err(js_error)?;
        let run = if state.run.is_empty() {
            None // saved before its first step
        } else {
            Some(RunState::from_pairs(&state.run, data.pool.len()).map_err(js_error)?)
        };
        let mut inner = self.inner.try_borrow_mut().map_err(busy)?;
        inner.trainer.load(&self.gpu, bytes).map_err(js_error)?;
        inner.run = run;
        inner.history.clear();
        Ok(inner.trainer.step)
    }
}

fn busy(_: impl std::fmt::Debug) -> JsValue {
    js_error("the session is busy with another call (wait for the previous promise)")
}
