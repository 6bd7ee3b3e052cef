//! Sample-quality metrics the project computes itself, in plain Rust, so the native CLI and the
//! page (wasm32) score a generator the same way and need nothing outside the crate.
//!
//! - [`swd`]: the sliced Wasserstein distance of Karras et al. 2018 between real and generated
//!   images, per Laplacian pyramid level.
//! - [`pyramid`]: the Laplacian pyramid it takes its patches from.

pub mod pyramid;
pub mod swd;

pub use swd::{swd, Images, SwdConfig, SwdReport};
