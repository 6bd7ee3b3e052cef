//! The IDX format of MNIST, raw or gzipped, and MNIST as a pool of padded images.
//!
//! An IDX file is a big-endian header, then the data:
//! `00 00 <type> <ndims>`, one u32 per dimension, then the values row-major. MNIST uses type
//! 0x08 (u8): images are `0x00000803 count rows cols` + pixels (0 = background, 255 = ink),
//! labels are `0x00000801 count` + one byte per label.

use super::{DataError, IdxKind, ImagePool};
use std::borrow::Cow;
use std::io::Read;

/// Magic number of an IDX file of u8 values with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 values with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The images of an IDX file: `count` images of `rows x cols` u8 pixels, one after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Image `i`, row-major.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Parses an IDX image file (magic 0x00000803), raw or gzipped.
pub fn read_idx_images(bytes: &[u8]) -> Result<IdxImages, DataError> {
    let bytes = gunzip_if_gzipped(bytes)?;
    let dims = parse(&bytes, IdxKind::Images, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(DataError::BadIdxDims(format!("images of {rows}x{cols} pixels")));
    }
    Ok(IdxImages { count, rows, cols, pixels: strip_header(bytes, 16) })
}

/// Parses an IDX label file (magic 0x00000801), raw or gzipped: one byte per label.
pub fn read_idx_labels(bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let bytes = gunzip_if_gzipped(bytes)?;
    parse(&bytes, IdxKind::Labels, 1)?;
    Ok(strip_header(bytes, 8))
}

/// MNIST as a grey pool of `size x size` images: each `rows x cols` digit centred and
/// zero-padded (MNIST's background is 0), e.g. 28x28 -> 32x32 with 2 pixels on each side, the
/// seed's layout. An odd margin puts the extra pixel on the bottom/right.
pub fn mnist_pool(images: &IdxImages, size: usize) -> Result<ImagePool, DataError> {
    let (rows, cols) = (images.rows, images.cols);
    if size < rows || size < cols {
        return Err(DataError::TooSmall { size, rows, cols });
    }
    let (top, left) = ((size - rows) / 2, (size - cols) / 2);
    let mut pool = ImagePool::new(size, 1);
    pool.reserve(images.count);
    let mut padded = vec![0u8; size * size];
    for i in 0..images.count {
        for (r, row) in images.image(i).chunks_exact(cols).enumerate() {
            let start = (top + r) * size + left;
            padded[start..start + cols].copy_from_slice(row);
        }
        pool.push(&padded);
    }
    Ok(pool)
}

/// Reads an IDX image file from disk and pads it to `size` (see [`mnist_pool`]); errors name
/// the file.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_mnist(path: &std::path::Path, size: usize) -> Result<ImagePool, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    let name = path.display().to_string();
    let images = read_idx_images(&bytes).map_err(|e| e.in_file(name.clone()))?;
    mnist_pool(&images, size).map_err(|e| e.in_file(name))
}

/// Decompresses gzip (magic 1f 8b), or passes the bytes through.
fn gunzip_if_gzipped(bytes: &[u8]) -> Result<Cow<'_, [u8]>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(Cow::Borrowed(bytes));
    }
    // The gzip trailer stores the uncompressed size mod 2^32: a good capacity hint. Capped,
    // so that a corrupt trailer cannot ask for gigabytes up front.
    let hint = bytes
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes(bytes[at..].try_into().unwrap()) as usize)
        .unwrap_or(0)
        .min(256 << 20);
    let mut out = Vec::with_capacity(hint);
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).map_err(DataError::Gzip)?;
    Ok(Cow::Owned(out))
}

/// The data after the header, without a second copy of a decompressed file (MNIST's training
/// images are 47 MB, which counts in a browser tab).
fn strip_header(bytes: Cow<'_, [u8]>, header: usize) -> Vec<u8> {
    match bytes {
        Cow::Borrowed(b) => b[header..].to_vec(),
        Cow::Owned(mut v) => {
            v.drain(..header);
            v
        }
    }
}

/// Checks the magic, the dimensions and the length of an IDX file of u8 values with `ndims`
/// dimensions; returns the dimensions.
fn parse(bytes: &[u8], kind: IdxKind, ndims: usize) -> Result<Vec<usize>, DataError> {
    let magic = match kind {
        IdxKind::Images => IMAGES_MAGIC,
        IdxKind::Labels => LABELS_MAGIC,
    };
    let header = 4 + 4 * ndims;
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    if bytes.len() < 4 && magic.to_be_bytes().starts_with(bytes) {
        return Err(DataError::IdxLength { expected: header as u64, found: bytes.len() as u64 });
    }
    let mut first = [0u8; 4];
    first[..bytes.len().min(4)].copy_from_slice(&bytes[..bytes.len().min(4)]);
    let found = u32::from_be_bytes(first);
    if found != magic {
        return Err(DataError::NotIdx { expected: kind, magic: found });
    }
    if bytes.len() < header {
        return Err(DataError::IdxLength { expected: header as u64, found: bytes.len() as u64 });
    }
    let dims: Vec<usize> = (0..ndims).map(|d| be(4 + 4 * d) as usize).collect();
    // In u64 and checked: a corrupt header must not overflow (usize is 32 bits on wasm32).
    let values = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let Some(expected) = values.and_then(|v| v.checked_add(header as u64)) else {
        return Err(DataError::BadIdxDims(format!("dimensions {dims:?} overflow")));
    };
    if bytes.len() as u64 != expected {
        return Err(DataError::IdxLength { expected, found: bytes.len() as u64 });
    }
    Ok(dims)
}
