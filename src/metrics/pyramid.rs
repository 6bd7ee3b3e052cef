//! Laplacian pyramids (Burt and Adelson) with OpenCV's `pyrDown`/`pyrUp` filter, the form the
//! sliced Wasserstein distance of Karras et al. 2018 (appendix D) takes its patches from.
//!
//! Level 0 is the image minus its blurred-and-reduced version enlarged again (the detail only
//! that resolution holds); each further level is the same for the reduced image, and the last
//! level is the reduced (Gaussian) image itself. Adding the levels back up from the coarsest
//! reconstructs the image exactly, whatever the filter, which is what makes it a decomposition:
//! every frequency band is counted once.
//!
//! Planes are square, row-major; images are CHW (one plane per channel). Borders mirror without
//! repeating the edge pixel (`d c b | a b c d | c b a`: scipy's `mirror`, OpenCV's
//! `BORDER_REFLECT_101`), as in the reference, so a constant image has zero detail everywhere.

/// The binomial filter [1, 4, 6, 4, 1] / 16. Applied along rows and then along columns it is
/// the 5x5 Gaussian of `pyrDown`; its weights are exact in binary, so constants stay exact.
const TAPS: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// Index `i` (possibly outside `0..n`) reflected into `0..n` about the edge pixels' centres.
fn mirror(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let i = i.rem_euclid(period);
    (if i < n as isize { i } else { period - i }) as usize
}

/// The separable 5x5 binomial blur of one `size x size` plane, times `gain` (1 for `down`; 4 for
/// `up`, which blurs an image with three zeros inserted per pixel).
pub fn blur(plane: &[f32], size: usize, gain: f32) -> Vec<f32> {
    assert_eq!(plane.len(), size * size, "a {size}x{size} plane has {} values, not {}", size * size, plane.len());
    let mut rows = vec![0.0f32; size * size];
    for y in 0..size {
        let src = &plane[y * size..(y + 1) * size];
        for x in 0..size {
            rows[y * size + x] =
                TAPS.iter().enumerate().map(|(t, w)| w * src[mirror(x as isize + t as isize - 2, size)]).sum();
        }
    }
    let mut out = vec![0.0f32; size * size];
    for y in 0..size {
        for (t, w) in TAPS.iter().enumerate() {
            let src = mirror(y as isize + t as isize - 2, size) * size;
            for x in 0..size {
                out[y * size + x] += w * gain * rows[src + x];
            }
        }
    }
    out
}

/// `pyrDown`: blur, then keep the even rows and columns. `size` must be even.
pub fn down(plane: &[f32], size: usize) -> Vec<f32> {
    assert!(size.is_multiple_of(2), "cannot halve a {size}x{size} plane");
    let blurred = blur(plane, size, 1.0);
    let half = size / 2;
    (0..half * half).map(|i| blurred[(i / half) * 2 * size + (i % half) * 2]).collect()
}

/// `pyrUp`: the plane on the even pixels of one twice its size (zeros elsewhere), blurred with
/// 4x the filter (each output pixel has a quarter of the taps non-zero).
pub fn up(plane: &[f32], size: usize) -> Vec<f32> {
    assert_eq!(plane.len(), size * size);
    let double = 2 * size;
    let mut sparse = vec![0.0f32; double * double];
    for (i, &v) in plane.iter().enumerate() {
        sparse[(i / size) * 2 * double + (i % size) * 2] = v;
    }
    blur(&sparse, double, 4.0)
}

/// The Laplacian pyramid of a CHW image, finest level first: level `i` holds `channels` planes of
/// `(size >> i)^2` values; the last of the `levels` is the Gaussian (reduced) image, every other
/// one the detail lost by reducing. `size` must be divisible by `2^(levels - 1)`.
pub fn laplacian(image: &[f32], channels: usize, size: usize, levels: usize) -> Vec<Vec<f32>> {
    assert!(levels >= 1, "a pyramid has at least one level");
    assert!(size.is_multiple_of(1 << (levels - 1)), "{size} cannot be halved {} times", levels - 1);
    assert_eq!(image.len(), channels * size * size, "image is not {channels}x{size}x{size}");
    let mut pyramid = vec![image.to_vec()];
    for level in 1..levels {
        let s = size >> (level - 1);
        let fine = pyramid.last_mut().unwrap();
        let reduced: Vec<f32> = fine.chunks_exact(s * s).flat_map(|plane| down(plane, s)).collect();
        for (c, plane) in reduced.chunks_exact(s * s / 4).enumerate() {
            for (f, u) in fine[c * s * s..(c + 1) * s * s].iter_mut().zip(up(plane, s / 2)) {
                *f -= u;
            }
        }
        pyramid.push(reduced);
    }
    pyramid
}

/// The image back from its pyramid: the coarsest level enlarged and added to the next, up to the
/// finest. `size` is the finest level's side.
pub fn reconstruct(pyramid: &[Vec<f32>], channels: usize, size: usize) -> Vec<f32> {
    let levels = pyramid.len();
    let mut image = pyramid[levels - 1].clone();
    for level in (0..levels - 1).rev() {
        let s = size >> (level + 1);
        let upsampled: Vec<f32> = image.chunks_exact(s * s).flat_map(|plane| up(plane, s)).collect();
        image = pyramid[level].iter().zip(upsampled).map(|(d, u)| d + u).collect();
    }
    assert_eq!(image.len(), channels * size * size);
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_reflects_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..8).map(|i| mirror(i, 5)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        assert_eq!(mirror(-7, 1), 0);
    }
}
