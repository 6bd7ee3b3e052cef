//! shaders/activation.wgsl: relu, leaky relu, tanh and sigmoid, forward and backward.

use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, OpLabel, Sink, View};
use crate::shape::Activation;

pub static ACTIVATION: Family = Family {
    name: "activation",
    source: include_str!("../../shaders/activation.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::Read, Binding::ReadWrite],
};

/// Mirrors `Params` in activation.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    alpha: f32,
    _pad: [u32; 2],
}

/// One activation's dispatches, built once over fixed buffers.
pub struct ActivationOp {
    pub forward: Dispatch,
    /// dx = dy * f'(x) (overwritten); None when no gradients were asked for.
    pub backward: Option<Dispatch>,
}

impl ActivationOp {
    /// y = f(x); with `grads = Some((dy, dx))` also the backward, which reads the forward's input x.
    pub fn new(
        gpu: &Gpu,
        act: Activation,
        x: &View,
        y: &View,
        grads: Option<(&View, &View)>,
    ) -> Result<Self, GpuError> {
        let len = x.len;
        assert_eq!(y.len, len, "activation: y holds {} values, x {len}", y.len);
        if let Some((dy, dx)) = grads {
            assert_eq!(dy.len, len, "activation: dy holds {} values, x {len}", dy.len);
            assert_eq!(dx.len, len, "activation: dx holds {} values, x {len}", dx.len);
        }
        gpu.check_binding("activation x", x.bytes())?;
        // The shader's OP codes, compiled in.
        let (op, alpha) = match act {
            Activation::Relu => (0, 0.0),
            Activation::LeakyRelu(alpha) => (1, alpha),
            Activation::Tanh => (2, 0.0),
            Activation::Sigmoid => (3, 0.0),
        };
        let uniform = gpu.uniform("activation params", &Params { len: len as u32, alpha, _pad: [0; 2] });
        let grid = [super::grid_1d(len), 1, 1];
        let dispatch = |entry: &str, dy: Option<&View>, out: &View| {
            let views = [uniform.as_entire_binding(), x.binding(), gpu.optional(dy), out.binding()];
            gpu.dispatch(&ACTIVATION, entry, &[("OP", op)], gpu.bind_group(&ACTIVATION, entry, &views), grid)
        };
        Ok(ActivationOp {
            forward: dispatch("activation_forward", None, y),
            backward: grads.map(|(dy, dx)| dispatch("activation_backward", Some(dy), dx)),
        })
    }

    pub fn forward(&self, sink: &mut dyn Sink) {
        sink.push(OpLabel::new("activation forward"), &self.forward);
    }

    /// dx overwritten (nothing when built without gradients).
    pub fn backward(&self, sink: &mut dyn Sink) {
        if let Some(d) = &self.backward {
            sink.push(OpLabel::new("activation backward"), d);
        }
    }
}
