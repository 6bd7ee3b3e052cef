//! The wasm-bindgen API the page (`www/main.js`) calls. Compiled only for `wasm32`.
//!
//! Everything here is a thin shim: the work lives in [`crate::gpu`] and friends, so the same
//! code paths are exercised natively by `cargo test` and in the browser by `wasm-pack test`.
//! Errors cross into JavaScript as `Error` objects whose message is the Rust `Display` text,
//! so the page can show them verbatim.

mod painter;
mod session;

pub use painter::Painter;
pub use session::{Dataset, Session};
/// `initThreadPool(n)` in the threaded build (`www/pkg-threads`): rayon's pool on n Web Workers
/// sharing this module's memory, for the fast CPU path. The single-threaded build has none.
#[cfg(target_feature = "atomics")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Threads the fast CPU path runs on here: rayon's pool once `initThreadPool` has run in the
/// threaded build, otherwise 1 (the calling thread).
#[wasm_bindgen]
pub fn cpu_threads() -> usize {
    rayon::current_num_threads()
}

use std::rc::Rc;
use wasm_bindgen::prelude::*;

use crate::autotune::{cache_key, tune, NoCache, TuningCache};
use crate::gpu::{Gpu, Tuning};

/// A JS `Error` whose message is `e`'s `Display` text.
fn js_error(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// The page's one GPU device, shared by every painter and training session (buffers of one
/// device cannot be used on another).
#[wasm_bindgen]
pub struct WebGpu {
    gpu: Rc<Gpu>,
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

#[wasm_bindgen]
impl WebGpu {
    /// Opens the adapter and device; fails with a JS `Error` naming why when there is none.
    /// It runs in the page's GPU worker (`www/worker.js`), which has no localStorage: the page
    /// keeps the tuning under [`WebGpu::tuning_key`] and hands it back with [`WebGpu::use_tuning`].
    pub async fn open() -> Result<WebGpu, JsValue> {
        let gpu = Gpu::new().await.map_err(js_error)?;
        let errors: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let sink = errors.clone();
        gpu.device.on_uncaptured_error(std::sync::Arc::new(move |e: wgpu::Error| {
            web_sys::console::error_1(&format!("GPU error: {e}").into());
            sink.lock().unwrap().push(e.to_string());
        }));
        Ok(WebGpu { gpu: Rc::new(gpu), errors })
    }

    /// What this adapter's tuning is kept under: the adapter, its driver and this build's
    /// kernels, so that a new driver or changed kernels are tuned afresh.
    pub fn tuning_key(&self) -> String {
        cache_key(&self.gpu)
    }

    /// Specialises the kernels built from now on with `tuning` (what [`WebGpu::tune`] returned
    /// on an earlier visit); false, changing nothing, when it does not parse.
    pub fn use_tuning(&self, tuning: &str) -> bool {
        tuning.parse::<Tuning>().map(|t| self.gpu.set_tuning(t)).is_ok()
    }

    /// Measures the kernels' tile shapes on this adapter (tens of seconds on a CPU adapter,
    /// nearly all of it shader compiles); ops built afterwards use them. `on_line` gets progress
    /// lines; returns the tuning as text, for the page to keep.
    pub async fn tune(&self, on_line: js_sys::Function) -> Result<String, JsValue> {
        let mut log = |line: String| {
            let _ = on_line.call1(&JsValue::NULL, &JsValue::from_str(&line));
        };
        tune(&self.gpu, &mut NoCache, &Tuning::candidates(&self.gpu.info), &mut log).await.map_err(js_error)?;
        Ok(self.gpu.tuning().to_string())
    }

    /// The adapter and its limits, one `label: value [default d]` per line: the adapter summary;
    /// the backend and device type as wgpu sees them; then the limits the kernels care about, as
    /// granted to the device, each with WebGPU's default (the floor every browser offers).
    pub fn report(&self) -> String {
        report(&self.gpu)
    }

    /// Destroys the device, as a lost GPU would (the page's recovery path is tested with it).
    pub fn destroy(&self) {
        self.gpu.device.destroy();
    }

    /// Resolves, with the reason, when the device is lost (driver reset, GPU removed, or
    /// [`WebGpu::destroy`]). Everything built on it is then unusable: the page opens a new one.
    pub fn lost(&self) -> js_sys::Promise {
        let (tx, rx) = futures_channel::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        self.gpu.device.set_device_lost_callback(move |reason, message| {
            if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(format!(
                    "{reason:?}{}",
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                ));
            }
        });
        wasm_bindgen_futures::future_to_promise(async move {
            let why = rx.await.unwrap_or_else(|_| "the device was dropped".into());
            Ok(JsValue::from_str(&why))
        })
    }

    /// GPU errors no call caught (validation errors, out of memory), oldest first; clears them.
    /// wgpu's default is to panic on these, which would take the whole wasm module down with a
    /// lost device; the page reads them instead.
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.errors.lock().unwrap())
    }
}

/// The tuning cache of the benchmark pages, which open WebGPU on their own thread: one
/// localStorage item per adapter, as the page keeps it. Storage that is full or switched off
/// only costs a re-tune.
struct LocalStorage;

impl LocalStorage {
    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }
}

impl TuningCache for LocalStorage {
    fn load(&self, key: &str) -> Option<String> {
        Self::storage()?.get_item(&format!("webgan tuning: {key}")).ok()?
    }

    fn store(&mut self, key: &str, value: &str) {
        if let Some(s) = Self::storage() {
            let _ = s.set_item(&format!("webgan tuning: {key}"), value);
        }
    }
}

/// Runs once when the module is instantiated: route Rust panics to `console.error` with a
/// readable message instead of the bare "unreachable executed".
#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The benchmark of `webgan-cli bench`, in the page: the same training steps, layers, passes
/// and timing code ([`crate::bench::run_steps`], [`crate::bench::run`]), printing the same lines.
///
/// `on_row` is called with one line of text at a time, as it is measured: first
/// `adapter: ...`, then per tile shape a `tiles ..., mean of ...` header followed by that
/// shape's rows (each a [`crate::bench::Row`]'s `Display` text). `only` keeps the models and
/// layers whose name contains it (`""`: all); `detail` adds each training step's dispatches
/// timed one by one; `tiles` is `""` for the adapter's default, `"all"` for
/// [`Tiles::CANDIDATES`], or `"TMxTN/WG_MxWG_N"`. Fails with a JS `Error` on bad arguments, a
/// missing WebGPU adapter, a GPU error, or when `on_row` throws (the run still finishes the
/// layer in progress: rows cannot be refused half-way).
#[wasm_bindgen]
pub async fn run_benchmark(
    batch: usize,
    reps: u32,
    only: String,
    tiles: String,
    detail: bool,
    on_row: js_sys::Function,
) -> Result<(), JsValue> {
    if batch == 0 || reps == 0 {
        return Err(js_error(format!("batch and reps must be at least 1 (got batch {batch}, reps {reps})")));
    }
    // Parse before opening the GPU: a typo should not cost an adapter request.
    let parse = |reduce_wg| Tuning::parse_list(tiles.trim(), reduce_wg).map_err(js_error);
    let wanted = !tiles.trim().is_empty();
    if wanted {
        parse(16)?;
    }
    let gpu = Gpu::new().await.map_err(js_error)?;

    // The first exception `on_row` threw; later lines are not passed on.
    let thrown: std::cell::RefCell<Option<JsValue>> = Default::default();
    let emit = |line: String| {
        if thrown.borrow().is_none() {
            if let Err(e) = on_row.call1(&JsValue::NULL, &JsValue::from_str(&line)) {
                *thrown.borrow_mut() = Some(e);
            }
        }
    };
    emit(format!("adapter: {}", gpu.adapter_summary()));
    let candidates = match wanted {
        true => parse(gpu.tuning().reduce_wg)?,
        false => {
            tune(&gpu, &mut LocalStorage, &Tuning::candidates(&gpu.info), &mut |line| emit(line))
                .await
                .map_err(js_error)?;
            vec![gpu.tuning()]
        }
    };
    for tiles in candidates {
        emit(format!("tiles {tiles}, mean of {reps} after a warm-up; steps at batch 64, layers at batch {batch}"));
        crate::bench::run_steps(&gpu, &tiles, reps, &only, detail, &mut |row| emit(row.to_string()))
            .await
            .map_err(js_error)?;
        crate::bench::run(&gpu, batch, &tiles, reps, &only, &mut |row| emit(row.to_string()))
            .await
            .map_err(js_error)?;
        if thrown.borrow().is_some() {
            break;
        }
    }
    match thrown.into_inner() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn report(gpu: &Gpu) -> String {
    let info = &gpu.info;
    let lim = &gpu.limits;
    let def = wgpu::Limits::default();
    let mut lines = vec![
        format!("adapter: {}", gpu.adapter_summary()),
        format!("name: {}", if info.name.is_empty() { "(not exposed by the browser)" } else { &info.name }),
        format!("backend: {:?}", info.backend),
        format!("device type: {:?}", info.device_type),
    ];
    let mut limit = |name: &str, have: u64, default: u64| {
        lines.push(format!("{name}: {have} [default {default}]"));
    };
    limit(
        "maxStorageBuffersPerShaderStage",
        lim.max_storage_buffers_per_shader_stage.into(),
        def.max_storage_buffers_per_shader_stage.into(),
    );
    limit(
        "maxComputeInvocationsPerWorkgroup",
        lim.max_compute_invocations_per_workgroup.into(),
        def.max_compute_invocations_per_workgroup.into(),
    );
    limit(
        "maxComputeWorkgroupStorageSize",
        lim.max_compute_workgroup_storage_size.into(),
        def.max_compute_workgroup_storage_size.into(),
    );
    limit(
        "maxComputeWorkgroupsPerDimension",
        lim.max_compute_workgroups_per_dimension.into(),
        def.max_compute_workgroups_per_dimension.into(),
    );
    limit("maxStorageBufferBindingSize", lim.max_storage_buffer_binding_size, def.max_storage_buffer_binding_size);
    limit("maxBufferSize", lim.max_buffer_size, def.max_buffer_size);
    lines.join("\n")
}

/// One model's training step for the side-by-side comparison with TensorFlow.js
/// (`www/tfjs/`, `./build.sh compare`): the model is [`crate::model::ModelConfig::mnist`] changed
/// by `options` ([`crate::model::ModelConfig::with_options`] words, e.g. `"kernel=k4s2p1"`), so
/// the page states both sides' architecture in one place. Stepped as
/// [`crate::bench::bench_step`] does: random real bytes and one z, a warm-up step (awaited),
/// then `reps` steps queued and awaited. Returns `{ config, adapter, warmupMs, ms, gflops,
/// metrics, gChange, dChange }`: `ms` per timed step, `metrics` the [`crate::step::METRICS`]
/// values after the last step (D loss real, D(x), D loss fake, D(G(z)), G loss, D(G(z)) after
/// D's update), and the largest absolute change of any G and of any D parameter from their
/// initial values (proof that the step updates the weights).
#[wasm_bindgen]
pub async fn bench_train_step(options: String, reps: u32) -> Result<JsValue, JsValue> {
    use crate::bench::now_ms;
    let (cfg, real, z) = bench_inputs(&options, reps)?;
    let gpu = Gpu::new().await.map_err(js_error)?;
    tune(&gpu, &mut LocalStorage, &Tuning::candidates(&gpu.info), &mut |line| web_sys::console::log_1(&line.into()))
        .await
        .map_err(js_error)?;
    let mut trainer = crate::train::Trainer::new(&gpu, &cfg, &gpu.tuning()).map_err(js_error)?;
    let t0 = now_ms();
    trainer.step(&gpu, &real, &z);
    gpu.finish().await.map_err(js_error)?;
    let warmup_ms = now_ms() - t0;
    let t0 = now_ms();
    for _ in 0..reps {
        trainer.step(&gpu, &real, &z);
    }
    gpu.finish().await.map_err(js_error)?;
    let ms = (now_ms() - t0) / reps as f64;

    let metrics = gpu.read(&trainer.metrics).await.map_err(js_error)?;
    let g = trainer.g.params.read(&gpu).await.map_err(js_error)?;
    let d = trainer.d.params.read(&gpu).await.map_err(js_error)?;
    let timing = StepTiming { adapter: gpu.adapter_summary(), warmup_ms, ms };
    step_result(&cfg, timing, &metrics, &g, &d)
}

/// [`bench_train_step`] on the fast CPU path ([`crate::fast`], wasm SIMD, this thread): the
/// page's backend where WebGPU is missing or a CPU emulation. Same inputs, same result fields
/// (`adapter` names the CPU path).
#[wasm_bindgen]
pub fn bench_train_step_cpu(options: String, reps: u32) -> Result<JsValue, JsValue> {
    use crate::bench::now_ms;
    let (cfg, real, z) = bench_inputs(&options, reps)?;
    let mut gan = crate::fast::FastGan::new(&cfg);
    let t0 = now_ms();
    gan.step(&cfg, &real, &z);
    let warmup_ms = now_ms() - t0;
    let t0 = now_ms();
    let mut metrics = [0.0; crate::step::METRICS];
    for _ in 0..reps {
        metrics = gan.step(&cfg, &real, &z);
    }
    let ms = (now_ms() - t0) / reps as f64;
    let threads = rayon::current_num_threads();
    let adapter =
        format!("the fast CPU path in wasm (simd128, {threads} thread{})", if threads == 1 { "" } else { "s" });
    step_result(&cfg, StepTiming { adapter, warmup_ms, ms }, &metrics, &gan.g_params, &gan.d_params)
}

/// The config, random real bytes and one z for [`bench_train_step`] and its CPU twin.
fn bench_inputs(options: &str, reps: u32) -> Result<(crate::model::ModelConfig, Vec<u8>, Vec<f32>), JsValue> {
    if reps == 0 {
        return Err(js_error("reps must be at least 1"));
    }
    let cfg = crate::model::ModelConfig::mnist().with_options(options).map_err(js_error)?;
    let mut rng = crate::rng::Rng::new(1);
    let real: Vec<u8> = (0..cfg.batch * cfg.image_len()).map(|_| rng.below(256) as u8).collect();
    let z = crate::model::latent::normal_z(&mut rng, cfg.batch, cfg.z_dim);
    Ok((cfg, real, z))
}

struct StepTiming {
    adapter: String,
    warmup_ms: f64,
    ms: f64,
}

/// The object [`bench_train_step`] returns, from the weights after the timed steps.
fn step_result(
    cfg: &crate::model::ModelConfig,
    t: StepTiming,
    metrics: &[f32],
    g: &[Vec<f32>],
    d: &[Vec<f32>],
) -> Result<JsValue, JsValue> {
    let (g0, d0) = crate::step::init_params(cfg);
    let max_change = |now: &[Vec<f32>], then: &[Vec<f32>]| {
        now.iter().flatten().zip(then.iter().flatten()).fold(0f32, |m, (a, b)| m.max((a - b).abs()))
    };
    let out = js_sys::Object::new();
    let set = |key: &str, value: JsValue| js_sys::Reflect::set(&out, &key.into(), &value).map(|_| ());
    set("config", cfg.to_string().into())?;
    set("adapter", t.adapter.into())?;
    set("warmupMs", t.warmup_ms.into())?;
    set("ms", t.ms.into())?;
    set("gflops", (crate::step::step_flops(cfg) / t.ms / 1e6).into())?;
    set("metrics", js_sys::Float32Array::from(metrics).into())?;
    set("gChange", max_change(g, &g0).into())?;
    set("dChange", max_change(d, &d0).into())?;
    Ok(out.into())
}
