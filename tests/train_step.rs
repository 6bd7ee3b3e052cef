//! Whole GAN training steps on the GPU against the same steps on the CPU reference: same initial
//! weights, same real batch, same z; after each step every parameter of G and D, the batchnorm
//! running statistics and the six metrics agree.
//!
//! Tolerance: |gpu - cpu| <= 2e-5 + 1e-3 |cpu|. Adam's first steps move a weight by about
//! lr * g / (|g| + eps), which amplifies the last bits of gradients that are zero in exact
//! arithmetic (a conv bias before a batchnorm has gradient exactly 0, computed as +-1e-9): with
//! eps = 1e-8 such a bias moves by +-lr depending on rounding. These tests therefore use
//! eps = 1e-3, which keeps that noise below 1e-8 while real gradients (1e-4 and up) still move
//! weights by up to lr = 1e-2: a wrong gradient anywhere shows up as a mismatch of ~1e-3.
//! Even so, the bias of a conv that feeds a batchnorm has gradient 0 in exact arithmetic (the
//! batchnorm subtracts it again), so on both sides it moves by rounding noise alone: those
//! tensors are checked for staying near 0 on both sides, not for equal noise.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::steps::{biases_before_batchnorm, close, close_except, small};
use webgan::gpu::{Gpu, Tuning};
use webgan::model::{KernelForm, Kind, ModelConfig};
use webgan::rng::Rng;
use webgan::train::{CpuGan, Trainer};

/// How far a bias before batchnorm may drift in these few steps (a real gradient moves a weight
/// by about lr = 1e-2 per step).
const NOISE: f32 = 1e-4;

fn steps_match(cfg: ModelConfig, steps: usize) {
    steps_match_retiled(cfg, steps, None);
}

/// `steps_match`, with the trainer rebuilt for other tiles (`Trainer::retiled`) before step
/// `retile_at`.
fn steps_match_retiled(cfg: ModelConfig, steps: usize, retile_at: Option<usize>) {
    let gpu = pollster::block_on(Gpu::new()).expect("a GPU adapter (lavapipe in CI)");
    let mut trainer = Trainer::new(&gpu, &cfg, &gpu.tuning()).unwrap();
    let mut cpu = CpuGan::new(&cfg);
    let mut rng = Rng::new(7);
    println!("{cfg}");
    for step in 0..steps {
        // Real images: smooth blobs, so D has something to tell apart from G's noise.
        let real: Vec<u8> = (0..cfg.batch * cfg.image_len()).map(|i| ((i * 37 + step * 11) % 256) as u8).collect();
        let z: Vec<f32> = (0..cfg.batch * cfg.z_dim).map(|_| rng.normal()).collect();
        if retile_at == Some(step) {
            let tiles =
                Tuning::candidates(&gpu.info).into_iter().find(|t| *t != trainer.tiles.direct).expect("other tiles");
            let other = Tuning::uniform(tiles, trainer.tiles.reduce_wg);
            trainer = trainer.retiled(&gpu, &other).unwrap();
            assert_eq!((trainer.tiles, trainer.step as usize), (other, step), "the retiled trainer");
        }
        trainer.step(&gpu, &real, &z);
        let want = cpu.step(&cfg, &real, &z);
        let got = pollster::block_on(gpu.read(&trainer.metrics)).unwrap();
        close(&format!("step {step} metrics"), &[got], &[want.to_vec()]);
        let g_params = pollster::block_on(trainer.g.params.read(&gpu)).unwrap();
        let d_params = pollster::block_on(trainer.d.params.read(&gpu)).unwrap();
        close_except(
            &format!("step {step} G params"),
            &g_params,
            &cpu.g_params,
            &biases_before_batchnorm(&cpu.g),
            NOISE,
        );
        close_except(
            &format!("step {step} D params"),
            &d_params,
            &cpu.d_params,
            &biases_before_batchnorm(&cpu.d),
            NOISE,
        );
        close(
            &format!("step {step} G running"),
            &pollster::block_on(trainer.g.running.read(&gpu)).unwrap(),
            &cpu.g_running,
        );
        close(
            &format!("step {step} D running"),
            &pollster::block_on(trainer.d.running.read(&gpu)).unwrap(),
            &cpu.d_running,
        );
    }
}

/// What the page does after a tuning: the trainer rebuilt with other tiles between two steps
/// goes on as if nothing had happened (its whole state came across, its step count too).
#[test]
fn a_retiled_trainer_goes_on_as_the_reference() {
    steps_match_retiled(small(Kind::Dcgan, KernelForm::K4S2P1), 3, Some(1));
}

#[test]
fn dcgan_steps_match_reference() {
    steps_match(small(Kind::Dcgan, KernelForm::Seed5x5), 3);
}

#[test]
fn dcgan_4x4_kernels_steps_match_reference() {
    steps_match(small(Kind::Dcgan, KernelForm::K4S2P1), 2);
}

#[test]
fn basic_gan_steps_match_reference() {
    steps_match(small(Kind::Basic, KernelForm::Seed5x5), 3);
}
