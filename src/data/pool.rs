//! The image pool: a dataset in memory as u8, the form every loader produces and every batch
//! is cut from.
//!
//! Layout: image after image, each `channels x size x size` (CHW: one row-major plane per
//! channel), one byte per value, 0 = black. u8 rather than f32 keeps 60,000 MNIST digits at
//! 61 MB and 50,000 64x64 RGB faces at 614 MB, and batches upload at a quarter of the bytes.

/// Square u8 images of one size and channel count, stored CHW one after another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePool {
    /// Side of the square images, in pixels.
    pub size: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    pixels: Vec<u8>,
    /// Most images the pool accepts (the memory budget divided by [`ImagePool::image_len`]).
    max_images: usize,
}

impl ImagePool {
    /// An empty pool without a memory budget.
    ///
    /// Panics unless `size > 0` and `channels` is 1 or 3.
    pub fn new(size: usize, channels: usize) -> ImagePool {
        assert!(size > 0, "image size must be positive");
        assert!(channels == 1 || channels == 3, "channels must be 1 (grey) or 3 (RGB), not {channels}");
        ImagePool { size, channels, pixels: Vec::new(), max_images: usize::MAX }
    }

    /// An empty pool that holds at most `max_bytes` of pixels: [`ImagePool::push`] returns false
    /// once the next image would not fit.
    pub fn with_capacity_limit(size: usize, channels: usize, max_bytes: usize) -> ImagePool {
        let mut pool = ImagePool::new(size, channels);
        pool.max_images = max_bytes / pool.image_len();
        pool
    }

    /// Bytes per image: `channels * size * size`.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_len()
    }

    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// The most images this pool accepts (`usize::MAX` without a budget).
    pub fn max_images(&self) -> usize {
        self.max_images
    }

    /// True when the memory budget is used up.
    pub fn is_full(&self) -> bool {
        self.len() >= self.max_images
    }

    /// Reserves memory for `additional` more images (capped by the budget), to avoid the
    /// doubling of a growing Vec when the count is known in advance.
    pub fn reserve(&mut self, additional: usize) {
        let n = additional.min(self.max_images.saturating_sub(self.len()));
        self.pixels.reserve(n * self.image_len());
    }

    /// Appends one CHW image of [`ImagePool::image_len`] bytes. Returns false, and stores
    /// nothing, when the memory budget is used up.
    ///
    /// Panics if `chw` has the wrong length (a bug in the caller, not bad data).
    pub fn push(&mut self, chw: &[u8]) -> bool {
        assert_eq!(
            chw.len(),
            self.image_len(),
            "image of {} bytes pushed into a pool of {}x{}x{} images",
            chw.len(),
            self.channels,
            self.size,
            self.size
        );
        if self.is_full() {
            return false;
        }
        self.pixels.extend_from_slice(chw);
        true
    }

    /// Appends one image given as interleaved RGBA (`size * size * 4` bytes, the layout of a
    /// canvas's ImageData), already cropped and resized to `size x size`: the path of images
    /// the browser decodes. Alpha is dropped; grey pools take the luma with the same integer
    /// weights (Rec. 709, /10000) as the `image` crate uses for folders natively, so both
    /// paths give identical pixels. Returns false when the budget is used up.
    pub fn push_rgba(&mut self, rgba: &[u8]) -> bool {
        let plane = self.size * self.size;
        assert_eq!(rgba.len(), plane * 4, "RGBA image of {} bytes for a {}x{} pool", rgba.len(), self.size, self.size);
        if self.is_full() {
            return false;
        }
        let start = self.pixels.len();
        self.pixels.resize(start + self.image_len(), 0);
        let out = &mut self.pixels[start..];
        for (i, px) in rgba.chunks_exact(4).enumerate() {
            if self.channels == 1 {
                let l = 2126 * px[0] as u32 + 7152 * px[1] as u32 + 722 * px[2] as u32;
                out[i] = (l / 10000) as u8;
            } else {
                out[i] = px[0];
                out[plane + i] = px[1];
                out[2 * plane + i] = px[2];
            }
        }
        true
    }

    /// Image `i`, CHW. Panics if `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// All images, one after another (NCHW for the whole pool).
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_stops_pushes_without_panicking() {
        let mut pool = ImagePool::with_capacity_limit(2, 3, 12 * 2 + 5);
        assert_eq!(pool.max_images(), 2);
        assert!(pool.push(&[1; 12]));
        assert!(pool.push(&[2; 12]));
        assert!(!pool.push(&[3; 12]));
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.image(1), &[2; 12]);
    }

    #[test]
    fn rgba_goes_to_planes_and_luma() {
        let rgba = [10, 20, 30, 255, 255, 255, 255, 0];
        let mut rgb = ImagePool::new(1, 3);
        let mut grey = ImagePool::new(1, 1);
        for px in rgba.chunks(4) {
            rgb.push_rgba(px);
            grey.push_rgba(px);
        }
        assert_eq!(rgb.image(0), &[10, 20, 30]);
        // (2126 * 10 + 7152 * 20 + 722 * 30) / 10000 = 18
        assert_eq!(grey.pixels(), &[18, 255]);
    }
}
