//! Every GPU kernel against the CPU reference, natively (Mesa lavapipe in CI).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::OnceLock;
use webgan::gpu::Gpu;

/// One device for all tests in this binary.
fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = pollster::block_on(Gpu::new()).unwrap_or_else(|e| {
            panic!("these tests need a GPU adapter (install mesa-vulkan-drivers for lavapipe): {e}")
        });
        println!("adapter: {}, {}", gpu.adapter_summary(), gpu.tuning());
        gpu
    })
}

#[test]
fn conv2d_matches_reference() {
    pollster::block_on(common::conv::check_conv2d(gpu()));
}

#[test]
fn conv_transpose2d_matches_reference() {
    pollster::block_on(common::conv::check_conv_transpose2d(gpu()));
}

#[test]
fn conv_run_and_tap_kernels_match_reference() {
    pollster::block_on(common::conv::check_run_and_tap_kernels(gpu()));
}

#[test]
fn linear_matches_reference() {
    pollster::block_on(common::linear::check_linear(gpu()));
}

#[test]
fn batchnorm_matches_reference() {
    pollster::block_on(common::batchnorm::check_batchnorm(gpu()));
}

#[test]
fn activation_matches_reference() {
    pollster::block_on(common::pointwise::check_activation(gpu()));
}

#[test]
fn bce_with_logits_matches_reference() {
    pollster::block_on(common::pointwise::check_bce(gpu()));
}

#[test]
fn adam_matches_reference() {
    pollster::block_on(common::pointwise::check_adam(gpu()));
}

#[test]
fn every_tile_shape_matches_reference() {
    pollster::block_on(common::conv::check_tile_shapes(gpu()));
}
