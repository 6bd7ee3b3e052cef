//! Sample-quality metrics the project computes itself, in plain Rust, so the native CLI and the
//! page (wasm32) score a generator the same way and need nothing outside the crate.
//!
//! - [`swd`]: the sliced Wasserstein distance of Karras et al. 2018 between real and generated
//!   images, per Laplacian pyramid level.
//! - [`pyramid`]: the Laplacian pyramid it takes its patches from.
//! - [`digits`]: generated digits as the project's MNIST classifier reads them: the confident
//!   share, the class histogram, classes present and its entropy (mode coverage).

pub mod digits;
pub mod pyramid;
pub mod swd;

pub use digits::{digit_report, DigitReport};
pub use swd::{swd, Images, SwdConfig, SwdReport};
