//! shaders/xent.wgsl: softmax cross-entropy with integer labels (the digit classifier's loss),
//! its gradient and the batch accuracy in one dispatch.

use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, View};

pub static XENT: Family = Family {
    name: "xent",
    source: include_str!("../../shaders/xent.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::Read, Binding::ReadWrite, Binding::ReadWrite],
};

/// Mirrors `Params` in xent.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    classes: u32,
    offset: u32,
    _pad: u32,
}

/// The loss of one batch of class scores against its labels, built once over fixed buffers.
pub struct XentOp {
    pub dispatch: Dispatch,
}

impl XentOp {
    /// `logits` and `d_logits` hold [batch, classes]; `labels` holds `batch` u32 words (see
    /// [`write_labels`]), each below `classes`. d_logits = (softmax - one-hot) / batch
    /// (overwritten); metrics[offset] = mean loss, metrics[offset + 1] = accuracy.
    pub fn new(
        gpu: &Gpu,
        classes: usize,
        logits: &View,
        labels: &View,
        d_logits: &View,
        metrics: &View,
        offset: usize,
    ) -> Result<Self, GpuError> {
        assert!(classes > 0 && logits.len.is_multiple_of(classes), "xent: {} logits for {classes} classes", logits.len);
        let batch = logits.len / classes;
        assert_eq!(d_logits.len, logits.len, "xent: d_logits holds {} values, logits {}", d_logits.len, logits.len);
        assert_eq!(labels.len, batch, "xent: {} labels for {batch} samples", labels.len);
        assert!(offset + 2 <= metrics.len, "xent: metrics slots {offset}..{} past its {}", offset + 2, metrics.len);
        gpu.check_binding("xent logits", logits.bytes())?;
        let params = Params { batch: batch as u32, classes: classes as u32, offset: offset as u32, _pad: 0 };
        let uniform = gpu.uniform("xent params", &params);
        let bind_group = gpu.bind_group(
            &XENT,
            "softmax_xent",
            &[uniform.as_entire_binding(), logits.binding(), labels.binding(), d_logits.binding(), metrics.binding()],
        );
        Ok(XentOp { dispatch: gpu.dispatch(&XENT, "softmax_xent", &[], bind_group, [1, 1, 1]) })
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.dispatch.encode(pass);
    }
}

/// Uploads class labels into a buffer of u32 words (a `View` counts 4-byte words, so one label
/// per word); `labels.len()` must equal the view's length.
pub fn write_labels(gpu: &Gpu, view: &View, labels: &[u8]) {
    assert_eq!(labels.len(), view.len, "write_labels: {} labels for a buffer of {}", labels.len(), view.len);
    let words: Vec<u32> = labels.iter().map(|&l| u32::from(l)).collect();
    gpu.queue.write_buffer(&view.buffer, view.offset, bytemuck::cast_slice(&words));
}
