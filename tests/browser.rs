//! The same GPU-vs-reference checks as tests/kernels.rs, inside headless Chromium on WebGPU
//! (`wasm-pack test --headless --chrome`; flags in webdriver.json). A browser without WebGPU
//! fails every test here: there is no CPU fallback to hide behind.
#![cfg(target_arch = "wasm32")]

mod common;

use wasm_bindgen_test::*;
use webgan::gpu::Gpu;

wasm_bindgen_test_configure!(run_in_browser);

async fn gpu() -> Gpu {
    let gpu = Gpu::new().await.unwrap_or_else(|e| panic!("WebGPU is required for these tests: {e}"));
    common::report(&format!("adapter: {}, {}", gpu.adapter_summary(), gpu.tuning()));
    gpu
}

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
