//! Image datasets: files -> u8 image pool -> GPU batch.
//!
//! Every dataset ends up as an [`ImagePool`]: square images of one size and channel count
//! (1 = grey, 3 = RGB), stored one after another as CHW planes of u8. A [`Sampler`] draws
//! batches from the pool in a seeded shuffled order (without replacement within an epoch) and
//! writes them NCHW u8, ready to upload; the conversion to f32 in [-1, 1] happens on the GPU,
//! so a batch costs a quarter of the bytes it would as f32.
//!
//! - [`idx`]: the IDX format of MNIST (raw or gzipped), and MNIST padded to a power of two.
//! - [`folder`] (native only): a folder of PNG/JPEG files, walked recursively, each image
//!   centre-cropped to a square and resized. In the browser the page decodes images itself and
//!   hands the pixels to [`ImagePool::push_rgba`].
//! - [`pool`]: the image pool, with an optional memory budget.
//! - [`sampler`]: shuffled batches whose whole position is a few integers ([`SamplerState`]),
//!   so a checkpoint resumes the exact batch sequence.

pub mod idx;
pub mod pool;
pub mod sampler;

#[cfg(not(target_arch = "wasm32"))]
pub mod folder;

#[cfg(not(target_arch = "wasm32"))]
pub use folder::{load_folder, load_folder_cropped, preprocess, Crop, FolderReport};
pub use idx::{mnist_pool, read_idx_images, read_idx_labels, IdxImages};
pub use pool::ImagePool;
pub use sampler::{Sampler, SamplerState};

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while reading a dataset. The messages name the file and say
/// what was expected, so they can be shown to the user as they are.
#[derive(Debug)]
pub enum DataError {
    /// A file or directory could not be read.
    Io { path: PathBuf, source: std::io::Error },
    /// The bytes start like gzip but do not decompress.
    Gzip(std::io::Error),
    /// The IDX magic number is not the one of the expected kind of file.
    NotIdx { expected: IdxKind, magic: u32 },
    /// The IDX header announces dimensions that make no sense (zero, or overflowing).
    BadIdxDims(String),
    /// The IDX data is shorter or longer than its header says.
    IdxLength { expected: u64, found: u64 },
    /// Images cannot be padded to a smaller size than they already have.
    TooSmall { size: usize, rows: usize, cols: usize },
    /// A folder held no image that could be decoded.
    #[cfg(not(target_arch = "wasm32"))]
    NoImages { root: PathBuf, report: Box<FolderReport> },
    /// A sampler state (from a checkpoint) that does not fit the dataset or is inconsistent.
    BadSamplerState(String),
    /// Another error, in a named file.
    InFile { file: String, source: Box<DataError> },
}

/// Which IDX file was expected (for [`DataError::NotIdx`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxKind {
    Images,
    Labels,
}

impl DataError {
    /// Names the file an error came from: `train-images-idx3-ubyte.gz: not an IDX image file ...`.
    pub fn in_file(self, file: impl Into<String>) -> DataError {
        DataError::InFile { file: file.into(), source: Box::new(self) }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DataError::Gzip(e) => write!(f, "looks gzipped but does not decompress: {e}"),
            DataError::NotIdx { expected, magic } => {
                let (what, want) = match expected {
                    IdxKind::Images => ("image", idx::IMAGES_MAGIC),
                    IdxKind::Labels => ("label", idx::LABELS_MAGIC),
                };
                write!(f, "not an IDX {what} file (magic 0x{magic:08x}, expected 0x{want:08x})")?;
                match *magic {
                    idx::IMAGES_MAGIC => write!(f, "; it is an IDX image file"),
                    idx::LABELS_MAGIC => write!(f, "; it is an IDX label file"),
                    _ => Ok(()),
                }
            }
            DataError::BadIdxDims(msg) => write!(f, "bad IDX header: {msg}"),
            DataError::IdxLength { expected, found } if found < expected => write!(
                f,
                "truncated IDX file: {found} bytes where {expected} are needed (download it \
                 again)"
            ),
            DataError::IdxLength { expected, found } => {
                write!(f, "IDX file has {} bytes after the {expected} its header announces", found - expected)
            }
            DataError::TooSmall { size, rows, cols } => write!(
                f,
                "cannot fit {rows}x{cols} images into {size}x{size}: the size must be at least \
                 {}",
                rows.max(cols)
            ),
            #[cfg(not(target_arch = "wasm32"))]
            DataError::NoImages { root, report } => {
                write!(
                    f,
                    "{}: no usable images (PNG or JPEG, recognised by content, in any \
                     subfolder; hidden files and folders are skipped); {report}",
                    root.display(),
                )?;
                const SHOWN: usize = 5;
                for (path, reason) in report.skipped.iter().take(SHOWN) {
                    write!(f, "\n  {}: {reason}", path.display())?;
                }
                if report.skipped.len() > SHOWN {
                    write!(f, "\n  ... and {} more", thousands(report.skipped.len() - SHOWN))?;
                }
                Ok(())
            }
            DataError::BadSamplerState(msg) => write!(f, "bad sampler state: {msg}"),
            DataError::InFile { file, source } => write!(f, "{file}: {source}"),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } | DataError::Gzip(source) => Some(source),
            DataError::InFile { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// 202599 -> "202,599": counts in messages the user reads.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
