//! The same GPU-vs-reference checks as tests/kernels.rs, inside headless Chromium on WebGPU
//! (`wasm-pack test --headless --chrome`; flags in webdriver.json). A browser without WebGPU
//! fails every test here: there is no CPU fallback to hide behind.
#![cfg(target_arch = "wasm32")]

mod common;

use common::browser_gpu as gpu;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn conv2d_matches_reference() {
    common::conv::check_conv2d(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn conv_transpose2d_matches_reference() {
    common::conv::check_conv_transpose2d(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn conv_run_and_tap_kernels_match_reference() {
    common::conv::check_run_and_tap_kernels(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn linear_matches_reference() {
    common::linear::check_linear(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn batchnorm_matches_reference() {
    common::batchnorm::check_batchnorm(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn activation_matches_reference() {
    common::pointwise::check_activation(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn bce_with_logits_matches_reference() {
    common::pointwise::check_bce(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn adam_matches_reference() {
    common::pointwise::check_adam(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn every_tile_shape_matches_reference() {
    common::conv::check_tile_shapes(&gpu().await, 0, 1).await;
}

/// The fast CPU path compiled to wasm (gemm's simd128 kernels, rayon on one thread): what the
/// page trains with where WebGPU is missing or emulated. Two whole steps against the plain CPU
/// reference, with the tolerance of the native step tests (tests/fast_cpu.rs).
#[wasm_bindgen_test]
fn fast_cpu_steps_match_reference_in_wasm() {
    use common::steps::{biases_before_batchnorm, close, close_except, small};
    use webgan::fast::FastGan;
    use webgan::model::{KernelForm, Kind};
    use webgan::train::CpuGan;

    for kernel in [KernelForm::Seed5x5, KernelForm::K4S2P1] {
        let cfg = small(Kind::Dcgan, kernel);
        let (mut fast, mut cpu) = (FastGan::new(&cfg), CpuGan::new(&cfg));
        let mut rng = common::Rng::new(11);
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
