//! Networks as sequences of layer specifications, per sample (the batch comes at build time).
//! The GPU network (`network.rs`) and the CPU reference network (`cpu.rs`) both interpret the
//! same specification, so they compute the same function by construction of the test.

use super::config::{Kind, ModelConfig};
use crate::rng::Rng;
use crate::shape::{Activation, BatchNorm, Conv2d, ConvTranspose2d, Linear};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerSpec {
    /// Linear with bias. A linear after a conv sees its [C, H, W] output flattened, and a conv
    /// after a linear sees [C, H, W]: NCHW makes both reshapes free.
    Linear {
        d_in: usize,
        d_out: usize,
    },
    /// Square images; with bias.
    ConvTranspose {
        c_in: usize,
        c_out: usize,
        hw_in: usize,
        kernel: usize,
        pad: usize,
        out_pad: usize,
    },
    Conv {
        c_in: usize,
        c_out: usize,
        hw_in: usize,
        kernel: usize,
        pad: usize,
    },
    BatchNorm {
        channels: usize,
        spatial: usize,
    },
    Act(Activation),
}

/// How a parameter tensor starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Normal(f32),
    TruncatedNormal(f32),
    Zeros,
    /// Batchnorm's [gamma; beta] = [1..; 0..].
    Affine,
}

pub const STRIDE: usize = 2;

impl LayerSpec {
    pub fn linear(&self, batch: usize) -> Linear {
        match *self {
            LayerSpec::Linear { d_in, d_out } => Linear { batch, d_in, d_out },
            _ => unreachable!(),
        }
    }
    pub fn conv(&self, batch: usize) -> Conv2d {
        match *self {
            LayerSpec::Conv { c_in, c_out, hw_in, kernel, pad } => {
                Conv2d { batch, c_in, c_out, h_in: hw_in, w_in: hw_in, kernel, stride: STRIDE, pad }
            }
            _ => unreachable!(),
        }
    }
    pub fn conv_transpose(&self, batch: usize) -> ConvTranspose2d {
        match *self {
            LayerSpec::ConvTranspose { c_in, c_out, hw_in, kernel, pad, out_pad } => {
                ConvTranspose2d { batch, c_in, c_out, h_in: hw_in, w_in: hw_in, kernel, stride: STRIDE, pad, out_pad }
            }
            _ => unreachable!(),
        }
    }
    pub fn batchnorm(&self, batch: usize) -> BatchNorm {
        match *self {
            LayerSpec::BatchNorm { channels, spatial } => BatchNorm { batch, channels, spatial },
            _ => unreachable!(),
        }
    }

    /// Values per sample going out.
    pub fn out_len(&self) -> usize {
        match self {
            LayerSpec::Linear { d_out, .. } => *d_out,
            LayerSpec::ConvTranspose { .. } => self.conv_transpose(1).output_len(),
            LayerSpec::Conv { .. } => self.conv(1).output_len(),
            LayerSpec::BatchNorm { channels, spatial } => channels * spatial,
            LayerSpec::Act(_) => 0, // same as its input; see NetSpec::out_lens
        }
    }

    /// The parameter tensors, in storage order, as (name, length, init). The seed's init:
    /// conv weights truncated normal (std 0.02), linear weights normal (std 0.01), biases 0,
    /// batchnorm gamma 1 and beta 0.
    pub fn params(&self) -> Vec<(&'static str, usize, Init)> {
        match self {
            LayerSpec::Linear { d_in, d_out } => {
                vec![("weight", d_in * d_out, Init::Normal(0.01)), ("bias", *d_out, Init::Zeros)]
            }
            LayerSpec::ConvTranspose { .. } | LayerSpec::Conv { .. } => {
                let (len, c_out) = match self {
                    LayerSpec::Conv { .. } => (self.conv(1).weight_len(), self.conv(1).c_out),
                    _ => (self.conv_transpose(1).weight_len(), self.conv_transpose(1).c_out),
                };
                vec![("weight", len, Init::TruncatedNormal(0.02)), ("bias", c_out, Init::Zeros)]
            }
            LayerSpec::BatchNorm { channels, .. } => vec![("affine", 2 * channels, Init::Affine)],
            LayerSpec::Act(_) => vec![],
        }
    }
}

/// One network: its input length per sample and its layers.
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    pub name: &'static str,
    pub input_len: usize,
    pub layers: Vec<LayerSpec>,
}

impl NetSpec {
    /// Values per sample after each layer.
    pub fn out_lens(&self) -> Vec<usize> {
        let mut len = self.input_len;
        self.layers
            .iter()
            .map(|l| {
                if !matches!(l, LayerSpec::Act(_)) {
                    len = l.out_len();
                }
                len
            })
            .collect()
    }

    pub fn output_len(&self) -> usize {
        *self.out_lens().last().expect("a network has layers")
    }

    /// Every parameter tensor as (layer index, name, length, init), in storage order.
    pub fn params(&self) -> Vec<(usize, &'static str, usize, Init)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(l.params().into_iter().map(|(name, len, init)| (i, name, len, init)));
        }
        out
    }

    /// "G.3.weight" and the like: checkpoint tensor names.
    pub fn param_names(&self) -> Vec<String> {
        self.params().iter().map(|(i, name, ..)| format!("{}.{i}.{name}", self.name)).collect()
    }

    /// Batchnorm layers' channel counts, in order (each keeps [mean; var] running statistics).
    pub fn batchnorm_channels(&self) -> Vec<usize> {
        self.layers
            .iter()
            .filter_map(|l| match l {
                LayerSpec::BatchNorm { channels, .. } => Some(*channels),
                _ => None,
            })
            .collect()
    }

    /// Fresh parameter values (the seed's initialisation) drawn from `rng`.
    pub fn init(&self, rng: &mut Rng) -> Vec<Vec<f32>> {
        self.params()
            .iter()
            .map(|&(_, _, len, init)| match init {
                Init::Normal(std) => (0..len).map(|_| rng.normal() * std).collect(),
                Init::TruncatedNormal(std) => (0..len).map(|_| rng.truncated_normal(std)).collect(),
                Init::Zeros => vec![0.0; len],
                Init::Affine => (0..len).map(|i| if i < len / 2 { 1.0 } else { 0.0 }).collect(),
            })
            .collect()
    }

    /// Running statistics at the start: mean 0, var 1 (as PyTorch).
    pub fn init_running(&self) -> Vec<Vec<f32>> {
        self.batchnorm_channels().iter().map(|&c| (0..2 * c).map(|i| if i < c { 0.0 } else { 1.0 }).collect()).collect()
    }

    /// Forward FLOPs of each layer (2 x multiply-adds; pointwise layers count 0).
    pub fn layer_flops(&self, batch: usize) -> Vec<f64> {
        self.layers
            .iter()
            .map(|l| match l {
                LayerSpec::Linear { .. } => l.linear(batch).flops(),
                LayerSpec::Conv { .. } => l.conv(batch).flops(),
                LayerSpec::ConvTranspose { .. } => l.conv_transpose(batch).flops(),
                _ => 0.0,
            })
            .collect()
    }
}

/// The generator: z -> image in [-1, 1].
pub fn generator(cfg: &ModelConfig) -> NetSpec {
    let mut layers = Vec::new();
    match cfg.kind {
        // z -> linear -> 4x4 x (ngf * 2^(stages-1)) -> BN -> ReLU, then per stage a stride-2
        // transposed conv doubling the size and halving the width (BN, ReLU), the last to the
        // image's channels with tanh.
        Kind::Dcgan => {
            let (kernel, pad, out_pad) = cfg.kernel.geometry();
            let stages = cfg.stages();
            let mut c = cfg.ngf << (stages - 1);
            layers.push(LayerSpec::Linear { d_in: cfg.z_dim, d_out: c * 16 });
            layers.push(LayerSpec::BatchNorm { channels: c, spatial: 16 });
            layers.push(LayerSpec::Act(Activation::Relu));
            let mut hw = 4;
            for s in 0..stages {
                let last = s + 1 == stages;
                let c_out = if last { cfg.channels } else { c / 2 };
                layers.push(LayerSpec::ConvTranspose { c_in: c, c_out, hw_in: hw, kernel, pad, out_pad });
                hw *= 2;
                if last {
                    layers.push(LayerSpec::Act(Activation::Tanh));
                } else {
                    layers.push(LayerSpec::BatchNorm { channels: c_out, spatial: hw * hw });
                    layers.push(LayerSpec::Act(Activation::Relu));
                }
                c = c_out;
            }
        }
        // Three hidden linear layers with ReLU, widths 8, 16 and 32 x ngf, then tanh.
        Kind::Basic => {
            let mut d = cfg.z_dim;
            for width in [8 * cfg.ngf, 16 * cfg.ngf, 32 * cfg.ngf] {
                layers.push(LayerSpec::Linear { d_in: d, d_out: width });
                layers.push(LayerSpec::Act(Activation::Relu));
                d = width;
            }
            layers.push(LayerSpec::Linear { d_in: d, d_out: cfg.image_len() });
            layers.push(LayerSpec::Act(Activation::Tanh));
        }
    }
    NetSpec { name: "G", input_len: cfg.z_dim, layers }
}

/// The discriminator: image -> one logit.
pub fn discriminator(cfg: &ModelConfig) -> NetSpec {
    let lrelu = LayerSpec::Act(Activation::LeakyRelu(0.2));
    let mut layers = Vec::new();
    match cfg.kind {
        // Per stage a stride-2 conv halving the size and doubling the width from ndf (BN from the
        // second on), LeakyReLU(0.2); then flatten and one linear to the logit.
        Kind::Dcgan => {
            let (kernel, pad, _) = cfg.kernel.geometry();
            let (mut c, mut hw) = (cfg.channels, cfg.image_size);
            for s in 0..cfg.stages() {
                let c_out = cfg.ndf << s;
                layers.push(LayerSpec::Conv { c_in: c, c_out, hw_in: hw, kernel, pad });
                hw /= 2;
                if s > 0 {
                    layers.push(LayerSpec::BatchNorm { channels: c_out, spatial: hw * hw });
                }
                layers.push(lrelu);
                c = c_out;
            }
            layers.push(LayerSpec::Linear { d_in: c * hw * hw, d_out: 1 });
        }
        // Two hidden linear layers with LeakyReLU, widths 16 and 8 x ndf, then the logit.
        Kind::Basic => {
            let mut d = cfg.image_len();
            for width in [16 * cfg.ndf, 8 * cfg.ndf] {
                layers.push(LayerSpec::Linear { d_in: d, d_out: width });
                layers.push(lrelu);
                d = width;
            }
            layers.push(LayerSpec::Linear { d_in: d, d_out: 1 });
        }
    }
    NetSpec { name: "D", input_len: cfg.image_len(), layers }
}
