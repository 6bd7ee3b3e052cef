//! Generator weights (what the page ships): F16 files round-trip, full checkpoints are read
//! too, other files are refused with the reason, and the GPU generator draws what the CPU
//! reference draws from the same weights.
#![cfg(not(target_arch = "wasm32"))]

use pollster::block_on;
use webgan::gpu::Gpu;
use webgan::model::checkpoint::CheckpointError;
use webgan::model::generate::{generate_cpu, grid_rgba, GpuGenerator};
use webgan::model::weights::GeneratorWeights;
use webgan::model::{Kind, ModelConfig};
use webgan::run::grid_z;
use webgan::shape::AdamConfig;
use webgan::train::Trainer;

/// A trainer after a few steps at a high learning rate, so G's weights and statistics are far
/// from their initial values.
fn trained(gpu: &Gpu, kind: Kind) -> Trainer {
    let cfg = ModelConfig { adam: AdamConfig { lr: 2e-2, ..AdamConfig::default() }, ..ModelConfig::tiny(kind) };
    let mut t = Trainer::new(gpu, &cfg, &gpu.tuning()).unwrap();
    for step in 0..4usize {
        let real: Vec<u8> =
            (0..cfg.batch * cfg.image_len()).map(|i| ((i * 7 + step * 91 + i / 5) % 256) as u8).collect();
        let mut rng = webgan::rng::Rng::new(step as u64);
        let z: Vec<f32> = (0..cfg.batch * cfg.z_dim).map(|_| rng.normal()).collect();
        t.step(gpu, &real, &z);
    }
    t
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn f16_weights_round_trip_and_draw_what_the_checkpoint_draws() {
    let gpu = block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)");
    for kind in [Kind::Dcgan, Kind::Basic] {
        let trainer = trained(&gpu, kind);
        let checkpoint = block_on(trainer.save(&gpu, vec![])).unwrap();
        let full = GeneratorWeights::from_bytes(&checkpoint).unwrap();
        assert_eq!((full.step, &full.config), (4, &trainer.cfg));

        let info = vec![("data".to_string(), "squares".to_string())];
        let file = GeneratorWeights { info: info.clone(), ..full.clone() }.to_bytes();
        assert!(
            file.len() * 5 < checkpoint.len(),
            "{} bytes of weights from a {}-byte checkpoint",
            file.len(),
            checkpoint.len()
        );
        let half = GeneratorWeights::from_bytes(&file).unwrap();
        assert_eq!((half.step, &half.config, &half.info), (4, &full.config, &info));
        // F16 keeps 11 significant bits: every value within 2^-11 relative (or tiny absolute).
        for (a, b) in
            full.params.iter().chain(&full.running).flatten().zip(half.params.iter().chain(&half.running).flatten())
        {
            assert!((a - b).abs() <= a.abs() / 2048.0 + 1e-7, "{a} stored as {b}");
        }

        // The images: F16 changes them by far less than a grey level; the GPU generator agrees
        // with the CPU reference, and so does the fast CPU path (which the page draws with first).
        let z = grid_z(&full.config, 7); // not a multiple of the GPU batch: the last run is padded
        let cpu_full = generate_cpu(&full, &z);
        let cpu_half = generate_cpu(&half, &z);
        assert!(
            max_diff(&cpu_full, &cpu_half) < 1.0 / 127.5,
            "f16 moved a pixel by {}",
            max_diff(&cpu_full, &cpu_half)
        );
        let g = GpuGenerator::new(&gpu, &half, 3, &gpu.tuning()).unwrap();
        let gpu_half = block_on(g.generate(&gpu, &z)).unwrap();
        assert!(max_diff(&gpu_half, &cpu_half) < 1e-4, "{kind:?}: GPU vs CPU {}", max_diff(&gpu_half, &cpu_half));
        let fast_half = webgan::fast::generate(&half, &z);
        assert!(
            max_diff(&fast_half, &cpu_half) < 1e-4,
            "{kind:?}: fast CPU vs reference {}",
            max_diff(&fast_half, &cpu_half)
        );
        let spread = cpu_half.iter().fold(0.0f32, |m, v| m.max((v - cpu_half[0]).abs()));
        assert!(spread > 1e-3, "{kind:?}: the generator draws a constant image ({spread})");
    }
}

#[test]
fn other_files_are_refused_with_the_reason() {
    let garbage = GeneratorWeights::from_bytes(b"not a safetensors file").unwrap_err();
    assert!(matches!(garbage, CheckpointError::Malformed(_)), "{garbage}");
    let other = safetensors::serialize(Vec::<(&str, safetensors::tensor::TensorView)>::new(), None).unwrap();
    let e = GeneratorWeights::from_bytes(&other).unwrap_err();
    assert!(matches!(e, CheckpointError::NotWeights(None)) && e.to_string().contains("webgan-generator-1"), "{e}");
    // A weights file with a tensor cut off.
    let gpu = block_on(Gpu::new()).unwrap();
    let file = GeneratorWeights::from_bytes(&block_on(trained(&gpu, Kind::Dcgan).save(&gpu, vec![])).unwrap())
        .unwrap()
        .to_bytes();
    assert!(GeneratorWeights::from_bytes(&file[..file.len() - 10]).is_err());
}

#[test]
fn grid_lays_out_64_images_with_gaps() {
    let (w, h, px) = grid_rgba(&vec![0.0; 64 * 4 * 4], 1, 4, 8, 2);
    assert_eq!((w, h, px.len()), (50, 50, 50 * 50 * 4));
}
