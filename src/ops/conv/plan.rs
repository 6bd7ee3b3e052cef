//! How each conv GEMM runs for a geometry: which entry point of shaders/conv.wgsl, with which
//! tiles, over how many columns, reading how much padding. Pure arithmetic on the geometry and
//! the adapter's tuning (no buffers, no dispatches), so `model::limits` can size grids before
//! any buffer exists and the choices can be unit-tested on their own.

use crate::gpu::{Tiles, Tuning};
use crate::shape::Conv2d;

/// conv_gather_block gives all rows to each thread when there are at most this many (an
/// image's colour channels), where the adapter's square block would be mostly padding.
pub(super) const FEW_CHANNELS: usize = 4;

/// Workgroups along x (columns) and y (rows) of a GEMM.
pub(super) fn grid_dims(cols: usize, rows: usize, tiles: &Tiles) -> [usize; 2] {
    [cols.div_ceil(tiles.tile_n() as usize), rows.div_ceil(tiles.tile_m() as usize)]
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

/// conv_weight_grad's output pixels per reduction iteration: the largest of 4, 2, 1 dividing
/// the output width.
pub(super) fn row_steps(g: &Conv2d) -> usize {
    [4, 2, 1].into_iter().find(|&d| g.w_out().is_multiple_of(d)).unwrap_or(1)
}

/// Kernel taps that meet the pixels of stride phase `r` along one axis (kh = r + s*u).
pub(super) fn phase_taps(g: &Conv2d, r: usize) -> u32 {
    g.kernel.saturating_sub(r).div_ceil(g.stride) as u32
}

/// What direct and weight_grad pass for the taps they do not use (and direct and conv_gather for
/// the row steps, 4), so that kernels differing only in those share a pipeline.
pub(super) fn all_taps(g: &Conv2d) -> [u32; 2] {
    [g.kernel.div_ceil(g.stride) as u32; 2]
}

/// Zeros before each axis of dy for the phased gathers: ceil(K / stride) - 1, a phase's furthest
/// tap.
pub(super) fn gather_lo(g: &Conv2d) -> usize {
    g.kernel.div_ceil(g.stride) - 1
}

/// Rows and columns of the phased gathers' padded dy, reaching as far as the furthest pixel of
/// any stride phase, when a thread's columns are runs of `run` neighbouring pixels of a phase
/// row (conv_gather_runs; 1 for conv_gather).
pub(super) fn gather_dy_dims(g: &Conv2d, run: usize) -> [usize; 2] {
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
pub(super) fn padding(n: usize, tile: u32) -> f64 {
    n.next_multiple_of(tile as usize) as f64 / n as f64
}

/// Loads per useful multiply-add of a square-block GEMM (TM + TN loads feed TM * TN), the
/// measure `Tiles::fit` minimises; the run and tap kernels' plans compare theirs with it.
pub(super) fn square_cost(t: &Tiles, rows: usize, cols: usize) -> f64 {
    padding(rows, t.tile_m()) * padding(cols, t.tile_n()) * (t.tm + t.tn) as f64 / (t.tm * t.tn) as f64
}

/// Largest power of two not above `n` (0 for 0).
pub(super) fn prev_pow2(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 << n.ilog2()
    }
}

/// conv_direct's entry point and tiles for `g`: conv_direct_runs when it loads less per
/// multiply-add, with the square block's rows by a run of neighbouring pixels of an output row
/// that divides the row (a divisor of W_out up to about the square block's outputs per thread).
pub(super) fn direct_tiles(g: &Conv2d, tuning: &Tuning) -> (&'static str, Tiles) {
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
pub(super) struct GatherPlan {
    pub(super) entry: &'static str,
    pub(super) tiles: Tiles,
    /// GEMM columns: the largest stride phase's pixels (conv_gather_block: the q of an axis),
    /// counted in whole runs.
    pub(super) cols: usize,
    /// dy's padded copy: zeros before each axis, and its rows and columns.
    pub(super) lo: usize,
    pub(super) dy_dims: [usize; 2],
}

impl GatherPlan {
    pub(super) fn new(g: &Conv2d, tuning: &Tuning) -> GatherPlan {
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
pub(super) fn weight_grad_tiles(g: &Conv2d, tuning: &Tuning) -> (&'static str, Tiles) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::ConvTranspose2d;

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
