//! Generator weights for sampling: what the page ships in `www/weights/` and loads on open.
//!
//! A safetensors file holding only G's parameters and batchnorm running statistics (the
//! checkpoint's names and PyTorch shapes), stored as F16: half the bytes of F32, and a
//! generator's outputs move by far less than one 8-bit grey level (tested). Metadata: "format" =
//! [`FORMAT`], the architecture and hyperparameters as in a checkpoint, "step", and free-form
//! "info.<key>" lines for the model card (data set, command, wall time...).
//!
//! [`GeneratorWeights::from_bytes`] also takes a full training checkpoint (F32) and keeps its G,
//! so anything the CLI or the page saved can be drawn from.

use super::checkpoint::{self, tensor_layout, CheckpointError, TrainState};
use super::{generator, ModelConfig, NetSpec};
use half::f16;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;

pub const FORMAT: &str = "webgan-generator-1";
const INFO: &str = "info.";

/// A generator's inference state: parameters and running statistics, one vector per tensor in
/// `NetSpec` order.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorWeights {
    pub config: ModelConfig,
    /// Training steps behind these weights.
    pub step: u32,
    pub params: Vec<Vec<f32>>,
    pub running: Vec<Vec<f32>>,
    /// Model-card lines, sorted by key.
    pub info: Vec<(String, String)>,
}

/// The generator's tensors (name, shape): parameters then running statistics, no Adam moments.
fn layout(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    inference_layout(&generator(cfg))
}

/// A network's inference tensors (name, shape): the checkpoint's parameters and running
/// statistics, without Adam's moments (also the classifier's weights file).
pub(crate) fn inference_layout(spec: &NetSpec) -> Vec<(String, Vec<usize>)> {
    tensor_layout(spec).into_iter().filter(|(n, _)| !n.ends_with(".adam_m") && !n.ends_with(".adam_v")).collect()
}

/// A safetensors file of `tensors` stored as F16 under `layout`'s names and shapes, with
/// `meta`. Panics if the count or a length does not match the layout.
pub(crate) fn f16_file<'a>(
    layout: Vec<(String, Vec<usize>)>,
    tensors: impl ExactSizeIterator<Item = &'a Vec<f32>>,
    meta: BTreeMap<String, String>,
) -> Vec<u8> {
    assert_eq!(layout.len(), tensors.len(), "tensor count");
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = layout
        .into_iter()
        .zip(tensors)
        .map(|((name, shape), v)| {
            assert_eq!(shape.iter().product::<usize>(), v.len(), "{name}: length");
            (name, shape, v.iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()).collect())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, b)| (name, TensorView::new(Dtype::F16, shape.clone(), b).expect("shape fits data")));
    safetensors::serialize(views, Some(meta.into_iter().collect())).expect("weights serialise")
}

impl GeneratorWeights {
    /// G of a checkpoint.
    pub fn from_state(state: &TrainState, info: Vec<(String, String)>) -> GeneratorWeights {
        GeneratorWeights {
            config: state.config.clone(),
            step: state.step,
            params: state.g.params.clone(),
            running: state.g.running.clone(),
            info,
        }
    }

    /// The F16 safetensors file. Panics if a tensor's length does not match the config's G.
    pub fn to_bytes(&self) -> Vec<u8> {
        let cfg = &self.config;
        let mut meta: BTreeMap<String, String> = cfg
            .architecture()
            .into_iter()
            .chain(checkpoint::hyperparameters(cfg))
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        meta.insert("format".into(), FORMAT.into());
        meta.insert("step".into(), self.step.to_string());
        meta.extend(self.info.iter().map(|(k, v)| (format!("{INFO}{k}"), v.clone())));
        let tensors: Vec<&Vec<f32>> = self.params.iter().chain(&self.running).collect();
        f16_file(layout(cfg), tensors.into_iter(), meta)
    }

    /// Reads generator weights, or the generator of a full checkpoint. Checks every tensor's
    /// presence, type, shape and finiteness.
    pub fn from_bytes(bytes: &[u8]) -> Result<GeneratorWeights, CheckpointError> {
        let malformed = |e: safetensors::SafeTensorError| CheckpointError::Malformed(e.to_string());
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(malformed)?;
        let format = header.metadata().as_ref().and_then(|m| m.get("format")).cloned();
        match format.as_deref() {
            Some(checkpoint::FORMAT) => {
                let config = checkpoint::read_config(bytes)?;
                let state = checkpoint::from_bytes(bytes, &config)?;
                Ok(GeneratorWeights::from_state(&state, Vec::new()))
            }
            Some(FORMAT) => {
                let (file, meta) = checkpoint::open_as(bytes, FORMAT)?;
                let config = checkpoint::parse_config(&meta)?;
                config.validate().map_err(CheckpointError::Metadata)?;
                let mut values = read_tensors(&file, &layout(&config))?;
                let running = values.split_off(generator(&config).params().len());
                Ok(GeneratorWeights {
                    step: checkpoint::field(&meta, "step")?,
                    info: meta
                        .iter()
                        .filter_map(|(k, v)| Some((k.strip_prefix(INFO)?.to_string(), v.clone())))
                        .collect(),
                    config,
                    params: values,
                    running,
                })
            }
            _ => Err(CheckpointError::NotWeights(format)),
        }
    }
}

/// The named tensors as f32, from F16 or F32 storage, each checked for presence, shape and
/// finiteness (also the classifier's weights).
pub(crate) fn read_tensors(
    file: &SafeTensors<'_>,
    layout: &[(String, Vec<usize>)],
) -> Result<Vec<Vec<f32>>, CheckpointError> {
    let mut out = Vec::with_capacity(layout.len());
    for (name, shape) in layout {
        let bad = |why: String| CheckpointError::Tensor(format!("tensor {name} {why}"));
        let t = file.tensor(name).map_err(|_| bad("is missing".into()))?;
        if t.shape() != shape.as_slice() {
            return Err(bad(format!("has shape {:?}, expected {shape:?}", t.shape())));
        }
        let v: Vec<f32> = match t.dtype() {
            Dtype::F16 => t.data().chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::F32 => t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            other => return Err(bad(format!("is {other:?}, expected F16 or F32"))),
        };
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!("holds {} at index {i}", v[i])));
        }
        out.push(v);
    }
    Ok(out)
}
