//! shaders/ema.wgsl: the moving average of a network's flat parameter buffer.

use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, OpLabel, Sink, View};

pub static EMA: Family = Family {
    name: "ema",
    source: include_str!("../../shaders/ema.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::ReadWrite],
};

/// Mirrors `Params` in ema.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    decay: f32,
    _pad: [u32; 2],
}

/// `ema = decay * ema + (1 - decay) * params` over two whole flat buffers of one layout: one
/// dispatch, recorded after the network's Adam step.
pub struct EmaOp {
    pub dispatch: Dispatch,
}

impl EmaOp {
    pub fn new(gpu: &Gpu, decay: f32, params: &View, ema: &View) -> Result<EmaOp, GpuError> {
        let len = params.len;
        assert_eq!(ema.len, len, "ema: the average holds {} values, params {len}", ema.len);
        assert_eq!(len % 4, 0, "ema: flat buffers hold whole vec4s");
        gpu.check_binding("ema params", params.bytes())?;
        let uniform = gpu.uniform("ema params", &Params { len: len as u32, decay, _pad: [0; 2] });
        let bind_group =
            gpu.bind_group(&EMA, "ema_update4", &[uniform.as_entire_binding(), params.binding(), ema.binding()]);
        let dispatch = gpu.dispatch(&EMA, "ema_update4", &[], bind_group, [super::grid_1d(len / 4), 1, 1]);
        Ok(EmaOp { dispatch })
    }

    pub fn encode(&self, sink: &mut dyn Sink) {
        sink.push(OpLabel::new("ema"), &self.dispatch);
    }
}
