//! shaders/linear.wgsl: y = x w^T + b, forward and backward.

use super::util::channel_sum;
use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, OpLabel, Sink, Tuning, View};
use crate::shape::Linear;

pub static LINEAR: Family = Family {
    name: "linear",
    source: include_str!("../../shaders/linear.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::Read, Binding::Read, Binding::ReadWrite],
};

/// Mirrors `Params` in linear.wgsl.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    d_in: u32,
    d_out: u32,
    has_bias: u32,
}

pub struct LinearBuffers {
    pub x: View,
    pub w: View,
    pub bias: Option<View>,
    pub y: View,
}

/// dy in; dx (overwritten; None for a first layer) and dw, db (added into) out.
pub struct LinearGradBuffers {
    pub dy: View,
    pub dx: Option<View>,
    pub dw: View,
    pub db: Option<View>,
}

/// One linear layer's dispatches, built once over fixed buffers.
pub struct LinearOp {
    pub forward: Dispatch,
    pub backward_input: Option<Dispatch>,
    /// d_weight, then d_bias.
    pub backward_params: Vec<Dispatch>,
    pub flops: f64,
}

impl LinearOp {
    pub fn new(
        gpu: &Gpu,
        g: &Linear,
        tiles: &Tuning,
        io: &LinearBuffers,
        grads: Option<&LinearGradBuffers>,
    ) -> Result<LinearOp, GpuError> {
        let params = Params {
            batch: g.batch as u32,
            d_in: g.d_in as u32,
            d_out: g.d_out as u32,
            has_bias: io.bias.is_some() as u32,
        };
        let uniform = gpu.uniform("linear params", &params);
        let gemm = |entry: &str, a: &View, b: &View, bias: Option<&View>, out: &View, rows: usize, cols: usize| {
            for v in [a, b, out] {
                gpu.check_binding(entry, v.bytes())?;
            }
            let tiles = tiles.linear.fit(rows, cols);
            let grid =
                [cols.div_ceil(tiles.tile_n() as usize) as u32, rows.div_ceil(tiles.tile_m() as usize) as u32, 1];
            gpu.check_workgroups(entry, grid[0].max(grid[1]))?;
            let bind_group = gpu.bind_group(
                &LINEAR,
                entry,
                &[uniform.as_entire_binding(), a.binding(), b.binding(), gpu.optional(bias), out.binding()],
            );
            Ok::<_, GpuError>(gpu.dispatch(&LINEAR, entry, &tiles.consts(), bind_group, grid))
        };
        assert_eq!(io.x.len, g.batch * g.d_in, "linear x length");
        assert_eq!(io.w.len, g.d_out * g.d_in, "linear w length");
        assert_eq!(io.y.len, g.batch * g.d_out, "linear y length");
        let forward = gemm("linear_forward", &io.x, &io.w, io.bias.as_ref(), &io.y, g.batch, g.d_out)?;
        let (mut backward_input, mut backward_params) = (None, Vec::new());
        if let Some(gr) = grads {
            assert_eq!(gr.dy.len, io.y.len, "linear dy length");
            if let Some(dx) = &gr.dx {
                assert_eq!(dx.len, io.x.len, "linear dx length");
                backward_input = Some(gemm("linear_backward_input", &gr.dy, &io.w, None, dx, g.batch, g.d_in)?);
            }
            assert_eq!(gr.dw.len, io.w.len, "linear dw length");
            backward_params.push(gemm("linear_backward_weight", &gr.dy, &io.x, None, &gr.dw, g.d_out, g.d_in)?);
            if let Some(db) = &gr.db {
                backward_params.push(channel_sum(gpu, tiles.reduce_wg, g.batch, g.d_out, 1, &gr.dy, db)?);
            }
        }
        Ok(LinearOp { forward, backward_input, backward_params, flops: g.flops() })
    }

    pub fn forward(&self, sink: &mut dyn Sink) {
        sink.push(OpLabel::matmul("linear forward", self.flops), &self.forward);
    }

    /// dx overwritten when `input` (and there is one); dw and db added into when `params`.
    pub fn backward(&self, sink: &mut dyn Sink, input: bool, params: bool) {
        if let Some(d) = self.backward_input.as_ref().filter(|_| input) {
            sink.push(OpLabel::matmul("linear d_input", self.flops), d);
        }
        if params {
            for (i, d) in self.backward_params.iter().enumerate() {
                let flops = if i == 0 { self.flops } else { 0.0 };
                sink.push(OpLabel::matmul("linear d_weight+bias", flops), d);
            }
        }
    }
}
