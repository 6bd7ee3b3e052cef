//! The kernel checks in Firefox's own WebGPU implementation (`dom.webgpu.enabled`, prefs in
//! webdriver.json; on lavapipe here): every op, forward and backward, against the reference, on
//! all of tests/browser.rs's shapes with the adapter's tiles. `./build.sh test` runs it with
//! `wasm-pack test --firefox`. The every-tile-shape and run/tap kernel checks stay Chromium's
//! and lavapipe's: they compile a hundred-odd more pipelines, each slow to compile here.
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
async fn linear_matches_reference() {
    common::linear::check_linear(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn batchnorm_matches_reference() {
    common::batchnorm::check_batchnorm(&gpu().await).await;
}

#[wasm_bindgen_test]
async fn activation_bce_and_adam_match_reference() {
    let gpu = gpu().await;
    common::pointwise::check_activation(&gpu).await;
    common::pointwise::check_bce(&gpu).await;
    common::pointwise::check_adam(&gpu).await;
}
