//! Checkpoints as safetensors files: everything a run needs to carry on exactly where it stopped.
//!
//! Tensors (all F32, little-endian, PyTorch shapes): every parameter of G and D under its
//! [`NetSpec::param_names`] name ("G.0.weight"), its Adam moments ("G.0.weight.adam_m",
//! "G.0.weight.adam_v"), and each batchnorm layer's running statistics in order ("G.running.0",
//! shape [2, C]: means then variances), and with a moving average of G's parameters
//! (`ModelConfig::ema`) that average under the parameters' names with ".ema". String metadata: "format" = [`FORMAT`], the architecture
//! ([`ModelConfig::architecture`]), the hyperparameters ([`hyperparameters`]), "step", and the
//! caller's run state (epoch, rng and sampler state...) under "run.<key>".
//!
//! Loading checks everything before it changes anything: the format, the architecture (every
//! differing field named), every tensor's presence, type, shape and finiteness. Hyperparameters
//! may differ (a resumed run may change lr or batch): [`read_config`] gives the checkpoint's.

use super::{discriminator, generator, KernelForm, Kind, LayerSpec, ModelConfig, NetSpec, Network};
use crate::gpu::{Gpu, GpuError};
use crate::shape::{AdamConfig, BatchNormConfig};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub const FORMAT: &str = "webgan-checkpoint-1";
const RUN: &str = "run.";

/// Why a checkpoint was refused. Nothing was changed when one is returned.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckpointError {
    /// Not a safetensors file, or a truncated one.
    Malformed(String),
    /// A safetensors file, but not a webgan checkpoint of this format (the "format" found).
    Format(Option<String>),
    /// Neither a checkpoint nor generator weights (the "format" found).
    NotWeights(Option<String>),
    /// Made for another architecture: one line per differing field.
    Architecture(Vec<String>),
    /// A metadata value missing or unreadable.
    Metadata(String),
    /// A tensor missing, of the wrong type or shape, or holding NaN or infinity.
    Tensor(String),
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Malformed(why) => write!(f, "not a readable safetensors file (truncated?): {why}"),
            CheckpointError::Format(found) => {
                let found = found.as_deref().map_or("none".to_string(), |s| format!("{s:?}"));
                write!(f, "not a webgan checkpoint: format is {found}, expected {FORMAT:?}")
            }
            CheckpointError::NotWeights(found) => {
                let found = found.as_deref().map_or("none".to_string(), |s| format!("{s:?}"));
                let gen = super::weights::FORMAT;
                write!(f, "not webgan weights: format is {found}, expected {FORMAT:?} or {gen:?}")
            }
            CheckpointError::Architecture(diffs) => {
                write!(f, "checkpoint is for a different architecture: {}", diffs.join("; "))
            }
            CheckpointError::Metadata(why) | CheckpointError::Tensor(why) => write!(f, "bad checkpoint: {why}"),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// One network's trained state, each field one vector per tensor in `NetSpec` order.
#[derive(Clone, Debug, PartialEq)]
pub struct NetState {
    pub params: Vec<Vec<f32>>,
    pub adam_m: Vec<Vec<f32>>,
    pub adam_v: Vec<Vec<f32>>,
    pub running: Vec<Vec<f32>>,
}

impl NetState {
    /// A network as training starts it: `params`, zero Adam moments, running statistics at
    /// mean 0 and variance 1.
    pub fn fresh(spec: &NetSpec, params: Vec<Vec<f32>>) -> NetState {
        let zeros = || params.iter().map(|t| vec![0.0; t.len()]).collect();
        NetState { adam_m: zeros(), adam_v: zeros(), running: spec.init_running(), params }
    }

    pub async fn read(gpu: &Gpu, net: &Network) -> Result<NetState, GpuError> {
        Ok(NetState {
            params: net.params.read(gpu).await?,
            adam_m: net.adam_m.read(gpu).await?,
            adam_v: net.adam_v.read(gpu).await?,
            running: net.running.read(gpu).await?,
        })
    }

    pub fn write(&self, gpu: &Gpu, net: &Network) {
        net.params.write(gpu, &self.params);
        net.adam_m.write(gpu, &self.adam_m);
        net.adam_v.write(gpu, &self.adam_v);
        net.running.write(gpu, &self.running);
    }

    /// All tensors in [`tensor_layout`] order.
    fn tensors(&self) -> impl Iterator<Item = &Vec<f32>> {
        self.params.iter().chain(&self.adam_m).chain(&self.adam_v).chain(&self.running)
    }
}

/// A checkpoint in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// The checkpoint's configuration: architecture and hyperparameters as saved.
    pub config: ModelConfig,
    pub step: u32,
    /// The caller's run state. Comes back from a file sorted by key.
    pub run: Vec<(String, String)>,
    pub g: NetState,
    pub d: NetState,
    /// The moving average of G's parameters, one vector per parameter tensor; empty without one.
    pub g_ema: Vec<Vec<f32>>,
}

/// The hyperparameters a checkpoint records (a resume may change them).
pub fn hyperparameters(cfg: &ModelConfig) -> Vec<(&'static str, String)> {
    vec![
        ("batch", cfg.batch.to_string()),
        ("lr", cfg.adam.lr.to_string()),
        ("beta1", cfg.adam.beta1.to_string()),
        ("beta2", cfg.adam.beta2.to_string()),
        ("adam_eps", cfg.adam.eps.to_string()),
        ("bn_momentum", cfg.bn.momentum.to_string()),
        ("bn_eps", cfg.bn.eps.to_string()),
        ("ema", cfg.ema.to_string()),
        ("seed", cfg.seed.to_string()),
    ]
}

/// PyTorch's shape of parameter `name` of `layer`.
pub(super) fn param_shape(layer: &LayerSpec, name: &str) -> Vec<usize> {
    match (*layer, name) {
        (LayerSpec::Linear { d_in, d_out }, "weight") => vec![d_out, d_in],
        (LayerSpec::Linear { d_out: c, .. }, "bias")
        | (LayerSpec::Conv { c_out: c, .. }, "bias")
        | (LayerSpec::ConvTranspose { c_out: c, .. }, "bias") => vec![c],
        (LayerSpec::Conv { c_in, c_out, kernel, .. }, "weight") => vec![c_out, c_in, kernel, kernel],
        (LayerSpec::ConvTranspose { c_in, c_out, kernel, .. }, "weight") => vec![c_in, c_out, kernel, kernel],
        (LayerSpec::BatchNorm { channels, .. }, "affine") => vec![2, channels],
        _ => unreachable!("{layer:?} has no parameter {name}"),
    }
}

/// (name, shape) of every tensor a network stores: parameters, Adam m, Adam v, running statistics.
pub(super) fn tensor_layout(spec: &NetSpec) -> Vec<(String, Vec<usize>)> {
    let params: Vec<(String, Vec<usize>)> = spec
        .params()
        .iter()
        .zip(spec.param_names())
        .map(|(&(layer, name, len, _), full)| {
            let shape = param_shape(&spec.layers[layer], name);
            debug_assert_eq!(shape.iter().product::<usize>(), len, "{full}");
            (full, shape)
        })
        .collect();
    let suffixed = |suffix: &'static str| params.iter().map(move |(n, s)| (format!("{n}{suffix}"), s.clone()));
    let running = spec
        .batchnorm_channels()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (format!("{}.running.{i}", spec.name), vec![2, c]));
    let mut out: Vec<_> = suffixed("").chain(suffixed(".adam_m")).chain(suffixed(".adam_v")).collect();
    out.extend(running);
    out
}

impl TrainState {
    /// G's moving average to carry on from: the saved one, or (a checkpoint without one, the
    /// average just switched on) G's parameters as they are.
    pub fn ema_or_params(&self) -> &[Vec<f32>] {
        if self.g_ema.is_empty() {
            &self.g.params
        } else {
            &self.g_ema
        }
    }
}

/// (name, shape) of the moving average of a network's parameters.
fn ema_layout(spec: &NetSpec) -> Vec<(String, Vec<usize>)> {
    let n = spec.params().len();
    tensor_layout(spec).into_iter().take(n).map(|(name, shape)| (format!("{name}.ema"), shape)).collect()
}

impl TrainState {
    /// The safetensors file. Panics if a tensor's length does not match the config's model.
    pub fn to_bytes(&self) -> Vec<u8> {
        let cfg = &self.config;
        let mut meta: Vec<(String, String)> =
            cfg.architecture().into_iter().chain(hyperparameters(cfg)).map(|(k, v)| (k.to_string(), v)).collect();
        meta.push(("format".into(), FORMAT.into()));
        meta.push(("step".into(), self.step.to_string()));
        meta.extend(self.run.iter().map(|(k, v)| (format!("{RUN}{k}"), v.clone())));

        let mut tensors = Vec::new();
        for (spec, net) in [(generator(cfg), &self.g), (discriminator(cfg), &self.d)] {
            let layout = tensor_layout(&spec);
            assert_eq!(layout.len(), net.tensors().count(), "{}: tensor count", spec.name);
            for ((name, shape), values) in layout.into_iter().zip(net.tensors()) {
                assert_eq!(shape.iter().product::<usize>(), values.len(), "{name}: length");
                tensors.push((name, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()));
            }
        }
        if !self.g_ema.is_empty() {
            let names = ema_layout(&generator(cfg));
            assert_eq!(names.len(), self.g_ema.len(), "G's moving average: tensor count");
            for ((name, shape), values) in names.into_iter().zip(&self.g_ema) {
                assert_eq!(shape.iter().product::<usize>(), values.len(), "{name}: length");
                tensors.push((name, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()));
            }
        }
        let views = tensors.iter().map(|(name, shape, bytes)| {
            (name, TensorView::new(Dtype::F32, shape.clone(), bytes).expect("shape fits data"))
        });
        safetensors::serialize(views, Some(meta.into_iter().collect())).expect("a checkpoint serialises")
    }
}

/// The parsed file and its string metadata, once the format is known to be ours.
fn open(bytes: &[u8]) -> Result<(SafeTensors<'_>, BTreeMap<String, String>), CheckpointError> {
    open_as(bytes, FORMAT)
}

/// [`open`] for files of format `format`.
pub(super) fn open_as<'a>(
    bytes: &'a [u8],
    format: &str,
) -> Result<(SafeTensors<'a>, BTreeMap<String, String>), CheckpointError> {
    let malformed = |e: safetensors::SafeTensorError| CheckpointError::Malformed(e.to_string());
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(malformed)?;
    let meta: BTreeMap<String, String> =
        header.metadata().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
    match meta.get("format") {
        Some(f) if f == format => Ok((SafeTensors::deserialize(bytes).map_err(malformed)?, meta)),
        found => Err(CheckpointError::Format(found.cloned())),
    }
}

pub(super) fn field<T: FromStr>(meta: &BTreeMap<String, String>, key: &str) -> Result<T, CheckpointError> {
    let value = meta.get(key).ok_or_else(|| CheckpointError::Metadata(format!("no {key:?} in the metadata")))?;
    value.parse().map_err(|_| CheckpointError::Metadata(format!("{key}={value:?} is unreadable")))
}

/// Finds the variant whose lowercased Debug name (as `ModelConfig::architecture` writes it) is stored.
fn variant<T: fmt::Debug + Copy>(meta: &BTreeMap<String, String>, key: &str, all: &[T]) -> Result<T, CheckpointError> {
    let value: String = field(meta, key)?;
    all.iter()
        .copied()
        .find(|v| format!("{v:?}").to_lowercase() == value)
        .ok_or_else(|| CheckpointError::Metadata(format!("unknown {key} {value:?}")))
}

pub(super) fn parse_config(meta: &BTreeMap<String, String>) -> Result<ModelConfig, CheckpointError> {
    Ok(ModelConfig {
        kind: variant(meta, "kind", &[Kind::Dcgan, Kind::Basic])?,
        image_size: field(meta, "image_size")?,
        channels: field(meta, "channels")?,
        z_dim: field(meta, "z_dim")?,
        ngf: field(meta, "ngf")?,
        ndf: field(meta, "ndf")?,
        kernel: variant(meta, "kernel", &[KernelForm::Seed5x5, KernelForm::K4S2P1])?,
        batch: field(meta, "batch")?,
        adam: AdamConfig {
            lr: field(meta, "lr")?,
            beta1: field(meta, "beta1")?,
            beta2: field(meta, "beta2")?,
            eps: field(meta, "adam_eps")?,
        },
        bn: BatchNormConfig { momentum: field(meta, "bn_momentum")?, eps: field(meta, "bn_eps")? },
        // Files from before the moving average have none.
        ema: if meta.contains_key("ema") { field(meta, "ema")? } else { 0.0 },
        seed: field(meta, "seed")?,
    })
}

/// The configuration a checkpoint was saved with (to build a model for it, or to see which
/// hyperparameters a resume would change).
pub fn read_config(bytes: &[u8]) -> Result<ModelConfig, CheckpointError> {
    parse_config(&open(bytes)?.1)
}

/// One network's tensors from the file, checked against `spec`.
fn read_net(file: &SafeTensors<'_>, spec: &NetSpec) -> Result<NetState, CheckpointError> {
    let mut values = read_f32(file, tensor_layout(spec))?;
    let n = spec.params().len();
    let running = values.split_off(3 * n);
    let adam_v = values.split_off(2 * n);
    let adam_m = values.split_off(n);
    Ok(NetState { params: values, adam_m, adam_v, running })
}

/// The moving average of G's parameters if the file holds one (all of it, checked), else empty.
fn read_ema(file: &SafeTensors<'_>, spec: &NetSpec) -> Result<Vec<Vec<f32>>, CheckpointError> {
    let layout = ema_layout(spec);
    match file.tensor(&layout[0].0) {
        Ok(_) => read_f32(file, layout),
        Err(_) => Ok(Vec::new()),
    }
}

/// The named F32 tensors, each checked for presence, type, shape and finiteness.
fn read_f32(file: &SafeTensors<'_>, layout: Vec<(String, Vec<usize>)>) -> Result<Vec<Vec<f32>>, CheckpointError> {
    let mut values = Vec::new();
    for (name, shape) in layout {
        let bad = |why: String| CheckpointError::Tensor(format!("tensor {name} {why}"));
        let t = file.tensor(&name).map_err(|_| bad("is missing".into()))?;
        if t.dtype() != Dtype::F32 {
            return Err(bad(format!("is {:?}, expected F32", t.dtype())));
        }
        if t.shape() != shape {
            return Err(bad(format!("has shape {:?}, this model needs {shape:?}", t.shape())));
        }
        let v: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!("holds {} at index {i}", v[i])));
        }
        values.push(v);
    }
    Ok(values)
}

/// Reads and checks a checkpoint for a model of `expected`'s architecture. The returned config
/// has that architecture and the checkpoint's hyperparameters.
pub fn from_bytes(bytes: &[u8], expected: &ModelConfig) -> Result<TrainState, CheckpointError> {
    let (file, meta) = open(bytes)?;
    let diffs: Vec<String> = expected
        .architecture()
        .into_iter()
        .filter_map(|(k, want)| match meta.get(k) {
            Some(v) if *v == want => None,
            Some(v) => Some(format!("checkpoint has {k}={v}, this model {k}={want}")),
            None => Some(format!("checkpoint has no {k}, this model {k}={want}")),
        })
        .collect();
    if !diffs.is_empty() {
        return Err(CheckpointError::Architecture(diffs));
    }
    let config = parse_config(&meta)?;
    Ok(TrainState {
        step: field(&meta, "step")?,
        run: meta.iter().filter_map(|(k, v)| Some((k.strip_prefix(RUN)?.to_string(), v.clone()))).collect(),
        g: read_net(&file, &generator(&config))?,
        d: read_net(&file, &discriminator(&config))?,
        g_ema: read_ema(&file, &generator(&config))?,
        config,
    })
}
