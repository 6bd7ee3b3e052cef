//! Training in the page: a dataset the page fills (MNIST from the bundled files, or pixels it
//! decoded from the user's images) and a training session over it.
//!
//! A session trains on one of two backends: the WGSL kernels on WebGPU, or the fast CPU path
//! ([`crate::fast`], sgemm with wasm SIMD) where there is no WebGPU or it is a CPU emulation.
//! Both take the same batches and z in the same order and write the same checkpoints.
//!
//! The page drives the loop: `train(data, k)` runs k steps. On WebGPU it queues them and
//! resolves once the GPU has run them, so the thread is free while the GPU works; nothing is
//! read back inside a step, metrics arrive through a ring of staging buffers. On the CPU the
//! call computes them before it returns. The page runs both kinds in workers
//! (`www/worker.js`), so the tab never waits on a step, a shader compile or a readback.

use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

use super::{js_error, WebGpu};
use crate::data::ImagePool;
use crate::fast::{self, FastGan};
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
use crate::step::METRICS;
use crate::train::{MetricsRing, Trainer};

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

    /// Makes room for `images` more images (up to the memory budget) at once, so that appending
    /// them a chunk at a time never copies what is already held.
    pub fn reserve(&mut self, images: usize) {
        self.pool.reserve(images);
    }

    /// Appends whole images, NCHW u8 one after another (the page pads MNIST's digits a few
    /// thousand at a time between frames); false when the memory budget ran out on the way.
    pub fn push_images(&mut self, pixels: &[u8]) -> Result<bool, JsValue> {
        let len = self.pool.image_len();
        if !pixels.len().is_multiple_of(len) {
            let (c, s) = (self.pool.channels, self.pool.size);
            return Err(js_error(format!("{} bytes are not whole {c}x{s}x{s} images", pixels.len())));
        }
        Ok(pixels.chunks(len).all(|image| self.pool.push(image)))
    }

    /// The pixels of images `start..start + count` (fewer at the end), NCHW u8 one image after
    /// another: the page hands a dataset to a worker a few megabytes at a time.
    pub fn pixels(&self, start: usize, count: usize) -> js_sys::Uint8Array {
        let (len, n) = (self.pool.image_len(), self.pool.len());
        let (from, to) = (start.min(n), start.saturating_add(count).min(n));
        js_sys::Uint8Array::from(&self.pool.pixels()[from * len..to * len])
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

    pub fn size(&self) -> usize {
        self.pool.size
    }

    pub fn channels(&self) -> usize {
        self.pool.channels
    }
}

/// Where the steps run.
enum Engine {
    Gpu { gpu: Rc<Gpu>, trainer: Box<Trainer>, ring: MetricsRing },
    Cpu { gan: FastGan },
}

struct Inner {
    engine: Engine,
    /// Data order and noise; made on the first step over a dataset (or by a checkpoint).
    run: Option<RunState>,
    real: Vec<u8>,
    /// Collected metrics, rows of [step, METRICS values].
    history: Vec<f32>,
}

impl Inner {
    fn step(&self) -> u32 {
        match &self.engine {
            Engine::Gpu { trainer, .. } => trainer.step,
            Engine::Cpu { gan } => gan.step,
        }
    }

    /// G's images for `z` as G makes them in training (batch statistics; running ones untouched).
    async fn preview(&self, cfg: &ModelConfig, z: &[f32]) -> Result<Vec<f32>, JsValue> {
        match &self.engine {
            Engine::Gpu { gpu, trainer, .. } => trainer.preview(gpu, z).await.map_err(js_error),
            Engine::Cpu { gan } => Ok(gan.preview(cfg, z)),
        }
    }

    /// G's images for `z` in inference mode (running statistics). With `cfg.ema` the moving
    /// average's, with batch statistics as in the grid: the running statistics belong to the
    /// training G's weights, not to the average's.
    async fn generate(&self, cfg: &ModelConfig, z: &[f32]) -> Result<Vec<f32>, JsValue> {
        if cfg.ema > 0.0 {
            return self.preview(cfg, z).await;
        }
        match &self.engine {
            Engine::Gpu { gpu, trainer, .. } => trainer.generate(gpu, z).await.map_err(js_error),
            Engine::Cpu { gan } => Ok(gan.sample(cfg, z)),
        }
    }
}

/// One model being trained: a DCGAN or BasicGAN with its optimiser state, on WebGPU or on the CPU.
#[wasm_bindgen]
pub struct Session {
    cfg: ModelConfig,
    /// The engine's name, readable while a call holds `inner`.
    backend: &'static str,
    inner: Rc<RefCell<Inner>>,
}

/// Metrics rows: the step, then [`METRICS`] values.
const ROW: usize = 1 + METRICS;

#[wasm_bindgen]
impl Session {
    /// A fresh model on WebGPU: MNIST's defaults changed by `options` (see
    /// [`ModelConfig::with_options`]).
    pub fn create(gpu: &WebGpu, options: &str) -> Result<Session, JsValue> {
        let cfg = ModelConfig::mnist().with_options(options).map_err(js_error)?;
        let g = gpu.gpu.clone();
        let trainer = Box::new(Trainer::new(&g, &cfg, &g.tuning()).map_err(js_error)?);
        let ring = MetricsRing::new(&g, 8);
        Ok(Session::with_engine(cfg, Engine::Gpu { gpu: g, trainer, ring }))
    }

    /// The same fresh model (the same initial weights) on the fast CPU path.
    pub fn create_cpu(options: &str) -> Result<Session, JsValue> {
        let cfg = ModelConfig::mnist().with_options(options).map_err(js_error)?;
        let gan = FastGan::new(&cfg);
        Ok(Session::with_engine(cfg, Engine::Cpu { gan }))
    }

    /// Takes the device's current kernel tiles (a tuning done since this run was made) between
    /// two steps, keeping the model and its step exactly (`Trainer::retiled`); returns whether
    /// anything changed (never on the CPU path, or with the tiles it already has).
    pub fn retile(&self) -> Result<bool, JsValue> {
        let mut inner = self.inner.try_borrow_mut().map_err(busy)?;
        let Engine::Gpu { gpu, trainer, .. } = &mut inner.engine else { return Ok(false) };
        let tiles = gpu.tuning();
        if tiles == trainer.tiles {
            return Ok(false);
        }
        **trainer = trainer.retiled(gpu, &tiles).map_err(js_error)?;
        Ok(true)
    }

    /// "webgpu" or "cpu".
    pub fn backend(&self) -> String {
        self.backend.into()
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

    /// Steps taken.
    pub fn step(&self) -> Result<u32, JsValue> {
        Ok(self.inner.try_borrow().map_err(busy)?.step())
    }

    /// Epochs done over the current dataset, with the fraction of the current one.
    pub fn epochs(&self) -> Result<f64, JsValue> {
        Ok(self.inner.try_borrow().map_err(busy)?.run.as_ref().map_or(0.0, |r| r.sampler.epochs()))
    }

    /// Runs `steps` training steps on `data`; the promise resolves (to the step count) when they
    /// are done: on WebGPU the steps are queued and it resolves once the GPU has run them; on the
    /// CPU they are computed before this returns.
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
        let gpu = {
            let mut inner = self.inner.try_borrow_mut().map_err(busy)?;
            let Inner { engine, run, real, history } = &mut *inner;
            if run.as_ref().is_none_or(|r| r.sampler.len() != pool.len()) {
                *run = Some(RunState::new(&self.cfg, pool.len()));
            }
            let run = run.as_mut().unwrap();
            for _ in 0..steps {
                let z = run.next(&self.cfg, pool, real);
                match engine {
                    Engine::Gpu { gpu, trainer, ring } => {
                        trainer.step(gpu, real, &z);
                        ring.record(gpu, trainer);
                    }
                    Engine::Cpu { gan } => {
                        let m = gan.step(&self.cfg, real, &z);
                        history.push(gan.step as f32);
                        history.extend_from_slice(&m);
                    }
                }
            }
            match engine {
                Engine::Gpu { gpu, .. } => gpu.clone(),
                Engine::Cpu { gan } => return Ok(js_sys::Promise::resolve(&JsValue::from(gan.step))),
            }
        };
        let inner = self.inner.clone();
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            gpu.finish().await.map_err(js_error)?;
            let mut inner = inner.try_borrow_mut().map_err(busy)?;
            let Inner { engine: Engine::Gpu { gpu, trainer, ring }, history, .. } = &mut *inner else {
                unreachable!("a session keeps its backend")
            };
            for (step, m) in ring.collect(gpu).map_err(js_error)? {
                history.push(step as f32);
                history.extend_from_slice(&m);
            }
            Ok(trainer.step.into())
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
    /// successive grids show learning), as G makes them in training: with batch statistics, so
    /// that the first steps show more than the flat grey an inference pass draws while the
    /// running statistics catch up. RGBA pixels of a square picture.
    // The session stays borrowed across the awaits: the page serialises its calls, and a second
    // caller gets "busy" instead of a half-updated model.
    #[allow(clippy::await_holding_refcell_ref)]
    pub fn grid(&self) -> js_sys::Promise {
        let (inner, cfg) = (self.inner.clone(), self.cfg.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let inner = inner.try_borrow().map_err(busy)?;
            let images = inner.preview(&cfg, &grid_z(&cfg, 64)).await?;
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
        let (inner, cfg) = (self.inner.clone(), self.cfg.clone());
        let pool = &data.pool;
        let n = count.clamp(16, pool.len().max(16));
        let real: Vec<u8> = (0..n.min(pool.len())).flat_map(|i| pool.image(i * pool.len() / n).to_vec()).collect();
        let (channels, size) = (pool.channels, pool.size);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let real = Images::from_u8(&real, channels, size).map_err(js_error)?;
            let z = normal_z(&mut Rng::new(cfg.seed ^ 0x5c0e), real.len(), cfg.z_dim);
            let inner = inner.try_borrow().map_err(busy)?;
            let images = inner.generate(&cfg, &z).await?;
            let fake = Images::new(images, cfg.channels, cfg.image_size).map_err(js_error)?;
            let report = swd(&real, &fake, &SwdConfig::default()).map_err(js_error)?;
            let mut line = format!("{report} ({} vs {} images)", real.len(), fake.len());
            if let Some(weights) = judge {
                let logits = match &inner.engine {
                    Engine::Gpu { gpu, .. } => {
                        let c = Classifier::new(gpu, &weights, 64, &gpu.tuning(), &cfg.adam).map_err(js_error)?;
                        c.logits(gpu, fake.data()).await.map_err(js_error)?
                    }
                    Engine::Cpu { .. } => fast::classify(&weights, fake.data()),
                };
                let digits = digit_report(&softmax(&logits, CLASSES), CLASSES, CONFIDENT).map_err(js_error)?;
                line += &format!("; digits: {digits}; {}", digits.doubts(3));
            }
            Ok(JsValue::from_str(&line))
        }))
    }

    /// A checkpoint of everything (weights, Adam moments, statistics, step, data order, noise):
    /// the bytes of a safetensors file the CLI reads too.
    #[allow(clippy::await_holding_refcell_ref)] // as in `grid`
    pub fn save(&self) -> js_sys::Promise {
        let (inner, cfg) = (self.inner.clone(), self.cfg.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let inner = inner.try_borrow().map_err(busy)?;
            let run = inner.run.as_ref().map(RunState::to_pairs).unwrap_or_default();
            let bytes = match &inner.engine {
                Engine::Gpu { gpu, trainer, .. } => trainer.save(gpu, run).await.map_err(js_error)?,
                Engine::Cpu { gan } => gan.save(&cfg, run),
            };
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
        match &mut inner.engine {
            Engine::Gpu { gpu, trainer, .. } => {
                trainer.load(gpu, bytes).map_err(js_error)?;
            }
            Engine::Cpu { gan } => *gan = FastGan::from_state(state),
        }
        inner.run = run;
        inner.history.clear();
        Ok(inner.step())
    }
}

impl Session {
    fn with_engine(cfg: ModelConfig, engine: Engine) -> Session {
        let backend = match engine {
            Engine::Gpu { .. } => "webgpu",
            Engine::Cpu { .. } => "cpu",
        };
        let inner = Inner { engine, run: None, real: Vec::new(), history: Vec::new() };
        Session { cfg, backend, inner: Rc::new(RefCell::new(inner)) }
    }
}

fn busy(_: impl std::fmt::Debug) -> JsValue {
    js_error("the session is busy with another call (wait for the previous promise)")
}
