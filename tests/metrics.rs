//! The sliced Wasserstein distance and its Laplacian pyramid: known answers for the pieces (the
//! filter's taps, exact reconstruction, 1-D Wasserstein distances, the sort), then the whole
//! metric on synthetic "digits" (no dataset needed): a set against itself sits at the sampling
//! noise floor, two draws of the same distribution close to it, and every corruption above it,
//! more noise further.
//!
//! Native only, like the other CPU tests; the module has no wasm32-specific code but its thread
//! fan-out (one thread there), and `build.sh` builds it for wasm32.
#![cfg(not(target_arch = "wasm32"))]

use webgan::metrics::pyramid::{blur, down, laplacian, reconstruct, up};
use webgan::metrics::swd::{radix_sort, resolutions, sliced_wasserstein, wasserstein_sorted};
use webgan::metrics::{swd, Images, SwdConfig, SwdReport};
use webgan::rng::Rng;

// ---------------------------------------------------------------- pyramid

#[test]
fn constant_image_has_no_detail() {
    let (c, size) = (3, 64);
    let image: Vec<f32> = (0..c).flat_map(|ch| vec![[-0.75f32, 0.3, 1.0][ch]; size * size]).collect();
    let pyramid = laplacian(&image, c, size, 3);
    assert_eq!(pyramid.iter().map(Vec::len).collect::<Vec<_>>(), [3 * 64 * 64, 3 * 32 * 32, 3 * 16 * 16]);
    for level in &pyramid[..2] {
        let worst = level.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(worst < 1e-6, "a constant image has detail {worst}");
    }
    for (ch, plane) in pyramid[2].chunks_exact(16 * 16).enumerate() {
        assert!(plane.iter().all(|&v| (v - [-0.75f32, 0.3, 1.0][ch]).abs() < 1e-6), "channel {ch} changed");
    }
}

#[test]
fn down_samples_even_pixels_of_the_binomial_blur() {
    // An impulse at (4, 4) of an 8x8 plane: the blur spreads it as the outer product of
    // [1, 4, 6, 4, 1] / 16; the even pixels (4, 4), (4, 2), (2, 2) keep 36, 6 and 1 / 256.
    let mut plane = vec![0.0f32; 64];
    plane[4 * 8 + 4] = 1.0;
    let half = down(&plane, 8);
    assert_eq!(half.len(), 16);
    assert_eq!(half[2 * 4 + 2], 36.0 / 256.0);
    assert_eq!(half[2 * 4 + 1], 6.0 / 256.0);
    assert_eq!(half[4 + 1], 1.0 / 256.0);
    assert_eq!(half[0], 0.0);
    // The mirrored border: an impulse in the corner reflects onto both sides of it.
    let mut corner = vec![0.0f32; 64];
    corner[0] = 1.0;
    let b = blur(&corner, 8, 1.0);
    assert_eq!(b[0], 36.0 / 256.0);
    assert_eq!(b[1], 4.0 * 6.0 / 256.0); // reached from x = 0 only (no repeated edge pixel)
    assert_eq!(b[2 * 8 + 2], 1.0 / 256.0);
}

#[test]
fn linear_ramp_has_no_detail_inside() {
    // The symmetric filter keeps a linear function, so away from the border (where mirroring
    // bends it) down() samples it at the even pixels and up(down()) gives it back: zero detail.
    // Odd pixels or a wrong gain in up() would leave a residual.
    let size = 32;
    let ramp: Vec<f32> = (0..size * size).map(|i| 0.1 * (i % size) as f32 - 0.05 * (i / size) as f32).collect();
    let half = down(&ramp, size);
    for y in 1..15 {
        for x in 1..15 {
            assert!((half[y * 16 + x] - ramp[2 * y * size + 2 * x]).abs() < 1e-5, "down at ({y}, {x})");
        }
    }
    let detail = &laplacian(&ramp, 1, size, 2)[0];
    for y in 4..28 {
        for x in 4..28 {
            assert!(detail[y * size + x].abs() < 1e-5, "detail {} at ({y}, {x})", detail[y * size + x]);
        }
    }
    assert!(detail[0].abs() > 1e-3, "the corner is mirrored, so it must differ from the ramp");
    // up() of a constant is the constant, edges included.
    assert!(up(&[0.5f32; 16], 4).iter().all(|&v| (v - 0.5).abs() < 1e-7));
}

#[test]
fn pyramid_reconstructs_the_image() {
    let mut rng = Rng::new(4);
    let (c, size) = (3, 64);
    let image: Vec<f32> = (0..c * size * size).map(|_| rng.normal()).collect();
    for levels in 1..=4 {
        let pyramid = laplacian(&image, c, size, levels);
        let back = reconstruct(&pyramid, c, size);
        let worst = image.iter().zip(&back).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 1e-5, "{levels} levels: reconstruction off by {worst}");
    }
    // And the detail levels of noise are not trivially zero.
    assert!(laplacian(&image, c, size, 3)[1].iter().any(|v| v.abs() > 0.1));
}

#[test]
fn levels_halve_down_to_16() {
    let cfg = SwdConfig::default();
    assert_eq!(resolutions(32, &cfg), [32, 16]);
    assert_eq!(resolutions(64, &cfg), [64, 32, 16]);
    assert_eq!(resolutions(16, &cfg), [16]);
    assert_eq!(resolutions(28, &cfg), [28]);
}

// ---------------------------------------------------------------- 1-D distances and the sort

#[test]
fn wasserstein_of_sorted_samples() {
    assert_eq!(wasserstein_sorted(&[0.0, 1.0, 3.0], &[0.5, 1.0, 2.0]), (0.5 + 0.0 + 1.0) / 3.0);
    // Unequal counts: quantile functions 0|1 and 0|0.5|1 differ by 0.5 on (1/3, 2/3].
    assert!((wasserstein_sorted(&[0.0, 1.0], &[0.0, 0.5, 1.0]) - 1.0 / 6.0).abs() < 1e-12);
    assert!((wasserstein_sorted(&[0.0, 0.5, 1.0], &[0.0, 1.0]) - 1.0 / 6.0).abs() < 1e-12);
    // The same distribution with every sample twice is at distance 0.
    assert_eq!(wasserstein_sorted(&[0.0, 1.0], &[0.0, 0.0, 1.0, 1.0]), 0.0);
}

#[test]
fn radix_sort_matches_a_comparison_sort() {
    let mut rng = Rng::new(9);
    let mut values: Vec<f32> = (0..50_000).map(|i| rng.normal() * [1e-6f32, 1.0, 1e4][i % 3]).collect();
    values.extend([0.0, -0.0, 1e-40, -1e-40, f32::MAX, f32::MIN, 3.0, 3.0]);
    let mut expected = values.clone();
    expected.sort_by(f32::total_cmp);
    let mut scratch = Vec::new();
    radix_sort(&mut values, &mut scratch);
    assert!(values.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()));
    let mut same = vec![2.5f32; 100];
    radix_sort(&mut same, &mut scratch);
    assert!(same.iter().all(|&v| v == 2.5));
}

#[test]
fn sliced_wasserstein_known_answers() {
    let mut rng = Rng::new(5);
    let a: Vec<f32> = (0..2000).map(|_| rng.normal()).collect();
    // Identical sets: every projection sorts to the same values.
    assert_eq!(sliced_wasserstein(&a, &a, 2, 64, &mut Rng::new(1)), 0.0);
    // In 1-D every direction is +-1 and a shift by 0.5 is a distance of 0.5.
    let shifted: Vec<f32> = a.iter().map(|v| v + 0.5).collect();
    assert!((sliced_wasserstein(&a, &shifted, 1, 8, &mut Rng::new(1)) - 0.5).abs() < 1e-5);
    // In 2-D a shift t along x is a shift t*|cos| along a direction: E|cos| = 2/pi.
    let shifted: Vec<f32> = a.iter().enumerate().map(|(i, v)| if i % 2 == 0 { v + 1.0 } else { *v }).collect();
    let d = sliced_wasserstein(&a, &shifted, 2, 4096, &mut Rng::new(2));
    assert!((d - std::f32::consts::FRAC_2_PI).abs() < 0.02, "{d} vs 2/pi");
}

// ---------------------------------------------------------------- the metric on synthetic digits

/// `n` grey `size x size` "digits": 2 to 4 strokes of Gaussian profile between random points of
/// the central area, white on black, in [-1, 1].
fn digits(n: usize, size: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed);
    let mut data = Vec::with_capacity(n * size * size);
    let lo = size as f32 * 0.2;
    let span = size as f32 * 0.6;
    for _ in 0..n {
        let strokes: Vec<[f32; 4]> =
            (0..2 + rng.below(3)).map(|_| [0; 4].map(|_| lo + span * rng.uniform() as f32)).collect();
        let width = 0.8 + 0.8 * rng.uniform() as f32;
        for y in 0..size {
            for x in 0..size {
                let (px, py) = (x as f32, y as f32);
                let ink = strokes
                    .iter()
                    .map(|&[x0, y0, x1, y1]| {
                        let (dx, dy) = (x1 - x0, y1 - y0);
                        let t = (((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy).max(1e-6)).clamp(0.0, 1.0);
                        let d2 = (px - x0 - t * dx).powi(2) + (py - y0 - t * dy).powi(2);
                        (-d2 / (2.0 * width * width)).exp()
                    })
                    .fold(0.0f32, f32::max);
                data.push(2.0 * ink - 1.0);
            }
        }
    }
    Images::new(data, 1, size).unwrap()
}

fn map(images: &Images, mut f: impl FnMut(&[f32]) -> Vec<f32>) -> Images {
    let data = (0..images.len()).flat_map(|i| f(images.image(i))).collect();
    Images::new(data, images.channels, images.size).unwrap()
}

fn with_noise(images: &Images, std: f32, seed: u64) -> Images {
    let mut rng = Rng::new(seed);
    map(images, |img| img.iter().map(|v| v + std * rng.normal()).collect())
}

/// Shifted right and down by `by` pixels, the background (-1) coming in.
fn shifted(images: &Images, by: usize) -> Images {
    let s = images.size;
    map(images, |img| {
        (0..s * s).map(|i| if i / s < by || i % s < by { -1.0 } else { img[(i / s - by) * s + i % s - by] }).collect()
    })
}

const N: usize = 160;

fn score(real: &Images, fake: &Images) -> SwdReport {
    swd(real, fake, &SwdConfig::default()).unwrap()
}

#[test]
fn swd_orders_corruptions_of_synthetic_digits() {
    let real = digits(N, 32, 1);
    let same = score(&real, &real);
    let halves = score(&real, &digits(N, 32, 2));
    let blurred = score(&real, &map(&real, |img| blur(img, 32, 1.0)));
    let moved = score(&real, &shifted(&real, 3));
    let stds = [0.05, 0.1, 0.2, 0.4];
    let noisy: Vec<SwdReport> = stds.iter().map(|&s| score(&real, &with_noise(&real, s, 7))).collect();
    let mut rng = Rng::new(3);
    let noise = Images::new((0..N * 32 * 32).map(|_| rng.uniform() as f32 * 2.0 - 1.0).collect(), 1, 32).unwrap();
    let pure = score(&real, &noise);
    eprintln!("same        {same}\nother draw  {halves}\nblurred     {blurred}\nshifted 3px {moved}");
    for (s, r) in stds.iter().zip(&noisy) {
        eprintln!("noise {s:<5} {r}");
    }
    eprintln!("pure noise  {pure}");

    assert_eq!(same.levels.iter().map(|l| l.0).collect::<Vec<_>>(), [32, 16]);
    assert!((same.mean - (same.levels[0].1 + same.levels[1].1) / 2.0).abs() < 1e-4);
    // The set against itself is the floor of sampling patches independently; another draw of
    // the same distribution adds the images' own sampling, and both sit far below noise.
    assert!(same.mean > 0.0 && same.mean < halves.mean, "same {same} / other draw {halves}");
    assert!(halves.mean < pure.mean / 8.0, "other draw {halves} / pure noise {pure}");
    // Every corruption is clearly above another draw of the same distribution.
    for (what, r) in [("blurred", &blurred), ("shifted", &moved), ("noise 0.05", &noisy[0])] {
        assert!(r.mean > 1.5 * halves.mean, "{what}: {r} vs other draw {halves}");
    }
    // Noise and blur are fine detail: they show at the finest level.
    assert!(noisy[0].levels[0].1 > 3.0 * halves.levels[0].1 && blurred.levels[0].1 > 3.0 * halves.levels[0].1);
    // More noise, further away, at the finest level and on average; none as far as pure noise.
    for pair in noisy.windows(2) {
        assert!(pair[1].levels[0].1 > pair[0].levels[0].1 && pair[1].mean > pair[0].mean, "{} / {}", pair[0], pair[1]);
    }
    assert!(pure.mean > noisy[3].mean);
}

/// Grey digits (ink in [0, 1]) coloured: image i gets `palette[i % 2]`, RGB in [-1, 1].
fn coloured(grey: &Images, palette: [[f32; 3]; 2]) -> Images {
    let plane = grey.size * grey.size;
    let data = (0..grey.len())
        .flat_map(|i| {
            let ink: Vec<f32> = grey.image(i).iter().map(|v| (v + 1.0) / 2.0).collect();
            (0..3).flat_map(move |c| ink.iter().map(move |k| 2.0 * k * palette[i % 2][c] - 1.0).collect::<Vec<_>>())
        })
        .collect::<Vec<f32>>();
    assert_eq!(data.len(), grey.len() * 3 * plane);
    Images::new(data, 3, grey.size).unwrap()
}

#[test]
fn swd_sees_colour_at_three_levels() {
    const RED: [f32; 3] = [1.0, 0.1, 0.0];
    const GREEN: [f32; 3] = [0.1, 1.0, 0.0];
    const BLUE: [f32; 3] = [0.1, 0.0, 1.0];
    let real = coloured(&digits(24, 64, 1), [RED, GREEN]);
    let other = coloured(&digits(24, 64, 2), [RED, GREEN]);
    let recoloured = coloured(&digits(24, 64, 1), [RED, BLUE]);
    let cfg = SwdConfig::default();
    let halves = swd(&real, &other, &cfg).unwrap();
    let moved = swd(&real, &recoloured, &cfg).unwrap();
    eprintln!("other draw {halves}\nblue for green {moved}");
    assert_eq!(halves.levels.iter().map(|l| l.0).collect::<Vec<_>>(), [64, 32, 16]);
    // Real blue is constant (-1): only centred, no NaN from a zero std.
    assert!(halves.levels.iter().all(|l| l.1.is_finite()));
    assert!(moved.mean > 2.0 * halves.mean, "{moved} vs {halves}");
    assert!(halves.to_string().starts_with("SWD x1e3: 64px "));
}

#[test]
fn swd_is_deterministic_for_a_seed() {
    let (a, b) = (digits(16, 32, 1), digits(16, 32, 2));
    let cfg = SwdConfig { directions_per_repeat: 32, ..SwdConfig::default() };
    let first = swd(&a, &b, &cfg).unwrap();
    assert_eq!(first, swd(&a, &b, &cfg).unwrap());
    let other = swd(&a, &b, &SwdConfig { seed: 2, ..cfg.clone() }).unwrap();
    assert_ne!(first, other);
    // Different counts are allowed (the exact quantile distance).
    assert!(swd(&a, &digits(9, 32, 3), &cfg).unwrap().mean.is_finite());
}

#[test]
fn images_are_checked() {
    let img = Images::from_u8(&[0, 255, 51, 204], 1, 2).unwrap();
    assert_eq!(img.data(), [-1.0, 1.0, -0.6, 0.6]);
    assert_eq!(img.len(), 1);
    assert!(Images::new(vec![0.0; 5], 1, 2).unwrap_err().contains("not whole"));
    assert!(Images::new(vec![0.0, f32::NAN, 0.0, 0.0], 1, 2).unwrap_err().contains("NaN"));
    let cfg = SwdConfig::default();
    let grey = digits(2, 32, 1);
    let rgb = Images::new(vec![0.0; 3 * 32 * 32], 3, 32).unwrap();
    assert!(swd(&grey, &rgb, &cfg).unwrap_err().contains("1x32x32"));
    let tiny = Images::new(vec![0.0; 25], 1, 5).unwrap();
    assert!(swd(&tiny, &tiny, &cfg).unwrap_err().contains("patch"));
    let none = Images::new(Vec::new(), 1, 32).unwrap();
    assert!(swd(&none, &grey, &cfg).is_err());
}
