//! shaders/batchnorm.wgsl: batchnorm over (N, H, W) per channel, training and eval forward and
//! the training backward.
//!
//! A stage may bind at most 8 storage buffers, so gamma and beta travel as one `affine` tensor
//! of 2*C values (gamma, then beta), their gradient likewise, and the running mean and variance
//! as one `running` tensor of 2*C. WebGPU tracks usage per whole buffer, so `running` (written)
//! must not share a buffer with any tensor this op reads, such as the flat parameter buffer
//! holding `affine`.

use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, OpLabel, Sink, View};
use crate::shape::{Activation, BatchNorm, BatchNormConfig};

pub static BATCHNORM: Family = Family {
    name: "batchnorm",
    source: include_str!("../../shaders/batchnorm.wgsl"),
    bindings: &[
        Binding::Uniform,
        Binding::Read,      // x
        Binding::Read,      // affine
        Binding::Read,      // dy
        Binding::ReadWrite, // running
        Binding::ReadWrite, // stats
        Binding::ReadWrite, // y
        Binding::ReadWrite, // dx
        Binding::ReadWrite, // d_affine
    ],
};

/// Mirrors `Params` in batchnorm.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    channels: u32,
    spatial: u32,
    len: u32,
    momentum: f32,
    eps: f32,
    _pad: u32,
    /// The fused leaky relu's slope (the activation itself is the shader's compiled-in ACT).
    alpha: f32,
}

/// The forward buffers: input, [gamma; beta], [running mean; running var] (updated by the
/// training forward), output.
pub struct BatchNormBuffers {
    pub x: View,
    pub affine: View,
    pub running: View,
    pub y: View,
}

/// The backward buffers: the output gradient in; the input gradient (overwritten) and
/// [d_gamma; d_beta] (added into) out.
pub struct BatchNormGradBuffers {
    pub dy: View,
    pub dx: View,
    pub d_affine: View,
}

/// One batchnorm layer's dispatches, built once over fixed buffers.
pub struct BatchNormOp {
    /// Batch statistics (and the running-stat update), then the normalisation.
    pub forward_train: Vec<Dispatch>,
    /// With the running statistics; updates nothing.
    pub forward_eval: Dispatch,
    /// The per-channel sums (d_affine added into), then dx; empty without gradient buffers.
    pub backward: Vec<Dispatch>,
    /// The activation computed in the same passes, if any.
    pub fused: Option<Activation>,
}

fn check_len(what: &str, view: &View, len: usize) {
    assert_eq!(view.len, len, "batchnorm {what}: buffer holds {} values, the shape needs {len}", view.len);
}

impl BatchNormOp {
    pub fn new(
        gpu: &Gpu,
        s: &BatchNorm,
        cfg: &BatchNormConfig,
        reduce_wg: u32,
        fused: Option<Activation>,
        io: &BatchNormBuffers,
        grads: Option<&BatchNormGradBuffers>,
    ) -> Result<Self, GpuError> {
        let c = s.channels;
        // The shader's ACT code, compiled in.
        let (act, alpha) = super::fused_act_code("batchnorm", fused);
        let alpha = alpha.unwrap_or(0.0);
        check_len("x", &io.x, s.len());
        check_len("y", &io.y, s.len());
        check_len("affine", &io.affine, 2 * c);
        check_len("running", &io.running, 2 * c);
        if let Some(g) = grads {
            check_len("dy", &g.dy, s.len());
            check_len("dx", &g.dx, s.len());
            check_len("d_affine", &g.d_affine, 2 * c);
        }
        gpu.check_binding("batchnorm x", io.x.bytes())?;
        gpu.check_workgroups("batchnorm statistics (one workgroup per channel)", c as u32)?;

        let params = Params {
            batch: s.batch as u32,
            channels: c as u32,
            spatial: s.spatial as u32,
            len: s.len() as u32,
            momentum: cfg.momentum,
            eps: cfg.eps,
            _pad: 0,
            alpha,
        };
        let uniform = gpu.uniform("batchnorm params", &params);
        let stats = gpu.zeros("batchnorm stats", 4 * c);
        // Without gradients the backward bindings still need buffers; writable ones cannot be
        // the shared read-only dummy.
        let (unused_dx, unused_d_affine);
        let (dy, dx, d_affine) = match grads {
            Some(g) => (Some(&g.dy), &g.dx, &g.d_affine),
            None => {
                unused_dx = gpu.zeros("batchnorm dx (no gradients)", 1);
                unused_d_affine = gpu.zeros("batchnorm d_affine (no gradients)", 1);
                (None, &unused_dx, &unused_d_affine)
            }
        };
        let bind_group = gpu.bind_group(
            &BATCHNORM,
            "batchnorm",
            &[
                uniform.as_entire_binding(),
                io.x.binding(),
                io.affine.binding(),
                gpu.optional(dy),
                io.running.binding(),
                stats.binding(),
                io.y.binding(),
                dx.binding(),
                d_affine.binding(),
            ],
        );
        let per_channel = [c as u32, 1, 1];
        let elementwise = [super::grid_1d(s.len()), 1, 1];
        let dispatch = |entry: &str, grid: [u32; 3]| {
            gpu.dispatch(&BATCHNORM, entry, &[("WG", reduce_wg), ("ACT", act)], bind_group.clone(), grid)
        };
        // Planes of a multiple of 4 values take the vec4 twins.
        let (vec4, by4) = match s.spatial % 4 {
            0 => ("4", [super::grid_1d(s.len() / 4), 1, 1]),
            _ => ("", elementwise),
        };
        let pass = |entry: &str, grid| dispatch(&format!("{entry}{vec4}"), grid);

        let forward_train = vec![pass("batchnorm_stats", per_channel), pass("batchnorm_normalize", by4)];
        let forward_eval = pass("batchnorm_forward_eval", by4);
        let backward = match grads {
            Some(_) => vec![pass("batchnorm_backward_reduce", per_channel), pass("batchnorm_backward_input", by4)],
            None => Vec::new(),
        };
        Ok(BatchNormOp { forward_train, forward_eval, backward, fused })
    }

    /// y from the batch statistics; the running statistics are updated.
    pub fn forward_train(&self, sink: &mut dyn Sink) {
        for d in &self.forward_train {
            sink.push(OpLabel::new("batchnorm forward"), d);
        }
    }

    /// y from the running statistics.
    pub fn forward_eval(&self, sink: &mut dyn Sink) {
        sink.push(OpLabel::new("batchnorm forward"), &self.forward_eval);
    }

    /// dx overwritten, d_affine added into. Reads the statistics of the last `forward_train`.
    pub fn backward(&self, sink: &mut dyn Sink) {
        for d in &self.backward {
            sink.push(OpLabel::new("batchnorm backward"), d);
        }
    }
}
