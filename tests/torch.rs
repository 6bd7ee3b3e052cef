//! webgan against PyTorch (python/webgan_torch, run by tests/torch/interop.py): the same
//! checkpoint, batch and z through one and two whole training steps on both sides; the shipped
//! generator files' G(z); and a checkpoint PyTorch wrote, read back and trained on by webgan.
//! PyTorch is the independent reference here: its conv, batchnorm, loss and Adam are its own.
//!
//! These tests need PyTorch, so `cargo test` lists them as ignored; `./build.sh test` installs
//! it (a virtual environment in target/torch-venv) and runs them with `--ignored`, naming its
//! Python in WEBGAN_PYTHON. Step tolerance as in tests/train_step.rs: |got - want| <= 2e-5 +
//! 1e-3 |want| (and Adam's eps 1e-3, see tests/common/steps.rs).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::compare;
use common::steps::{biases_before_batchnorm, close, close_except, small};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};
use std::process::Command;
use webgan::fast::FastGan;
use webgan::model::checkpoint::{self, TrainState};
use webgan::model::generate::generate_cpu;
use webgan::model::latent::normal_z;
use webgan::model::weights::GeneratorWeights;
use webgan::model::{KernelForm, Kind, ModelConfig};
use webgan::rng::Rng;
use webgan::train::CpuGan;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// How far a bias before batchnorm may drift (see tests/fast_cpu.rs).
const NOISE: f32 = 1e-3;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(ROOT).join("target/test-scratch/torch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs tests/torch/interop.py with WEBGAN_PYTHON (default python3); panics with its output.
fn python(args: &[&str]) -> String {
    let exe = std::env::var("WEBGAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(ROOT).join("tests/torch/interop.py");
    let out = Command::new(&exe).arg(&script).args(args).output().unwrap_or_else(|e| panic!("{exe}: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{exe} interop.py {args:?} failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    stdout.into_owned()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn write_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| (*name, TensorView::new(*dtype, shape.clone(), bytes).unwrap()));
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn read_f32(path: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let t = file.tensor(name).unwrap();
    assert_eq!(t.dtype(), Dtype::F32, "{name}");
    t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// PyTorch's state after each of two steps against webgan's: parameters and running statistics
/// against the CPU reference (`CpuGan`), Adam's moments and G's moving average against the fast
/// CPU path (tested against the reference in tests/fast_cpu.rs), and the metrics.
fn steps_match(name: &str, cfg: &ModelConfig) {
    let dir = scratch(name);
    let mut fast = FastGan::new(cfg);
    let mut reference = CpuGan::new(cfg);
    std::fs::write(dir.join("start.safetensors"), fast.save(cfg, Vec::new())).unwrap();
    let start = fast.to_state(cfg, Vec::new());

    const STEPS: usize = 2;
    let mut rng = Rng::new(7);
    let (n, len) = (cfg.batch, cfg.image_len());
    let real: Vec<u8> = (0..STEPS * n * len).map(|_| (rng.uniform() * 255.0) as u8).collect();
    let z = normal_z(&mut rng, STEPS * n, cfg.z_dim);
    let (c, s) = (cfg.channels, cfg.image_size);
    write_tensors(
        &dir.join("inputs.safetensors"),
        &[
            ("real", Dtype::U8, vec![STEPS, n, c, s, s], real.clone()),
            ("z", Dtype::F32, vec![STEPS, n, cfg.z_dim], f32_bytes(&z)),
        ],
    );
    python(&["steps", dir.to_str().unwrap()]);
    let torch_metrics = read_f32(&dir.join("torch-metrics.safetensors"), "metrics");

    for k in 0..STEPS {
        let (real, z) = (&real[k * n * len..(k + 1) * n * len], &z[k * n * cfg.z_dim..(k + 1) * n * cfg.z_dim]);
        let want_metrics = reference.step(cfg, real, z);
        fast.step(cfg, real, z);
        let bytes = std::fs::read(dir.join(format!("torch-{}.safetensors", k + 1))).unwrap();
        let torch: TrainState = checkpoint::from_bytes(&bytes, cfg).expect("webgan reads PyTorch's checkpoint");
        let what = |part: &str| format!("{name} step {} {part}", k + 1);
        assert_eq!(torch.step as usize, k + 1, "{}", what("step count"));
        assert!(torch.run.is_empty(), "PyTorch writes no webgan run state");
        let g_noise = biases_before_batchnorm(&fast.g);
        let d_noise = biases_before_batchnorm(&fast.d);
        close_except(&what("G params"), &torch.g.params, &reference.g_params, &g_noise, NOISE);
        close_except(&what("D params"), &torch.d.params, &reference.d_params, &d_noise, NOISE);
        close(&what("G running"), &torch.g.running, &reference.g_running);
        close(&what("D running"), &torch.d.running, &reference.d_running);
        let state = fast.to_state(cfg, Vec::new());
        for (part, got, want, noise) in [
            ("G adam_m", &torch.g.adam_m, &state.g.adam_m, &g_noise),
            ("G adam_v", &torch.g.adam_v, &state.g.adam_v, &g_noise),
            ("D adam_m", &torch.d.adam_m, &state.d.adam_m, &d_noise),
            ("D adam_v", &torch.d.adam_v, &state.d.adam_v, &d_noise),
        ] {
            close_except(&what(part), got, want, noise, 1.0);
        }
        if cfg.ema > 0.0 {
            close_except(&what("G moving average"), &torch.g_ema, &state.g_ema, &g_noise, NOISE);
        }
        let got = &torch_metrics[k * 6..(k + 1) * 6];
        common::report(&compare("conv", &what("metrics"), got, &want_metrics));
    }
    let moved = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
    };
    // The steps moved the weights by more than 5x the tolerance's absolute term, so agreeing
    // cannot mean agreeing on unchanged ones.
    let (g_moved, d_moved) = (moved(&reference.g_params, &start.g.params), moved(&reference.d_params, &start.d.params));
    println!("{name}: the two steps moved G by up to {g_moved:e}, D by up to {d_moved:e}");
    assert!(g_moved > 1e-4 && d_moved > 1e-4, "the steps hardly moved the weights: G {g_moved:e}, D {d_moved:e}");
}

#[test]
#[ignore = "needs PyTorch: ./build.sh test installs it and runs these with --ignored"]
fn two_pytorch_steps_equal_webgans_dcgan_seed5x5() {
    steps_match("dcgan-seed5x5", &small(Kind::Dcgan, KernelForm::Seed5x5));
}

#[test]
#[ignore = "needs PyTorch: ./build.sh test installs it and runs these with --ignored"]
fn two_pytorch_steps_equal_webgans_dcgan_k4s2p1_rgb_with_a_moving_average() {
    let cfg = ModelConfig { channels: 3, ema: 0.9, ..small(Kind::Dcgan, KernelForm::K4S2P1) };
    steps_match("dcgan-k4s2p1-rgb-ema", &cfg);
}

#[test]
#[ignore = "needs PyTorch: ./build.sh test installs it and runs these with --ignored"]
fn two_pytorch_steps_equal_webgans_basic_gan() {
    steps_match("basic", &small(Kind::Basic, KernelForm::Seed5x5));
}

#[test]
#[ignore = "needs PyTorch: ./build.sh test installs it and runs these with --ignored"]
fn the_shipped_generators_draw_the_same_in_pytorch() {
    let dir = scratch("generate");
    for file in ["mnist-dcgan", "faces-dcgan"] {
        let path = Path::new(ROOT).join(format!("www/weights/{file}.safetensors"));
        let weights = GeneratorWeights::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
        let cfg = &weights.config;
        let z = normal_z(&mut Rng::new(3), 16, cfg.z_dim);
        let (z_file, out) = (dir.join(format!("{file}-z.safetensors")), dir.join(format!("{file}-out.safetensors")));
        write_tensors(&z_file, &[("z", Dtype::F32, vec![16, cfg.z_dim], f32_bytes(&z))]);
        python(&["generate", path.to_str().unwrap(), z_file.to_str().unwrap(), out.to_str().unwrap()]);
        let got = read_f32(&out, "images");
        common::report(&compare(
            "conv",
            &format!("{file} G(z), PyTorch vs the CPU reference"),
            &got,
            &generate_cpu(&weights, &z),
        ));
        let spread = got.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(spread > 0.5, "{file}: G(z) is nearly flat ({spread})");
    }
}

#[test]
#[ignore = "needs PyTorch: ./build.sh test installs it and runs these with --ignored"]
fn webgan_resumes_training_from_a_pytorch_checkpoint() {
    // An MNIST-shaped model small enough for a few CPU steps; PyTorch trains it one step.
    let cfg = ModelConfig { ngf: 4, ndf: 4, batch: 8, ..ModelConfig::mnist() };
    let dir = scratch("resume");
    std::fs::write(dir.join("start.safetensors"), FastGan::new(&cfg).save(&cfg, Vec::new())).unwrap();
    let mut rng = Rng::new(11);
    let real: Vec<u8> = (0..cfg.batch * cfg.image_len()).map(|_| (rng.uniform() * 255.0) as u8).collect();
    let z = normal_z(&mut rng, cfg.batch, cfg.z_dim);
    write_tensors(
        &dir.join("inputs.safetensors"),
        &[
            ("real", Dtype::U8, vec![1, cfg.batch, 1, 32, 32], real),
            ("z", Dtype::F32, vec![1, cfg.batch, cfg.z_dim], f32_bytes(&z)),
        ],
    );
    python(&["steps", dir.to_str().unwrap()]);
    let torch = dir.join("torch-1.safetensors");
    let data = Path::new(ROOT).join("www/data/mnist/t10k-images-idx3-ubyte.gz");
    let out = Command::new(env!("CARGO_BIN_EXE_webgan-cli"))
        .args(["train", "--backend", "cpu", "--ngf", "4", "--ndf", "4", "--batch", "8", "--steps", "4"])
        .args(["--sample-every", "1000", "--out"])
        .arg(dir.join("run"))
        .arg("--data")
        .arg(&data)
        .arg("--resume")
        .arg(&torch)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "webgan-cli train --resume failed:\n{text}");
    assert!(text.contains("no run state") && text.contains("resumed") && text.contains("at step 1"), "{text}");
    let saved = std::fs::read(dir.join("run/checkpoint.safetensors")).unwrap();
    let state = checkpoint::from_bytes(&saved, &cfg).unwrap();
    assert_eq!(state.step, 4, "three webgan steps after PyTorch's one");
    assert!(!state.run.is_empty(), "webgan's own checkpoint carries its run state again");
}

#[test]
#[ignore = "needs PyTorch: ./build.sh test installs it and runs these with --ignored"]
fn torchrun_on_two_processes_trains_the_same_model_as_on_one() {
    // Adam's eps 1e-3 as in `small` (tests/common/steps.rs says why): with 1e-8 a conv bias
    // before batchnorm, whose gradient is rounding noise, moves a full lr either way, and with it
    // the running mean behind it.
    let adam = small(Kind::Dcgan, KernelForm::Seed5x5).adam;
    let cfg = ModelConfig { ngf: 4, ndf: 4, batch: 8, adam, ..ModelConfig::mnist() };
    let dir = scratch("torchrun");
    let start = dir.join("start.safetensors");
    std::fs::write(&start, FastGan::new(&cfg).save(&cfg, Vec::new())).unwrap();
    let exe = std::env::var("WEBGAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let data = Path::new(ROOT).join("www/data/mnist/t10k-images-idx3-ubyte.gz");
    let run = |processes: usize| -> TrainState {
        let out_dir = dir.join(format!("n{processes}"));
        let out = Command::new(&exe)
            .args(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", &processes.to_string()])
            .arg(Path::new(ROOT).join("python/train_ddp.py"))
            .arg("--checkpoint")
            .arg(&start)
            .arg("--data")
            .arg(&data)
            .args(["--steps", "2", "--log-every", "1", "--out"])
            .arg(&out_dir)
            .output()
            .unwrap_or_else(|e| panic!("{exe}: {e}"));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        println!("torchrun, {processes} process(es):\n{text}");
        assert!(out.status.success(), "torchrun with {processes} process(es) failed:\n{text}");
        let bytes = std::fs::read(out_dir.join("checkpoint.safetensors")).unwrap();
        checkpoint::from_bytes(&bytes, &cfg).expect("webgan reads train_ddp.py's checkpoint")
    };
    let (one, two) = (run(1), run(2));
    assert_eq!((one.step, two.step), (2, 2));
    let (g_noise, d_noise) = (
        biases_before_batchnorm(&webgan::model::generator(&cfg)),
        biases_before_batchnorm(&webgan::model::discriminator(&cfg)),
    );
    close_except("torchrun 2 vs 1: G params", &two.g.params, &one.g.params, &g_noise, NOISE);
    close_except("torchrun 2 vs 1: D params", &two.d.params, &one.d.params, &d_noise, NOISE);
    // Running means take in the conv bias before each batchnorm, rounding noise that Adam moves
    // by up to about 1e-5 a step: the means are held to NOISE, the variances to the tolerance.
    for (what, got, want) in [("G", &two.g.running, &one.g.running), ("D", &two.d.running, &one.d.running)] {
        let half = |v: &[Vec<f32>], var: bool| -> Vec<Vec<f32>> {
            v.iter().map(|t| if var { t[t.len() / 2..].to_vec() } else { t[..t.len() / 2].to_vec() }).collect()
        };
        close(&format!("torchrun 2 vs 1: {what} running variances"), &half(got, true), &half(want, true));
        let worst = half(got, false)
            .iter()
            .flatten()
            .zip(half(want, false).iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        common::report(&format!("torchrun 2 vs 1: {what} running means differ by up to {worst:e}"));
        assert!(worst < NOISE, "{what} running means differ by {worst:e}");
    }
    close_except("torchrun 2 vs 1: D adam_v", &two.d.adam_v, &one.d.adam_v, &d_noise, 1.0);
    let start = checkpoint::from_bytes(&std::fs::read(&start).unwrap(), &cfg).unwrap();
    let moved = one
        .g
        .params
        .iter()
        .flatten()
        .zip(start.g.params.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(moved > 1e-4, "two steps hardly moved G ({moved:e})");
}

#[test]
#[ignore = "needs PyTorch: ./build.sh test installs it and runs these with --ignored"]
fn pytorch_refuses_what_webgan_refuses() {
    let cfg = small(Kind::Dcgan, KernelForm::Seed5x5);
    let dir = scratch("refuse");
    let gan = FastGan::new(&cfg);
    let good = dir.join("good.safetensors");
    std::fs::write(&good, gan.save(&cfg, Vec::new())).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let mut bad = Vec::new();
    let mut write = |name: &str, bytes: &[u8], why: &str| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        bad.push((path, why.to_string()));
    };
    write("truncated.safetensors", &bytes[..bytes.len() / 2], "not a safetensors file");
    let weights = GeneratorWeights::from_state(&gan.to_state(&cfg, Vec::new()), Vec::new()).to_bytes();
    write("generator.safetensors", &weights, "format 'webgan-generator-1'");
    let wider = ModelConfig { ngf: cfg.ngf * 2, ..cfg.clone() };
    write("wider.safetensors", &FastGan::new(&wider).save(&wider, Vec::new()), "ngf=8, this model ngf=4");
    let mut nan = FastGan::new(&cfg);
    nan.d_params[0][3] = f32::NAN;
    write("nan.safetensors", &nan.save(&cfg, Vec::new()), "holds nan at index 3");
    let mut args = vec!["refuse".to_string(), good.to_str().unwrap().to_string()];
    args.extend(bad.iter().map(|(p, _)| p.to_str().unwrap().to_string()));
    let out = python(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("refused: ")).collect();
    assert_eq!(lines.len(), bad.len(), "{out}");
    for (line, (_, why)) in lines.iter().zip(&bad) {
        assert!(line.contains(why.as_str()), "expected {why:?} in {line:?}");
    }
}
