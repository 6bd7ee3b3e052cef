//! A configuration too large for the adapter is refused before anything is allocated, with the
//! limit named: `webgan::model::limits::check` decides from the configuration alone (no GPU
//! needed for most of these tests), and `Trainer::new` calls it first.
#![cfg(not(target_arch = "wasm32"))]

use webgan::gpu::{Gpu, GpuError, Tiles, Tuning};
use webgan::model::limits::check;
use webgan::model::{KernelForm, Kind, ModelConfig};
use webgan::train::Trainer;

const TILES: Tuning =
    Tuning { linear: GPU_TILES, direct: GPU_TILES, gather: GPU_TILES, weight_grad: GPU_TILES, reduce_wg: 256 };
const GPU_TILES: Tiles = Tiles { tm: 4, tn: 4, wg_m: 8, wg_n: 16 };

fn refused(cfg: &ModelConfig, limits: &wgpu::Limits) -> String {
    match check(cfg, &TILES, limits) {
        Err(GpuError::Limit(msg)) => msg,
        other => panic!("{cfg:?} was not refused: {other:?}"),
    }
}

#[test]
fn the_page_and_seed_configurations_fit_webgpu_defaults() {
    let limits = wgpu::Limits::default();
    let seed = ModelConfig { ngf: 128, ndf: 128, ..ModelConfig::faces() };
    let mut cfgs = vec![ModelConfig::mnist(), ModelConfig::faces(), seed];
    for kind in [Kind::Dcgan, Kind::Basic] {
        for size in [8, 16, 32, 64] {
            for kernel in [KernelForm::Seed5x5, KernelForm::K4S2P1] {
                cfgs.push(ModelConfig { kind, image_size: size, kernel, ..ModelConfig::mnist() });
                cfgs.push(ModelConfig { kind, image_size: size, kernel, channels: 3, ..ModelConfig::faces() });
            }
        }
    }
    for cfg in &cfgs {
        check(cfg, &TILES, &limits).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
        for tiles in Tiles::CANDIDATES {
            check(cfg, &Tuning::uniform(tiles, 16), &limits).unwrap_or_else(|e| panic!("{cfg:?} with {tiles:?}: {e}"));
        }
    }
}

#[test]
fn too_large_configurations_are_refused_with_the_limit_named() {
    let limits = wgpu::Limits::default(); // 128 MiB per binding, 256 MiB per buffer, 65,535 workgroups
                                          // A huge batch: the biggest activations are 64x32x32 per image (D's first conv, G's
                                          // next-to-last), 1 GiB at batch 4096.
    let msg = refused(&ModelConfig { batch: 4096, ..ModelConfig::faces() }, &limits);
    assert!(msg.contains("maxStorageBufferBindingSize is 134,217,728"), "{msg}");
    assert!(msg.contains("batch 4096") && msg.contains("needs 1,073,741,824 bytes"), "{msg}");

    // A huge width: the weights, not the activations.
    let msg = refused(&ModelConfig { ngf: 4096, batch: 1, ..ModelConfig::mnist() }, &limits);
    assert!(msg.contains("maxStorageBufferBindingSize") && msg.contains("G's flat parameters"), "{msg}");

    // Absurd values are refused, not overflowed (u128 arithmetic, saturating).
    for cfg in [
        ModelConfig { ngf: 1 << 50, ..ModelConfig::mnist() },
        ModelConfig { ndf: usize::MAX / 2, ..ModelConfig::mnist() },
        ModelConfig { batch: usize::MAX, ..ModelConfig::mnist() },
        ModelConfig { z_dim: usize::MAX, ..ModelConfig::mnist() },
        ModelConfig { image_size: 1 << 40, ..ModelConfig::mnist() },
        ModelConfig { kind: Kind::Basic, ngf: 1 << 40, ..ModelConfig::mnist() },
        ModelConfig { kind: Kind::Basic, image_size: 1 << 20, batch: 1, ..ModelConfig::mnist() },
    ] {
        let msg = refused(&cfg, &limits);
        assert!(msg.contains("maxStorageBufferBindingSize"), "{msg}");
    }

    // maxBufferSize, where an adapter allows a larger binding than a buffer (not the case on
    // real adapters, but the check is there).
    let narrow = wgpu::Limits { max_buffer_size: 1 << 20, ..limits.clone() };
    let msg = refused(&ModelConfig::mnist(), &narrow);
    assert!(msg.contains("maxBufferSize is 1,048,576"), "{msg}");

    // One workgroup per channel: 65,536 channels is one too many (the bias gradient's
    // channel_sum), though every buffer fits.
    let wide = ModelConfig { image_size: 8, ndf: 65_536, batch: 1, ..ModelConfig::mnist() };
    let msg = refused(&wide, &limits);
    assert!(msg.contains("maxComputeWorkgroupsPerDimension is 65,535") && msg.contains("65,536 workgroups"), "{msg}");
    assert!(msg.contains("D layer 0"), "{msg}");
    check(&ModelConfig { ndf: 65_535, ..wide }, &TILES, &limits).unwrap();

    // Invalid configurations keep their own message.
    let msg = refused(&ModelConfig { image_size: 24, ..ModelConfig::mnist() }, &limits);
    assert!(msg.contains("power of two"), "{msg}");
}

/// The check and the ops agree: at the smallest binding limit the check accepts, the trainer
/// builds (every op's own binding check passes, no validation error); one byte less and
/// `Trainer::new` refuses before allocating.
#[test]
fn trainer_new_refuses_first_and_agrees_with_the_ops() {
    let mut gpu = pollster::block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)");
    let full = gpu.limits.clone();
    let cfg = ModelConfig::tiny(Kind::Dcgan);
    let tiles = gpu.tuning();
    // The smallest maxStorageBufferBindingSize the check accepts, by bisection.
    let (mut lo, mut hi) = (1u64, full.max_storage_buffer_binding_size);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let limits = wgpu::Limits { max_storage_buffer_binding_size: mid, ..full.clone() };
        if check(&cfg, &tiles, &limits).is_ok() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    gpu.limits.max_storage_buffer_binding_size = lo;
    let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let built = Trainer::new(&gpu, &cfg, &tiles);
    assert!(built.is_ok(), "the check accepts {lo} bytes but the ops refuse: {:?}", built.err());
    drop(built);
    assert!(pollster::block_on(scope.pop()).is_none());

    gpu.limits.max_storage_buffer_binding_size = lo - 1;
    match Trainer::new(&gpu, &cfg, &tiles) {
        Err(GpuError::Limit(msg)) => {
            assert!(msg.contains(&format!("maxStorageBufferBindingSize is {}", commas(lo - 1))), "{msg}")
        }
        other => panic!("not refused at {} bytes: {:?}", lo - 1, other.err()),
    }

    // And on the device's real limits, a batch far past them is refused, naming the limit.
    gpu.limits = full;
    let huge = ModelConfig { batch: 1 << 20, ..ModelConfig::faces() };
    match Trainer::new(&gpu, &huge, &tiles) {
        Err(e @ GpuError::Limit(_)) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("exceeds this adapter's limits: ") && msg.contains("maxStorageBufferBindingSize"),
                "{msg}"
            )
        }
        other => panic!("batch 2^20 not refused: {:?}", other.err()),
    }
}

fn commas(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
