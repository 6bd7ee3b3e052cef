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
/// page trains with where WebGPU is missing or emulated. tests/threads.rs runs the same check on
/// wasm threads.
#[wasm_bindgen_test]
fn fast_cpu_steps_match_reference_in_wasm() {
    common::steps::check_fast_steps_against_reference();
}
