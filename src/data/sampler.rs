//! Shuffled batches from an [`ImagePool`], reproducible from four integers.
//!
//! Each epoch visits every image exactly once, in a permutation drawn from the run's seed and
//! the epoch number alone (`Rng::new(seed ^ epoch * K)`, then Fisher-Yates). The permutation
//! is never stored: [`SamplerState`] is `(len, seed, epoch, pos)`, and
//! [`Sampler::from_state`] regenerates it, so a checkpoint resumes the exact batch sequence of
//! an uninterrupted run.

use super::{DataError, ImagePool};
use crate::rng::Rng;

/// Draws images without replacement in a seeded order that is reshuffled every epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sampler {
    /// This epoch's permutation of `0..len`.
    order: Vec<u32>,
    /// The next index into `order`; always `< order.len()`.
    pos: usize,
    /// Completed passes over the data. Read it; move the sampler with [`Sampler::from_state`].
    pub epoch: u64,
    seed: u64,
}

/// The whole position of a [`Sampler`]: what a checkpoint stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerState {
    /// Images in the pool it draws from.
    pub len: u64,
    pub seed: u64,
    pub epoch: u64,
    /// Images of this epoch already drawn.
    pub pos: u64,
}

impl Sampler {
    /// A sampler over `len` images at the start of epoch 0.
    ///
    /// Panics if `len` is 0 or does not fit in u32.
    pub fn new(len: usize, seed: u64) -> Sampler {
        assert!(len > 0, "cannot sample from an empty dataset");
        assert!(len <= u32::MAX as usize, "at most 2^32 - 1 images");
        Sampler { order: permutation(len, seed, 0), pos: 0, epoch: 0, seed }
    }

    /// Number of images it draws from.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Never true (a sampler needs images); here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Epochs done, with the fraction of the current one (for progress displays).
    pub fn epochs(&self) -> f64 {
        self.epoch as f64 + self.pos as f64 / self.order.len() as f64
    }

    /// The next image index. After the last image of an epoch the next epoch's order is drawn
    /// at once, so `epoch` counts completed passes.
    pub fn next_index(&mut self) -> usize {
        let i = self.order[self.pos] as usize;
        self.pos += 1;
        if self.pos == self.order.len() {
            self.epoch += 1;
            self.pos = 0;
            self.order = permutation(self.order.len(), self.seed, self.epoch);
        }
        i
    }

    /// Fills `out` (cleared first) with `batch` images, NCHW u8: `batch * pool.image_len()`
    /// bytes. A batch that crosses the end of an epoch takes the rest from the next epoch's
    /// order (so one image may appear twice in that batch, once per epoch).
    ///
    /// Panics if the pool does not have the sampler's length.
    pub fn next_batch(&mut self, pool: &ImagePool, batch: usize, out: &mut Vec<u8>) {
        assert_eq!(pool.len(), self.len(), "sampler over {} images used on a pool of {}", self.len(), pool.len());
        out.clear();
        out.reserve(batch * pool.image_len());
        for _ in 0..batch {
            out.extend_from_slice(pool.image(self.next_index()));
        }
    }

    /// The position, for a checkpoint.
    pub fn state(&self) -> SamplerState {
        SamplerState { len: self.order.len() as u64, seed: self.seed, epoch: self.epoch, pos: self.pos as u64 }
    }

    /// The sampler at a saved position: it continues exactly as the saved one would have.
    /// Check `state.len` against the dataset first (a checkpoint may come from other data).
    pub fn from_state(state: SamplerState) -> Result<Sampler, DataError> {
        let SamplerState { len, seed, epoch, pos } = state;
        if len == 0 || len > u32::MAX as u64 {
            return Err(DataError::BadSamplerState(format!("dataset of {len} images")));
        }
        if pos >= len {
            return Err(DataError::BadSamplerState(format!("position {pos} in an epoch of {len} images")));
        }
        let len = len as usize;
        Ok(Sampler { order: permutation(len, seed, epoch), pos: pos as usize, epoch, seed })
    }
}

/// The order of epoch `epoch`: a permutation of `0..len` that depends on `(seed, epoch)` only.
fn permutation(len: usize, seed: u64, epoch: u64) -> Vec<u32> {
    // Rng::new runs the key through splitmix64, so nearby keys give unrelated streams; the odd
    // multiplier spreads epochs across all 64 bits so that (seed, epoch) pairs do not collide
    // for small seeds.
    let mut rng = Rng::new(seed ^ epoch.wrapping_mul(0xd1b5_4a32_d192_ed03));
    let mut order: Vec<u32> = (0..len as u32).collect();
    rng.shuffle(&mut order);
    order
}
