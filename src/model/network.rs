//! A network on the GPU: its layers' dispatches built once over fixed buffers.
//!
//! Buffers: all parameters in one flat buffer (each tensor 256-byte aligned), their gradients and
//! Adam's two moments in three more of the same layout, so zeroing the gradients is one clear and
//! Adam is one dispatch; batchnorm running statistics in a flat buffer of their own (a dispatch
//! may not read and write one buffer); and per layer an output buffer and a buffer for the loss's
//! gradient with respect to that output.

use super::spec::{LayerSpec, NetSpec};
use crate::gpu::{Gpu, GpuError, Sink, Tuning, View};
use crate::ops::activation::ActivationOp;
use crate::ops::adam::AdamOp;
use crate::ops::batchnorm::{BatchNormBuffers, BatchNormGradBuffers, BatchNormOp};
use crate::ops::conv::{ConvBuffers, ConvGradBuffers, ConvOp};
use crate::ops::linear::{LinearBuffers, LinearGradBuffers, LinearOp};
use crate::shape::{Activation, AdamConfig, BatchNormConfig};

enum LayerOp {
    Linear(LinearOp),
    Conv(ConvOp),
    BatchNorm(BatchNormOp),
    Act(ActivationOp),
    /// An activation computed by the batchnorm or the conv before it.
    Fused,
}

/// The activation after layer `i` that runs in that conv's epilogues, if any: a relu or leaky
/// relu between two conv layers. The first conv's forward writes act(y) straight into the
/// activation's output, and the second conv's input gradient comes out already multiplied by
/// act' (read from that output), into the first conv's output gradient. The activation's own
/// passes, and the conv's own output buffers, go unused. act' from the output needs the output's
/// sign to be the input's: a leaky relu's slope must not be negative.
fn conv_fused_act(spec: &NetSpec, i: usize) -> Option<Activation> {
    let conv = |l: Option<&LayerSpec>| matches!(l, Some(LayerSpec::Conv { .. } | LayerSpec::ConvTranspose { .. }));
    let act = match spec.layers.get(i + 1) {
        Some(LayerSpec::Act(a @ Activation::Relu)) => *a,
        Some(LayerSpec::Act(a @ Activation::LeakyRelu(slope))) if *slope >= 0.0 => *a,
        _ => return None,
    };
    (conv(spec.layers.get(i)) && conv(spec.layers.get(i + 2))).then_some(act)
}

/// The flat buffers of one network's parameters (or gradients, or moments): the whole, and one
/// view per tensor in `NetSpec::params` order.
pub struct Flat {
    pub whole: View,
    pub tensors: Vec<View>,
}

impl Flat {
    pub fn new(gpu: &Gpu, label: &str, lens: &[usize]) -> Flat {
        let (whole, tensors) = gpu.flat(label, lens);
        Flat { whole, tensors }
    }

    /// Values per tensor.
    pub fn lens(&self) -> Vec<usize> {
        self.tensors.iter().map(|t| t.len).collect()
    }

    pub async fn read(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, GpuError> {
        let mut out = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            out.push(gpu.read(t).await?);
        }
        Ok(out)
    }

    pub fn write(&self, gpu: &Gpu, values: &[Vec<f32>]) {
        assert_eq!(values.len(), self.tensors.len(), "one value vector per tensor");
        for (t, v) in self.tensors.iter().zip(values) {
            gpu.write(t, v);
        }
    }
}

pub struct Network {
    pub spec: NetSpec,
    pub batch: usize,
    pub params: Flat,
    pub grads: Flat,
    pub adam_m: Flat,
    pub adam_v: Flat,
    pub running: Flat,
    pub input: View,
    /// d loss / d input, when something upstream needs it (D's, for G's backward).
    pub input_grad: Option<View>,
    pub outputs: Vec<View>,
    pub output_grads: Vec<View>,
    layers: Vec<LayerOp>,
    pub adam: AdamOp,
}

impl Network {
    /// Builds `spec` for `batch` samples reading `input`; writes d loss / d input to `input_grad`
    /// when given; reads d loss / d output from `output_grad` when given (else from a buffer of
    /// its own, `output_grads.last()`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        spec: NetSpec,
        batch: usize,
        tiles: &Tuning,
        adam: &AdamConfig,
        bn: &BatchNormConfig,
        input: View,
        input_grad: Option<View>,
        output_grad: Option<View>,
    ) -> Result<Network, GpuError> {
        assert_eq!(input.len, batch * spec.input_len, "{}: input length", spec.name);
        assert!(
            matches!(
                spec.layers[0],
                LayerSpec::Linear { .. } | LayerSpec::Conv { .. } | LayerSpec::ConvTranspose { .. }
            ),
            "a network starts with a layer that can skip its input gradient"
        );
        let lens: Vec<usize> = spec.params().iter().map(|p| p.2).collect();
        let name = spec.name;
        let params = Flat::new(gpu, &format!("{name} params"), &lens);
        let grads = Flat::new(gpu, &format!("{name} grads"), &lens);
        let adam_m = Flat::new(gpu, &format!("{name} adam m"), &lens);
        let adam_v = Flat::new(gpu, &format!("{name} adam v"), &lens);
        let running_lens: Vec<usize> = spec.batchnorm_channels().iter().map(|c| 2 * c).collect();
        let running = Flat::new(gpu, &format!("{name} running stats"), &running_lens);

        let out_lens = spec.out_lens();
        let outputs: Vec<View> =
            out_lens.iter().enumerate().map(|(i, l)| gpu.zeros(&format!("{name}.{i} out"), batch * l)).collect();
        let mut output_grads: Vec<View> =
            out_lens.iter().enumerate().map(|(i, l)| gpu.zeros(&format!("{name}.{i} d_out"), batch * l)).collect();
        if let Some(g) = output_grad {
            assert_eq!(g.len, outputs.last().unwrap().len, "{name}: output gradient length");
            *output_grads.last_mut().unwrap() = g;
        }

        let mut layers = Vec::with_capacity(spec.layers.len());
        let (mut p, mut bn_index) = (0, 0);
        for (i, layer) in spec.layers.iter().enumerate() {
            let x = if i == 0 { input.clone() } else { outputs[i - 1].clone() };
            // Through an activation fused into the convs around it, the gradient skips its buffer.
            let dx_act = i.checked_sub(2).and_then(|before| conv_fused_act(&spec, before));
            let dx = match i {
                0 => input_grad.clone(),
                _ if dx_act.is_some() => Some(output_grads[i - 2].clone()),
                _ => Some(output_grads[i - 1].clone()),
            };
            let (y, dy) = (outputs[i].clone(), output_grads[i].clone());
            let op = match layer {
                LayerSpec::Linear { .. } => {
                    let io =
                        LinearBuffers { x, w: params.tensors[p].clone(), bias: Some(params.tensors[p + 1].clone()), y };
                    let gr = LinearGradBuffers {
                        dy,
                        dx,
                        dw: grads.tensors[p].clone(),
                        db: Some(grads.tensors[p + 1].clone()),
                    };
                    LayerOp::Linear(LinearOp::new(gpu, &layer.linear(batch), tiles, &io, Some(&gr))?)
                }
                LayerSpec::Conv { .. } | LayerSpec::ConvTranspose { .. } => {
                    let act = conv_fused_act(&spec, i);
                    let io = ConvBuffers {
                        x,
                        w: params.tensors[p].clone(),
                        bias: Some(params.tensors[p + 1].clone()),
                        y: if act.is_some() { outputs[i + 1].clone() } else { y },
                        act,
                    };
                    let gr = ConvGradBuffers {
                        dy,
                        dx,
                        dw: grads.tensors[p].clone(),
                        db: Some(grads.tensors[p + 1].clone()),
                        dx_act,
                    };
                    LayerOp::Conv(match layer {
                        LayerSpec::Conv { .. } => ConvOp::conv2d(gpu, &layer.conv(batch), tiles, &io, Some(&gr))?,
                        _ => ConvOp::conv_transpose2d(gpu, &layer.conv_transpose(batch), tiles, &io, Some(&gr))?,
                    })
                }
                LayerSpec::BatchNorm { .. } => {
                    // A relu or leaky relu right after runs inside the batchnorm's passes: they
                    // write the activation's output and read the activation's output gradient
                    // (the batchnorm's own output buffers then go unused).
                    let fused = match spec.layers.get(i + 1) {
                        Some(LayerSpec::Act(a @ (Activation::Relu | Activation::LeakyRelu(_)))) => Some(*a),
                        _ => None,
                    };
                    let (y, dy) = match fused {
                        Some(_) => (outputs[i + 1].clone(), output_grads[i + 1].clone()),
                        None => (y, dy),
                    };
                    let io = BatchNormBuffers {
                        x,
                        affine: params.tensors[p].clone(),
                        running: running.tensors[bn_index].clone(),
                        y,
                    };
                    let gr = BatchNormGradBuffers {
                        dy,
                        dx: dx.expect("batchnorm is never first"),
                        d_affine: grads.tensors[p].clone(),
                    };
                    bn_index += 1;
                    LayerOp::BatchNorm(BatchNormOp::new(
                        gpu,
                        &layer.batchnorm(batch),
                        bn,
                        tiles.reduce_wg,
                        fused,
                        &io,
                        Some(&gr),
                    )?)
                }
                LayerSpec::Act(_) if matches!(layers.last(), Some(LayerOp::BatchNorm(b)) if b.fused.is_some()) => {
                    LayerOp::Fused
                }
                LayerSpec::Act(_) if i > 0 && conv_fused_act(&spec, i - 1).is_some() => LayerOp::Fused,
                LayerSpec::Act(act) => {
                    let dx = dx.expect("an activation is never first");
                    LayerOp::Act(ActivationOp::new(gpu, *act, &x, &y, Some((&dy, &dx)))?)
                }
            };
            layers.push(op);
            p += layer.params().len();
        }
        let adam = AdamOp::new(gpu, adam, &params.whole, &grads.whole, &adam_m.whole, &adam_v.whole)?;
        Ok(Network {
            spec,
            batch,
            params,
            grads,
            adam_m,
            adam_v,
            running,
            input,
            input_grad,
            outputs,
            output_grads,
            layers,
            adam,
        })
    }

    pub fn output(&self) -> &View {
        self.outputs.last().unwrap()
    }

    pub fn output_grad(&self) -> &View {
        self.output_grads.last().unwrap()
    }

    /// `train`: batch statistics (and running-statistics updates) in batchnorm; else running ones.
    pub fn forward(&self, sink: &mut dyn Sink, train: bool) {
        for op in &self.layers {
            match op {
                LayerOp::Linear(l) => l.forward(sink),
                LayerOp::Conv(c) => c.forward(sink),
                LayerOp::BatchNorm(b) if train => b.forward_train(sink),
                LayerOp::BatchNorm(b) => b.forward_eval(sink),
                LayerOp::Act(a) => a.forward(sink),
                LayerOp::Fused => {}
            }
        }
    }

    /// Backpropagates from `output_grad()`: the input gradient written only when `input_grad`
    /// (and the network was built with one); the parameter gradients added into `grads` only
    /// when `param_grads` (G's loss backpropagates through D without needing D's).
    pub fn backward(&self, sink: &mut dyn Sink, input_grad: bool, param_grads: bool) {
        for (i, op) in self.layers.iter().enumerate().rev() {
            let input = i > 0 || input_grad;
            match op {
                LayerOp::Linear(l) => l.backward(sink, input, param_grads),
                LayerOp::Conv(c) => c.backward(sink, input, param_grads),
                // Its input gradient needs the same reductions as its parameters' gradients.
                LayerOp::BatchNorm(b) => b.backward(sink),
                LayerOp::Act(a) => a.backward(sink),
                LayerOp::Fused => {}
            }
        }
    }

    /// Zeroes the parameter gradients (outside a compute pass).
    pub fn zero_grads(&self, encoder: &mut wgpu::CommandEncoder) {
        let g = &self.grads.whole;
        encoder.clear_buffer(&g.buffer, g.offset, Some(g.bytes()));
    }
}
