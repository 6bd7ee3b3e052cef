//! Plain-Rust CPU reference for every op, forward and backward.
//!
//! Written to be read, not to be fast: direct nested loops over NCHW tensors (see `shape`),
//! one shape legend per function. Everything is generic over `num_traits::Float` so the same
//! code is the f32 oracle for the GPU tests (and the no-WebGPU fallback for sampling) and runs
//! in f64 for the finite-difference checks in `tests/reference_grads.rs`.
//!
//! Conventions: every function returns fresh vectors; a backward pass *overwrites* (returns)
//! its gradients, it never accumulates into existing ones. Hyperparameters arrive as f32 in the
//! `shape` structs and are converted to `F` on entry.

use num_traits::Float;

pub mod activation;
pub mod adam;
pub mod batchnorm;
pub mod conv;
pub mod linear;
pub mod loss;
pub mod xent;

pub use activation::*;
pub use adam::*;
pub use batchnorm::*;
pub use conv::*;
pub use linear::*;
pub use loss::*;
pub use xent::*;

/// Widens an f32 tensor (e.g. one read back from the GPU) to f64.
pub fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

/// Converts a tensor of any float type to f32 (NaN if a value cannot be represented).
pub fn to_f32<F: Float>(x: &[F]) -> Vec<f32> {
    x.iter().map(|v| v.to_f32().unwrap_or(f32::NAN)).collect()
}

/// A hyperparameter stored as f32 in the shape structs, as `F`.
fn cast<F: Float>(v: f32) -> F {
    F::from(v).expect("f32 hyperparameter fits in F")
}

/// A count (batch size, number of elements) as `F`, for means.
fn count<F: Float>(n: usize) -> F {
    F::from(n).expect("count fits in F")
}
