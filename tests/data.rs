//! The datasets: IDX parsing (built here and the real MNIST files), folders of images, the
//! preprocessing, and the sampler's epochs and exact resume.
#![cfg(not(target_arch = "wasm32"))]

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};
use std::io::Write;
use std::path::PathBuf;
use webgan::data::{
    load_folder, mnist_pool, preprocess, read_idx_images, read_idx_labels, DataError, ImagePool, Sampler,
};

// ---------------------------------------------------------------- IDX

fn idx_images(count: u32, rows: u32, cols: u32) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..count * rows * cols).map(|i| (i * 7 % 256) as u8).collect();
    let mut bytes = vec![0, 0, 8, 3];
    for d in [count, rows, cols] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(&pixels);
    (bytes, pixels)
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 1];
    bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn idx_round_trips_raw_and_gzipped() {
    let (bytes, pixels) = idx_images(3, 5, 4);
    for input in [bytes.clone(), gzip(&bytes)] {
        let img = read_idx_images(&input).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (3, 5, 4));
        assert_eq!(img.pixels, pixels);
        assert_eq!(img.image(2), &pixels[40..60]);
    }
    let labels = [3, 1, 4, 1, 5, 9, 2, 6];
    assert_eq!(read_idx_labels(&idx_labels(&labels)).unwrap(), labels);
    assert_eq!(read_idx_labels(&gzip(&idx_labels(&labels))).unwrap(), labels);
    // Zero images is a valid (empty) file.
    assert_eq!(read_idx_images(&idx_images(0, 28, 28).0).unwrap().count, 0);
}

#[test]
fn bad_idx_files_give_clear_errors() {
    let (images, _) = idx_images(3, 5, 4);
    let labels = idx_labels(&[1, 2, 3]);

    // Swapped files: the message says what each one is.
    let e = read_idx_images(&labels).unwrap_err();
    assert!(matches!(e, DataError::NotIdx { magic: 0x801, .. }), "{e:?}");
    let msg = e.in_file("train-images-idx3-ubyte.gz").to_string();
    assert!(msg.starts_with("train-images-idx3-ubyte.gz: not an IDX image file (magic 0x00000801"), "{msg}");
    assert!(msg.contains("label file"), "{msg}");
    let e = read_idx_labels(&images).unwrap_err();
    assert!(e.to_string().contains("not an IDX label file (magic 0x00000803"), "{e}");

    // Something else entirely.
    let e = read_idx_images(b"<!DOCTYPE html><html>404</html>").unwrap_err();
    assert!(matches!(e, DataError::NotIdx { .. }), "{e:?}");

    // Truncated: inside the data, inside the header, empty; raw and gzipped.
    for cut in [images.len() - 1, 17, 10, 0] {
        let e = read_idx_images(&images[..cut]).unwrap_err();
        assert!(matches!(e, DataError::IdxLength { .. }), "cut at {cut}: {e:?}");
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = read_idx_images(&gzip(&images[..cut])).unwrap_err();
        assert!(matches!(e, DataError::IdxLength { .. }), "gzipped, cut at {cut}: {e:?}");
    }
    let e = read_idx_labels(&labels[..labels.len() - 1]).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");

    // A gzip stream cut short (a broken download) fails in the decompressor.
    let gz = gzip(&images);
    let e = read_idx_images(&gz[..gz.len() / 2]).unwrap_err();
    assert!(matches!(e, DataError::Gzip(_)), "{e:?}");
    assert!(e.to_string().contains("gzip"), "{e}");

    // Trailing bytes, zero-sized images, overflowing dimensions.
    let mut long = images.clone();
    long.push(0);
    let e = read_idx_images(&long).unwrap_err();
    assert!(e.to_string().contains("1 bytes after"), "{e}");
    let e = read_idx_images(&idx_images(3, 0, 4).0).unwrap_err();
    assert!(matches!(e, DataError::BadIdxDims(_)), "{e:?}");
    let mut huge = vec![0, 0, 8, 3];
    huge.extend_from_slice(&[0xff; 12]);
    let e = read_idx_images(&huge).unwrap_err();
    assert!(matches!(e, DataError::BadIdxDims(_)), "{e:?}");

    // Padding to less than the image size.
    let img = read_idx_images(&images).unwrap();
    let e = mnist_pool(&img, 4).unwrap_err();
    assert!(e.to_string().contains("at least 5"), "{e}");
}

#[test]
fn padding_centres_with_the_odd_pixel_bottom_right() {
    let (bytes, _) = idx_images(2, 2, 3);
    let img = read_idx_images(&bytes).unwrap();
    let pool = mnist_pool(&img, 5).unwrap();
    assert_eq!((pool.len(), pool.size, pool.channels), (2, 5, 1));
    let p = img.image(1);
    #[rustfmt::skip]
    let want = [
        0, 0,    0,    0,    0,
        0, p[0], p[1], p[2], 0,
        0, p[3], p[4], p[5], 0,
        0, 0,    0,    0,    0,
        0, 0,    0,    0,    0,
    ];
    assert_eq!(pool.image(1), &want);
}

const MNIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/mnist/");

fn mnist_file(name: &str) -> Vec<u8> {
    let path = format!("{MNIST}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn real_mnist_loads_and_pads_to_32() {
    for (images, labels, n) in [
        ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
        ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000),
    ] {
        let img = read_idx_images(&mnist_file(images)).unwrap();
        assert_eq!((img.count, img.rows, img.cols, img.pixels.len()), (n, 28, 28, n * 784));
        let lab = read_idx_labels(&mnist_file(labels)).unwrap();
        assert_eq!(lab.len(), n);
        let mut per_digit = [0usize; 10];
        for &l in &lab {
            assert!(l <= 9, "label {l}");
            per_digit[l as usize] += 1;
        }
        assert!(per_digit.iter().all(|&c| c > n / 20), "{per_digit:?}");
        // Swapped arguments are caught.
        assert!(read_idx_labels(&mnist_file(images)).is_err());
        assert!(read_idx_images(&mnist_file(labels)).is_err());

        let pool = mnist_pool(&img, 32).unwrap();
        assert_eq!((pool.len(), pool.size, pool.channels, pool.image_len()), (n, 32, 1, 1024));
        for i in 0..n {
            let (src, dst) = (img.image(i), pool.image(i));
            for y in 0..32 {
                for x in 0..32 {
                    let inside = (2..30).contains(&y) && (2..30).contains(&x);
                    let want = if inside { src[(y - 2) * 28 + (x - 2)] } else { 0 };
                    assert_eq!(dst[y * 32 + x], want, "image {i} at ({y}, {x})");
                }
            }
        }
        // Digits are ink on a zero background: some bright pixels in every image.
        assert!((0..n).all(|i| pool.image(i).iter().any(|&v| v > 128)));
    }
}

#[test]
fn pool_budget_refuses_politely() {
    let mut pool = ImagePool::with_capacity_limit(4, 3, 48 * 5 + 47);
    assert_eq!(pool.image_len(), 48);
    let pushed = (0..8u8).take_while(|&i| pool.push(&[i; 48])).count();
    assert_eq!((pushed, pool.len(), pool.is_full()), (5, 5, true));
    assert_eq!(pool.image(4), &[4; 48]);
    assert_eq!(pool.pixels().len(), 5 * 48);
}

// ---------------------------------------------------------------- folders

/// A fresh, empty directory under the system temp dir; removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("webgan-data-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn solid_rgb(w: u32, h: u32, px: [u8; 3]) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_pixel(w, h, Rgb(px)))
}

/// The folder of `folder_counts_are_exact`, with its expected RGB colour per loaded file.
fn write_mixed_folder(dir: &TempDir) -> Vec<(&'static str, [u8; 3])> {
    let grey = DynamicImage::ImageLuma8(ImageBuffer::from_pixel(20, 30, Luma([77])));
    dir.write("a/grey.png", &encode(&grey, ImageFormat::Png));
    dir.write("a/rgb.jpg", &encode(&solid_rgb(40, 24, [200, 40, 90]), ImageFormat::Jpeg));
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(16, 16, Rgba([10, 200, 30, 0])));
    dir.write("b/nested/rgba.png", &encode(&rgba, ImageFormat::Png));
    let deep = DynamicImage::ImageRgb16(ImageBuffer::from_pixel(10, 12, Rgb([65535, 0, 32896])));
    dir.write("b/nested/deep16.png", &encode(&deep, ImageFormat::Png));
    // Recognised by content, whatever the name says.
    dir.write("jpeg-named.png", &encode(&solid_rgb(9, 9, [0, 0, 255]), ImageFormat::Jpeg));
    dir.write("no-extension", &encode(&solid_rgb(8, 8, [1, 2, 3]), ImageFormat::Png));
    // Hidden: ignored, not counted.
    dir.write(".hidden.png", &encode(&grey, ImageFormat::Png));
    dir.write(".thumbs/x.png", &encode(&grey, ImageFormat::Png));
    // Skipped with a reason.
    dir.write("notes.txt", b"these are my faces\n");
    dir.write("b/empty.png", b"");
    let png = encode(&solid_rgb(64, 64, [5, 5, 5]), ImageFormat::Png);
    dir.write("b/truncated.png", &png[..png.len() / 2]);
    dir.write("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;");
    vec![
        ("a/grey.png", [77, 77, 77]),
        ("a/rgb.jpg", [200, 40, 90]),
        ("b/nested/deep16.png", [255, 0, 128]),
        ("b/nested/rgba.png", [10, 200, 30]),
        ("jpeg-named.png", [0, 0, 255]),
        ("no-extension", [1, 2, 3]),
    ]
}

#[test]
fn folder_counts_are_exact() {
    let dir = TempDir::new("mixed");
    let expected = write_mixed_folder(&dir);

    let (pool, report) = load_folder(&dir.0, 8, 3, None).unwrap();
    assert_eq!((pool.len(), pool.size, pool.channels), (6, 8, 3));
    assert_eq!((report.loaded, report.total_files, report.truncated_by_limit), (6, 10, 0));
    let skipped: Vec<(String, &str)> = report
        .skipped
        .iter()
        .map(|(p, r)| (p.strip_prefix(&dir.0).unwrap().display().to_string(), r.as_str()))
        .collect();
    let kinds: Vec<(&str, &str)> = skipped.iter().map(|(p, r)| (p.as_str(), r.split(':').next().unwrap())).collect();
    assert_eq!(
        kinds,
        [
            ("anim.gif", "unsupported format"),
            ("b/empty.png", "not an image"),
            ("b/truncated.png", "corrupt image"),
            ("notes.txt", "not an image"),
        ],
        "{skipped:?}"
    );
    assert!(skipped.iter().all(|(_, r)| r.len() > r.split(':').next().unwrap().len() + 3), "{skipped:?}");
    assert_eq!(report.to_string(), "loaded 6 images; skipped 4: 2 not images, 1 unsupported format, 1 corrupt");

    // Sorted walk: the pool's order is the sorted paths'; each image is its solid colour
    // (JPEG within its rounding), alpha dropped, 16 bits scaled to 8.
    for (i, (name, rgb)) in expected.iter().enumerate() {
        let tol = if name.contains("jp") { 3 } else { 0 };
        let img = pool.image(i);
        for c in 0..3 {
            for &v in &img[c * 64..(c + 1) * 64] {
                assert!(v.abs_diff(rgb[c]) <= tol, "{name} channel {c}: {v} vs {}", rgb[c]);
            }
        }
    }

    // Grey: the luma of each colour.
    let (grey, _) = load_folder(&dir.0, 4, 1, None).unwrap();
    assert_eq!((grey.len(), grey.image_len()), (6, 16));
    for (i, (name, [r, g, b])) in expected.iter().enumerate() {
        let luma = ((2126 * *r as u32 + 7152 * *g as u32 + 722 * *b as u32) / 10000) as u8;
        let tol = if name.contains("jp") { 3 } else { 1 };
        assert!(grey.image(i).iter().all(|v| v.abs_diff(luma) <= tol), "{name}: {:?} vs {luma}", grey.image(i));
    }

    // A limit: exactly that many images, the rest counted, and the same subset every time.
    let (small, report) = load_folder(&dir.0, 8, 3, Some(2)).unwrap();
    assert_eq!((small.len(), report.loaded), (2, 2));
    assert_eq!(report.loaded + report.skipped.len() + report.truncated_by_limit, 10);
    assert!(report.to_string().contains("not read (image limit reached)"), "{report}");
    assert_eq!(load_folder(&dir.0, 8, 3, Some(2)).unwrap().0, small);
}

#[test]
fn folders_without_images_are_errors() {
    let dir = TempDir::new("noimages");
    dir.write("readme.md", b"# nothing here");
    dir.write(".hidden.png", &encode(&solid_rgb(4, 4, [9, 9, 9]), ImageFormat::Png));
    let e = load_folder(&dir.0, 8, 3, None).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::NoImages { .. }), "{e:?}");
    assert!(msg.contains("no usable images") && msg.contains("readme.md: not an image"), "{msg}");

    let empty = TempDir::new("empty");
    assert!(matches!(load_folder(&empty.0, 8, 3, None), Err(DataError::NoImages { .. })));

    let missing = empty.0.join("does-not-exist");
    let e = load_folder(&missing, 8, 3, None).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("does-not-exist"), "{e}");
}

/// `w x h` RGB: columns `0..w/2` of the centre square white, the rest black; outside the
/// centre square (left/right or top/bottom margins) red.
fn half_white(w: u32, h: u32) -> DynamicImage {
    let side = w.min(h);
    let (x0, y0) = ((w - side) / 2, (h - side) / 2);
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
        if x < x0 || x >= x0 + side || y < y0 || y >= y0 + side {
            Rgb([255, 0, 0])
        } else if x - x0 < side / 2 {
            Rgb([255, 255, 255])
        } else {
            Rgb([0, 0, 0])
        }
    }))
}

#[test]
fn preprocess_crops_the_centre_and_resizes() {
    for (w, h) in [(40, 20), (20, 40), (20, 20), (41, 20)] {
        for size in [20, 10, 4, 40] {
            let side = w.min(h) as usize;
            let chw = preprocess(&half_white(w, h), size, 3);
            assert_eq!(chw.len(), 3 * size * size);
            let plane = size * size;
            // No red margin survives: the three planes agree.
            assert_eq!(chw[..plane], chw[plane..2 * plane], "{w}x{h} -> {size}");
            assert_eq!(chw[..plane], chw[2 * plane..], "{w}x{h} -> {size}");
            let grey = preprocess(&half_white(w, h), size, 1);
            assert_eq!(grey, chw[..plane], "{w}x{h} -> {size}: grey of white/black");
            for row in grey.chunks(size) {
                assert_eq!(row, grey[..size].to_vec(), "{w}x{h} -> {size}: rows differ");
            }
            let row = &grey[..size];
            if size == side {
                // No resampling at all: the crop itself.
                let want: Vec<u8> = (0..size).map(|x| if x < size / 2 { 255 } else { 0 }).collect();
                assert_eq!(row, want);
            } else {
                // Resampled: white left, black right, one blended column each side of the edge.
                let edge = size / 2;
                assert!(row[..edge - 1].iter().all(|&v| v == 255), "{w}x{h} -> {size}: {row:?}");
                assert!(row[edge + 1..].iter().all(|&v| v == 0), "{w}x{h} -> {size}: {row:?}");
                assert!(row[edge - 1] > 128 && row[edge] < 128, "{w}x{h} -> {size}: {row:?}");
            }
        }
    }
}

// ---------------------------------------------------------------- sampler

/// `n` 1x1 grey images whose pixel is their index.
fn index_pool(n: usize) -> ImagePool {
    let mut pool = ImagePool::new(1, 1);
    for i in 0..n {
        pool.push(&[i as u8]);
    }
    pool
}

#[test]
fn sampler_visits_every_image_once_per_epoch_and_reshuffles() {
    let n = 37;
    let mut s = Sampler::new(n, 5);
    let mut epochs = Vec::new();
    for e in 0..6u64 {
        assert_eq!(s.epoch, e);
        let order: Vec<usize> = (0..n).map(|_| s.next_index()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "epoch {e}");
        epochs.push(order);
    }
    assert_eq!(s.epoch, 6);
    for a in 0..epochs.len() {
        for b in a + 1..epochs.len() {
            assert_ne!(epochs[a], epochs[b], "epochs {a} and {b} share an order");
        }
    }
    assert_ne!(epochs[0], (0..n).collect::<Vec<_>>());

    // Same seed, same sequence; another seed, another.
    let run = |seed| {
        let mut s = Sampler::new(n, seed);
        (0..3 * n).map(|_| s.next_index()).collect::<Vec<_>>()
    };
    assert_eq!(run(5), epochs[..3].concat());
    assert_ne!(run(6), run(5));
}

#[test]
fn batches_straddle_epochs_and_resume_exactly() {
    let (n, batch) = (10, 3);
    let pool = index_pool(n);
    let mut s = Sampler::new(n, 42);
    let mut reference = Sampler::new(n, 42);
    let mut out = Vec::new();
    let mut drawn = Vec::new();
    for b in 0..20 {
        s.next_batch(&pool, batch, &mut out);
        assert_eq!(out.len(), batch);
        let want: Vec<u8> = (0..batch).map(|_| reference.next_index() as u8).collect();
        assert_eq!(out, want, "batch {b}");
        drawn.extend_from_slice(&out);
        assert_eq!(s.epoch, ((b + 1) * batch / n) as u64, "after batch {b}");
    }
    // The straddling batches still cover each epoch exactly once.
    for (e, epoch) in drawn.chunks(n).enumerate().take(drawn.len() / n) {
        let mut sorted = epoch.to_vec();
        sorted.sort();
        assert_eq!(sorted, (0..n as u8).collect::<Vec<_>>(), "epoch {e}");
    }

    // Resume after k batches, for every k (including those ending exactly on an epoch).
    let uninterrupted: Vec<Vec<u8>> = {
        let mut s = Sampler::new(n, 42);
        (0..40)
            .map(|_| {
                s.next_batch(&pool, batch, &mut out);
                out.clone()
            })
            .collect()
    };
    for k in 0..20 {
        let mut s = Sampler::new(n, 42);
        for _ in 0..k {
            s.next_batch(&pool, batch, &mut out);
        }
        let state = s.state();
        assert_eq!((state.len, state.seed), (n as u64, 42));
        let mut resumed = Sampler::from_state(state).unwrap();
        assert_eq!(resumed, s);
        for (j, want) in uninterrupted[k..k + 20].iter().enumerate() {
            resumed.next_batch(&pool, batch, &mut out);
            assert_eq!(&out, want, "resumed after {k} batches, batch {j} differs");
        }
    }

    // A batch larger than the dataset spans several epochs.
    let mut s = Sampler::new(n, 1);
    s.next_batch(&pool, 25, &mut out);
    assert_eq!((out.len(), s.epoch, s.state().pos), (25, 2, 5));

    // States that cannot be right are refused.
    let mut bad = Sampler::new(n, 1).state();
    bad.pos = n as u64;
    assert!(matches!(Sampler::from_state(bad), Err(DataError::BadSamplerState(_))));
    bad.pos = 0;
    bad.len = 0;
    assert!(Sampler::from_state(bad).is_err());
}

#[test]
fn sampler_batches_are_nchw() {
    let mut pool = ImagePool::new(2, 3);
    for i in 0..4u8 {
        pool.push(&[i; 12]);
    }
    let mut s = Sampler::new(4, 9);
    let mut out = Vec::new();
    s.next_batch(&pool, 4, &mut out);
    assert_eq!(out.len(), 48);
    let mut firsts: Vec<u8> = out
        .chunks(12)
        .map(|img| {
            assert!(img.iter().all(|&v| v == img[0]));
            img[0]
        })
        .collect();
    firsts.sort();
    assert_eq!(firsts, [0, 1, 2, 3]);
}
