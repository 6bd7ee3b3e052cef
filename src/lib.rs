//! webgan: a DCGAN that trains in the browser on WebGPU.
//!
//! - [`shape`]: layer geometry (NCHW, PyTorch semantics) shared by everything below.
//! - [`gpu`]: device, buffers, readback, the kernel cache.
//! - [`ops`]: one module per WGSL file in `shaders/`, encoding its forward and backward dispatches.
//! - [`reference`]: plain-Rust CPU versions of every op, the oracle for the GPU kernels.
//! - [`fast`]: the same training step on the CPU with sgemm and rayon, fast enough to train the
//!   shipped generators natively, and the page's backend where WebGPU is missing or emulated;
//!   checkpoints interchangeable with the GPU trainer's.
//! - [`metrics`]: sample quality (the sliced Wasserstein distance), in plain Rust for the CLI and the page.
//! - [`bench`]: per-op timings and GFLOP/s at the seed's layer shapes, natively and in the browser.

pub mod autotune;
pub mod bench;
pub mod data;
pub mod fast;
pub mod gpu;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod reference;
pub mod rng;
pub mod run;
pub mod shape;
pub mod step;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;
