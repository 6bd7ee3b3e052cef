//! shaders/adam.wgsl: one Adam step over a network's flat parameter buffer.

use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, OpLabel, Sink, View};
use crate::shape::AdamConfig;

pub static ADAM: Family = Family {
    name: "adam",
    source: include_str!("../../shaders/adam.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::ReadWrite, Binding::ReadWrite, Binding::ReadWrite],
};

/// Mirrors `Params` in adam.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    /// Bias corrections 1 - beta1^t and 1 - beta2^t for the step t about to run.
    c1: f32,
    c2: f32,
    _pad: u32,
}

impl Params {
    fn new(cfg: &AdamConfig, len: usize, step: u32) -> Params {
        // f64 so the corrections of late steps (beta2^t near 1) keep their digits.
        let t = i32::try_from(step).expect("adam step fits in i32");
        let correction = |beta: f32| (1.0 - f64::from(beta).powi(t)) as f32;
        Params {
            len: len as u32,
            lr: cfg.lr,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            c1: correction(cfg.beta1),
            c2: correction(cfg.beta2),
            _pad: 0,
        }
    }
}

/// Adam over one network: one dispatch, whose uniform the op owns because the bias
/// corrections change every step.
pub struct AdamOp {
    pub dispatch: Dispatch,
    uniform: wgpu::Buffer,
    cfg: AdamConfig,
    len: usize,
}

impl AdamOp {
    /// params, grads, m and v are whole flat buffers of one layout; m and v start at zero.
    /// Ready for step 1.
    pub fn new(gpu: &Gpu, cfg: &AdamConfig, params: &View, grads: &View, m: &View, v: &View) -> Result<Self, GpuError> {
        let len = params.len;
        for (what, view) in [("grads", grads), ("m", m), ("v", v)] {
            assert_eq!(view.len, len, "adam: {what} holds {} values, params {len}", view.len);
        }
        gpu.check_binding("adam params", params.bytes())?;
        let uniform = gpu.uniform("adam params", &Params::new(cfg, len, 1));
        let bind_group = gpu.bind_group(
            &ADAM,
            "adam_step",
            &[uniform.as_entire_binding(), grads.binding(), params.binding(), m.binding(), v.binding()],
        );
        let dispatch = match len % 4 {
            0 => gpu.dispatch(&ADAM, "adam_step4", &[], bind_group, [super::grid_1d(len / 4), 1, 1]),
            _ => gpu.dispatch(&ADAM, "adam_step", &[], bind_group, [super::grid_1d(len), 1, 1]),
        };
        Ok(AdamOp { dispatch, uniform, cfg: *cfg, len })
    }

    /// Sets the 1-based step count for the next submitted `encode`. The write lands before the
    /// next queue submission, so each step must be submitted before the next `set_step`.
    pub fn set_step(&self, gpu: &Gpu, step: u32) {
        assert!(step >= 1, "adam step is 1-based");
        gpu.queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&Params::new(&self.cfg, self.len, step)));
    }

    pub fn encode(&self, sink: &mut dyn Sink) {
        sink.push(OpLabel::new("adam"), &self.dispatch);
    }
}
