//! Start-up autotune: on a small conv and a small matrix product, time every candidate tile
//! shape of the adapter's class for each GEMM kernel (conv direct, conv gather, conv weight
//! gradient, linear) and keep the fastest per kernel. What is fast differs by adapter far more
//! than by layer (README: 8x16 per thread on lavapipe, 16x16 on SwiftShader, 4x4 in 256-thread
//! workgroups on GPUs), so one probe per kernel is enough, and the result is cached per adapter
//! ([`TuningCache`]: a file natively, localStorage in the page).

use crate::bench::{build, now_ms, Layer};
use crate::gpu::{Dispatch, Gpu, GpuError, Tiles, Tuning};
use crate::shape::{Conv2d, Linear};

/// Where tunings are kept between runs, by [`cache_key`].
pub trait TuningCache {
    fn load(&self, key: &str) -> Option<String>;
    fn store(&mut self, key: &str, value: &str);
}

/// The adapter, its driver and this build's tuned kernels (a hash of their source): a new
/// driver or changed kernels are tuned afresh.
pub fn cache_key(gpu: &Gpu) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (crate::ops::conv::CONV.source, crate::ops::linear::LINEAR.source).hash(&mut h);
    format!("{} | webgan {} kernels {:016x}", gpu.adapter_summary(), env!("CARGO_PKG_VERSION"), h.finish())
}

/// The cached tuning for this adapter if there is a valid one; else measures one over
/// `candidates` (callers pass [`Tuning::candidates`] of the adapter; tests a short list), logging
/// what it does, and stores it. Either way the device's tuning is set to it.
pub async fn tune(
    gpu: &Gpu,
    cache: &mut dyn TuningCache,
    candidates: &[Tiles],
    log: &mut dyn FnMut(String),
) -> Result<(), GpuError> {
    let key = cache_key(gpu);
    if let Some(t) = cache.load(&key).and_then(|v| v.parse::<Tuning>().ok()) {
        log(format!("tuning (cached): {t}"));
        gpu.set_tuning(t);
        return Ok(());
    }
    let t0 = now_ms();
    let t = autotune(gpu, candidates, log).await?;
    log(format!("tuning (measured in {:.1} s): {t}", (now_ms() - t0) / 1e3));
    cache.store(&key, &t.to_string());
    gpu.set_tuning(t);
    Ok(())
}

/// Times each kernel with each of `candidates` and returns the fastest per kernel.
pub async fn autotune(gpu: &Gpu, candidates: &[Tiles], log: &mut dyn FnMut(String)) -> Result<Tuning, GpuError> {
    assert!(!candidates.is_empty(), "autotune needs a candidate");
    let (conv, linear) = probes(&gpu.info);
    let reduce_wg = Tuning::reduce_wg_for(&gpu.info);
    // Per kernel: (best ms, its tiles), in Tuning's order linear, direct, gather, weight_grad.
    let mut best = [(f64::INFINITY, candidates[0]); 4];
    for &tiles in candidates {
        let uniform = Tuning::uniform(tiles, reduce_wg);
        let c = build(gpu, &conv, &uniform)?;
        let l = build(gpu, &linear, &uniform)?;
        assert!(!c.backward_input.is_empty(), "the probe conv has an input gradient");
        fn refs<'a>(v: &[&'a Vec<Dispatch>]) -> Vec<&'a Dispatch> {
            v.iter().flat_map(|d| d.iter()).collect()
        }
        let ms = [
            fastest(gpu, &refs(&[&l.forward, &l.backward_input, &l.backward_params])).await?,
            fastest(gpu, &refs(&[&c.forward])).await?,
            fastest(gpu, &refs(&[&c.backward_input])).await?,
            fastest(gpu, &refs(&[&c.backward_params])).await?,
        ];
        log(format!(
            "  {tiles}: linear {:.1} ms, conv forward {:.1}, conv d_input {:.1}, conv d_weight {:.1}",
            ms[0], ms[1], ms[2], ms[3]
        ));
        for (b, m) in best.iter_mut().zip(ms) {
            if m < b.0 {
                *b = (m, tiles);
            }
        }
    }
    Ok(Tuning { linear: best[0].1, direct: best[1].1, gather: best[2].1, weight_grad: best[3].1, reduce_wg })
}

/// The probe problems: D's middle conv of mnist32 (4x4, stride 2) and a square product, at a
/// size that takes tens to hundreds of milliseconds on the adapter's class (CPU adapters are
/// ~100x slower). At batch 16 on lavapipe the conv picked shapes that were slower at the
/// training batch of 64, so CPU adapters probe at 64.
fn probes(info: &wgpu::AdapterInfo) -> (Layer, Layer) {
    let (batch, n) = match info.device_type {
        wgpu::DeviceType::Cpu => (64, 256),
        _ => (256, 2048),
    };
    let conv = Conv2d { batch, c_in: 32, c_out: 64, h_in: 16, w_in: 16, kernel: 4, stride: 2, pad: 1 };
    (Layer::Conv(conv), Layer::Linear(Linear { batch: n, d_in: n, d_out: n }))
}

/// The least of three timed runs after a warm-up (which also compiles): the least is the one
/// least disturbed by whatever else the machine is doing.
async fn fastest(gpu: &Gpu, dispatches: &[&Dispatch]) -> Result<f64, GpuError> {
    let run = || crate::ops::submit(gpu, "autotune", |pass| dispatches.iter().for_each(|d| d.encode(pass)));
    run();
    gpu.finish().await?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t0 = now_ms();
        run();
        gpu.finish().await?;
        best = best.min(now_ms() - t0);
    }
    Ok(best)
}

/// Natively: one `key<TAB>tuning` line per adapter in `$XDG_CACHE_HOME/webgan/tuning.txt`
/// (or `~/.cache/webgan/tuning.txt`). A cache that cannot be read or written only costs a
/// re-tune; it is never an error.
#[cfg(not(target_arch = "wasm32"))]
pub struct FileCache(pub Option<std::path::PathBuf>);

#[cfg(not(target_arch = "wasm32"))]
impl FileCache {
    pub fn user() -> FileCache {
        let dir = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")));
        FileCache(dir.map(|d| d.join("webgan").join("tuning.txt")))
    }

    fn lines(&self) -> Vec<(String, String)> {
        let text = self.0.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl TuningCache for FileCache {
    fn load(&self, key: &str) -> Option<String> {
        self.lines().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn store(&mut self, key: &str, value: &str) {
        let Some(path) = &self.0 else { return };
        let mut lines = self.lines();
        lines.retain(|(k, _)| k != key);
        lines.push((key.to_string(), value.to_string()));
        let text: String = lines.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        if let Err(e) = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| std::fs::write(path, text)) {
            eprintln!("note: could not save the kernel tuning to {}: {e}", path.display());
        }
    }
}

/// No cache: every run measures (tests, `--retune`).
pub struct NoCache;

impl TuningCache for NoCache {
    fn load(&self, _: &str) -> Option<String> {
        None
    }
    fn store(&mut self, _: &str, _: &str) {}
}
