//! The start-up autotune: it picks among the candidates it is given, the result trains, and the
//! per-adapter cache is read back instead of measuring again (natively, on lavapipe in CI).
#![cfg(not(target_arch = "wasm32"))]

use pollster::block_on;
use webgan::autotune::{autotune, cache_key, tune, FileCache, NoCache, TuningCache};
use webgan::gpu::{Gpu, Tiles, Tuning};
use webgan::model::{Kind, ModelConfig};
use webgan::train::Trainer;

fn open() -> Gpu {
    block_on(Gpu::new()).expect("these tests need a GPU adapter (install mesa-vulkan-drivers for lavapipe)")
}

/// Two shapes that compile quickly; the test is about the choosing, not about speed.
const CANDIDATES: [Tiles; 2] = [Tiles { tm: 2, tn: 2, wg_m: 8, wg_n: 32 }, Tiles { tm: 4, tn: 4, wg_m: 4, wg_n: 16 }];

#[test]
fn autotune_picks_a_candidate_per_kernel_and_the_result_trains() {
    let gpu = open();
    let mut lines = Vec::new();
    let t = block_on(autotune(&gpu, &CANDIDATES, &mut |l| lines.push(l))).unwrap();
    println!("{}\n{t}", lines.join("\n"));
    assert_eq!(lines.len(), CANDIDATES.len(), "one timing line per candidate");
    for tiles in [t.linear, t.direct, t.gather, t.weight_grad] {
        assert!(CANDIDATES.contains(&tiles), "{tiles} is not a candidate");
    }
    // Each line holds four finite, positive timings.
    for line in &lines {
        let ms: Vec<f64> =
            line.split([':', ',', ' ']).filter_map(|w| w.parse::<f64>().ok().filter(|_| !w.contains('x'))).collect();
        assert!(ms.len() >= 4 && ms.iter().all(|m| m.is_finite() && *m >= 0.0), "{line}");
    }

    // A trainer built with a mixed tuning steps to finite losses.
    gpu.set_tuning(t);
    let cfg = ModelConfig::tiny(Kind::Dcgan);
    let mut trainer = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    let real = vec![128u8; cfg.batch * cfg.image_len()];
    trainer.step(&gpu, &real, &vec![0.5; cfg.batch * cfg.z_dim]);
    let metrics = block_on(gpu.read(&trainer.metrics)).unwrap();
    assert!(metrics.iter().all(|m| m.is_finite()), "{metrics:?}");
}

#[test]
fn the_cache_is_used_and_a_bad_entry_is_measured_again() {
    let gpu = open();
    let dir = std::env::temp_dir().join(format!("webgan-tuning-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cache = FileCache(Some(dir.join("tuning.txt")));
    let key = cache_key(&gpu);
    assert_eq!(cache.load(&key), None);

    // A stored tuning is applied without measuring.
    let stored = Tuning { gather: CANDIDATES[1], ..Tuning::uniform(CANDIDATES[0], 64) };
    cache.store("another adapter", "linear=1x1/1x1 direct=1x1/1x1 gather=1x1/1x1 weight_grad=1x1/1x1 reduce=1");
    cache.store(&key, &stored.to_string());
    let mut lines = Vec::new();
    block_on(tune(&gpu, &mut cache, &CANDIDATES, &mut |l| lines.push(l))).unwrap();
    assert_eq!(gpu.tuning(), stored);
    assert_eq!(lines, vec![format!("tuning (cached): {stored}")]);
    assert_eq!(cache.load("another adapter").as_deref().map(|v| v.starts_with("linear=1x1")), Some(true));

    // A garbled entry is not trusted: tune measures (here over one quick candidate; the
    // adapter's own list is what the CLI and the page pass) and replaces it.
    cache.store(&key, "linear=banana");
    let mut lines = Vec::new();
    block_on(tune(&gpu, &mut cache, &CANDIDATES[1..], &mut |l| lines.push(l))).unwrap();
    assert!(lines.last().unwrap().starts_with("tuning (measured in "), "{lines:?}");
    assert_eq!(gpu.tuning(), Tuning::uniform(CANDIDATES[1], Tuning::reduce_wg_for(&gpu.info)));
    assert_eq!(cache.load(&key), Some(gpu.tuning().to_string()));
    let _ = std::fs::remove_dir_all(&dir);

    // Without a cache nothing is kept and nothing fails (the candidate's kernels are built).
    let mut lines = Vec::new();
    block_on(tune(&gpu, &mut NoCache, &CANDIDATES[1..], &mut |l| lines.push(l))).unwrap();
    assert!(lines.last().unwrap().starts_with("tuning (measured in "), "{lines:?}");
}
