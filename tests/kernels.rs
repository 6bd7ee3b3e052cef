//! Every GPU kernel against the CPU reference, natively (Mesa lavapipe in CI).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use webgan::gpu::Gpu;

/// A device of its own for each test. On lavapipe a device compiles its pipelines in its one
/// queue thread, at first use, one at a time (two tests sharing a device kept one core busy,
/// measured here): with a device each, tests running side by side compile side by side, and
/// pipelines they have in common come from Mesa's shader cache the second time.
fn gpu() -> Gpu {
    let gpu = pollster::block_on(Gpu::new())
        .unwrap_or_else(|e| panic!("these tests need a GPU adapter (install mesa-vulkan-drivers for lavapipe): {e}"));
    println!("adapter: {}, {}", gpu.adapter_summary(), gpu.tuning());
    gpu
}

#[test]
fn conv2d_matches_reference() {
    pollster::block_on(common::conv::check_conv2d(&gpu()));
}

#[test]
fn conv_transpose2d_matches_reference() {
    pollster::block_on(common::conv::check_conv_transpose2d(&gpu()));
}

#[test]
fn conv_run_and_tap_kernels_match_reference() {
    pollster::block_on(common::conv::check_run_and_tap_kernels(&gpu()));
}

#[test]
fn linear_matches_reference() {
    pollster::block_on(common::linear::check_linear(&gpu()));
}

#[test]
fn batchnorm_matches_reference() {
    pollster::block_on(common::batchnorm::check_batchnorm(&gpu()));
}

#[test]
fn activation_matches_reference() {
    pollster::block_on(common::pointwise::check_activation(&gpu()));
}

#[test]
fn bce_with_logits_matches_reference() {
    pollster::block_on(common::pointwise::check_bce(&gpu()));
}

#[test]
fn adam_matches_reference() {
    pollster::block_on(common::pointwise::check_adam(&gpu()));
}

// Every candidate tile shape, in four parts that can compile their pipelines in parallel (on a
// CPU adapter compiling is nearly all of their time).
#[test]
fn every_tile_shape_matches_reference_part_1() {
    pollster::block_on(common::conv::check_tile_shapes(&gpu(), 0, 4));
}

#[test]
fn every_tile_shape_matches_reference_part_2() {
    pollster::block_on(common::conv::check_tile_shapes(&gpu(), 1, 4));
}

#[test]
fn every_tile_shape_matches_reference_part_3() {
    pollster::block_on(common::conv::check_tile_shapes(&gpu(), 2, 4));
}

#[test]
fn every_tile_shape_matches_reference_part_4() {
    pollster::block_on(common::conv::check_tile_shapes(&gpu(), 3, 4));
}
