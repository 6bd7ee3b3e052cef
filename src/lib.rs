//! webgan: a DCGAN that trains in the browser on WebGPU.
//!
//! - [`shape`]: layer geometry (NCHW, PyTorch semantics) shared by everything below.
//! - [`gpu`]: device, buffers, readback, the kernel cache.
//! - [`ops`]: one module per WGSL file in `shaders/`, encoding its forward and backward dispatches.
//! - [`reference`]: plain-Rust CPU versions of every op, the oracle for the GPU kernels.
//! - [`bench`]: per-op timings and GFLOP/s at the seed's layer shapes, natively and in the browser.

pub mod bench;
pub mod data;
pub mod gpu;
pub mod model;
pub mod ops;
pub mod reference;
pub mod rng;
pub mod shape;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;
