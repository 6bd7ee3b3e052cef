//! shaders/conv.wgsl: conv2d and conv_transpose2d, forward and backward.
//!
//! A conv_transpose2d is the adjoint of a conv2d (see [`ConvTranspose2d::adjoint`]): its forward
//! is that conv's input gradient, its input gradient is that conv's forward, and its weight
//! gradient is that conv's weight gradient with x and dy swapped. So both layers are built from
//! the same three GEMM kernels over the conv2d geometry.

use super::util::channel_sum;
use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, OpLabel, Sink, Tiles, Tuning, View};
use crate::shape::{Conv2d, ConvTranspose2d};

pub static CONV: Family = Family {
    name: "conv",
    source: include_str!("../../shaders/conv.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::Read, Binding::Read, Binding::ReadWrite],
};

/// Mirrors `Params` in conv.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    batch: u32,
    c_in: u32,
    h_in: u32,
    w_in: u32,
    c_out: u32,
    h_out: u32,
    w_out: u32,
    kernel: u32,
    stride: u32,
    pad: u32,
    has_bias: u32,
    splits: u32,
    split_len: u32,
    out_len: u32,
    _pad0: u32,
    _pad1: u32,
}

impl Params {
    fn new(g: &Conv2d) -> Params {
        Params {
            batch: g.batch as u32,
            c_in: g.c_in as u32,
            h_in: g.h_in as u32,
            w_in: g.w_in as u32,
            c_out: g.c_out as u32,
            h_out: g.h_out() as u32,
            w_out: g.w_out() as u32,
            kernel: g.kernel as u32,
            stride: g.stride as u32,
            pad: g.pad as u32,
            has_bias: 0,
            splits: 1,
            split_len: 0,
            out_len: 0,
            _pad0: 0,
            _pad1: 0,
        }
    }
}

/// Workgroup counts that keep an adapter busy before split-K stops paying for its partials.
const WORKGROUPS_WANTED: usize = 256;
/// Fewest reduction steps worth giving one split.
const MIN_SPLIT_LEN: usize = 256;
/// Most scratch memory the split-K partials may take.
const MAX_PARTIAL_BYTES: u64 = 64 << 20;

fn check_len(what: &str, view: &View, len: usize) {
    assert_eq!(view.len, len, "{what}: buffer holds {} values, the geometry needs {len}", view.len);
}

fn grid(gpu: &Gpu, what: &str, cols: usize, rows: usize, tiles: &Tiles) -> Result<[u32; 2], GpuError> {
    let x = cols.div_ceil(tiles.tile_n() as usize) as u32;
    let y = rows.div_ceil(tiles.tile_m() as usize) as u32;
    gpu.check_workgroups(what, x)?;
    gpu.check_workgroups(what, y)?;
    Ok([x, y])
}

fn dispatch(
    gpu: &Gpu,
    entry: &str,
    tiles: &Tiles,
    params: &Params,
    views: [Option<&View>; 4],
    grid: [u32; 3],
) -> Result<Dispatch, GpuError> {
    for v in views.iter().flatten() {
        gpu.check_binding(entry, v.bytes())?;
    }
    let uniform = gpu.uniform(entry, params);
    let [a, b, bias, out] = views;
    let bind_group = gpu.bind_group(
        &CONV,
        entry,
        &[
            uniform.as_entire_binding(),
            gpu.optional(a),
            gpu.optional(b),
            gpu.optional(bias),
            out.expect("output").binding(),
        ],
    );
    // conv_gather also compiles in the stride and its taps per phase (see conv.wgsl).
    let (k, s) = (params.kernel, params.stride);
    let consts = [tiles.consts().as_slice(), &[("S", s), ("KU", k.div_ceil(s))]].concat();
    Ok(Dispatch { pipeline: gpu.kernel(&CONV, entry, &consts), bind_group, grid })
}

/// y = conv2d(x, w) + bias, for the geometry `g` (conv2d forward; conv_transpose2d d_input).
fn direct(
    gpu: &Gpu,
    g: &Conv2d,
    tiles: &Tuning,
    w: &View,
    x: &View,
    bias: Option<&View>,
    y: &View,
) -> Result<Dispatch, GpuError> {
    check_len("conv_direct w", w, g.weight_len());
    check_len("conv_direct x", x, g.input_len());
    check_len("conv_direct y", y, g.output_len());
    let mut params = Params::new(g);
    params.has_bias = bias.is_some() as u32;
    let (cols, rows) = (g.batch * g.h_out() * g.w_out(), g.c_out);
    let tiles = &tiles.direct.fit(rows, cols);
    let [gx, gy] = grid(gpu, "conv_direct", cols, rows, tiles)?;
    dispatch(gpu, "conv_direct", tiles, &params, [Some(w), Some(x), bias, Some(y)], [gx, gy, 1])
}

/// dx = conv2d's input gradient of dy (+ bias), for `g` (conv2d d_input; conv_transpose2d forward).
fn gather(
    gpu: &Gpu,
    g: &Conv2d,
    tiles: &Tuning,
    w: &View,
    dy: &View,
    bias: Option<&View>,
    dx: &View,
) -> Result<Dispatch, GpuError> {
    check_len("conv_gather w", w, g.weight_len());
    check_len("conv_gather dy", dy, g.output_len());
    check_len("conv_gather dx", dx, g.input_len());
    let mut params = Params::new(g);
    params.has_bias = bias.is_some() as u32;
    // The largest stride phase has ceil(h / stride) x ceil(w / stride) pixels.
    let cols = g.batch * g.h_in.div_ceil(g.stride) * g.w_in.div_ceil(g.stride);
    let tiles = &tiles.gather.fit(g.c_in, cols);
    let [gx, gy] = grid(gpu, "conv_gather", cols, g.c_in, tiles)?;
    let phases = (g.stride * g.stride) as u32;
    dispatch(gpu, "conv_gather", tiles, &params, [Some(w), Some(dy), bias, Some(dx)], [gx, gy, phases])
}

/// dw += conv2d's weight gradient from dy and x, for `g`; split-K with a reduce pass when the
/// output alone would not fill the adapter.
fn weight_grad(
    gpu: &Gpu,
    g: &Conv2d,
    tiles: &Tuning,
    dy: &View,
    x: &View,
    dw: &View,
) -> Result<Vec<Dispatch>, GpuError> {
    check_len("conv_weight_grad dy", dy, g.output_len());
    check_len("conv_weight_grad x", x, g.input_len());
    check_len("conv_weight_grad dw", dw, g.weight_len());
    let total = g.batch * g.h_out() * g.w_out();
    let out_len = g.weight_len();
    let tiles = &tiles.weight_grad.fit(g.c_out, g.c_in * g.kernel * g.kernel);
    let [gx, gy] = grid(gpu, "conv_weight_grad", g.c_in * g.kernel * g.kernel, g.c_out, tiles)?;
    let tiles_count = (gx * gy) as usize;
    let max_by_memory =
        (MAX_PARTIAL_BYTES.min(gpu.limits.max_storage_buffer_binding_size as u64) / (out_len as u64 * 4)) as usize;
    let wanted = WORKGROUPS_WANTED.div_ceil(tiles_count);
    let splits = wanted.min(total / MIN_SPLIT_LEN).min(max_by_memory).max(1);
    let split_len = total.div_ceil(splits);
    let splits = total.div_ceil(split_len);

    let mut params = Params::new(g);
    params.splits = splits as u32;
    params.split_len = split_len as u32;
    params.out_len = out_len as u32;
    if splits == 1 {
        return Ok(vec![dispatch(
            gpu,
            "conv_weight_grad",
            tiles,
            &params,
            [Some(dy), Some(x), None, Some(dw)],
            [gx, gy, 1],
        )?]);
    }
    let partials = gpu.zeros("conv weight-grad partials", splits * out_len);
    Ok(vec![
        dispatch(
            gpu,
            "conv_weight_grad",
            tiles,
            &params,
            [Some(dy), Some(x), None, Some(&partials)],
            [gx, gy, splits as u32],
        )?,
        dispatch(
            gpu,
            "conv_weight_grad_reduce",
            tiles,
            &params,
            [Some(&partials), None, None, Some(dw)],
            [super::grid_1d(out_len), 1, 1],
        )?,
    ])
}

/// The forward buffers of a conv layer: input, weight, optional bias, output.
pub struct ConvBuffers {
    pub x: View,
    pub w: View,
    pub bias: Option<View>,
    pub y: View,
}

/// The backward buffers: the output gradient in; the input gradient (overwritten; None for a
/// first layer, whose input needs none) and the parameter gradients (added into) out.
pub struct ConvGradBuffers {
    pub dy: View,
    pub dx: Option<View>,
    pub dw: View,
    pub db: Option<View>,
}

/// One conv2d or conv_transpose2d layer's dispatches, built once over fixed buffers.
pub struct ConvOp {
    pub forward: Dispatch,
    /// d_input; None when no dx was asked for.
    pub backward_input: Option<Dispatch>,
    /// d_weight (one GEMM, or split-K partials and their reduce), then d_bias.
    pub backward_params: Vec<Dispatch>,
    /// Of the forward pass; each of the two backward GEMMs costs the same.
    pub flops: f64,
    pub transposed: bool,
}

impl ConvOp {
    pub fn conv2d(
        gpu: &Gpu,
        g: &Conv2d,
        tiles: &Tuning,
        io: &ConvBuffers,
        grads: Option<&ConvGradBuffers>,
    ) -> Result<ConvOp, GpuError> {
        let forward = direct(gpu, g, tiles, &io.w, &io.x, io.bias.as_ref(), &io.y)?;
        let (mut backward_input, mut backward_params) = (None, Vec::new());
        if let Some(gr) = grads {
            if let Some(dx) = &gr.dx {
                backward_input = Some(gather(gpu, g, tiles, &io.w, &gr.dy, None, dx)?);
            }
            backward_params = weight_grad(gpu, g, tiles, &gr.dy, &io.x, &gr.dw)?;
            if let Some(db) = &gr.db {
                let pixels = g.h_out() * g.w_out();
                backward_params.push(channel_sum(gpu, tiles.reduce_wg, g.batch, g.c_out, pixels, &gr.dy, db)?);
            }
        }
        Ok(ConvOp { forward, backward_input, backward_params, flops: g.flops(), transposed: false })
    }

    pub fn conv_transpose2d(
        gpu: &Gpu,
        g: &ConvTranspose2d,
        tiles: &Tuning,
        io: &ConvBuffers,
        grads: Option<&ConvGradBuffers>,
    ) -> Result<ConvOp, GpuError> {
        let adj = g.adjoint();
        let forward = gather(gpu, &adj, tiles, &io.w, &io.x, io.bias.as_ref(), &io.y)?;
        let (mut backward_input, mut backward_params) = (None, Vec::new());
        if let Some(gr) = grads {
            if let Some(dx) = &gr.dx {
                backward_input = Some(direct(gpu, &adj, tiles, &io.w, &gr.dy, None, dx)?);
            }
            backward_params = weight_grad(gpu, &adj, tiles, &io.x, &gr.dy, &gr.dw)?;
            if let Some(db) = &gr.db {
                let pixels = g.h_out() * g.w_out();
                backward_params.push(channel_sum(gpu, tiles.reduce_wg, g.batch, g.c_out, pixels, &gr.dy, db)?);
            }
        }
        Ok(ConvOp { forward, backward_input, backward_params, flops: g.flops(), transposed: true })
    }

    /// The profile labels of forward, d_input and d_weight+bias.
    fn labels(&self) -> [OpLabel; 3] {
        let names = match self.transposed {
            false => ["conv forward", "conv d_input", "conv d_weight+bias"],
            true => ["convT forward", "convT d_input", "convT d_weight+bias"],
        };
        names.map(|n| OpLabel::matmul(n, self.flops))
    }

    pub fn forward(&self, sink: &mut dyn Sink) {
        sink.push(self.labels()[0], &self.forward);
    }

    /// dx overwritten when `input` (and there is one); dw and db added into when `params`.
    pub fn backward(&self, sink: &mut dyn Sink, input: bool, params: bool) {
        let [_, d_input, d_params] = self.labels();
        if let Some(d) = self.backward_input.as_ref().filter(|_| input) {
            sink.push(d_input, d);
        }
        if params {
            // The weight GEMM carries the FLOPs; its split-K reduce and the bias sum count none.
            for (i, d) in self.backward_params.iter().enumerate() {
                sink.push(if i == 0 { d_params } else { OpLabel::new(d_params.op) }, d);
            }
        }
    }
}
