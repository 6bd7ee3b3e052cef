//! A training run's position beyond the weights: the data order and the noise stream. With the
//! checkpoint's weights, Adam moments and step, this is all a resume needs to continue exactly
//! as an uninterrupted run would (the CLI and the page store it the same way, so either can
//! resume the other's checkpoints).

use crate::data::{ImagePool, Sampler, SamplerState};
use crate::model::latent::normal_z;
use crate::model::ModelConfig;
use crate::rng::Rng;

/// The sampler over the data and the generator's noise stream.
#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    pub sampler: Sampler,
    pub noise: Rng,
}

impl RunState {
    /// A fresh run over `len` images, both streams drawn from the config's seed.
    pub fn new(cfg: &ModelConfig, len: usize) -> RunState {
        RunState::seeded(cfg.seed, len)
    }

    /// For a checkpoint that carries no run state (one written by PyTorch, say) at `step`: a
    /// data order and noise stream of their own, not a replay of the run's first batches.
    pub fn fresh_at(cfg: &ModelConfig, len: usize, step: u32) -> RunState {
        RunState::seeded(cfg.seed ^ (u64::from(step) << 32), len)
    }

    fn seeded(seed: u64, len: usize) -> RunState {
        RunState { sampler: Sampler::new(len, seed), noise: Rng::new(seed ^ 0x2) }
    }

    /// The next step's inputs: the real batch (NCHW u8) into `real`, and z (batch x z_dim).
    pub fn next(&mut self, cfg: &ModelConfig, pool: &ImagePool, real: &mut Vec<u8>) -> Vec<f32> {
        self.sampler.next_batch(pool, cfg.batch, real);
        normal_z(&mut self.noise, cfg.batch, cfg.z_dim)
    }

    /// As a checkpoint's run pairs.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let (s, r) = (self.sampler.state(), self.noise.state());
        vec![
            ("epoch".into(), s.epoch.to_string()),
            ("sampler".into(), format!("{} {} {} {}", s.len, s.seed, s.epoch, s.pos)),
            ("rng".into(), format!("{:016x} {:016x} {:016x} {:016x}", r[0], r[1], r[2], r[3])),
        ]
    }

    /// From a checkpoint's run pairs, for data of `len` images (a resume on other data would
    /// silently change the batch sequence, so it is refused with both counts named).
    pub fn from_pairs(run: &[(String, String)], len: usize) -> Result<RunState, String> {
        let get = |k: &str| {
            run.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).ok_or(format!("checkpoint has no run.{k}"))
        };
        let n: Vec<u64> = get("sampler")?
            .split(' ')
            .map(|v| v.parse().map_err(|_| "unreadable sampler state"))
            .collect::<Result<_, _>>()?;
        let [s_len, seed, epoch, pos] = n[..] else { return Err("unreadable sampler state".into()) };
        if s_len as usize != len {
            return Err(format!("the checkpoint was trained on {s_len} images, this data has {len}"));
        }
        let sampler = Sampler::from_state(SamplerState { len: s_len, seed, epoch, pos }).map_err(|e| e.to_string())?;
        let r: Vec<u64> = get("rng")?
            .split(' ')
            .map(|v| u64::from_str_radix(v, 16).map_err(|_| "unreadable rng state"))
            .collect::<Result<_, _>>()?;
        let noise = Rng::from_state(r.try_into().map_err(|_| "unreadable rng state")?);
        Ok(RunState { sampler, noise })
    }
}

/// The fixed z of every sample grid, so successive grids show the same draws learning.
pub fn grid_z(cfg: &ModelConfig, count: usize) -> Vec<f32> {
    normal_z(&mut Rng::new(cfg.seed ^ 0xf1ed), count, cfg.z_dim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_refuse_other_data() {
        let cfg = ModelConfig::tiny(crate::model::Kind::Dcgan);
        let pool = {
            let mut p = ImagePool::new(cfg.image_size, 1);
            (0..10u8).for_each(|i| assert!(p.push(&vec![i; cfg.image_len()])));
            p
        };
        let mut run = RunState::new(&cfg, pool.len());
        let mut real = Vec::new();
        for _ in 0..5 {
            run.next(&cfg, &pool, &mut real);
        }
        let back = RunState::from_pairs(&run.to_pairs(), pool.len()).unwrap();
        assert_eq!(back, run);
        let (mut a, mut b) = (run.clone(), back);
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        assert_eq!(a.next(&cfg, &pool, &mut ra), b.next(&cfg, &pool, &mut rb));
        assert_eq!(ra, rb);
        let err = RunState::from_pairs(&run.to_pairs(), 11).unwrap_err();
        assert!(err.contains("10 images") && err.contains("11"), "{err}");
        assert!(RunState::from_pairs(&[], 10).is_err());
    }
}
