//! shaders/loss.wgsl: BCE with logits, its gradient and the GAN metrics in one dispatch.

use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, OpLabel, Sink, View};

pub static LOSS: Family = Family {
    name: "loss",
    source: include_str!("../../shaders/loss.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::ReadWrite, Binding::ReadWrite],
};

/// Mirrors `Params` in loss.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    offset: u32,
    target_value: f32,
    _pad: u32,
}

/// The loss of one batch of logits against one target, built once over fixed buffers.
pub struct BceOp {
    pub dispatch: Dispatch,
}

impl BceOp {
    /// d_logits = (sigmoid(logits) - target) / N (overwritten); metrics[offset] = mean loss and
    /// metrics[offset + 1] = mean sigmoid(logits).
    pub fn new(
        gpu: &Gpu,
        logits: &View,
        target: f32,
        d_logits: &View,
        metrics: &View,
        offset: usize,
    ) -> Result<Self, GpuError> {
        assert_eq!(d_logits.len, logits.len, "bce: d_logits holds {} values, logits {}", d_logits.len, logits.len);
        assert!(
            offset + 2 <= metrics.len,
            "bce: metrics slots {offset}..{} past its {} values",
            offset + 2,
            metrics.len
        );
        gpu.check_binding("bce logits", logits.bytes())?;
        let params = Params { len: logits.len as u32, offset: offset as u32, target_value: target, _pad: 0 };
        let uniform = gpu.uniform("bce params", &params);
        let bind_group = gpu.bind_group(
            &LOSS,
            "bce_with_logits",
            &[uniform.as_entire_binding(), logits.binding(), d_logits.binding(), metrics.binding()],
        );
        Ok(BceOp { dispatch: gpu.dispatch(&LOSS, "bce_with_logits", &[], bind_group, [1, 1, 1]) })
    }

    pub fn encode(&self, sink: &mut dyn Sink) {
        sink.push(OpLabel::new("loss"), &self.dispatch);
    }
}
