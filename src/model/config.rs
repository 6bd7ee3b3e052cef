//! A model's configuration: everything that fixes its architecture and its training.

use crate::shape::{AdamConfig, BatchNormConfig};
use std::fmt;

/// The seed's DCGAN, or its fully connected baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dcgan,
    Basic,
}

/// The up/down-sampling convolutions: the seed's 5x5 / stride 2 / pad 2 (output_padding 1 in G),
/// or the common 4x4 / stride 2 / pad 1. Both halve or double the size exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelForm {
    Seed5x5,
    K4S2P1,
}

impl KernelForm {
    /// (kernel, pad, output_padding) for stride 2.
    pub fn geometry(self) -> (usize, usize, usize) {
        match self {
            KernelForm::Seed5x5 => (5, 2, 1),
            KernelForm::K4S2P1 => (4, 1, 0),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub kind: Kind,
    /// 32 (MNIST, grey) or 64 (faces, RGB); G starts at 4x4 and doubles up to it.
    pub image_size: usize,
    pub channels: usize,
    pub z_dim: usize,
    pub ngf: usize,
    pub ndf: usize,
    pub kernel: KernelForm,
    pub batch: usize,
    pub adam: AdamConfig,
    pub bn: BatchNormConfig,
    /// Decay of the exponential moving average of G's parameters kept beside them (0: none).
    /// With it, samples, scores and exported weights come from the average (Yazici et al. 2019).
    pub ema: f32,
    /// Seeds the weights, the noise and the data order.
    pub seed: u64,
}

impl ModelConfig {
    /// MNIST at interactive speed: 32x32 grey, ngf = ndf = 32.
    pub fn mnist() -> ModelConfig {
        ModelConfig {
            kind: Kind::Dcgan,
            image_size: 32,
            channels: 1,
            z_dim: 100,
            ngf: 32,
            ndf: 32,
            kernel: KernelForm::Seed5x5,
            batch: 64,
            adam: AdamConfig::default(),
            bn: BatchNormConfig::default(),
            ema: 0.0,
            seed: 1,
        }
    }

    /// Faces: 64x64 RGB, ngf = ndf = 64.
    pub fn faces() -> ModelConfig {
        ModelConfig { image_size: 64, channels: 3, ngf: 64, ndf: 64, ..ModelConfig::mnist() }
    }

    /// A model small enough to step in milliseconds on a CPU adapter: 16x16 grey, z 8,
    /// ngf = ndf = 4, batch 3 (tests and smoke runs).
    pub fn tiny(kind: Kind) -> ModelConfig {
        ModelConfig { kind, image_size: 16, z_dim: 8, ngf: 4, ndf: 4, batch: 3, seed: 42, ..ModelConfig::mnist() }
    }

    /// Up/down-sampling stages between 4x4 and the image size.
    pub fn stages(&self) -> usize {
        (self.image_size / 4).trailing_zeros() as usize
    }

    pub fn image_len(&self) -> usize {
        self.channels * self.image_size * self.image_size
    }

    /// Checks the combination is buildable, with a message naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.image_size < 8 || !self.image_size.is_power_of_two() {
            return Err(format!("image size {} must be a power of two, at least 8", self.image_size));
        }
        if self.channels != 1 && self.channels != 3 {
            return Err(format!("channels {} must be 1 (grey) or 3 (RGB)", self.channels));
        }
        for (name, v) in [("z size", self.z_dim), ("ngf", self.ngf), ("ndf", self.ndf), ("batch", self.batch)] {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if !(0.0..1.0).contains(&self.ema) {
            return Err(format!("ema {} must be in [0, 1): the decay of G's moving average, 0 for none", self.ema));
        }
        if self.kind == Kind::Dcgan && !self.ngf.is_multiple_of(2) {
            return Err(format!("ngf {} must be even", self.ngf));
        }
        Ok(())
    }

    /// The fields that fix the architecture, as (name, value): a checkpoint stores them and
    /// refuses to load into a model whose values differ.
    pub fn architecture(&self) -> Vec<(&'static str, String)> {
        vec![
            ("kind", format!("{:?}", self.kind).to_lowercase()),
            ("image_size", self.image_size.to_string()),
            ("channels", self.channels.to_string()),
            ("z_dim", self.z_dim.to_string()),
            ("ngf", self.ngf.to_string()),
            ("ndf", self.ndf.to_string()),
            ("kernel", format!("{:?}", self.kernel).to_lowercase()),
        ]
    }
}

impl ModelConfig {
    /// This config with fields replaced by `key=value` words (as the page's controls send them):
    /// kind (dcgan|basic), size, channels, z, ngf, ndf, kernel (seed5x5|k4s2p1), batch, lr,
    /// beta1, ema, seed. Unknown keys and unreadable values are refused with their name; the result
    /// is validated.
    pub fn with_options(&self, options: &str) -> Result<ModelConfig, String> {
        let mut cfg = self.clone();
        for word in options.split_whitespace() {
            let (key, value) = word.split_once('=').ok_or(format!("option {word:?} is not key=value"))?;
            let bad = || format!("option {key}: {value:?} is not a valid value");
            let int = || value.parse::<usize>().map_err(|_| bad());
            let float = || value.parse::<f32>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(bad);
            match key {
                "kind" => {
                    cfg.kind = match value {
                        "dcgan" => Kind::Dcgan,
                        "basic" => Kind::Basic,
                        _ => return Err(bad()),
                    }
                }
                "kernel" => {
                    cfg.kernel = match value {
                        "seed5x5" => KernelForm::Seed5x5,
                        "k4s2p1" => KernelForm::K4S2P1,
                        _ => return Err(bad()),
                    }
                }
                "size" => cfg.image_size = int()?,
                "channels" => cfg.channels = int()?,
                "z" => cfg.z_dim = int()?,
                "ngf" => cfg.ngf = int()?,
                "ndf" => cfg.ndf = int()?,
                "batch" => cfg.batch = int()?,
                "lr" => cfg.adam.lr = float()?,
                "beta1" => cfg.adam.beta1 = float()?.min(0.9999),
                "ema" => cfg.ema = float()?,
                "seed" => cfg.seed = value.parse().map_err(|_| bad())?,
                _ => return Err(format!("unknown option {key:?}")),
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The `key=value` words [`ModelConfig::with_options`] reads, for every field it sets.
    pub fn options(&self) -> String {
        format!(
            "kind={} size={} channels={} z={} ngf={} ndf={} kernel={} batch={} lr={} beta1={} ema={} seed={}",
            format!("{:?}", self.kind).to_lowercase(),
            self.image_size,
            self.channels,
            self.z_dim,
            self.ngf,
            self.ndf,
            format!("{:?}", self.kernel).to_lowercase(),
            self.batch,
            self.adam.lr,
            self.adam.beta1,
            self.ema,
            self.seed
        )
    }
}

impl fmt::Display for ModelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arch: Vec<String> = self.architecture().iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(f, "{} batch={} lr={} beta1={}", arch.join(" "), self.batch, self.adam.lr, self.adam.beta1)?;
        if self.ema > 0.0 {
            write!(f, " ema={}", self.ema)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_and_name_what_is_wrong() {
        let cfg = ModelConfig::mnist()
            .with_options("kind=basic size=64 channels=3 ngf=16 lr=0.001 batch=8 ema=0.99")
            .unwrap();
        assert_eq!((cfg.kind, cfg.image_size, cfg.channels, cfg.ngf, cfg.batch), (Kind::Basic, 64, 3, 16, 8));
        assert_eq!(ModelConfig::faces().with_options(&cfg.options()).unwrap(), cfg);
        for (bad, says) in [
            ("size=48", "power of two"),
            ("ema=1", "ema"),
            ("colour=red", "colour"),
            ("lr=-1", "lr"),
            ("ngf", "key=value"),
        ] {
            let err = ModelConfig::mnist().with_options(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
