//! shaders/util.wgsl: per-channel sums (the bias gradients).

use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, View};

pub static UTIL: Family = Family {
    name: "util",
    source: include_str!("../../shaders/util.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::ReadWrite],
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    channels: u32,
    spatial: u32,
    _pad: u32,
}

/// out[c] += sum over (n, s) of src[n, c, s]: src is [batch, channels, spatial].
pub fn channel_sum(
    gpu: &Gpu,
    batch: usize,
    channels: usize,
    spatial: usize,
    src: &View,
    out: &View,
) -> Result<Dispatch, GpuError> {
    assert_eq!(src.len, batch * channels * spatial, "channel_sum: src length");
    assert_eq!(out.len, channels, "channel_sum: out length");
    gpu.check_workgroups("channel_sum (one workgroup per channel)", channels as u32)?;
    let params = Params { batch: batch as u32, channels: channels as u32, spatial: spatial as u32, _pad: 0 };
    let uniform = gpu.uniform("channel_sum params", &params);
    Ok(Dispatch {
        pipeline: gpu.kernel(&UTIL, "channel_sum", &[]),
        bind_group: gpu.bind_group(&UTIL, "channel_sum", &[uniform.as_entire_binding(), src.binding(), out.binding()]),
        grid: [channels as u32, 1, 1],
    })
}
