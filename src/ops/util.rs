//! shaders/util.wgsl: per-channel sums (the bias gradients) and u8 image unpacking.

use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, View};

pub static UTIL: Family = Family {
    name: "util",
    source: include_str!("../../shaders/util.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::ReadWrite, Binding::Read],
};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    channels: u32,
    spatial: u32,
    _pad: u32,
}

/// out[c] += sum over (n, s) of src[n, c, s]: src is [batch, channels, spatial]; one workgroup
/// of `reduce_wg` threads (a power of two, [`crate::gpu::Tuning::reduce_wg`]) per channel, or
/// with spatial 1 one thread per channel.
pub fn channel_sum(
    gpu: &Gpu,
    reduce_wg: u32,
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
    let views = [uniform.as_entire_binding(), src.binding(), out.binding(), gpu.optional(None)];
    let bind_group = gpu.bind_group(&UTIL, "channel_sum", &views);
    let (entry, grid) = match spatial {
        1 => ("channel_sum_columns", channels.div_ceil(reduce_wg as usize) as u32),
        _ if spatial.is_multiple_of(4) => ("channel_sum4", channels as u32),
        _ => ("channel_sum", channels as u32),
    };
    Ok(gpu.dispatch(&UTIL, entry, &[("WG", reduce_wg)], bind_group, [grid, 1, 1]))
}

/// A buffer of `len` bytes for u8 images, as u32 words (what `unpack_u8` reads).
pub fn byte_buffer(gpu: &Gpu, label: &str, len: usize) -> View {
    gpu.zeros(label, len.div_ceil(4))
}

/// out = bytes of `words` mapped to [-1, 1]; `out.len` bytes are read.
pub fn unpack_u8(gpu: &Gpu, words: &View, out: &View) -> Result<Dispatch, GpuError> {
    assert!(words.len * 4 >= out.len, "unpack_u8: too few bytes");
    let params = Params { batch: 1, channels: 1, spatial: out.len as u32, _pad: 0 };
    let uniform = gpu.uniform("unpack_u8 params", &params);
    let views = [uniform.as_entire_binding(), gpu.optional(None), out.binding(), words.binding()];
    let bind_group = gpu.bind_group(&UTIL, "unpack_u8", &views);
    Ok(gpu.dispatch(&UTIL, "unpack_u8", &[], bind_group, [super::grid_1d(out.len), 1, 1]))
}
