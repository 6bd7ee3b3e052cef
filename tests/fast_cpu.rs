//! The fast CPU path (`webgan::fast`) against the CPU reference op by op, against the GPU
//! trainer (lavapipe here) and the reference `CpuGan` step by step, and its checkpoints against
//! the GPU trainer's in both directions.
//!
//! Step tolerance and Adam eps as in tests/train_step.rs (see there why eps = 1e-3 and why conv
//! biases that feed a batchnorm are only checked for staying near 0): |got - want| <= 2e-5 +
//! 1e-3 |want|. Every comparison prints its worst element; every step comparison also checks
//! that the step moved the weights, so agreeing on unchanged weights cannot pass.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::compare;
use common::steps::{biases_before_batchnorm, close, close_except, small};
use pollster::block_on;
use std::sync::OnceLock;
use webgan::fast::{self, FastGan};
use webgan::gpu::Gpu;
use webgan::model::checkpoint::{self, NetState};
use webgan::model::{KernelForm, Kind, ModelConfig, NetSpec};
use webgan::reference as r;
use webgan::rng::Rng;
use webgan::shape::{Activation, AdamConfig, BatchNorm, BatchNormConfig, Conv2d, ConvTranspose2d, Linear};
use webgan::step::METRICS;
use webgan::train::{CpuGan, Trainer};

/// How far a bias before batchnorm may drift: Adam moves a weight with a real gradient by about
/// lr = 1e-2 per step; noise of 1e-5 (sums over batch 9 x 256 positions) moves it by 1e-4.
const NOISE: f32 = 1e-3;

fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)"))
}

fn values(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.normal() * scale).collect()
}

// ---- ops against the reference ----

/// The reference in f64 on f32 inputs, rounded back: the oracle for long reductions, where the
/// reference's own sequential f32 sums drift (a 16,640-term weight gradient by 5e-3 relative).
fn f64_ref<const N: usize>(inputs: [&[f32]; N], f: impl Fn([Vec<f64>; N]) -> Vec<f64>) -> Vec<f32> {
    r::to_f32(&f(inputs.map(r::to_f64)))
}

fn f64_grads(g: r::ConvGrads<f64>) -> r::ConvGrads<f32> {
    r::ConvGrads { dx: r::to_f32(&g.dx), dw: r::to_f32(&g.dw), db: r::to_f32(&g.db) }
}

/// Odd sizes, batch 1 and batches that split unevenly over threads and weight-gradient packs.
#[test]
fn conv_ops_match_reference() {
    let mut rng = Rng::new(3);
    for (batch, c_in, c_out, h, w, kernel, stride, pad) in [
        (3, 3, 5, 9, 7, 5, 2, 2),
        (1, 2, 4, 8, 8, 4, 2, 1),
        (5, 4, 3, 6, 5, 3, 1, 1),
        (7, 16, 8, 4, 4, 5, 2, 2),
        (65, 1, 4, 32, 32, 5, 2, 2),
    ] {
        let g = Conv2d { batch, c_in, c_out, h_in: h, w_in: w, kernel, stride, pad };
        let (x, wt, b) =
            (values(&mut rng, g.input_len(), 1.0), values(&mut rng, g.weight_len(), 0.3), values(&mut rng, c_out, 1.0));
        let dy = values(&mut rng, g.output_len(), 1.0);
        let what = format!("{g:?}");
        compare(
            "conv",
            &format!("conv2d y {what}"),
            &fast::conv::conv2d_forward(&g, &x, &wt, Some(&b)),
            &f64_ref([&x, &wt, &b], |[x, w, b]| r::conv2d_forward(&g, &x, &w, Some(&b))),
        );
        let want = f64_grads(r::conv2d_backward(&g, &r::to_f64(&x), &r::to_f64(&wt), &r::to_f64(&dy)));
        compare("conv", &format!("conv2d dx {what}"), &fast::conv::conv2d_backward_input(&g, &wt, &dy), &want.dx);
        // Gradients are added into: start from ones.
        let (mut dw, mut db) = (vec![1.0; wt.len()], vec![1.0; c_out]);
        fast::conv::conv2d_backward_weight(&g, &x, &dy, &mut dw);
        fast::conv::channel_sum(&dy, c_out, g.h_out() * g.w_out(), &mut db);
        let plus1 = |v: &[f32]| v.iter().map(|x| x + 1.0).collect::<Vec<f32>>();
        compare("conv", &format!("conv2d dw {what}"), &dw, &plus1(&want.dw));
        compare("conv", &format!("conv2d db {what}"), &db, &plus1(&want.db));
    }
    for (batch, c_in, c_out, h, w, kernel, pad, out_pad) in
        [(3, 4, 3, 4, 5, 5, 2, 1), (2, 3, 2, 5, 5, 4, 1, 0), (1, 8, 1, 8, 8, 5, 2, 1), (9, 2, 6, 3, 3, 4, 1, 0)]
    {
        let g = ConvTranspose2d { batch, c_in, c_out, h_in: h, w_in: w, kernel, stride: 2, pad, out_pad };
        let (x, wt, b) =
            (values(&mut rng, g.input_len(), 1.0), values(&mut rng, g.weight_len(), 0.3), values(&mut rng, c_out, 1.0));
        let dy = values(&mut rng, g.output_len(), 1.0);
        let what = format!("{g:?}");
        let y = fast::conv::conv_transpose2d_forward(&g, &x, &wt, Some(&b));
        let y_ref = f64_ref([&x, &wt, &b], |[x, w, b]| r::conv_transpose2d_forward(&g, &x, &w, Some(&b)));
        compare("conv", &format!("convT y {what}"), &y, &y_ref);
        let want = f64_grads(r::conv_transpose2d_backward(&g, &r::to_f64(&x), &r::to_f64(&wt), &r::to_f64(&dy)));
        compare(
            "conv",
            &format!("convT dx {what}"),
            &fast::conv::conv_transpose2d_backward_input(&g, &wt, &dy),
            &want.dx,
        );
        let mut dw = vec![0.0; wt.len()];
        fast::conv::conv_transpose2d_backward_weight(&g, &x, &dy, &mut dw);
        compare("conv", &format!("convT dw {what}"), &dw, &want.dw);
    }
}

#[test]
fn linear_batchnorm_pointwise_match_reference() {
    let mut rng = Rng::new(4);
    for (batch, d_in, d_out) in [(1, 5, 3), (7, 33, 17), (64, 100, 512)] {
        let g = Linear { batch, d_in, d_out };
        let (x, w, b) =
            (values(&mut rng, batch * d_in, 1.0), values(&mut rng, d_in * d_out, 0.3), values(&mut rng, d_out, 1.0));
        let dy = values(&mut rng, batch * d_out, 1.0);
        compare(
            "linear",
            "linear y",
            &fast::linear::linear_forward(&g, &x, &w, Some(&b)),
            &r::linear_forward(&g, &x, &w, Some(&b)),
        );
        let want = r::linear_backward(&g, &x, &w, &dy);
        let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; d_out]);
        let dx = fast::linear::linear_backward(&g, &x, &w, &dy, Some((&mut dw, &mut db)), true).unwrap();
        compare("linear", "linear dx", &dx, &want.dx);
        compare("linear", "linear dw", &dw, &want.dw);
        compare("linear", "linear db", &db, &want.db);
    }
    let cfg = BatchNormConfig::default();
    for (batch, channels, spatial) in [(1, 3, 1), (5, 4, 7), (64, 8, 256)] {
        let s = BatchNorm { batch, channels, spatial };
        // An offset mean, so a one-pass variance would show.
        let x: Vec<f32> = values(&mut rng, s.len(), 2.0).iter().map(|v| v + 3.0).collect();
        let (gamma, beta) = (values(&mut rng, channels, 1.0), values(&mut rng, channels, 1.0));
        let dy = values(&mut rng, s.len(), 1.0);
        let run0: Vec<f32> = values(&mut rng, 2 * channels, 0.5).iter().map(|v| v.abs()).collect();
        let (mut ra, mut rb) = (run0.clone(), run0.clone());
        let (ra_m, ra_v) = ra.split_at_mut(channels);
        let (y, saved) = fast::batchnorm::batchnorm_forward_train(&s, &cfg, &x, &gamma, &beta, ra_m, ra_v);
        let (rb_m, rb_v) = rb.split_at_mut(channels);
        let (y_ref, saved_ref) = r::batchnorm_forward_train(&s, &cfg, &x, &gamma, &beta, rb_m, rb_v);
        compare("batchnorm", "bn train y", &y, &y_ref);
        compare("batchnorm", "bn running", &ra, &rb);
        let got = fast::batchnorm::batchnorm_backward(&s, &x, &gamma, &saved, &dy);
        let want = r::batchnorm_backward(&s, &x, &gamma, &saved_ref, &dy);
        compare("batchnorm", "bn dx", &got.dx, &want.dx);
        compare("batchnorm", "bn dgamma", &got.dgamma, &want.dgamma);
        compare("batchnorm", "bn dbeta", &got.dbeta, &want.dbeta);
        let (m, v) = ra.split_at(channels);
        let eval = fast::batchnorm::batchnorm_forward_eval(&s, &cfg, &x, &gamma, &beta, m, v);
        compare("batchnorm", "bn eval y", &eval, &r::batchnorm_forward_eval(&s, &cfg, &x, &gamma, &beta, m, v));
    }
    let x: Vec<f32> = (0..70_000).map(|i| ((i % 201) as f32 - 100.0) / 20.0).collect(); // includes 0
    let dy = values(&mut rng, x.len(), 1.0);
    for act in [Activation::Relu, Activation::LeakyRelu(0.2), Activation::Tanh, Activation::Sigmoid] {
        compare(
            "activation",
            &format!("{act:?} y"),
            &fast::pointwise::activation_forward(act, &x),
            &r::activation_forward(act, &x),
        );
        compare(
            "activation",
            &format!("{act:?} dx"),
            &fast::pointwise::activation_backward(act, &x, &dy),
            &r::activation_backward(act, &x, &dy),
        );
    }
    let adam = AdamConfig { lr: 1e-2, ..AdamConfig::default() };
    let (p0, g) = (values(&mut rng, 40_000, 1.0), values(&mut rng, 40_000, 1e-3));
    let (mut p, mut m, mut v) = (p0.clone(), vec![0.0; p0.len()], vec![0.0; p0.len()]);
    let (mut pr, mut mr, mut vr) = (p0.clone(), vec![0.0; p0.len()], vec![0.0; p0.len()]);
    for step in 1..=3 {
        fast::pointwise::adam_update(&adam, step, &mut p, &g, &mut m, &mut v);
        r::adam_update(&adam, step, &mut pr, &g, &mut mr, &mut vr);
    }
    compare("adam", "adam params", &p, &pr);
    compare("adam", "adam v", &v, &vr);
    assert!(p.iter().zip(&p0).all(|(a, b)| a != b), "adam moved nothing");
}

// ---- whole steps ----

/// Step `step`'s real batch and z depend on nothing but the step index. The images differ from
/// each other: with a batch of identical images (i * 37 % 256 repeats every 256 values) the
/// 32x32 step is chaotic, and a z changed by 2e-7 moves the reference's weights by 5e-3 in the
/// second step, so no two correct implementations could agree there.
fn inputs(cfg: &ModelConfig, step: usize) -> (Vec<u8>, Vec<f32>) {
    let img = cfg.image_len();
    let real = (0..cfg.batch * img).map(|i| ((i * 37 + i / img * 53 + step * 11) % 256) as u8).collect();
    (real, values(&mut Rng::new(100 + step as u64), cfg.batch * cfg.z_dim, 1.0))
}

/// The state every comparison looks at: params, Adam moments, running statistics of both nets.
fn fast_state(f: &FastGan, cfg: &ModelConfig) -> (NetState, NetState) {
    let s = f.to_state(cfg, vec![]);
    (s.g, s.d)
}

fn gpu_state(t: &Trainer) -> (NetState, NetState) {
    (block_on(NetState::read(gpu(), &t.g)).unwrap(), block_on(NetState::read(gpu(), &t.d)).unwrap())
}

fn states_close(what: &str, cfg: &ModelConfig, got: &(NetState, NetState), want: &(NetState, NetState)) {
    let (g_spec, d_spec) = (webgan::model::generator(cfg), webgan::model::discriminator(cfg));
    for (net, spec, a, b) in [("G", &g_spec, &got.0, &want.0), ("D", &d_spec, &got.1, &want.1)] {
        let noise = biases_before_batchnorm(spec);
        close_except(&format!("{what} {net} params"), &a.params, &b.params, &noise, NOISE);
        close_except(&format!("{what} {net} adam m"), &a.adam_m, &b.adam_m, &noise, NOISE);
        close(&format!("{what} {net} running"), &a.running, &b.running);
        // v is g^2-sized (1e-8 and below): compare it on its own scale.
        let scaled = |v: &[Vec<f32>]| v.iter().map(|t| t.iter().map(|x| x.sqrt()).collect()).collect::<Vec<Vec<f32>>>();
        close_except(&format!("{what} {net} sqrt(adam v)"), &scaled(&a.adam_v), &scaled(&b.adam_v), &noise, NOISE);
    }
}

/// The step must have moved every parameter tensor that is not noise-only: otherwise agreeing
/// proves nothing.
fn moved(what: &str, before: &[Vec<f32>], after: &[Vec<f32>], spec: &NetSpec) {
    let noise = biases_before_batchnorm(spec);
    for (t, (a, b)) in before.iter().zip(after).enumerate() {
        if !noise.contains(&t) {
            assert!(a != b, "{what}: tensor {t} did not change in the step");
        }
    }
}

fn fast_matches_gpu(cfg: ModelConfig, steps: usize) {
    println!("{cfg}");
    let mut trainer = Trainer::new(gpu(), &cfg, &gpu().tuning()).unwrap();
    let mut fast = FastGan::new(&cfg);
    let mut cpu = CpuGan::new(&cfg);
    states_close("init", &cfg, &fast_state(&fast, &cfg), &gpu_state(&trainer));
    for step in 0..steps {
        let (real, z) = inputs(&cfg, step);
        let before = fast.clone();
        trainer.step(gpu(), &real, &z);
        let got = fast.step(&cfg, &real, &z);
        let want_cpu = cpu.step(&cfg, &real, &z);
        let want_gpu = block_on(gpu().read(&trainer.metrics)).unwrap();
        assert_eq!(want_gpu.len(), METRICS);
        close(&format!("step {step} metrics vs GPU"), &[got.to_vec()], &[want_gpu]);
        close(&format!("step {step} metrics vs CpuGan"), &[got.to_vec()], &[want_cpu.to_vec()]);
        moved(&format!("step {step} G"), &before.g_params, &fast.g_params, &fast.g);
        moved(&format!("step {step} D"), &before.d_params, &fast.d_params, &fast.d);
        let mine = fast_state(&fast, &cfg);
        states_close(&format!("step {step} vs GPU"), &cfg, &mine, &gpu_state(&trainer));
        let (g_noise, d_noise) = (biases_before_batchnorm(&cpu.g), biases_before_batchnorm(&cpu.d));
        close_except(&format!("step {step} G params vs CpuGan"), &fast.g_params, &cpu.g_params, &g_noise, NOISE);
        close_except(&format!("step {step} D params vs CpuGan"), &fast.d_params, &cpu.d_params, &d_noise, NOISE);
        close(&format!("step {step} G running vs CpuGan"), &fast.g_running, &cpu.g_running);
        close(&format!("step {step} D running vs CpuGan"), &fast.d_running, &cpu.d_running);
    }
    assert_eq!(fast.step as usize, steps);
    let z = inputs(&cfg, 99).1;
    let want = block_on(trainer.sample(gpu(), &z)).unwrap();
    close("eval samples vs GPU", &[fast.sample(&cfg, &z)], &[want]);

    // The live grid: batch statistics over each run of `batch` z, a short last run filled up
    // with its own z again; the running statistics stay as they were.
    let (n, dim) = (cfg.batch, cfg.z_dim);
    let z = values(&mut Rng::new(7), (n + 2) * dim, 1.0);
    let running = gpu_state(&trainer).0.running;
    let got = fast.preview(&cfg, &z);
    close("preview vs GPU", std::slice::from_ref(&got), &[block_on(trainer.preview(gpu(), &z)).unwrap()]);
    assert_eq!(gpu_state(&trainer).0.running, running, "the GPU preview changed the running statistics");
    let reference = |run: &[f32]| {
        let mut scratch = cpu.g_running.clone();
        webgan::model::cpu::forward(&cpu.g, n, &cpu.g_params, &mut scratch, &cfg.bn, run, true).0
    };
    let first = reference(&z[..n * dim]);
    let last: Vec<f32> = (0..n).flat_map(|i| z[(n + i % 2) * dim..(n + i % 2 + 1) * dim].to_vec()).collect();
    let mut want = first;
    want.extend_from_slice(&reference(&last)[..2 * cfg.image_len()]);
    close("preview vs reference", std::slice::from_ref(&got), &[want]);
    if !cpu.g_running.is_empty() {
        let batch_eval = fast.sample(&cfg, &z[..n * dim]);
        assert!(got[..n * cfg.image_len()] != batch_eval[..], "the preview drew what inference draws");
    }
}

#[test]
fn dcgan_steps_match_gpu_and_reference() {
    fast_matches_gpu(small(Kind::Dcgan, KernelForm::Seed5x5), 3);
}

#[test]
fn dcgan_4x4_kernel_steps_match_gpu_and_reference() {
    fast_matches_gpu(small(Kind::Dcgan, KernelForm::K4S2P1), 2);
}

#[test]
fn basic_gan_steps_match_gpu_and_reference() {
    fast_matches_gpu(small(Kind::Basic, KernelForm::Seed5x5), 3);
}

/// A bigger batch than threads and 32x32 images: the weight gradient's packing and partial
/// sums, and batchnorm over longer channels, against the reference step.
#[test]
fn mnist_shaped_step_matches_reference() {
    let cfg = ModelConfig { batch: 9, ngf: 8, ndf: 8, z_dim: 16, ..small(Kind::Dcgan, KernelForm::Seed5x5) };
    let cfg = ModelConfig { image_size: 32, ..cfg };
    let (mut fast, mut cpu) = (FastGan::new(&cfg), CpuGan::new(&cfg));
    for step in 0..2 {
        let (real, z) = inputs(&cfg, step);
        let got = fast.step(&cfg, &real, &z);
        let want = cpu.step(&cfg, &real, &z);
        close(&format!("32x32 step {step} metrics"), &[got.to_vec()], &[want.to_vec()]);
        close_except(
            &format!("32x32 step {step} G"),
            &fast.g_params,
            &cpu.g_params,
            &biases_before_batchnorm(&cpu.g),
            NOISE,
        );
        close_except(
            &format!("32x32 step {step} D"),
            &fast.d_params,
            &cpu.d_params,
            &biases_before_batchnorm(&cpu.d),
            NOISE,
        );
        close(&format!("32x32 step {step} G running"), &fast.g_running, &cpu.g_running);
    }
}

// ---- checkpoints across backends ----

fn run(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn bits(s: &(NetState, NetState)) -> Vec<Vec<u32>> {
    let net = |n: &NetState| [n.params.clone(), n.adam_m.clone(), n.adam_v.clone(), n.running.clone()].concat();
    net(&s.0).into_iter().chain(net(&s.1)).map(|t| t.iter().map(|x| x.to_bits()).collect()).collect()
}

/// FastGan -> file -> Trainer and Trainer -> file -> FastGan: the state arrives bit for bit, the
/// file the receiver writes back is the same bytes, and both then take the same next step and
/// draw the same eval samples.
fn checkpoints_cross(kind: Kind) {
    let cfg = small(kind, KernelForm::Seed5x5);
    let pairs = run(&[("epoch", "0"), ("sampler", "1 2 3 4")]);

    // CPU -> GPU.
    let mut fast = FastGan::new(&cfg);
    for step in 0..2 {
        let (real, z) = inputs(&cfg, step);
        fast.step(&cfg, &real, &z);
    }
    let bytes = fast.save(&cfg, pairs.clone());
    let mut trainer = Trainer::new(gpu(), &cfg, &gpu().tuning()).unwrap();
    assert_eq!(trainer.load(gpu(), &bytes).unwrap(), pairs);
    assert_eq!(trainer.step, 2);
    assert!(bits(&gpu_state(&trainer)) == bits(&fast_state(&fast, &cfg)), "the GPU holds other values than were saved");
    // (Not the bytes: safetensors writes the metadata map in hash order.)
    let reread = |b: &[u8]| checkpoint::from_bytes(b, &cfg).unwrap();
    assert!(
        reread(&block_on(trainer.save(gpu(), pairs.clone())).unwrap()) == reread(&bytes),
        "the GPU saves it back differently"
    );
    let z = inputs(&cfg, 50).1;
    close("CPU->GPU eval samples", &[fast.sample(&cfg, &z)], &[block_on(trainer.sample(gpu(), &z)).unwrap()]);
    let (real, z) = inputs(&cfg, 2);
    let before = fast.clone();
    trainer.step(gpu(), &real, &z);
    let got = fast.step(&cfg, &real, &z);
    moved("CPU->GPU next step", &before.g_params, &fast.g_params, &fast.g);
    close("CPU->GPU next step metrics", &[got.to_vec()], &[block_on(gpu().read(&trainer.metrics)).unwrap()]);
    states_close("CPU->GPU next step", &cfg, &fast_state(&fast, &cfg), &gpu_state(&trainer));

    // GPU -> CPU, from a fresh trainer with its own history.
    let mut trainer = Trainer::new(gpu(), &cfg, &gpu().tuning()).unwrap();
    for step in 10..13 {
        let (real, z) = inputs(&cfg, step);
        trainer.step(gpu(), &real, &z);
    }
    let bytes = block_on(trainer.save(gpu(), pairs.clone())).unwrap();
    let mut fast = FastGan::new(&cfg);
    assert_eq!(fast.load(&cfg, &bytes).unwrap(), pairs);
    assert_eq!(fast.step, 3);
    assert!(bits(&fast_state(&fast, &cfg)) == bits(&gpu_state(&trainer)), "the CPU holds other values than were saved");
    assert!(reread(&fast.save(&cfg, pairs.clone())) == reread(&bytes), "the CPU saves it back differently");
    let z = inputs(&cfg, 51).1;
    close("GPU->CPU eval samples", &[fast.sample(&cfg, &z)], &[block_on(trainer.sample(gpu(), &z)).unwrap()]);
    let (real, z) = inputs(&cfg, 13);
    trainer.step(gpu(), &real, &z);
    let got = fast.step(&cfg, &real, &z);
    close("GPU->CPU next step metrics", &[got.to_vec()], &[block_on(gpu().read(&trainer.metrics)).unwrap()]);
    states_close("GPU->CPU next step", &cfg, &fast_state(&fast, &cfg), &gpu_state(&trainer));

    // A checkpoint of another architecture is refused and changes nothing.
    let other = ModelConfig { ngf: 8, ..cfg.clone() };
    let kept = bits(&fast_state(&fast, &cfg));
    assert!(fast.load(&cfg, &FastGan::new(&other).save(&other, vec![])).is_err());
    assert!(bits(&fast_state(&fast, &cfg)) == kept, "a refused checkpoint changed the model");
    assert!(checkpoint::read_config(&bytes).is_ok());
}

#[test]
fn dcgan_checkpoints_cross_backends() {
    checkpoints_cross(Kind::Dcgan);
}

#[test]
fn basic_gan_checkpoints_cross_backends() {
    checkpoints_cross(Kind::Basic);
}
