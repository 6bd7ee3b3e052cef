//! shaders/conv.wgsl: conv2d and conv_transpose2d, forward and backward.
//!
//! A conv_transpose2d is the adjoint of a conv2d (see [`ConvTranspose2d::adjoint`]): its forward
//! is that conv's input gradient, its input gradient is that conv's forward, and its weight
//! gradient is that conv's weight gradient with x and dy swapped. So both layers are built from
//! the same three GEMM kernels over the conv2d geometry.
//!
//! Each GEMM gathers from a zero-bordered copy of x or dy (conv_pad), so its inner loop needs
//! no bounds checks. The copy of x that the forward makes is the one d_weight reads later.

use super::util::channel_sum;
use crate::gpu::{Binding, Dispatch, Family, Gpu, GpuError, OpLabel, Sink, Tiles, Tuning, View};
use crate::shape::{Activation, Conv2d, ConvTranspose2d};

pub static CONV: Family = Family {
    name: "conv",
    source: include_str!("../../shaders/conv.wgsl"),
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
/// conv_gather_block gives all rows to each thread when there are at most this many (an
/// image's colour channels), where the adapter's square block would be mostly padding.
const FEW_CHANNELS: usize = 4;
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

/// Workgroups along x (columns) and y (rows) of a GEMM.
fn grid_dims(cols: usize, rows: usize, tiles: &Tiles) -> [usize; 2] {
    [cols.div_ceil(tiles.tile_n() as usize), rows.div_ceil(tiles.tile_m() as usize)]
}

fn grid(gpu: &Gpu, what: &str, cols: usize, rows: usize, tiles: &Tiles) -> Result<[u32; 2], GpuError> {
    let [x, y] = grid_dims(cols, rows, tiles).map(|n| n as u32);
    gpu.check_workgroups(what, x)?;
    gpu.check_workgroups(what, y)?;
    Ok([x, y])
}

/// The most workgroups along one dimension of each GEMM for `g` (conv_direct, the gather,
/// the weight gradient), as the dispatches size their grids: `model::limits` checks them
/// before any buffer exists.
pub fn gemm_workgroups(g: &Conv2d, tuning: &Tuning) -> [usize; 3] {
    let most = |cols, rows, tiles: &Tiles| grid_dims(cols, rows, tiles).into_iter().max().unwrap_or(0);
    let cols = g.batch * g.h_out() * g.w_out();
    let plan = GatherPlan::new(g, tuning);
    [
        most(cols, g.c_out, &direct_tiles(g, tuning).1),
        most(plan.cols, g.c_in, &plan.tiles),
        most(g.c_in * g.kernel * g.kernel, g.c_out, &weight_grad_tiles(g, tuning).1),
    ]
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

/// conv_weight_grad's output pixels per reduction iteration: the largest of 4, 2, 1 dividing
/// the output width.
fn row_steps(g: &Conv2d) -> usize {
    [4, 2, 1].into_iter().find(|&d| g.w_out().is_multiple_of(d)).unwrap_or(1)
}

/// Kernel taps that meet the pixels of stride phase `r` along one axis (kh = r + s*u).
fn phase_taps(g: &Conv2d, r: usize) -> u32 {
    g.kernel.saturating_sub(r).div_ceil(g.stride) as u32
}

/// What direct and weight_grad pass for the taps they do not use (and direct and conv_gather for
/// the row steps, 4), so that kernels differing only in those share a pipeline.
fn all_taps(g: &Conv2d) -> [u32; 2] {
    [g.kernel.div_ceil(g.stride) as u32; 2]
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

/// Zeros before each axis of dy for the phased gathers: ceil(K / stride) - 1, a phase's furthest
/// tap.
fn gather_lo(g: &Conv2d) -> usize {
    g.kernel.div_ceil(g.stride) - 1
}

/// Rows and columns of the phased gathers' padded dy, reaching as far as the furthest pixel of
/// any stride phase, when a thread's columns are runs of `run` neighbouring pixels of a phase
/// row (conv_gather_runs; 1 for conv_gather).
fn gather_dy_dims(g: &Conv2d, run: usize) -> [usize; 2] {
    let s = g.stride;
    // Phase r of an axis with n_in input pixels reads dy rows t + base - u for t < count (t up
    // to the count rounded up to whole runs, along a row).
    let axis = |n_in: usize, n_out: usize, run: usize| {
        let reach = (0..s)
            .map(|r| (r, (r + s - g.pad % s) % s))
            .filter(|&(_, first)| first < n_in)
            .map(|(r, first)| (n_in - first).div_ceil(s).next_multiple_of(run) + (first + g.pad - r) / s)
            .fold(n_out, usize::max);
        gather_lo(g) + reach
    };
    [axis(g.h_in, g.h_out(), 1), axis(g.w_in, g.w_out(), run)]
}

/// Padded outputs per useful one, for `n` outputs in tiles of `tile`.
fn padding(n: usize, tile: u32) -> f64 {
    n.next_multiple_of(tile as usize) as f64 / n as f64
}

/// Loads per useful multiply-add of a square-block GEMM (TM + TN loads feed TM * TN), the
/// measure `Tiles::fit` minimises; the run and tap kernels' plans compare theirs with it.
fn square_cost(t: &Tiles, rows: usize, cols: usize) -> f64 {
    padding(rows, t.tile_m()) * padding(cols, t.tile_n()) * (t.tm + t.tn) as f64 / (t.tm * t.tn) as f64
}

/// Largest power of two not above `n` (0 for 0).
fn prev_pow2(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 << n.ilog2()
    }
}

/// conv_direct's entry point and tiles for `g`: conv_direct_runs when it loads less per
/// multiply-add, with the square block's rows by a run of neighbouring pixels of an output row
/// that divides the row (a divisor of W_out up to about the square block's outputs per thread).
fn direct_tiles(g: &Conv2d, tuning: &Tuning) -> (&'static str, Tiles) {
    let t = tuning.direct;
    let cols = g.batch * g.h_out() * g.w_out();
    let square = t.fit(g.c_out, cols);
    let longest = ((t.tm * t.tn / square.tm) as usize).max(1);
    let run = (1..=longest.min(g.w_out())).rev().find(|&d| g.w_out().is_multiple_of(d)).unwrap_or(1);
    // A kernel row: TM * K weights and (run - 1) * S + K x values feed TM * run * K multiply-adds.
    let (tm, run_f, k) = (square.tm as f64, run as f64, g.kernel as f64);
    let runs_cost =
        padding(g.c_out, square.tile_m()) * (tm * k + (run_f - 1.0) * g.stride as f64 + k) / (tm * run_f * k);
    if runs_cost < square_cost(&square, g.c_out, cols) {
        return ("conv_direct_runs", Tiles { tn: run as u32, ..square });
    }
    ("conv_direct", square)
}

/// How conv_gather runs for one geometry: its entry point and tiles (conv_gather_runs: TN
/// neighbouring pixels of a phase row; conv_gather: TN pixels WG_N apart), and the padded dy it
/// reads. A few rows (an image's colour channels) take conv_gather_block, all of them in each
/// thread. Otherwise conv_gather_runs is taken when it loads less per multiply-add than the
/// square blocks: with phase rows long enough for runs of the square block's width.
struct GatherPlan {
    entry: &'static str,
    tiles: Tiles,
    /// GEMM columns: the largest stride phase's pixels (conv_gather_block: the q of an axis),
    /// counted in whole runs.
    cols: usize,
    /// dy's padded copy: zeros before each axis, and its rows and columns.
    lo: usize,
    dy_dims: [usize; 2],
}

impl GatherPlan {
    fn new(g: &Conv2d, tuning: &Tuning) -> GatherPlan {
        let t = tuning.gather;
        if g.c_in <= FEW_CHANNELS && g.pad < g.kernel {
            return GatherPlan::block(g, &t);
        }
        let (hp, wp) = (g.h_in.div_ceil(g.stride), g.w_in.div_ceil(g.stride));
        let square = t.fit(g.c_in, g.batch * hp * wp);
        let phased = |entry, tiles, run: usize, cols| GatherPlan {
            entry,
            tiles,
            cols,
            lo: gather_lo(g),
            dy_dims: gather_dy_dims(g, run),
        };
        // The square block's rows by a run about as long as keeps its block of outputs, split
        // evenly over the phase row.
        let longest = ((t.tm * t.tn / square.tm) as usize).max(1);
        let run = wp.div_ceil(wp.div_ceil(longest));
        let runs = Tiles { tn: run as u32, ..square };
        // A kernel row of NV taps: TM * NV weights and run + NV - 1 dy values feed
        // TM * run * NV multiply-adds.
        let (tm, run_f, nv) = (square.tm as f64, run as f64, g.kernel.div_ceil(g.stride) as f64);
        let runs_cost =
            padding(g.c_in, runs.tile_m()) * padding(wp, run as u32) * (tm * nv + run_f + nv - 1.0) / (tm * run_f * nv);
        if runs_cost < square_cost(&square, g.c_in, g.batch * hp * wp) {
            return phased("conv_gather_runs", runs, run, g.batch * hp * wp.div_ceil(run) * run);
        }
        phased("conv_gather", square, 1, g.batch * hp * wp)
    }

    /// conv_gather_block: all C_in rows by the S x S pixels of `run` neighbouring q, about as
    /// many outputs per thread as the adapter's block, the runs split evenly over a row of q.
    /// Its dy padding (KU - 1 - pad / S before) needs pad < K.
    fn block(g: &Conv2d, t: &Tiles) -> GatherPlan {
        let (s, ku) = (g.stride, g.kernel.div_ceil(g.stride));
        let q0 = g.pad / s;
        let q_axis = |n: usize| (n - 1 + g.pad) / s + 1 - q0;
        let (rows_q, cols_q) = (q_axis(g.h_in), q_axis(g.w_in));
        let longest = ((t.tm * t.tn) as usize / (g.c_in * s * s)).max(1);
        let run = cols_q.div_ceil(cols_q.div_ceil(longest));
        let runs_per_row = cols_q.div_ceil(run);
        let lo = ku - 1 - q0;
        GatherPlan {
            entry: "conv_gather_block",
            tiles: Tiles { tm: g.c_in as u32, tn: run as u32, wg_m: 1, wg_n: t.wg_m * t.wg_n },
            cols: g.batch * rows_q * runs_per_row * run,
            lo,
            dy_dims: [(rows_q + ku - 1).max(lo + g.h_out()), (runs_per_row * run + ku - 1).max(lo + g.w_out())],
        }
    }
}

/// conv_weight_grad's entry point and tiles for `g`. conv_weight_grad_taps holds one input
/// channel's K*K taps per thread (TN = K*K) and as many rows as keep about the adapter's block
/// of outputs; it is taken when it loads less per multiply-add than the square blocks, which is
/// with large blocks (CPU adapters), and most with few columns (an image's channels times the
/// taps, which square blocks would mostly pad).
fn weight_grad_tiles(g: &Conv2d, tuning: &Tuning) -> (&'static str, Tiles) {
    let t = tuning.weight_grad;
    let kk = g.kernel * g.kernel;
    let square = t.fit(g.c_out, g.c_in * kk);
    let tm = prev_pow2((t.tm * t.tn) as usize / kk).min(g.c_out.next_power_of_two());
    if tm == 0 {
        return ("conv_weight_grad", square);
    }
    let threads = (t.wg_m * t.wg_n) as usize;
    let wg_n = g.c_in.min(threads);
    let wg_m = prev_pow2(threads / wg_n).clamp(1, g.c_out.div_ceil(tm).next_power_of_two());
    let taps = Tiles { tm: tm as u32, tn: kk as u32, wg_m: wg_m as u32, wg_n: wg_n as u32 };
    // An iteration of ROW_STEPS pixels: TM * ROW_STEPS dy values and K * X_RUN x values feed
    // TM * KK * ROW_STEPS multiply-adds.
    let (rs, k) = (row_steps(g), g.kernel);
    let x_run = (rs - 1) * g.stride + k;
    let taps_cost = padding(g.c_out, taps.tile_m()) * padding(g.c_in, wg_n as u32) * (tm * rs + k * x_run) as f64
        / (tm * kk * rs) as f64;
    if taps_cost < square_cost(&square, g.c_out, g.c_in * kk) {
        return ("conv_weight_grad_taps", taps);
    }
    ("conv_weight_grad", square)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// SwiftShader's and lavapipe's autotuned shape, and the untimed CPU default.
    const SQUARE16: Tiles = Tiles { tm: 16, tn: 16, wg_m: 2, wg_n: 8 };
    const SQUARE8: Tiles = Tiles { tm: 8, tn: 8, wg_m: 8, wg_n: 8 };
    /// D's first layer at the seed's shapes (64x64 RGB, 5x5 stride 2); G's last is its adjoint.
    const D_RGB: Conv2d = Conv2d { batch: 64, c_in: 3, c_out: 64, h_in: 64, w_in: 64, kernel: 5, stride: 2, pad: 2 };

    #[test]
    fn few_rows_gather_every_stride_phase_in_one_block() {
        let plan = GatherPlan::new(&D_RGB, &Tuning::uniform(SQUARE16, 16));
        // All three rows by the 2 x 2 pixels of 16 neighbouring q (192 outputs, about the 256
        // of a 16x16 block), two runs per row of 32 q (pad 2 = q from 1 to 32).
        assert_eq!(plan.entry, "conv_gather_block");
        assert_eq!(plan.tiles, Tiles { tm: 3, tn: 16, wg_m: 1, wg_n: 16 });
        assert_eq!(plan.cols, 64 * 32 * 2 * 16);
        // dy (32 x 32) after KU - 1 - pad / S = 1 zero row and column, as many as the runs read.
        assert_eq!((plan.lo, plan.dy_dims), (1, [34, 34]));
        // Rows of 5 q in runs of at most 64 / 12: one run of 5, no padding columns.
        let small = Conv2d { h_in: 10, w_in: 10, ..D_RGB };
        let plan = GatherPlan::new(&small, &Tuning::uniform(SQUARE8, 16));
        assert_eq!((plan.tiles.tn, plan.cols), (5, 64 * 5 * 5));
        // mnist32's G output (4x4, stride 2, pad 1): q from 0 to 16, the first and last half
        // outside the image; runs of a whole row of 17.
        let g_out = Conv2d { batch: 64, c_in: 1, c_out: 32, h_in: 32, w_in: 32, kernel: 4, stride: 2, pad: 1 };
        let plan = GatherPlan::new(&g_out, &Tuning::uniform(SQUARE16, 16));
        assert_eq!((plan.tiles.tn, plan.cols, plan.lo, plan.dy_dims), (17, 64 * 17 * 17, 1, [18, 18]));
    }

    #[test]
    fn gathers_run_along_phase_rows_when_that_loads_less() {
        // Many rows: the square block's rows, by runs of 16 when phase rows are that long
        // (3 x 16 weights and 18 dy values per 768 multiply-adds, against 32 per 256) ...
        let tuning = Tuning::uniform(SQUARE16, 16);
        let plan = GatherPlan::new(&Conv2d { c_in: 64, ..D_RGB }, &tuning);
        assert_eq!((plan.entry, plan.tiles), ("conv_gather_runs", Tiles { tn: 16, ..SQUARE16 }));
        // tests/common/conv.rs's wide case for the run and tap kernels.
        let wide = Conv2d { batch: 2, c_in: 16, c_out: 8, h_in: 32, w_in: 32, kernel: 5, stride: 2, pad: 2 };
        let plan = GatherPlan::new(&wide, &tuning);
        assert_eq!((plan.entry, plan.tiles.tn, plan.tiles.tm), ("conv_gather_runs", 16, 16));
        assert_eq!(weight_grad_tiles(&wide, &tuning).0, "conv_weight_grad_taps");
        // ... but square blocks for phase rows of 4 pixels.
        let plan = GatherPlan::new(&Conv2d { c_in: 64, h_in: 8, w_in: 8, ..D_RGB }, &tuning);
        assert_eq!((plan.entry, plan.tiles), ("conv_gather", SQUARE16));
    }

    #[test]
    fn directs_run_along_output_rows_when_that_loads_less() {
        let tuning = Tuning::uniform(Tiles { tm: 16, tn: 16, wg_m: 4, wg_n: 4 }, 16);
        // D's first layer: rows of 32 pixels in runs of 16 (5 x 16 weights and 35 x values per
        // 1280 multiply-adds, against 32 per 256).
        let (entry, t) = direct_tiles(&D_RGB, &tuning);
        assert_eq!((entry, t), ("conv_direct_runs", Tiles { tm: 16, tn: 16, wg_m: 4, wg_n: 4 }));
        // tests/common/conv.rs's wide case, 8 output channels: runs of its 16-pixel rows.
        let wide = Conv2d { batch: 2, c_in: 16, c_out: 8, h_in: 32, w_in: 32, kernel: 5, stride: 2, pad: 2 };
        assert_eq!(direct_tiles(&wide, &tuning).1.tn, 16);
        // Rows of 8 pixels (MNIST's second D conv): square blocks.
        let mnist = Conv2d { batch: 64, c_in: 32, c_out: 64, h_in: 16, w_in: 16, kernel: 4, stride: 2, pad: 1 };
        assert_eq!(direct_tiles(&mnist, &tuning).0, "conv_direct");
        // A run divides the row: 30 pixels in runs of 15.
        let odd = Conv2d { h_in: 60, w_in: 60, ..D_RGB };
        assert_eq!(direct_tiles(&odd, &tuning), ("conv_direct_runs", Tiles { tn: 15, ..t }));
    }

    #[test]
    fn runs_get_room_to_read_past_a_phase_row() {
        // 9 input columns in two phases of 5 and 4 pixels; runs of 4 reach 8 pixels per row.
        let g = Conv2d { batch: 1, c_in: 3, c_out: 2, h_in: 9, w_in: 9, kernel: 5, stride: 2, pad: 2 };
        let [h1, w1] = gather_dy_dims(&g, 1);
        let [h4, w4] = gather_dy_dims(&g, 4);
        assert_eq!((h4, w4), (h1, w1 + 3));
    }

    #[test]
    fn weight_grads_hold_all_taps_of_a_channel_when_that_loads_less() {
        let tuning = Tuning::uniform(SQUARE16, 16);
        // 3 channels x 25 taps: 8 rows by 25 taps per thread, 3 x 4 threads (the 16 of the
        // square blocks, rounded down).
        let (entry, t) = weight_grad_tiles(&D_RGB, &tuning);
        assert_eq!((entry, t), ("conv_weight_grad_taps", Tiles { tm: 8, tn: 25, wg_m: 4, wg_n: 3 }));
        // G's last layer: 128 rows.
        let g_rgb = ConvTranspose2d {
            batch: 64,
            c_in: 128,
            c_out: 3,
            h_in: 32,
            w_in: 32,
            kernel: 5,
            stride: 2,
            pad: 2,
            out_pad: 1,
        };
        let (entry, t) = weight_grad_tiles(&g_rgb.adjoint(), &tuning);
        assert_eq!((entry, t.tm, t.tn), ("conv_weight_grad_taps", 8, 25));
        // 4x4 kernels on one grey channel: 16 rows by 16 taps.
        let grey = Conv2d { c_in: 1, c_out: 32, kernel: 4, pad: 1, ..D_RGB };
        assert_eq!(weight_grad_tiles(&grey, &tuning).1, Tiles { tm: 16, tn: 16, wg_m: 2, wg_n: 1 });
        // 8x8 blocks hold 2 rows of 25 taps, still fewer loads than padding 75 columns to 128.
        assert_eq!(weight_grad_tiles(&D_RGB, &Tuning::uniform(SQUARE8, 16)).1.tm, 2);
        // Many input channels: 16 channels of 8 x 25 per workgroup; 32 dy and 55 x values per
        // 800 multiply-adds, against 128 per 1024 in square blocks.
        let (entry, t) = weight_grad_tiles(&Conv2d { c_in: 64, ..D_RGB }, &tuning);
        assert_eq!((entry, t), ("conv_weight_grad_taps", Tiles { tm: 8, tn: 25, wg_m: 1, wg_n: 16 }));
        // A GPU's 4x4 blocks cannot hold a channel's taps.
        let gpu = Tuning::uniform(Tiles { tm: 4, tn: 4, wg_m: 8, wg_n: 16 }, 256);
        assert_eq!(weight_grad_tiles(&D_RGB, &gpu).0, "conv_weight_grad");
        // An odd output width steps one pixel at a time: no x load is shared, the loads tie.
        let odd = Conv2d { c_in: 64, h_in: 30, w_in: 30, kernel: 4, pad: 1, ..D_RGB };
        assert_eq!(weight_grad_tiles(&odd, &tuning).0, "conv_weight_grad");
    }
}
