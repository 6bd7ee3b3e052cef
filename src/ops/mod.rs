//! One module per WGSL file in `shaders/`: the params struct mirroring the shader's uniform
//! block, and constructors that build each layer's dispatches once over fixed buffers, so a
//! training step only encodes them.
//!
//! Gradient convention (as in PyTorch): input gradients are overwritten; parameter gradients
//! are ADDED into, and a training step zeroes them once (one `clear_buffer` on the flat
//! gradient buffer) before its backward passes.

pub mod activation;
pub mod adam;
pub mod batchnorm;
pub mod conv;
pub mod ema;
pub mod linear;
pub mod loss;
pub mod util;
pub mod xent;

use crate::gpu::Gpu;
use crate::shape::Activation;

/// The code of an activation fused into another op's passes, as batchnorm.wgsl's ACT and
/// conv.wgsl's ACT and DACT take it (0 none, 1 relu, 2 leaky relu), and the leaky relu's slope.
pub(crate) fn fused_act_code(op: &str, act: Option<Activation>) -> (u32, Option<f32>) {
    match act {
        None => (0, None),
        Some(Activation::Relu) => (1, None),
        Some(Activation::LeakyRelu(alpha)) => (2, Some(alpha)),
        Some(other) => panic!("{op} fuses relu and leaky relu only, not {other:?}"),
    }
}

/// Workgroups for a grid-stride loop over `len` elements with 256 threads per workgroup.
/// Capped, since the kernels loop: large tensors never exceed the per-dimension limit.
pub(crate) fn grid_1d(len: usize) -> u32 {
    len.div_ceil(256).clamp(1, 4096) as u32
}

/// Records one compute pass with `f`, submits it, and returns (the GPU runs it asynchronously).
pub fn submit(gpu: &Gpu, label: &str, f: impl FnOnce(&mut wgpu::ComputePass<'_>)) {
    let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    {
        let mut pass =
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
        f(&mut pass);
    }
    gpu.queue.submit([encoder.finish()]);
}
