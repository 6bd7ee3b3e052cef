//! shaders/conv.wgsl: conv2d and conv_transpose2d, forward and backward.
//!
//! A conv_transpose2d is the adjoint of a conv2d (see [`ConvTranspose2d::adjoint`]): its forward
//! is that conv's input gradient, its input gradient is that conv's forward, and its weight
//! gradient is that conv's weight gradient with x and dy swapped. So both layers are built from
//! the same three GEMM kernels over the conv2d geometry.
//!
//! Each GEMM gathers from a zero-bordered copy of x or dy (conv_pad), so its inner loop needs
//! no bounds checks. The copy of x that the forward makes is the one d_weight reads later.

mod plan;

use super::util::channel_sum;
use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, OpLabel, Sink, Tiles, Tuning, View};
use crate::shape::{Activation, Conv2d, ConvTranspose2d};
pub use plan::gemm_workgroups;
use plan::{all_taps, direct_tiles, grid_dims, phase_taps, row_steps, weight_grad_tiles, GatherPlan};

pub static CONV: Family = Family {
    name: "conv",
    source: include_str!("../../../shaders/conv.wgsl"),
    bindings: &[Binding::Uniform, Binding::Read, Binding::Read, Binding::Read, Binding::ReadWrite, Binding::Read],
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
    dy_h: u32,
    dy_w: u32,
    phase: u32,
    alpha: f32,
    _pad: [u32; 2],
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
            dy_h: 0,
            dy_w: 0,
            phase: 0,
            alpha: 0.0,
            _pad: [0; 2],
        }
    }
}

/// Workgroups that keep an adapter busy, below which d_weight splits its reduction (split-K)
/// at the price of writing partials and summing them. A CPU adapter's few cores are busy with
/// far fewer than a GPU's many.
fn workgroups_wanted(gpu: &Gpu) -> usize {
    match gpu.info.device_type {
        wgpu::DeviceType::Cpu => 16,
        _ => 256,
    }
}
/// Fewest reduction steps worth giving one split.
const MIN_SPLIT_LEN: usize = 256;
/// Most scratch memory the split-K partials may take.
const MAX_PARTIAL_BYTES: u64 = 64 << 20;

fn check_len(what: &str, view: &View, len: usize) {
    assert_eq!(view.len, len, "{what}: buffer holds {} values, the geometry needs {len}", view.len);
}

/// Activations run in a GEMM's epilogue instead of passes of their own (conv.wgsl's ACT and
/// DACT): `act` on the forward's output, and `dact`'s derivative, read from this layer's input x
/// (that activation's output), multiplied into the input gradient.
#[derive(Clone, Copy, Default)]
struct Epilogue<'a> {
    act: Option<Activation>,
    dact: Option<(Activation, &'a View)>,
}

impl Epilogue<'_> {
    /// conv.wgsl's ACT and DACT constants, and the uniform's alpha.
    fn consts(&self) -> ([(&'static str, u32); 2], f32) {
        let (act, a1) = super::fused_act_code("a conv", self.act);
        let (dact, a2) = super::fused_act_code("a conv", self.dact.map(|d| d.0));
        if let (Some(a1), Some(a2)) = (a1, a2) {
            assert_eq!(a1, a2, "one fused leaky relu slope per GEMM");
        }
        ([("ACT", act), ("DACT", dact)], a1.or(a2).unwrap_or(0.0))
    }
}

fn grid(gpu: &Gpu, what: &str, cols: usize, rows: usize, tiles: &Tiles) -> Result<[u32; 2], GpuError> {
    let [x, y] = grid_dims(cols, rows, tiles).map(|n| n as u32);
    gpu.check_workgroups(what, x)?;
    gpu.check_workgroups(what, y)?;
    Ok([x, y])
}

fn dispatch(
    gpu: &Gpu,
    entry: &str,
    consts: &[(&str, u32)],
    params: &Params,
    views: [Option<&View>; 5],
    grid: [u32; 3],
) -> Result<Dispatch, GpuError> {
    for v in views.iter().flatten() {
        gpu.check_binding(entry, v.bytes())?;
    }
    let uniform = gpu.uniform(entry, params);
    let [a, b, bias, out, act_in] = views;
    let bind_group = gpu.bind_group(
        &CONV,
        entry,
        &[
            uniform.as_entire_binding(),
            gpu.optional(a),
            gpu.optional(b),
            gpu.optional(bias),
            out.expect("output").binding(),
            gpu.optional(act_in),
        ],
    );
    Ok(gpu.dispatch(&CONV, entry, consts, bind_group, grid))
}

/// The GEMM kernels' constants: the tile shape, the kernel size and stride, and for conv_gather
/// the taps of the stride phases one dispatch covers (see conv.wgsl).
fn gemm_consts(
    tiles: &Tiles,
    g: &Conv2d,
    taps: [u32; 2],
    row_steps: usize,
    epilogue: [(&'static str, u32); 2],
) -> Vec<(&'static str, u32)> {
    let consts = geometry_consts(g.kernel as u32, g.stride as u32, taps, row_steps as u32, tiles.tn);
    [tiles.consts().as_slice(), &consts, &epilogue].concat()
}

/// conv.wgsl's per-layer constants for kernel size `k`, stride `s`, conv_gather's `taps` per
/// stride phase along rows and columns, conv_weight_grad's `row_steps`, and the sizes of the
/// run and tap kernels' shared loads that follow from them and the tiles' `tn`.
pub fn geometry_consts(k: u32, s: u32, [nu, nv]: [u32; 2], row_steps: u32, tn: u32) -> [(&'static str, u32); 11] {
    [
        ("K", k),
        ("S", s),
        ("KU", k.div_ceil(s)),
        ("NU", nu),
        ("NV", nv),
        ("ROW_STEPS", row_steps),
        ("RUN_LOADS", (tn + nv).saturating_sub(1).max(1)),
        ("BLOCK_LOADS", tn + k.div_ceil(s) - 1),
        ("X_RUN_LOADS", (tn - 1) * s + k),
        ("KK", k * k),
        ("X_RUN", (row_steps - 1) * s + k),
    ]
}

/// A zero-bordered copy of `src` ([batch, c, h, w]) as [batch, c, h_to, w_to] with the data
/// from row and column `lo`, and the conv_pad pass that refreshes its interior. Without a
/// border there is no copy: the GEMM reads `src` itself.
fn padded(
    gpu: &Gpu,
    src: &View,
    [batch, c, h, w]: [usize; 4],
    lo: usize,
    [h_to, w_to]: [usize; 2],
) -> Result<(Option<Dispatch>, View), GpuError> {
    check_len("conv_pad src", src, batch * c * h * w);
    if (lo, h_to, w_to) == (0, h, w) {
        return Ok((None, src.clone()));
    }
    let dst = gpu.zeros("conv padded operand", batch * c * h_to * w_to);
    let mut params: Params = bytemuck::Zeroable::zeroed();
    (params.batch, params.c_in, params.h_in, params.w_in) = (batch as u32, c as u32, h as u32, w as u32);
    (params.h_out, params.w_out, params.pad) = (h_to as u32, w_to as u32, lo as u32);
    let grid = [super::grid_1d(batch * c * h), 1, 1];
    let entry = if w.is_multiple_of(4) { "conv_pad4" } else { "conv_pad" };
    let pass = dispatch(gpu, entry, &[], &params, [Some(src), None, None, Some(&dst), None], grid)?;
    Ok((Some(pass), dst))
}

/// x padded for conv_direct and conv_weight_grad: `pad` zeros on every side.
fn padded_x(gpu: &Gpu, g: &Conv2d, x: &View) -> Result<(Option<Dispatch>, View), GpuError> {
    let dims = [g.batch, g.c_in, g.h_in, g.w_in];
    padded(gpu, x, dims, g.pad, padded_x_dims(g))
}

/// Rows and columns of the padded x.
fn padded_x_dims(g: &Conv2d) -> [usize; 2] {
    [g.h_in + 2 * g.pad, g.w_in + 2 * g.pad]
}

/// Values in the padded x.
fn padded_x_len(g: &Conv2d) -> usize {
    let [h, w] = padded_x_dims(g);
    g.batch * g.c_in * h * w
}

/// dy padded as `plan`'s gather reads it.
fn padded_dy(gpu: &Gpu, g: &Conv2d, plan: &GatherPlan, dy: &View) -> Result<(Option<Dispatch>, View), GpuError> {
    let dims = [g.batch, g.c_out, g.h_out(), g.w_out()];
    padded(gpu, dy, dims, plan.lo, plan.dy_dims)
}

/// y = conv2d(x, w) + bias, for the geometry `g` (conv2d forward; conv_transpose2d d_input);
/// `xp` is x from [`padded_x`].
#[allow(clippy::too_many_arguments)]
fn direct(
    gpu: &Gpu,
    g: &Conv2d,
    tiles: &Tuning,
    w: &View,
    xp: &View,
    bias: Option<&View>,
    y: &View,
    epilogue: Epilogue,
) -> Result<Dispatch, GpuError> {
    check_len("conv_direct w", w, g.weight_len());
    check_len("conv_direct x", xp, padded_x_len(g));
    check_len("conv_direct y", y, g.output_len());
    let (epi, alpha) = epilogue.consts();
    let mut params = Params::new(g);
    params.has_bias = bias.is_some() as u32;
    params.alpha = alpha;
    let (cols, rows) = (g.batch * g.h_out() * g.w_out(), g.c_out);
    let (entry, tiles) = direct_tiles(g, tiles);
    let [gx, gy] = grid(gpu, entry, cols, rows, &tiles)?;
    let consts = gemm_consts(&tiles, g, all_taps(g), 4, epi);
    let act_in = epilogue.dact.map(|d| d.1);
    dispatch(gpu, entry, &consts, &params, [Some(w), Some(xp), bias, Some(y), act_in], [gx, gy, 1])
}

/// dx = conv2d's input gradient of dy (+ bias), for `g` (conv2d d_input; conv_transpose2d
/// forward); `dyp` is dy from [`padded_dy`] with the same `plan`. One dispatch for all stride
/// phases when the stride divides the kernel (every phase has the same taps) or conv_gather_block
/// takes them all, else one per phase.
#[allow(clippy::too_many_arguments)]
fn gather(
    gpu: &Gpu,
    g: &Conv2d,
    plan: &GatherPlan,
    w: &View,
    dyp: &View,
    bias: Option<&View>,
    dx: &View,
    epilogue: Epilogue,
) -> Result<Vec<Dispatch>, GpuError> {
    let [dy_h, dy_w] = plan.dy_dims;
    check_len("conv_gather w", w, g.weight_len());
    check_len("conv_gather dy", dyp, g.batch * g.c_out * dy_h * dy_w);
    check_len("conv_gather dx", dx, g.input_len());
    let (epi, alpha) = epilogue.consts();
    let mut params = Params::new(g);
    params.has_bias = bias.is_some() as u32;
    params.alpha = alpha;
    (params.dy_h, params.dy_w) = (dy_h as u32, dy_w as u32);
    let (entry, tiles) = (plan.entry, &plan.tiles);
    let [gx, gy] = grid(gpu, entry, plan.cols, g.c_in, tiles)?;
    let views = [Some(w), Some(dyp), bias, Some(dx), epilogue.dact.map(|d| d.1)];
    let s = g.stride;
    // One dispatch: conv_gather_block takes every phase in each thread; the phased kernels take
    // one phase per workgroup_id.z when all phases have the same taps.
    let one_dispatch = match entry {
        "conv_gather_block" => Some(1),
        _ if g.kernel.is_multiple_of(s) => Some(s * s),
        _ => None,
    };
    if let Some(phases) = one_dispatch {
        let consts = gemm_consts(tiles, g, all_taps(g), 4, epi);
        return Ok(vec![dispatch(gpu, entry, &consts, &params, views, [gx, gy, phases as u32])?]);
    }
    (0..s * s)
        .map(|phase| {
            params.phase = phase as u32;
            let taps = [phase_taps(g, phase / s), phase_taps(g, phase % s)];
            let consts = gemm_consts(tiles, g, taps, 4, epi);
            dispatch(gpu, entry, &consts, &params, views, [gx, gy, 1])
        })
        .collect()
}

/// dw += conv2d's weight gradient from dy and x, for `g` (`xp` is x from [`padded_x`]);
/// split-K with a reduce pass when the output alone would not fill the adapter.
fn weight_grad(
    gpu: &Gpu,
    g: &Conv2d,
    tiles: &Tuning,
    dy: &View,
    xp: &View,
    dw: &View,
) -> Result<Vec<Dispatch>, GpuError> {
    check_len("conv_weight_grad dy", dy, g.output_len());
    check_len("conv_weight_grad x", xp, padded_x_len(g));
    check_len("conv_weight_grad dw", dw, g.weight_len());
    let total = g.batch * g.h_out() * g.w_out();
    let out_len = g.weight_len();
    let (entry, tiles) = weight_grad_tiles(g, tiles);
    let tiles = &tiles;
    let [gx, gy] = grid(gpu, entry, g.c_in * g.kernel * g.kernel, g.c_out, tiles)?;
    let tiles_count = (gx * gy) as usize;
    let max_by_memory =
        (MAX_PARTIAL_BYTES.min(gpu.limits.max_storage_buffer_binding_size) / (out_len as u64 * 4)) as usize;
    let wanted = workgroups_wanted(gpu).div_ceil(tiles_count);
    let splits = wanted.min(total / MIN_SPLIT_LEN).min(max_by_memory).max(1);
    // Whole iterations of ROW_STEPS pixels per split (the total is made of them).
    let split_len = total.div_ceil(splits).next_multiple_of(row_steps(g));
    let splits = total.div_ceil(split_len);

    let mut params = Params::new(g);
    params.splits = splits as u32;
    params.split_len = split_len as u32;
    params.out_len = out_len as u32;
    let consts = gemm_consts(tiles, g, all_taps(g), row_steps(g), Epilogue::default().consts().0);
    if splits == 1 {
        return Ok(vec![dispatch(
            gpu,
            entry,
            &consts,
            &params,
            [Some(dy), Some(xp), None, Some(dw), None],
            [gx, gy, 1],
        )?]);
    }
    let partials = gpu.zeros("conv weight-grad partials", splits * out_len);
    Ok(vec![
        dispatch(
            gpu,
            entry,
            &consts,
            &params,
            [Some(dy), Some(xp), None, Some(&partials), None],
            [gx, gy, splits as u32],
        )?,
        dispatch(
            gpu,
            "conv_weight_grad_reduce",
            &[],
            &params,
            [Some(&partials), None, None, Some(dw), None],
            [super::grid_1d(out_len), 1, 1],
        )?,
    ])
}

/// The forward buffers of a conv layer: input, weight, optional bias, output; and the
/// activation after the layer when it is fused in (y then holds act(conv(x))).
pub struct ConvBuffers {
    pub x: View,
    pub w: View,
    pub bias: Option<View>,
    pub y: View,
    pub act: Option<Activation>,
}

/// The backward buffers: the output gradient in; the input gradient (overwritten; None for a
/// first layer, whose input needs none) and the parameter gradients (added into) out. With
/// `dx_act`, x is that activation's output and dx is taken through it: the gradient with respect
/// to the activation's input (its backward fused into this layer's).
pub struct ConvGradBuffers {
    pub dy: View,
    pub dx: Option<View>,
    pub dw: View,
    pub db: Option<View>,
    pub dx_act: Option<Activation>,
}

/// One conv2d or conv_transpose2d layer's dispatches, built once over fixed buffers.
pub struct ConvOp {
    /// Refreshes the padded copy of x that the forward GEMM reads (conv2d: also d_weight).
    pub pad_forward: Option<Dispatch>,
    /// The forward GEMM (a gather may take one dispatch per stride phase).
    pub forward: Vec<Dispatch>,
    /// Refreshes the padded copy of dy that d_input reads (convT: also d_weight).
    pub pad_backward: Option<Dispatch>,
    /// The d_input GEMM; empty when no dx was asked for.
    pub backward_input: Vec<Dispatch>,
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
        let (pad_forward, xp) = padded_x(gpu, g, &io.x)?;
        let fwd_epilogue = Epilogue { act: io.act, dact: None };
        let forward = vec![direct(gpu, g, tiles, &io.w, &xp, io.bias.as_ref(), &io.y, fwd_epilogue)?];
        let (mut pad_backward, mut backward_input, mut backward_params) = (None, Vec::new(), Vec::new());
        if let Some(gr) = grads {
            if let Some(dx) = &gr.dx {
                let plan = GatherPlan::new(g, tiles);
                let dyp;
                (pad_backward, dyp) = padded_dy(gpu, g, &plan, &gr.dy)?;
                let epilogue = Epilogue { act: None, dact: gr.dx_act.map(|a| (a, &io.x)) };
                backward_input = gather(gpu, g, &plan, &io.w, &dyp, None, dx, epilogue)?;
            }
            backward_params = weight_grad(gpu, g, tiles, &gr.dy, &xp, &gr.dw)?;
            if let Some(db) = &gr.db {
                let pixels = g.h_out() * g.w_out();
                backward_params.push(channel_sum(gpu, tiles.reduce_wg, g.batch, g.c_out, pixels, &gr.dy, db)?);
            }
        }
        Ok(ConvOp {
            pad_forward,
            forward,
            pad_backward,
            backward_input,
            backward_params,
            flops: g.flops(),
            transposed: false,
        })
    }

    pub fn conv_transpose2d(
        gpu: &Gpu,
        g: &ConvTranspose2d,
        tiles: &Tuning,
        io: &ConvBuffers,
        grads: Option<&ConvGradBuffers>,
    ) -> Result<ConvOp, GpuError> {
        let adj = g.adjoint();
        let plan = GatherPlan::new(&adj, tiles);
        let (pad_forward, xp) = padded_dy(gpu, &adj, &plan, &io.x)?;
        let fwd_epilogue = Epilogue { act: io.act, dact: None };
        let forward = gather(gpu, &adj, &plan, &io.w, &xp, io.bias.as_ref(), &io.y, fwd_epilogue)?;
        let (mut pad_backward, mut backward_input, mut backward_params) = (None, Vec::new(), Vec::new());
        if let Some(gr) = grads {
            let dyp;
            (pad_backward, dyp) = padded_x(gpu, &adj, &gr.dy)?;
            if let Some(dx) = &gr.dx {
                let epilogue = Epilogue { act: None, dact: gr.dx_act.map(|a| (a, &io.x)) };
                backward_input = vec![direct(gpu, &adj, tiles, &io.w, &dyp, None, dx, epilogue)?];
            }
            backward_params = weight_grad(gpu, &adj, tiles, &io.x, &dyp, &gr.dw)?;
            if let Some(db) = &gr.db {
                let pixels = g.h_out() * g.w_out();
                backward_params.push(channel_sum(gpu, tiles.reduce_wg, g.batch, g.c_out, pixels, &gr.dy, db)?);
            }
        }
        Ok(ConvOp {
            pad_forward,
            forward,
            pad_backward,
            backward_input,
            backward_params,
            flops: g.flops(),
            transposed: true,
        })
    }

    /// The profile labels of forward, d_input and d_weight+bias.
    fn labels(&self) -> [OpLabel; 3] {
        let names = match self.transposed {
            false => ["conv forward", "conv d_input", "conv d_weight+bias"],
            true => ["convT forward", "convT d_input", "convT d_weight+bias"],
        };
        names.map(|n| OpLabel::matmul(n, self.flops))
    }

    /// Pushes a pass's dispatches: the first carries the pass's FLOPs, the rest (more stride
    /// phases, a split-K reduce, the bias sum) count none.
    fn push_pass(sink: &mut dyn Sink, label: OpLabel, dispatches: &[Dispatch]) {
        for (i, d) in dispatches.iter().enumerate() {
            sink.push(if i == 0 { label } else { OpLabel::new(label.op) }, d);
        }
    }

    fn pad_label(&self) -> OpLabel {
        OpLabel::new(if self.transposed { "convT pad" } else { "conv pad" })
    }

    pub fn forward(&self, sink: &mut dyn Sink) {
        if let Some(pad) = &self.pad_forward {
            sink.push(self.pad_label(), pad);
        }
        ConvOp::push_pass(sink, self.labels()[0], &self.forward);
    }

    /// dx overwritten when `input` (and there is one); dw and db added into when `params`.
    pub fn backward(&self, sink: &mut dyn Sink, input: bool, params: bool) {
        let [_, d_input, d_params] = self.labels();
        let d_input_runs = input && !self.backward_input.is_empty();
        // The padded dy feeds d_input, and a transposed conv's d_weight too.
        if let Some(pad) = self.pad_backward.as_ref().filter(|_| d_input_runs || (params && self.transposed)) {
            sink.push(self.pad_label(), pad);
        }
        if d_input_runs {
            ConvOp::push_pass(sink, d_input, &self.backward_input);
        }
        if params {
            ConvOp::push_pass(sink, d_params, &self.backward_params);
        }
    }
}
