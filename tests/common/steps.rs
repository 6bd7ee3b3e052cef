//! Whole training steps compared across implementations (tests/train_step.rs: GPU vs reference;
//! tests/fast_cpu.rs: the fast CPU path vs both; tests/browser.rs and tests/threads.rs: the fast
//! CPU path in wasm, on one thread and on wasm threads).
//!
//! Tolerance: |got - want| <= 2e-5 + 1e-3 |want| per element. Adam's eps is 1e-3 in these
//! configs: with PyTorch's 1e-8, a weight whose gradient is rounding noise moves by a full lr in
//! either direction, and no two correct implementations could agree on it.

use webgan::model::{KernelForm, Kind, LayerSpec, ModelConfig, NetSpec};
use webgan::shape::AdamConfig;

/// A tiny model with a large learning rate, so that a step moves every weight visibly.
pub fn small(kind: Kind, kernel: KernelForm) -> ModelConfig {
    ModelConfig {
        kernel,
        adam: AdamConfig { lr: 1e-2, beta1: 0.5, beta2: 0.999, eps: 1e-3 },
        ..ModelConfig::tiny(kind)
    }
}

/// Tensor indices of conv biases (one per channel) whose layer feeds a batchnorm: the batchnorm
/// cancels them, so their gradient is rounding noise and they are only checked for staying near
/// 0. (A linear layer's bias before a batchnorm over 4x4 positions is not cancelled, only its mean is.)
pub fn biases_before_batchnorm(spec: &NetSpec) -> Vec<usize> {
    let params = spec.params();
    (0..params.len())
        .filter(|&t| {
            let layer = params[t].0;
            params[t].1 == "bias"
                && matches!(spec.layers[layer], LayerSpec::Conv { .. } | LayerSpec::ConvTranspose { .. })
                && matches!(spec.layers.get(layer + 1), Some(LayerSpec::BatchNorm { .. }))
        })
        .collect()
}

/// Within the tolerance everywhere but in `noise_only` tensors, which must stay below
/// `noise_bound`. Prints the worst element.
pub fn close_except(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], noise_only: &[usize], noise_bound: f32) {
    assert_eq!(got.len(), want.len(), "{what}: tensor count");
    let mut worst = (0.0f32, String::new());
    for (t, (g, c)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), c.len(), "{what} tensor {t}: length");
        if noise_only.contains(&t) {
            let most = g.iter().chain(c).fold(0f32, |m, v| m.max(v.abs()));
            assert!(most < noise_bound, "{what} tensor {t}: a bias before batchnorm moved to {most:e}");
            continue;
        }
        for (i, (&a, &b)) in g.iter().zip(c).enumerate() {
            let ratio = (a - b).abs() / (2e-5 + 1e-3 * b.abs());
            if ratio.is_nan() || ratio > worst.0 {
                worst = (ratio, format!("{what} tensor {t} [{i}]: got {a:.7e} want {b:.7e}"));
            }
        }
    }
    super::report(&format!("{what}: worst {} ({:.3} of tolerance)", worst.1, worst.0));
    assert!(worst.0 <= 1.0, "MISMATCH {}", worst.1);
}

pub fn close(what: &str, got: &[Vec<f32>], want: &[Vec<f32>]) {
    close_except(what, got, want, &[], 0.0);
}

/// Two whole steps of the fast CPU path against the plain CPU reference, for both kernel forms,
/// with the tolerance above (the browser tests run it in wasm, threaded or not).
pub fn check_fast_steps_against_reference() {
    use webgan::fast::FastGan;
    use webgan::train::CpuGan;

    for kernel in [KernelForm::Seed5x5, KernelForm::K4S2P1] {
        let cfg = small(Kind::Dcgan, kernel);
        let (mut fast, mut cpu) = (FastGan::new(&cfg), CpuGan::new(&cfg));
        let mut rng = super::Rng::new(11);
        for step in 0..2 {
            let img = cfg.image_len();
            let real: Vec<u8> =
                (0..cfg.batch * img).map(|i| ((i * 37 + i / img * 53 + step * 11) % 256) as u8).collect();
            let z = rng.normals(cfg.batch * cfg.z_dim, 1.0);
            let before = fast.g_params.clone();
            let got = fast.step(&cfg, &real, &z);
            let want = cpu.step(&cfg, &real, &z);
            let what = format!("{kernel:?} step {step}");
            close(&format!("{what} metrics"), &[got.to_vec()], &[want.to_vec()]);
            let (g_noise, d_noise) = (biases_before_batchnorm(&cpu.g), biases_before_batchnorm(&cpu.d));
            close_except(&format!("{what} G params"), &fast.g_params, &cpu.g_params, &g_noise, 1e-3);
            close_except(&format!("{what} D params"), &fast.d_params, &cpu.d_params, &d_noise, 1e-3);
            close(&format!("{what} G running"), &fast.g_running, &cpu.g_running);
            assert!(before != fast.g_params, "{what}: the step did not move G");
        }
    }
}
