//! A folder of images as an [`ImagePool`] (native only; the page decodes images in the browser
//! and hands them to [`ImagePool::push_rgba`]).
//!
//! The folder is walked recursively in sorted order, so the pool's order is the same on every
//! run. Hidden files and folders (names starting with '.': `.DS_Store`, `.git/`, `._x.jpg`) are
//! skipped and counted, a hidden folder as one entry, without looking inside. Every other file
//! is recognised by its content, not its extension: PNG and JPEG are decoded (EXIF rotation
//! applied), anything else is skipped with a reason in the [`FolderReport`]. Each
//! image is converted to grey (luma) or RGB (alpha dropped, 16-bit scaled to 8), centre-cropped
//! to a square on its shorter side and resized to `size x size`: Triangle (area-weighted)
//! filtering when shrinking, Catmull-Rom when enlarging. Files are decoded on all cores, in
//! chunks whose results are stored in order, so threads do not change the result.
//!
//! Memory: the pool keeps at most [`FOLDER_BUDGET_BYTES`] of pixels (and `max_images` images);
//! files past that are counted as not read, and the subset is spread over the whole folder.

use super::{thousands, DataError, ImagePool};
use crate::rng::Rng;
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// What [`load_folder`] found. `loaded + skipped.len() + truncated_by_limit == total_files`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderReport {
    /// Images in the pool.
    pub loaded: usize,
    /// Files that are not usable images, sorted by path, each with its reason
    /// (`"<kind>: <detail>"`, kind one of: not an image, unsupported format, corrupt image,
    /// too large, unreadable, hidden).
    pub skipped: Vec<(PathBuf, String)>,
    /// Files seen, plus hidden subfolders and subfolders that could not be listed.
    pub total_files: usize,
    /// Files not read because `max_images` images, or the memory budget's worth, were loaded.
    pub truncated_by_limit: usize,
    /// True when the memory budget ([`FOLDER_BUDGET_BYTES`]), not `max_images`, set the limit.
    pub budget_reached: bool,
}

/// Largest decoded image (before the resize) a file may hold: 512 MB, an 8000x8000 RGBA image
/// of 16-bit samples, or 16,000 x 11,000 RGB.
pub const MAX_DECODED_BYTES: u64 = 512 << 20;

/// Most bytes of pixels a folder's pool keeps (4 GiB: 200,000 RGB images of 64x64 take 2.3 GiB).
pub const FOLDER_BUDGET_BYTES: usize = 4 << 30;

const NOT_IMAGE: &str = "not an image";
const UNSUPPORTED: &str = "unsupported format";
const CORRUPT: &str = "corrupt image";
const TOO_LARGE: &str = "too large";
const UNREADABLE: &str = "unreadable";
const HIDDEN: &str = "hidden";

impl fmt::Display for FolderReport {
    /// `loaded 4,800 images; skipped 3: 2 not images, 1 corrupt`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |n: usize| if n == 1 { "" } else { "s" };
        write!(f, "loaded {} image{}", thousands(self.loaded), s(self.loaded))?;
        if !self.skipped.is_empty() {
            write!(f, "; skipped {}:", thousands(self.skipped.len()))?;
            let kinds = [
                (NOT_IMAGE, "not an image", "not images"),
                (UNSUPPORTED, "unsupported format", "unsupported format"),
                (CORRUPT, "corrupt", "corrupt"),
                (TOO_LARGE, "too large", "too large"),
                (UNREADABLE, "unreadable", "unreadable"),
                (HIDDEN, "hidden", "hidden"),
            ];
            let mut first = true;
            for (kind, one, many) in kinds {
                let n = self.skipped.iter().filter(|(_, r)| r.starts_with(kind)).count();
                if n > 0 {
                    let label = if n == 1 { one } else { many };
                    write!(f, "{} {} {label}", if first { "" } else { "," }, thousands(n))?;
                    first = false;
                }
            }
        }
        if self.truncated_by_limit > 0 {
            let why = if self.budget_reached {
                format!("memory budget of {} GiB reached", FOLDER_BUDGET_BYTES >> 30)
            } else {
                "image limit reached".to_string()
            };
            write!(f, "; {} file{} not read ({why})", thousands(self.truncated_by_limit), s(self.truncated_by_limit))?;
        }
        Ok(())
    }
}

/// Loads every PNG/JPEG under `root` into a pool of `size x size` images with `channels`
/// (1 or 3; panics otherwise), at most `max_images` of them.
///
/// When `max_images` cuts the folder short, files are tried in a fixed pseudo-random order
/// instead of the sorted one, so the subset spans the whole folder (all classes of a folder of
/// class subfolders, not the first few) and is still the same on every run.
///
/// Errors: `root` cannot be listed, or it holds no usable image ([`DataError::NoImages`], with
/// the report). Single bad files are never errors, only entries in [`FolderReport::skipped`].
pub fn load_folder(
    root: &Path,
    size: usize,
    channels: usize,
    max_images: Option<usize>,
) -> Result<(ImagePool, FolderReport), DataError> {
    load_folder_cropped(root, size, channels, max_images, None)
}

/// A pixel box cut from every image before the square centre crop and resize (e.g. the face
/// region of aligned CelebA), clipped to the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// [`load_folder`], each image first cut to `crop` when one is given.
pub fn load_folder_cropped(
    root: &Path,
    size: usize,
    channels: usize,
    max_images: Option<usize>,
    crop: Option<Crop>,
) -> Result<(ImagePool, FolderReport), DataError> {
    let mut pool = ImagePool::new(size, channels);
    let mut report = FolderReport::default();
    let mut files = Vec::new();
    let mut visited = HashSet::new();
    if let Ok(canonical) = root.canonicalize() {
        visited.insert(canonical);
    }
    let entries = list(root).map_err(|source| DataError::Io { path: root.to_owned(), source })?;
    walk(entries, &mut files, &mut report.skipped, &mut visited);
    report.total_files = files.len() + report.skipped.len();

    let by_budget = FOLDER_BUDGET_BYTES / pool.image_len();
    let limit = max_images.unwrap_or(usize::MAX).min(by_budget);
    if limit < files.len() {
        Rng::new(0x5eed_f01d).shuffle(&mut files);
    }
    pool.reserve(limit.min(files.len()));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16);
    let mut next = 0;
    while next < files.len() && pool.len() < limit {
        // Never decode more files than images still wanted, so truncated_by_limit is exact.
        let chunk = (limit - pool.len()).min(64 * threads).min(files.len() - next);
        let paths = &files[next..next + chunk];
        for (path, result) in paths.iter().zip(decode_all(paths, size, channels, crop, threads)) {
            match result {
                Ok(chw) => {
                    pool.push(&chw);
                }
                Err(reason) => report.skipped.push((path.clone(), reason)),
            }
        }
        next += chunk;
    }
    report.truncated_by_limit = files.len() - next;
    report.budget_reached = report.truncated_by_limit > 0 && max_images.is_none_or(|m| m > by_budget);
    report.loaded = pool.len();
    report.skipped.sort();
    if pool.is_empty() {
        return Err(DataError::NoImages { root: root.to_owned(), report: Box::new(report) });
    }
    Ok((pool, report))
}

/// Converts one decoded image to the pool's form: grey (luma) or RGB, centre-cropped to a
/// square on its shorter side, resized to `size x size`, CHW u8 (`channels * size * size`
/// bytes). Panics if the image has no pixels or `channels` is not 1 or 3.
pub fn preprocess(img: &DynamicImage, size: usize, channels: usize) -> Vec<u8> {
    assert!(channels == 1 || channels == 3, "channels must be 1 or 3, not {channels}");
    let (w, h) = (img.width(), img.height());
    let side = w.min(h);
    assert!(side > 0, "image of {w}x{h} pixels");
    let square = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    let size32 = size as u32;
    let filter = if side > size32 { FilterType::Triangle } else { FilterType::CatmullRom };
    if channels == 1 {
        let mut grey = square.to_luma8();
        if side != size32 {
            grey = imageops::resize(&grey, size32, size32, filter);
        }
        grey.into_raw()
    } else {
        let mut rgb = square.to_rgb8();
        if side != size32 {
            rgb = imageops::resize(&rgb, size32, size32, filter);
        }
        let plane = size * size;
        let mut chw = vec![0u8; 3 * plane];
        for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
            chw[i] = px[0];
            chw[plane + i] = px[1];
            chw[2 * plane + i] = px[2];
        }
        chw
    }
}

/// A directory's entries sorted by name.
fn list(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    let mut entries = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// Collects the files below `entries` depth-first in sorted order. Links are followed, each
/// directory entered once (`visited` holds canonical paths), so link cycles end.
fn walk(
    entries: Vec<std::fs::DirEntry>,
    files: &mut Vec<PathBuf>,
    skipped: &mut Vec<(PathBuf, String)>,
    visited: &mut HashSet<PathBuf>,
) {
    for entry in entries {
        let path = entry.path();
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            let what = if path.is_dir() { "folder not searched" } else { "file" };
            skipped.push((path, format!("{HIDDEN}: {what} (name starts with '.')")));
            continue;
        }
        // metadata() follows links; a dangling link is unreadable.
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                skipped.push((path, format!("{UNREADABLE}: {e}")));
                continue;
            }
        };
        if meta.is_dir() {
            let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
            if !visited.insert(canonical) {
                continue;
            }
            match list(&path) {
                Ok(sub) => walk(sub, files, skipped, visited),
                Err(e) => skipped.push((path, format!("{UNREADABLE}: cannot list folder: {e}"))),
            }
        } else if meta.is_file() {
            files.push(path);
        } else {
            skipped.push((path, format!("{NOT_IMAGE}: not a regular file")));
        }
    }
}

/// Decodes and preprocesses `paths` on up to `threads` threads; results in the order of `paths`.
fn decode_all(
    paths: &[PathBuf],
    size: usize,
    channels: usize,
    crop: Option<Crop>,
    threads: usize,
) -> Vec<Result<Vec<u8>, String>> {
    let run = |part: &[PathBuf]| -> Vec<Result<Vec<u8>, String>> {
        part.iter().map(|p| decode(p, size, channels, crop)).collect()
    };
    if threads <= 1 || paths.len() < 2 {
        return run(paths);
    }
    let per_thread = paths.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = paths.chunks(per_thread).map(|part| scope.spawn(move || run(part))).collect();
        handles.into_iter().flat_map(|h| h.join().expect("image decoding thread")).collect()
    })
}

/// One file to CHW u8, or the reason it is skipped.
fn decode(path: &Path, size: usize, channels: usize, crop: Option<Crop>) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{UNREADABLE}: {e}"))?;
    if bytes.is_empty() {
        return Err(format!("{NOT_IMAGE}: empty file"));
    }
    let format = image::guess_format(&bytes).map_err(|_| format!("{NOT_IMAGE}: content is not PNG or JPEG"))?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err(format!("{UNSUPPORTED}: {format:?} (only PNG and JPEG are read)"));
    }
    let why = |e: ImageError| {
        // One line: decoder messages may end in a newline or quote raw bytes.
        let text = e.to_string().replace(|c: char| c.is_control(), " ");
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match e {
            ImageError::Limits(_) => format!("{TOO_LARGE}: {text}"),
            ImageError::Unsupported(_) => format!("{UNSUPPORTED}: {text}"),
            _ => format!("{CORRUPT}: {text}"),
        }
    };
    // A decoder that panics on hostile input costs one file, not the whole load.
    std::panic::catch_unwind(|| {
        let mut decoder = ImageReader::with_format(std::io::Cursor::new(&bytes), format).into_decoder().map_err(why)?;
        // The header's size, before allocating for it: a 100,000 x 100,000 header in a 100-byte
        // file must cost one skipped file, not an allocation that aborts the process.
        let ((w, h), decoded) = (decoder.dimensions(), decoder.total_bytes());
        if decoded > MAX_DECODED_BYTES {
            return Err(format!(
                "{TOO_LARGE}: {w}x{h} pixels, {} MB decoded (at most {} MB)",
                decoded >> 20,
                MAX_DECODED_BYTES >> 20
            ));
        }
        let orientation = decoder.orientation().map_err(why)?;
        let mut img = DynamicImage::from_decoder(decoder).map_err(why)?;
        img.apply_orientation(orientation);
        if let Some(c) = crop {
            img = img.crop_imm(c.x, c.y, c.width, c.height); // clipped to the image
        }
        if img.width() == 0 || img.height() == 0 {
            return Err(format!("{CORRUPT}: {}x{} pixels", img.width(), img.height()));
        }
        Ok(preprocess(&img, size, channels))
    })
    .unwrap_or_else(|_| Err(format!("{CORRUPT}: the decoder panicked")))
}
