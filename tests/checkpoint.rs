//! Checkpoints: a run saved after k steps and loaded into a fresh trainer continues bit for bit
//! as the uninterrupted run; bad checkpoints are refused, naming what is wrong, and leave the
//! trainer untouched; metadata and the caller's run state come back as saved.
#![cfg(not(target_arch = "wasm32"))]

use pollster::block_on;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use webgan::gpu::Gpu;
use webgan::model::checkpoint::{self, CheckpointError, NetState};
use webgan::model::{KernelForm, Kind, ModelConfig};
use webgan::rng::Rng;
use webgan::shape::AdamConfig;
use webgan::train::Trainer;

fn small(kind: Kind) -> ModelConfig {
    ModelConfig { adam: AdamConfig { lr: 1e-2, ..AdamConfig::default() }, ..ModelConfig::tiny(kind) }
}

fn gpu() -> Gpu {
    block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)")
}

/// Step `step`'s inputs depend on nothing but the step index.
fn train(gpu: &Gpu, trainer: &mut Trainer, steps: std::ops::Range<usize>) {
    let cfg = trainer.cfg.clone();
    for step in steps {
        let real: Vec<u8> = (0..cfg.batch * cfg.image_len()).map(|i| ((i * 37 + step * 11) % 256) as u8).collect();
        let mut rng = Rng::new(step as u64);
        let z: Vec<f32> = (0..cfg.batch * cfg.z_dim).map(|_| rng.normal()).collect();
        trainer.step(gpu, &real, &z);
    }
}

/// Both networks' state as bits (so -0.0 and 0.0 differ), with the step.
fn snapshot(gpu: &Gpu, t: &Trainer) -> (u32, Vec<Vec<u32>>) {
    let bits = |s: NetState| {
        [s.params, s.adam_m, s.adam_v, s.running].concat().into_iter().map(|v| v.iter().map(|x| x.to_bits()).collect())
    };
    let (g, d) = (block_on(NetState::read(gpu, &t.g)).unwrap(), block_on(NetState::read(gpu, &t.d)).unwrap());
    (t.step, bits(g).chain(bits(d)).collect())
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn resume_is_exact(kind: Kind) {
    let (gpu, cfg) = (gpu(), small(kind));
    let mut straight = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    train(&gpu, &mut straight, 0..6);

    let mut first = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    train(&gpu, &mut first, 0..3);
    let bytes = block_on(first.save(&gpu, pairs(&[("epoch", "0")]))).unwrap();
    let saved = snapshot(&gpu, &first);
    drop(first);

    let mut resumed = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    assert_eq!(resumed.load(&gpu, &bytes).unwrap(), pairs(&[("epoch", "0")]));
    assert!(snapshot(&gpu, &resumed) == saved, "a loaded checkpoint differs from what was saved");
    train(&gpu, &mut resumed, 3..6);

    let (want, got) = (snapshot(&gpu, &straight), snapshot(&gpu, &resumed));
    assert_eq!(got.0, 6);
    assert_ne!(saved.1, want.1, "the last three steps changed nothing: the test proves nothing");
    for (t, (a, b)) in want.1.iter().zip(&got.1).enumerate() {
        let diff = a.iter().zip(b).filter(|(x, y)| x != y).count();
        assert_eq!(diff, 0, "{kind:?}: tensor {t} differs in {diff} of {} values after resuming", a.len());
    }
}

#[test]
fn dcgan_resume_is_exact() {
    resume_is_exact(Kind::Dcgan);
}

#[test]
fn basic_gan_resume_is_exact() {
    resume_is_exact(Kind::Basic);
}

/// Re-serialises a checkpoint with its tensors and metadata edited.
fn rewrite(
    bytes: &[u8],
    edit_tensors: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>),
    edit_meta: impl FnOnce(&mut Vec<(String, String)>),
) -> Vec<u8> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let mut tensors: Vec<_> =
        file.tensors().into_iter().map(|(n, t)| (n, t.shape().to_vec(), t.data().to_vec())).collect();
    edit_tensors(&mut tensors);
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta: Vec<(String, String)> =
        header.metadata().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
    edit_meta(&mut meta);
    let views = tensors.iter().map(|(n, s, d)| (n, TensorView::new(Dtype::F32, s.clone(), d).unwrap()));
    safetensors::serialize(views, Some(meta.into_iter().collect())).unwrap()
}

#[test]
fn bad_checkpoints_are_refused_and_change_nothing() {
    let (gpu, cfg) = (gpu(), small(Kind::Dcgan));
    let mut trainer = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    train(&gpu, &mut trainer, 0..2);
    let good = block_on(trainer.save(&gpu, vec![])).unwrap();
    // The trainer moves on, so loading `good` would visibly change it.
    train(&gpu, &mut trainer, 2..3);
    let before = snapshot(&gpu, &trainer);

    let wider = small(Kind::Dcgan);
    let wider = ModelConfig { ngf: 8, ndf: 6, ..wider };
    let other_arch = block_on(Trainer::new(&gpu, &wider, &gpu.tuning()).unwrap().save(&gpu, vec![])).unwrap();
    let other_kind = small(Kind::Basic);
    let other_kind = block_on(Trainer::new(&gpu, &other_kind, &gpu.tuning()).unwrap().save(&gpu, vec![])).unwrap();

    let mut with_nan = checkpoint::from_bytes(&good, &cfg).unwrap();
    with_nan.g.params[0][3] = f32::NAN;
    let mut with_inf = checkpoint::from_bytes(&good, &cfg).unwrap();
    with_inf.d.adam_v[1][0] = f32::INFINITY;
    // The same NaN written straight into the file's bytes: D's first running mean.
    let mut nan_in_bytes = good.clone();
    let at = {
        let file = SafeTensors::deserialize(&good).unwrap();
        let data = file.tensor("D.running.0").unwrap().data();
        data.as_ptr() as usize - good.as_ptr() as usize
    };
    nan_in_bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());

    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("garbage", b"this is not a checkpoint at all, just some bytes".to_vec(), &["safetensors"]),
        ("empty", vec![], &["safetensors"]),
        ("truncated", good[..good.len() - 100].to_vec(), &["safetensors"]),
        ("header only", good[..good.len() / 20].to_vec(), &["safetensors"]),
        (
            "other architecture",
            other_arch,
            &["checkpoint has ngf=8, this model ngf=4", "checkpoint has ndf=6, this model ndf=4"],
        ),
        ("other kind", other_kind, &["checkpoint has kind=basic, this model kind=dcgan"]),
        ("NaN", with_nan.to_bytes(), &["G.0.weight", "NaN"]),
        ("Inf", with_inf.to_bytes(), &["D.0.bias.adam_v", "inf"]),
        ("NaN in the bytes", nan_in_bytes, &["D.running.0", "NaN"]),
        (
            "missing tensor",
            rewrite(&good, |t| t.retain(|(n, ..)| n != "G.1.affine.adam_m"), |_| {}),
            &["G.1.affine.adam_m", "missing"],
        ),
        (
            "wrong size",
            rewrite(
                &good,
                |t| {
                    let bias = t.iter_mut().find(|(n, ..)| n == "D.0.bias").unwrap();
                    (bias.1, bias.2) = (vec![3], vec![0; 12]);
                },
                |_| {},
            ),
            &["D.0.bias", "[3]", "[4]"],
        ),
        (
            "wrong format",
            rewrite(&good, |_| {}, |m| m.iter_mut().find(|(k, _)| k == "format").unwrap().1 = "other-2".into()),
            &["\"other-2\"", "webgan-checkpoint-1"],
        ),
        ("no format", rewrite(&good, |_| {}, |m| m.retain(|(k, _)| k != "format")), &["format is none"]),
        (
            "unreadable step",
            rewrite(&good, |_| {}, |m| m.iter_mut().find(|(k, _)| k == "step").unwrap().1 = "two".into()),
            &["step", "two"],
        ),
    ];
    for (what, bytes, words) in cases {
        let err = trainer.load(&gpu, &bytes).expect_err(what);
        let msg = err.to_string();
        println!("{what}: {msg}");
        for w in words {
            assert!(msg.contains(w), "{what}: {msg:?} should mention {w:?}");
        }
        assert!(snapshot(&gpu, &trainer) == before, "{what}: a refused checkpoint changed the trainer");
    }
    assert!(matches!(trainer.load(&gpu, b"x"), Err(CheckpointError::Malformed(_))));

    // The good one still loads, and hyperparameters may differ from the trainer's.
    let faster = ModelConfig { adam: AdamConfig { lr: 5e-3, ..cfg.adam }, batch: 5, ..cfg.clone() };
    let mut other = Trainer::new(&gpu, &faster, &gpu.tuning()).unwrap();
    other.load(&gpu, &good).unwrap();
    assert_eq!(other.step, 2);
    assert_eq!(checkpoint::read_config(&good).unwrap(), cfg);
    trainer.load(&gpu, &good).unwrap();
    assert!(snapshot(&gpu, &trainer) != before);
}

#[test]
fn metadata_and_run_state_round_trip() {
    let gpu = gpu();
    let cfg = ModelConfig {
        kernel: KernelForm::K4S2P1,
        adam: AdamConfig { lr: 3.3e-4, beta1: 0.45, beta2: 0.995, eps: 1e-7 },
        seed: u64::MAX - 5,
        ..small(Kind::Dcgan)
    };
    let mut trainer = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    train(&gpu, &mut trainer, 0..1);
    let mut rng = Rng::new(9);
    rng.next_u64();
    let rng_state = rng.state().map(|s| s.to_string()).join(",");
    let run =
        pairs(&[("rng", &rng_state), ("epoch", "3"), ("sampler", "order=1 2 0;pos=2"), ("note", "ünïcode \"quoted\"")]);
    let bytes = block_on(trainer.save(&gpu, run.clone())).unwrap();

    let state = checkpoint::from_bytes(&bytes, &cfg).unwrap();
    assert_eq!(state.config, cfg);
    assert_eq!(state.step, 1);
    let mut sorted = run.clone();
    sorted.sort();
    assert_eq!(state.run, sorted);
    let back: Vec<u64> =
        state.run.iter().find(|(k, _)| k == "rng").unwrap().1.split(',').map(|s| s.parse().unwrap()).collect();
    assert_eq!(Rng::from_state(back.try_into().unwrap()), rng);
    assert_eq!(checkpoint::read_config(&bytes).unwrap(), cfg);
    // Checkpoints are plain safetensors with PyTorch shapes and string metadata.
    let file = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(file.tensor("G.3.weight").unwrap().shape(), &[8, 4, 4, 4]);
    assert_eq!(file.tensor("D.0.weight").unwrap().shape(), &[4, 1, 4, 4]);
    assert_eq!(file.tensor("G.0.weight.adam_v").unwrap().shape(), &[8 * 16, 8]);
    assert_eq!(file.tensor("G.running.1").unwrap().shape(), &[2, 4]);
    // A state rebuilt from the file writes the same file back.
    assert_eq!(checkpoint::from_bytes(&state.to_bytes(), &cfg).unwrap(), state);
}
