//! The datasets: IDX parsing (built here and the real MNIST files), folders of images, the
//! preprocessing, and the sampler's epochs and exact resume.
#![cfg(not(target_arch = "wasm32"))]

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};
use std::io::Write;
use std::path::PathBuf;
use webgan::data::folder::FOLDER_BUDGET_BYTES;
use webgan::data::{
    load_folder, mnist_pool, preprocess, read_idx_images, read_idx_labels, DataError, FolderReport, ImagePool, Sampler,
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

/// The MNIST files the page ships (the training images, and the test set the classifier is
/// scored on): inside the repository, so a fresh clone tests them.
const MNIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/www/data/mnist/");

fn mnist_file(name: &str) -> Vec<u8> {
    let path = format!("{MNIST}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn real_mnist_loads_and_pads_to_32() {
    // (The page needs no training labels, so none ship; the test set's labels do.)
    for (images, labels, n) in [
        ("train-images-idx3-ubyte.gz", None, 60_000),
        ("t10k-images-idx3-ubyte.gz", Some("t10k-labels-idx1-ubyte.gz"), 10_000),
    ] {
        let img = read_idx_images(&mnist_file(images)).unwrap();
        assert_eq!((img.count, img.rows, img.cols, img.pixels.len()), (n, 28, 28, n * 784));
        // Images read as labels are refused.
        assert!(read_idx_labels(&mnist_file(images)).is_err());
        if let Some(labels) = labels {
            let lab = read_idx_labels(&mnist_file(labels)).unwrap();
            assert_eq!(lab.len(), n);
            let mut per_digit = [0usize; 10];
            for &l in &lab {
                assert!(l <= 9, "label {l}");
                per_digit[l as usize] += 1;
            }
            assert!(per_digit.iter().all(|&c| c > n / 20), "{per_digit:?}");
            assert!(read_idx_images(&mnist_file(labels)).is_err());
        }

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
    // Hidden: skipped and counted, a hidden folder as one entry.
    dir.write(".hidden.png", &encode(&grey, ImageFormat::Png));
    dir.write(".thumbs/x.png", &encode(&grey, ImageFormat::Png));
    dir.write(".thumbs/y.png", &encode(&grey, ImageFormat::Png));
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
    assert_eq!((report.loaded, report.total_files, report.truncated_by_limit), (6, 12, 0));
    let skipped: Vec<(String, &str)> = report
        .skipped
        .iter()
        .map(|(p, r)| (p.strip_prefix(&dir.0).unwrap().display().to_string(), r.as_str()))
        .collect();
    let kinds: Vec<(&str, &str)> = skipped.iter().map(|(p, r)| (p.as_str(), r.split(':').next().unwrap())).collect();
    assert_eq!(
        kinds,
        [
            (".hidden.png", "hidden"),
            (".thumbs", "hidden"),
            ("anim.gif", "unsupported format"),
            ("b/empty.png", "not an image"),
            ("b/truncated.png", "corrupt image"),
            ("notes.txt", "not an image"),
        ],
        "{skipped:?}"
    );
    assert!(skipped.iter().all(|(_, r)| r.len() > r.split(':').next().unwrap().len() + 3), "{skipped:?}");
    assert_eq!(
        report.to_string(),
        "loaded 6 images; skipped 6: 2 not images, 1 unsupported format, 1 corrupt, 2 hidden"
    );
    assert!(!report.budget_reached);

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
    assert_eq!(report.loaded + report.skipped.len() + report.truncated_by_limit, 12);
    assert!(!report.budget_reached);
    assert!(report.to_string().contains("not read (image limit reached)"), "{report}");
    assert_eq!(load_folder(&dir.0, 8, 3, Some(2)).unwrap().0, small);

    // Past the memory budget (4 GiB of pixels: some 350,000 RGB images of 64x64) the report
    // says so; building such a folder here would take too long, so the wording is checked.
    let over =
        FolderReport { loaded: 9, total_files: 12, truncated_by_limit: 3, budget_reached: true, ..Default::default() };
    assert_eq!(over.to_string(), "loaded 9 images; 3 files not read (memory budget of 4 GiB reached)");
    assert_eq!(FOLDER_BUDGET_BYTES, 4 << 30);
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
    // It names the folder and counts what it found.
    assert!(msg.starts_with(&dir.0.display().to_string()), "{msg}");
    assert!(msg.contains("loaded 0 images; skipped 2: 1 not an image, 1 hidden"), "{msg}");
    assert!(msg.contains(".hidden.png: hidden: file"), "{msg}");

    // Only bad files, of every kind: the same error, every file listed with its reason.
    let bad = TempDir::new("allbad");
    for (name, bytes) in bad_files() {
        bad.write(name, &bytes);
    }
    let e = load_folder(&bad.0, 8, 3, None).unwrap_err();
    let DataError::NoImages { report, .. } = &e else { panic!("{e:?}") };
    assert_eq!(report.loaded, 0);
    assert_eq!(report.skipped.len(), report.total_files);
    assert!(e.to_string().contains("... and"), "{e}");

    let empty = TempDir::new("empty");
    assert!(matches!(load_folder(&empty.0, 8, 3, None), Err(DataError::NoImages { .. })));

    let missing = empty.0.join("does-not-exist");
    let e = load_folder(&missing, 8, 3, None).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("does-not-exist"), "{e}");
}

/// A CMYK JPEG (12x10, C=0 M=255 Y=255 K=0: red), as Pillow writes it (Adobe, inverted CMYK):
/// `Image.new('CMYK', (12, 10), (0, 255, 255, 0)).save(f, 'JPEG', quality=95)`.
const CMYK_JPEG: &[u8] = &[
    255, 216, 255, 238, 0, 14, 65, 100, 111, 98, 101, 0, 100, 0, 0, 0, 0, 0, 255, 219, 0, 67, 0, 2, 1, 1, 1, 1, 1, 2,
    1, 1, 1, 2, 2, 2, 2, 2, 4, 3, 2, 2, 2, 2, 5, 4, 4, 3, 4, 6, 5, 6, 6, 6, 5, 6, 6, 6, 7, 9, 8, 6, 7, 9, 7, 6, 6, 8,
    11, 8, 9, 10, 10, 10, 10, 10, 6, 8, 11, 12, 11, 10, 12, 9, 10, 10, 10, 255, 192, 0, 20, 8, 0, 10, 0, 12, 4, 67, 17,
    0, 77, 17, 0, 89, 17, 0, 75, 17, 0, 255, 196, 0, 31, 0, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3,
    4, 5, 6, 7, 8, 9, 10, 11, 255, 196, 0, 181, 16, 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125, 1, 2, 3, 0, 4,
    17, 5, 18, 33, 49, 65, 6, 19, 81, 97, 7, 34, 113, 20, 50, 129, 145, 161, 8, 35, 66, 177, 193, 21, 82, 209, 240, 36,
    51, 98, 114, 130, 9, 10, 22, 23, 24, 25, 26, 37, 38, 39, 40, 41, 42, 52, 53, 54, 55, 56, 57, 58, 67, 68, 69, 70,
    71, 72, 73, 74, 83, 84, 85, 86, 87, 88, 89, 90, 99, 100, 101, 102, 103, 104, 105, 106, 115, 116, 117, 118, 119,
    120, 121, 122, 131, 132, 133, 134, 135, 136, 137, 138, 146, 147, 148, 149, 150, 151, 152, 153, 154, 162, 163, 164,
    165, 166, 167, 168, 169, 170, 178, 179, 180, 181, 182, 183, 184, 185, 186, 194, 195, 196, 197, 198, 199, 200, 201,
    202, 210, 211, 212, 213, 214, 215, 216, 217, 218, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 241, 242, 243,
    244, 245, 246, 247, 248, 249, 250, 255, 218, 0, 14, 4, 67, 0, 77, 0, 89, 0, 75, 0, 0, 63, 0, 253, 252, 175, 231,
    254, 191, 159, 250, 253, 252, 162, 138, 40, 162, 138, 40, 162, 138, 40, 175, 255, 217,
];

/// Files that are not usable images, each named for what is wrong with it.
fn bad_files() -> Vec<(&'static str, Vec<u8>)> {
    let png = encode(&solid_rgb(64, 64, [5, 5, 5]), ImageFormat::Png);
    let jpg = encode(&half_white(64, 48), ImageFormat::Jpeg);
    let mut random = vec![0u8; 3000];
    let mut x = 12345u32;
    for b in random.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 24) as u8;
    }
    // A valid PNG claiming 100,000 x 100,000 pixels, with a few bytes of data.
    let huge = png_file(100_000, 100_000, 2, &gzip(b"")[10..]);
    vec![
        ("empty.png", vec![]),
        ("empty.jpg", vec![]),
        ("truncated.png", png[..png.len() / 2].to_vec()),
        ("truncated-header.png", png[..20].to_vec()),
        ("truncated.jpg", jpg[..jpg.len() / 3].to_vec()),
        ("truncated-header.jpg", jpg[..40].to_vec()),
        ("random-bytes.jpg", random.clone()),
        ("jpeg-marker-then-garbage.jpg", [&[0xff, 0xd8, 0xff, 0xe0][..], &random].concat()),
        ("png-signature-then-garbage.png", [&png[..8], &random[..]].concat()),
        ("claims-100000x100000.png", huge),
        ("notes.txt", b"my faces, in no particular order\n".to_vec()),
        ("page.html", b"<!DOCTYPE html><html><body>404</body></html>".to_vec()),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
        ("nested/deeper/bad.png", b"\x89PNG\r\n\x1a\n".to_vec()),
        (".DS_Store", b"\x00\x00\x00\x01Bud1".to_vec()),
        ("._photo.jpg", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X".to_vec()),
        (".git/config", b"[core]\n".to_vec()),
    ]
}

/// A PNG of 8-bit samples from its zlib-compressed scanlines.
fn png_file(width: u32, height: u32, color_type: u8, idat: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, color_type, 0, 0, 0]);
    for (kind, body) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", idat), (b"IEND", &[])] {
        let typed = [kind, body].concat();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&typed);
        out.extend_from_slice(&crc32(&typed).to_be_bytes());
    }
    out
}

/// CRC-32 (PNG's), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Every case of the robustness list in one folder: odd but usable images (huge, tiny, grey,
/// grey + alpha, RGBA, 16-bit, CMYK, mixed sizes, nested deep) are all used, with the right
/// pixels; every bad or hidden file is skipped with its reason; nothing else happens.
#[test]
fn odd_images_are_used_and_bad_files_skipped_with_reasons() {
    let dir = TempDir::new("odd");
    // 8000 x 8000 grey, left half white: 64 MB of pixels, about 60 KB as a PNG (written by
    // hand: the image crate's encoder does not compress this well).
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let row: Vec<u8> = std::iter::once(0).chain((0..8000).map(|x| if x < 4000 { 255 } else { 0 })).collect();
    for _ in 0..8000 {
        z.write_all(&row).unwrap();
    }
    let big_png = png_file(8000, 8000, 0, &z.finish().unwrap());
    assert!(big_png.len() < 1 << 20, "{} bytes", big_png.len());
    dir.write("big/8000x8000.png", &big_png);
    dir.write("tiny/8x8.png", &encode(&solid_rgb(8, 8, [30, 60, 90]), ImageFormat::Png));
    dir.write("tiny/3x5.png", &encode(&solid_rgb(3, 5, [90, 60, 30]), ImageFormat::Png));
    let grey_alpha = DynamicImage::ImageLumaA8(ImageBuffer::from_pixel(30, 20, image::LumaA([90, 128])));
    dir.write("modes/grey-alpha.png", &encode(&grey_alpha, ImageFormat::Png));
    let grey16 = DynamicImage::ImageLuma16(ImageBuffer::from_pixel(12, 12, Luma([200 * 257])));
    dir.write("modes/grey16.png", &encode(&grey16, ImageFormat::Png));
    let rgba16 = DynamicImage::ImageRgba16(ImageBuffer::from_pixel(12, 14, Rgba([0, 65535, 0, 0])));
    dir.write("modes/rgba16.png", &encode(&rgba16, ImageFormat::Png));
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(33, 17, Rgba([40, 50, 60, 255])));
    dir.write("modes/rgba.png", &encode(&rgba, ImageFormat::Png));
    dir.write("modes/cmyk.jpg", CMYK_JPEG);
    dir.write("a/b/c/d/e/deep.jpg", &encode(&solid_rgb(100, 40, [250, 250, 250]), ImageFormat::Jpeg));
    for (name, bytes) in bad_files() {
        dir.write(name, &bytes);
    }

    let (pool, report) = load_folder(&dir.0, 8, 3, None).unwrap();
    let loaded = [
        ("a/b/c/d/e/deep.jpg", [250, 250, 250]),
        ("big/8000x8000.png", [0, 0, 0]), // checked separately
        ("modes/cmyk.jpg", [255, 0, 0]),
        ("modes/grey-alpha.png", [90, 90, 90]),
        ("modes/grey16.png", [200, 200, 200]),
        ("modes/rgba.png", [40, 50, 60]),
        ("modes/rgba16.png", [0, 255, 0]),
        ("tiny/3x5.png", [90, 60, 30]),
        ("tiny/8x8.png", [30, 60, 90]),
    ];
    let bad = bad_files();
    let skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|(p, r)| (p.strip_prefix(&dir.0).unwrap().display().to_string(), r.clone()))
        .collect();
    let kinds: Vec<(&str, &str)> = skipped.iter().map(|(p, r)| (p.as_str(), r.split(':').next().unwrap())).collect();
    assert_eq!(
        kinds,
        [
            (".DS_Store", "hidden"),
            ("._photo.jpg", "hidden"),
            (".git", "hidden"),
            ("anim.gif", "unsupported format"),
            ("claims-100000x100000.png", "too large"),
            ("empty.jpg", "not an image"),
            ("empty.png", "not an image"),
            ("jpeg-marker-then-garbage.jpg", "corrupt image"),
            ("nested/deeper/bad.png", "corrupt image"),
            ("notes.txt", "not an image"),
            ("page.html", "not an image"),
            ("png-signature-then-garbage.png", "corrupt image"),
            ("random-bytes.jpg", "not an image"),
            ("truncated-header.jpg", "corrupt image"),
            ("truncated-header.png", "corrupt image"),
            ("truncated.jpg", "corrupt image"),
            ("truncated.png", "corrupt image"),
        ],
        "{skipped:#?}"
    );
    println!("{report}");
    for (path, reason) in &skipped {
        println!("  {path}: {reason}");
    }
    assert_eq!(skipped.len(), bad.len());
    // Every reason says what is wrong beyond its kind, on one line.
    assert!(skipped.iter().all(|(_, r)| r.len() > r.split(':').next().unwrap().len() + 3), "{skipped:#?}");
    assert!(skipped.iter().all(|(_, r)| !r.contains(|c: char| c.is_control())), "{skipped:#?}");
    assert_eq!((report.loaded, pool.len()), (loaded.len(), loaded.len()), "{report}");
    assert_eq!(report.total_files, loaded.len() + skipped.len());
    assert_eq!((report.truncated_by_limit, report.budget_reached), (0, false));
    assert_eq!(
        report.to_string(),
        "loaded 9 images; skipped 17: 5 not images, 1 unsupported format, 7 corrupt, 1 too large, 3 hidden"
    );

    for (i, (name, rgb)) in loaded.iter().enumerate() {
        let img = pool.image(i);
        if name.starts_with("big/") {
            // Left half white, right half black, resized from 8000 to 8 (one blended column
            // each side of the edge).
            for c in 0..3 {
                let row = &img[c * 64..c * 64 + 8];
                assert!(row[..3] == [255; 3] && row[5..] == [0; 3], "{name} channel {c}: {row:?}");
                assert!(row[3] > 128 && row[4] < 128, "{name} channel {c}: {row:?}");
            }
            continue;
        }
        let tol = if name.ends_with(".jpg") { 4 } else { 1 };
        for c in 0..3 {
            for &v in &img[c * 64..(c + 1) * 64] {
                assert!(v.abs_diff(rgb[c]) <= tol, "{name} channel {c}: {v} vs {}", rgb[c]);
            }
        }
    }
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
