// conv2d and conv_transpose2d, forward and backward, as three implicit GEMMs.
//
// Shape legend, in conv2d's terms (NCHW, PyTorch semantics):
//   x [N, C_in, H_in, W_in]   w [C_out, C_in, K, K]   y [N, C_out, H_out, W_out]
//   H_out = (H_in + 2*pad - K) / stride + 1
// conv_transpose2d with weight [C_in', C_out', K, K] is the adjoint of the conv2d with
// C_in = C_out', C_out = C_in' and the same weight tensor, so one file serves both:
//   entry point               conv2d            conv_transpose2d
//   conv_direct               forward           backward: d_input
//   conv_gather               backward: d_input forward
//   conv_weight_grad(+reduce) backward: d_weight (x and dy swap roles for the transpose)
// conv_direct_runs, conv_gather_runs and conv_weight_grad_taps compute what conv_direct,
// conv_gather and conv_weight_grad do, with neighbouring taps sharing loads; the host takes
// whichever loads less per multiply-add. conv_gather_block is conv_gather for an image's few
// colour channels, all stride phases in one dispatch.
//
// Each workgroup computes a (TM*WG_M) x (TN*WG_N) tile of a GEMM; each thread holds a TM x TN
// block of outputs in registers. A thread's TN columns are WG_N apart, so neighbouring threads
// read neighbouring pixels (coalesced on GPUs, contiguous SIMD lanes on CPU adapters).
// No workgroup memory: on CPU adapters register tiles alone measured 2-3x faster.
//
// The operand each GEMM gathers from (x, or dy for conv_gather) is read from a zero-bordered
// copy that conv_pad (conv_pad4 for rows of a multiple of 4 values) makes, wide enough that
// every tap lands inside it: the inner loops then load without bounds checks, and a tap's
// offset is the same for all of a thread's columns.
//
// d_input is overwritten; d_weight is ADDED into (gradients are zeroed once per step).
//
// A relu or leaky relu next to a conv can run in the GEMMs' epilogues instead of passes of its
// own (ACT and DACT, compiled in: 0 none, 1 relu, 2 leaky relu with slope `alpha`):
//   ACT   the forward's output is act(y): the activation AFTER this layer.
//   DACT  the input gradient is multiplied by act'(x), taken from this layer's input x, which is
//         the output of the activation BEFORE this layer: for relu and leaky relu (alpha > 0)
//         the output's sign is the input's, so act' needs no pre-activation copy (at 0 the
//         negative branch is taken, as the reference does).

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
    // conv_weight_grad: the reduction over N*H_out*W_out is cut into `splits` chunks of
    // `split_len`; with one split it adds straight into d_weight, else it writes partials.
    splits: u32,
    split_len: u32,
    // conv_weight_grad_reduce: number of d_weight elements.
    out_len: u32,
    // conv_gather: rows and columns of the padded dy (KU - 1 zeros before the data;
    // conv_gather_block: KU - 1 - pad / S), and the stride phase of workgroup_id.z == 0.
    dy_h: u32,
    dy_w: u32,
    phase: u32,
    // The fused leaky relu's slope.
    alpha: f32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// conv_direct: w.  conv_gather: w.  conv_weight_grad: dy.  conv_weight_grad_reduce: partials.
// conv_pad: src.
@group(0) @binding(1) var<storage, read> lhs: array<f32>;
// lhs as vec4s, for conv_pad4 (no entry point uses both views).
@group(0) @binding(1) var<storage, read> lhs4: array<vec4f>;
// conv_direct: padded x.  conv_gather: padded dy.  conv_weight_grad: padded x.
@group(0) @binding(2) var<storage, read> rhs: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// conv_direct: y.  conv_gather: dx.  conv_weight_grad: d_weight or partials.  conv_pad: dst.
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
// DACT: this layer's (unpadded) input x, for the input gradient's act'(x).
@group(0) @binding(5) var<storage, read> act_out: array<f32>;

// Tile shape; the host rewrites these lines per adapter (see gpu::specialize).
const TM: u32 = 4u;
const TN: u32 = 4u;
const WG_M: u32 = 4u;
const WG_N: u32 = 16u;
// The layer's kernel size, stride and most taps per stride phase (ceil(K / S)), and for
// conv_gather the taps of the phases one dispatch covers, rewritten per layer too, so the tap
// loops unroll with no test inside. On SwiftShader every iteration of a loop, and every branch,
// whose condition the compiler cannot prove uniform merges all TM x TN accumulators under a lane
// mask: fewer, longer iterations and no branches are faster.
const K: u32 = 4u;
const S: u32 = 2u;
const KU: u32 = 2u;
const NU: u32 = 2u;
const NV: u32 = 2u;
// conv_weight_grad: output pixels per reduction iteration, a divisor of W_out (4, 2 or 1), so an
// iteration stays within one output row and steps along it by constant offsets.
const ROW_STEPS: u32 = 4u;
// conv_gather_runs: dy values one kernel row of a run needs, TN + NV - 1; conv_gather_block:
// TN + KU - 1; conv_direct_runs: x values, (TN - 1) * S + K.
const RUN_LOADS: u32 = 5u;
const BLOCK_LOADS: u32 = 5u;
const X_RUN_LOADS: u32 = 10u;
// conv_weight_grad_taps: the kernel's taps K * K, and the x values one kernel row of a
// reduction iteration needs, (ROW_STEPS - 1) * S + K.
const KK: u32 = 16u;
const X_RUN: u32 = 10u;
// The activations fused into the epilogues (see the header).
const ACT: u32 = 0u;
const DACT: u32 = 0u;
const RELU: u32 = 1u;
const LEAKY_RELU: u32 = 2u;

// The value a GEMM stores at out[at]: its sum, then the fused activation or activation derivative.
fn epilogue(v: f32, at: u32) -> f32 {
    var r = v;
    if (ACT == RELU) {
        r = max(r, 0.0);
    } else if (ACT == LEAKY_RELU) {
        r = select(p.alpha * r, r, r > 0.0);
    }
    if (DACT == RELU) {
        r *= select(0.0, 1.0, act_out[at] > 0.0);
    } else if (DACT == LEAKY_RELU) {
        r *= select(p.alpha, 1.0, act_out[at] > 0.0);
    }
    return r;
}

fn bias_at(m: u32) -> f32 {
    if (p.has_bias != 0u) {
        return bias[m];
    }
    return 0.0;
}

// y[n, co, oh, ow] = sum_{ci, kh, kw} w[co, ci, kh, kw] * x[n, ci, oh*s - pad + kh, ow*s - pad + kw]
// GEMM: rows co (C_out), columns (n, oh, ow), reduction (ci, kh, kw).
@compute @workgroup_size(WG_N, WG_M, 1)
fn conv_direct(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let hw_out = p.h_out * p.w_out;
    // x is padded by `pad` on every side.
    let w_x = p.w_in + 2u * p.pad;
    let hw_x = (p.h_in + 2u * p.pad) * w_x;
    let cols = p.batch * hw_out;
    let kdim = p.c_in * p.kernel * p.kernel;
    let row0 = (wid.y * WG_M + lid.y) * TM;
    let col0 = wid.x * WG_N * TN + lid.x;

    // Where each column's receptive field starts. Columns past the end are clamped to the
    // last one: they compute a duplicate that is never stored, keeping the loop branch-free.
    var x_base: array<u32, TN>;
    for (var j = 0u; j < TN; j++) { // unroll
        let col = min(col0 + j * WG_N, cols - 1u);
        let r = col % hw_out;
        x_base[j] = (col / hw_out) * p.c_in * hw_x + ((r / p.w_out) * w_x + r % p.w_out) * p.stride;
    }
    var w_row: array<u32, TM>;
    for (var i = 0u; i < TM; i++) { // unroll
        w_row[i] = min(row0 + i, p.c_out - 1u) * kdim;
    }

    var acc: array<array<f32, TN>, TM>;
    var k = 0u;
    for (var ci = 0u; ci < p.c_in; ci++) {
        for (var kh = 0u; kh < K; kh++) {
            let x_row = ci * hw_x + kh * w_x;
            for (var kw = 0u; kw < K; kw++) { // unroll
                var a: array<f32, TM>;
                for (var i = 0u; i < TM; i++) { // unroll
                    a[i] = lhs[w_row[i] + k];
                }
                for (var j = 0u; j < TN; j++) { // unroll
                    let b = rhs[x_base[j] + x_row + kw];
                    for (var i = 0u; i < TM; i++) { // unroll
                        acc[i][j] = fma(a[i], b, acc[i][j]);
                    }
                }
                k++;
            }
        }
    }

    for (var i = 0u; i < TM; i++) { // unroll
        let m = row0 + i;
        let bm = bias_at(m);
        for (var j = 0u; j < TN; j++) { // unroll
            let col = col0 + j * WG_N;
            if (m < p.c_out && col < cols) {
                let at = ((col / hw_out) * p.c_out + m) * hw_out + col % hw_out;
                out[at] = epilogue(acc[i][j] + bm, at);
            }
        }
    }
}

// conv_direct with each thread's TN columns TN neighbouring pixels of one output row (TN divides
// W_out, so a run never leaves its row): pixel j meets tap kw at x entry j * S + kw of the run,
// so one row of (TN - 1) * S + K loads serves all K taps of a kernel row (conv_direct loads
// TN * K).
@compute @workgroup_size(WG_N, WG_M, 1)
fn conv_direct_runs(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let w_x = p.w_in + 2u * p.pad;
    let hw_x = (p.h_in + 2u * p.pad) * w_x;
    let runs_per_row = p.w_out / TN;
    let runs = p.batch * p.h_out * runs_per_row;
    if (wid.x * WG_N >= runs) {
        return;
    }
    let run_id = wid.x * WG_N + lid.x;
    let run = min(run_id, runs - 1u);
    let n = run / (p.h_out * runs_per_row);
    let oh = (run / runs_per_row) % p.h_out;
    let ow0 = (run % runs_per_row) * TN;
    let x_base = n * p.c_in * hw_x + (oh * w_x + ow0) * S;
    let kdim = p.c_in * K * K;
    let row0 = (wid.y * WG_M + lid.y) * TM;
    var w_row: array<u32, TM>;
    for (var i = 0u; i < TM; i++) { // unroll
        w_row[i] = min(row0 + i, p.c_out - 1u) * kdim;
    }

    var acc: array<array<f32, TN>, TM>;
    var k = 0u;
    for (var ci = 0u; ci < p.c_in; ci++) {
        for (var kh = 0u; kh < K; kh++) {
            let x_row = x_base + ci * hw_x + kh * w_x;
            var b: array<f32, X_RUN_LOADS>;
            for (var e = 0u; e < X_RUN_LOADS; e++) { // unroll
                b[e] = rhs[x_row + e];
            }
            for (var kw = 0u; kw < K; kw++) { // unroll
                var a: array<f32, TM>;
                for (var i = 0u; i < TM; i++) { // unroll
                    a[i] = lhs[w_row[i] + k + kw];
                }
                for (var j = 0u; j < TN; j++) { // unroll
                    for (var i = 0u; i < TM; i++) { // unroll
                        acc[i][j] = fma(a[i], b[j * S + kw], acc[i][j]);
                    }
                }
            }
            k += K;
        }
    }

    for (var i = 0u; i < TM; i++) { // unroll
        let m = row0 + i;
        let bm = bias_at(m);
        for (var j = 0u; j < TN; j++) { // unroll
            if (m < p.c_out && run_id < runs) {
                let at = ((n * p.c_out + m) * p.h_out + oh) * p.w_out + ow0 + j;
                out[at] = epilogue(acc[i][j] + bm, at);
            }
        }
    }
}

// dx[n, ci, ih, iw] = sum over (co, kh, kw) with oh = (ih + pad - kh) / stride a whole number in
// range of w[co, ci, kh, kw] * dy[n, co, oh, ow].
// Split by stride phase (rh * stride + rw = p.phase + workgroup_id.z): the pixels with
// (ih + pad) % stride == rh only meet kernel rows kh = rh + stride*u, so no multiply is wasted
// on the zeros a transposed convolution would otherwise insert between pixels. A dispatch covers
// phases with NU x NV taps: all of them when the stride divides the kernel, else one.
// GEMM per phase: rows ci (C_in), columns (n, t, tw) with ih = ih_first + stride*t,
// reduction (co, u, v). dy is padded: KU - 1 zeros before each axis, dy_h x dy_w in all.
struct Phase {
    // Kernel row and column of tap (0, 0): kh = rh + S*u, kw = rw + S*v.
    rh: u32,
    rw: u32,
    // The phase's first input pixel, and its pixels: ih = ih_first + S*t for t < hp.
    ih_first: u32,
    iw_first: u32,
    hp: u32,
    wp: u32,
    // oh = t + oh_base - u, ow = tw + ow_base - v (ih_first + pad - rh is a multiple of S).
    oh_base: i32,
    ow_base: i32,
}

// Stride phase `z` (rh * S + rw), or hp == 0 when it holds no pixels.
fn stride_phase(z: u32) -> Phase {
    var ph: Phase;
    ph.rh = z / S;
    ph.rw = z % S;
    ph.ih_first = (ph.rh + S - p.pad % S) % S;
    ph.iw_first = (ph.rw + S - p.pad % S) % S;
    if (ph.ih_first >= p.h_in || ph.iw_first >= p.w_in) {
        return ph;
    }
    ph.hp = (p.h_in - ph.ih_first + S - 1u) / S;
    ph.wp = (p.w_in - ph.iw_first + S - 1u) / S;
    ph.oh_base = i32((ph.ih_first + p.pad - ph.rh) / S);
    ph.ow_base = i32((ph.iw_first + p.pad - ph.rw) / S);
    return ph;
}

@compute @workgroup_size(WG_N, WG_M, 1)
fn conv_gather(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let s = S;
    let ph = stride_phase(p.phase + wid.z);
    if (ph.hp == 0u) {
        return;
    }
    let rh = ph.rh;
    let rw = ph.rw;
    let ih_first = ph.ih_first;
    let iw_first = ph.iw_first;
    let hp = ph.hp;
    let wp = ph.wp;
    let hwp = hp * wp;
    let cols = p.batch * hwp;
    let col0 = wid.x * WG_N * TN + lid.x;
    if (wid.x * WG_N * TN >= cols) {
        return;
    }
    let oh_base = ph.oh_base;
    let ow_base = ph.ow_base;
    let hw_dy = p.dy_h * p.dy_w;
    let kk = p.kernel * p.kernel;
    let row0 = (wid.y * WG_M + lid.y) * TM;

    // Where each column's tap (u, v) = (0, 0) is in the padded dy; tap (u, v) is u rows and
    // v columns before it.
    var dy_base: array<u32, TN>;
    for (var j = 0u; j < TN; j++) { // unroll
        let col = min(col0 + j * WG_N, cols - 1u);
        let r = col % hwp;
        let oh = u32(i32(r / wp) + oh_base) + KU - 1u;
        let ow = u32(i32(r % wp) + ow_base) + KU - 1u;
        dy_base[j] = (col / hwp) * p.c_out * hw_dy + oh * p.dy_w + ow;
    }
    var w_row: array<u32, TM>;
    for (var i = 0u; i < TM; i++) { // unroll
        w_row[i] = min(row0 + i, p.c_in - 1u) * kk;
    }

    var acc: array<array<f32, TN>, TM>;
    for (var co = 0u; co < p.c_out; co++) {
        let w_co = co * p.c_in * kk;
        let dy_co = co * hw_dy;
        for (var u = 0u; u < NU; u++) { // unroll
            for (var v = 0u; v < NV; v++) { // unroll
                let kh = rh + s * u;
                let kw = rw + s * v;
                var a: array<f32, TM>;
                for (var i = 0u; i < TM; i++) { // unroll
                    a[i] = lhs[w_co + w_row[i] + kh * K + kw];
                }
                let tap = dy_co - u * p.dy_w - v;
                for (var j = 0u; j < TN; j++) { // unroll
                    let b = rhs[dy_base[j] + tap];
                    for (var i = 0u; i < TM; i++) { // unroll
                        acc[i][j] = fma(a[i], b, acc[i][j]);
                    }
                }
            }
        }
    }

    for (var i = 0u; i < TM; i++) { // unroll
        let m = row0 + i;
        let bm = bias_at(m);
        for (var j = 0u; j < TN; j++) { // unroll
            let col = col0 + j * WG_N;
            if (m < p.c_in && col < cols) {
                let r = col % hwp;
                let ih = ih_first + s * (r / wp);
                let iw = iw_first + s * (r % wp);
                let at = (((col / hwp) * p.c_in + m) * p.h_in + ih) * p.w_in + iw;
                out[at] = epilogue(acc[i][j] + bm, at);
            }
        }
    }
}

// conv_gather with each thread's TN columns TN neighbouring pixels of one row of a stride
// phase: pixel j meets tap v at dy entry j + NV-1 - v of the run, so one row of TN + NV - 1
// loads serves all NV taps of a kernel row (conv_gather loads TN * NV). A run may reach past its
// phase row's end: those pixels are computed from the extra padding the host gives dy on the
// right and never stored.
@compute @workgroup_size(WG_N, WG_M, 1)
fn conv_gather_runs(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let ph = stride_phase(p.phase + wid.z);
    if (ph.hp == 0u) {
        return;
    }
    let runs_per_row = (ph.wp + TN - 1u) / TN;
    let runs = p.batch * ph.hp * runs_per_row;
    if (wid.x * WG_N >= runs) {
        return;
    }
    let run_id = wid.x * WG_N + lid.x;
    let run = min(run_id, runs - 1u);
    let n = run / (ph.hp * runs_per_row);
    let t = (run / runs_per_row) % ph.hp;
    let tw0 = (run % runs_per_row) * TN;
    let hw_dy = p.dy_h * p.dy_w;
    let kk = p.kernel * p.kernel;
    let row0 = (wid.y * WG_M + lid.y) * TM;
    // The first dy entry of the run's loads: tap (0, 0) of pixel tw0 is NV - 1 after it.
    let oh = u32(i32(t) + ph.oh_base) + KU - 1u;
    let ow = u32(i32(tw0) + ph.ow_base) + KU - NV;
    let dy_base = n * p.c_out * hw_dy + oh * p.dy_w + ow;
    var w_row: array<u32, TM>;
    for (var i = 0u; i < TM; i++) { // unroll
        w_row[i] = min(row0 + i, p.c_in - 1u) * kk + ph.rh * K + ph.rw;
    }

    var acc: array<array<f32, TN>, TM>;
    for (var co = 0u; co < p.c_out; co++) {
        let w_co = co * p.c_in * kk;
        let dy_co = dy_base + co * hw_dy;
        for (var u = 0u; u < NU; u++) { // unroll
            var d: array<f32, RUN_LOADS>;
            for (var e = 0u; e < RUN_LOADS; e++) { // unroll
                d[e] = rhs[dy_co - u * p.dy_w + e];
            }
            for (var v = 0u; v < NV; v++) { // unroll
                var a: array<f32, TM>;
                for (var i = 0u; i < TM; i++) { // unroll
                    a[i] = lhs[w_co + w_row[i] + S * (u * K + v)];
                }
                for (var j = 0u; j < TN; j++) { // unroll
                    for (var i = 0u; i < TM; i++) { // unroll
                        acc[i][j] = fma(a[i], d[j + NV - 1u - v], acc[i][j]);
                    }
                }
            }
        }
    }

    let ih = ph.ih_first + S * t;
    for (var i = 0u; i < TM; i++) { // unroll
        let m = row0 + i;
        let bm = bias_at(m);
        for (var j = 0u; j < TN; j++) { // unroll
            let tw = tw0 + j;
            if (m < p.c_in && run_id < runs && tw < ph.wp) {
                let iw = ph.iw_first + S * tw;
                let at = ((n * p.c_in + m) * p.h_in + ih) * p.w_in + iw;
                out[at] = epilogue(acc[i][j] + bm, at);
            }
        }
    }
}

// conv_gather for a few rows (an image's colour channels; TM == C_in), every stride phase in
// one thread. The S pixels a = ih + pad = S*q + r (r < S) of one q read the same dy rows
// oh = q - u (kernel row kh = r + S*u), and likewise along columns, so a thread takes the
// S x S pixels of each of TN neighbouring q of one row: per channel, KU rows of TN + KU - 1 dy
// loads feed all K * K taps (conv_gather_runs reloads them for each of the S * S phases, one
// dispatch each when S does not divide K). dy is padded by KU - 1 - pad / S before each axis,
// so q = pad / S + t reads row t + KU - 1 - u. Pixels outside dx (at the ends of an axis when
// pad is no multiple of S, and past its last run) are computed and never stored.
@compute @workgroup_size(WG_N, 1, 1)
fn conv_gather_block(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let q0 = p.pad / S;
    let rows_q = (p.h_in - 1u + p.pad) / S + 1u - q0;
    let runs_per_row = ((p.w_in - 1u + p.pad) / S + 1u - q0 + TN - 1u) / TN;
    let runs = p.batch * rows_q * runs_per_row;
    if (wid.x * WG_N >= runs) {
        return;
    }
    let run_id = wid.x * WG_N + lid.x;
    let run = min(run_id, runs - 1u);
    let n = run / (rows_q * runs_per_row);
    let t = (run / runs_per_row) % rows_q;
    let t0 = (run % runs_per_row) * TN;
    let hw_dy = p.dy_h * p.dy_w;
    let dy_base = n * p.c_out * hw_dy + (t + KU - 1u) * p.dy_w + t0;

    // acc[i][r][c][j]: channel i, pixel (S * q + r, S * (q_w + j) + c) before the pad.
    var acc: array<array<array<array<f32, TN>, S>, S>, TM>;
    for (var co = 0u; co < p.c_out; co++) {
        let w_co = co * TM * K * K;
        let dy_co = dy_base + co * hw_dy;
        for (var u = 0u; u < KU; u++) { // unroll
            var d: array<f32, BLOCK_LOADS>;
            for (var e = 0u; e < BLOCK_LOADS; e++) { // unroll
                d[e] = rhs[dy_co - u * p.dy_w + e];
            }
            for (var r = 0u; r < S; r++) { // unroll
                for (var v = 0u; v < KU; v++) { // unroll
                    for (var c = 0u; c < S; c++) { // unroll
                        // Constant once unrolled: taps past the kernel's edge are left out.
                        if (r + S * u < K && c + S * v < K) {
                            for (var i = 0u; i < TM; i++) { // unroll
                                let a = lhs[w_co + (i * K + r + S * u) * K + c + S * v];
                                for (var j = 0u; j < TN; j++) { // unroll
                                    acc[i][r][c][j] = fma(a, d[j + KU - 1u - v], acc[i][r][c][j]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    let a_h = S * (q0 + t);
    for (var i = 0u; i < TM; i++) { // unroll
        let bm = bias_at(i);
        for (var r = 0u; r < S; r++) { // unroll
            for (var c = 0u; c < S; c++) { // unroll
                for (var j = 0u; j < TN; j++) { // unroll
                    let a_w = S * (q0 + t0 + j) + c;
                    let inside = a_h + r >= p.pad && a_h + r - p.pad < p.h_in && a_w >= p.pad && a_w - p.pad < p.w_in;
                    if (run_id < runs && inside) {
                        let at = ((n * TM + i) * p.h_in + a_h + r - p.pad) * p.w_in + a_w - p.pad;
                        out[at] = epilogue(acc[i][r][c][j] + bm, at);
                    }
                }
            }
        }
    }
}

// An output pixel (n, oh, ow) of the weight gradients' reduction over N * H_out * W_out,
// stepped along ROW_STEPS pixels at a time without dividing.
struct Pixel {
    n: u32,
    oh: u32,
    ow: u32,
}

fn pixel_at(r: u32) -> Pixel {
    let hw_out = p.h_out * p.w_out;
    return Pixel(r / hw_out, (r % hw_out) / p.w_out, r % p.w_out);
}

// Split `split`'s share [start, end) of the reduction over N * H_out * W_out; split_len is a
// multiple of ROW_STEPS, as is the total.
fn split_range(split: u32) -> vec2u {
    let start = split * p.split_len;
    return vec2u(start, min(start + p.split_len, p.batch * p.h_out * p.w_out));
}

// Where dy's rows row0 .. row0 + TM (output channels; clamped to the last) start in an image.
fn dy_rows(row0: u32) -> array<u32, TM> {
    var at: array<u32, TM>;
    for (var i = 0u; i < TM; i++) { // unroll
        at[i] = min(row0 + i, p.c_out - 1u) * p.h_out * p.w_out;
    }
    return at;
}

// dy's offset of pixel `px` in output channel 0.
fn dy_pixel(px: Pixel) -> u32 {
    return (px.n * p.c_out * p.h_out + px.oh) * p.w_out + px.ow;
}

fn next_pixels(px: Pixel) -> Pixel {
    var q = px;
    q.ow += ROW_STEPS;
    if (q.ow == p.w_out) {
        q.ow = 0u;
        q.oh++;
        if (q.oh == p.h_out) {
            q.oh = 0u;
            q.n++;
        }
    }
    return q;
}

// A split's sum for d_weight[at]: added straight in with one split, else its partial written
// for conv_weight_grad_reduce.
fn add_weight_grad(split: u32, at: u32, v: f32) {
    if (p.splits == 1u) {
        out[at] += v;
    } else {
        out[split * p.out_len + at] = v;
    }
}

// dw[co, ci, kh, kw] += sum_{n, oh, ow} dy[n, co, oh, ow] * x[n, ci, oh*s - pad + kh, ow*s - pad + kw]
// GEMM: rows co, columns (ci, kh, kw), reduction over r = (n, oh, ow), which is long
// (N*H_out*W_out) while the output may be small: split-K over workgroup_id.z, each split
// writing its partial tile; conv_weight_grad_reduce sums them. WGSL has no float atomics.
@compute @workgroup_size(WG_N, WG_M, 1)
fn conv_weight_grad(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    // x is padded by `pad` on every side.
    let w_x = p.w_in + 2u * p.pad;
    let hw_x = (p.h_in + 2u * p.pad) * w_x;
    let kk = p.kernel * p.kernel;
    let cols = p.c_in * kk;
    let rows = p.c_out;
    let row0 = (wid.y * WG_M + lid.y) * TM;
    let col0 = wid.x * WG_N * TN + lid.x;

    // Where column (ci, kh, kw) reads, relative to the receptive field's corner.
    var x_off: array<u32, TN>;
    for (var j = 0u; j < TN; j++) { // unroll
        let col = min(col0 + j * WG_N, cols - 1u);
        x_off[j] = (col / kk) * hw_x + ((col % kk) / p.kernel) * w_x + col % p.kernel;
    }
    let dy_row = dy_rows(row0);

    let range = split_range(wid.z);
    var px = pixel_at(range.x);
    var acc: array<array<f32, TN>, TM>;
    for (var r = range.x; r < range.y; r += ROW_STEPS) {
        let dy_n = dy_pixel(px);
        let x_corner = px.n * p.c_in * hw_x + (px.oh * w_x + px.ow) * S;
        for (var q = 0u; q < ROW_STEPS; q++) { // unroll
            var a: array<f32, TM>;
            for (var i = 0u; i < TM; i++) { // unroll
                a[i] = lhs[dy_n + dy_row[i] + q];
            }
            for (var j = 0u; j < TN; j++) { // unroll
                let b = rhs[x_corner + x_off[j] + q * S];
                for (var i = 0u; i < TM; i++) { // unroll
                    acc[i][j] = fma(a[i], b, acc[i][j]);
                }
            }
        }
        px = next_pixels(px);
    }

    for (var i = 0u; i < TM; i++) { // unroll
        let m = row0 + i;
        for (var j = 0u; j < TN; j++) { // unroll
            let col = col0 + j * WG_N;
            if (m < rows && col < cols) {
                add_weight_grad(wid.z, m * cols + col, acc[i][j]);
            }
        }
    }
}

// conv_weight_grad with each thread holding TM rows by all KK = K * K taps of one input
// channel: an iteration's x values along one kernel row, X_RUN of them, serve all K taps of that
// row for all ROW_STEPS pixels (conv_weight_grad loads K * ROW_STEPS). It also keeps an image's
// few channels (75 columns for RGB 5x5) from being padded to a square block's width.
@compute @workgroup_size(WG_N, WG_M, 1)
fn conv_weight_grad_taps(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let w_x = p.w_in + 2u * p.pad;
    let hw_x = (p.h_in + 2u * p.pad) * w_x;
    let cols = p.c_in * KK;
    let rows = p.c_out;
    let row0 = (wid.y * WG_M + lid.y) * TM;
    let ci_id = wid.x * WG_N + lid.x;
    let x_ci = min(ci_id, p.c_in - 1u) * hw_x;
    let dy_row = dy_rows(row0);

    let range = split_range(wid.z);
    var px = pixel_at(range.x);
    var acc: array<array<f32, KK>, TM>;
    for (var r = range.x; r < range.y; r += ROW_STEPS) {
        let dy_n = dy_pixel(px);
        let x_corner = px.n * p.c_in * hw_x + x_ci + (px.oh * w_x + px.ow) * S;
        var a: array<array<f32, ROW_STEPS>, TM>;
        for (var i = 0u; i < TM; i++) { // unroll
            for (var q = 0u; q < ROW_STEPS; q++) { // unroll
                a[i][q] = lhs[dy_n + dy_row[i] + q];
            }
        }
        for (var kh = 0u; kh < K; kh++) { // unroll
            var b: array<f32, X_RUN>;
            for (var e = 0u; e < X_RUN; e++) { // unroll
                b[e] = rhs[x_corner + kh * w_x + e];
            }
            for (var kw = 0u; kw < K; kw++) { // unroll
                for (var q = 0u; q < ROW_STEPS; q++) { // unroll
                    for (var i = 0u; i < TM; i++) { // unroll
                        acc[i][kh * K + kw] = fma(a[i][q], b[q * S + kw], acc[i][kh * K + kw]);
                    }
                }
            }
        }
        px = next_pixels(px);
    }

    for (var i = 0u; i < TM; i++) { // unroll
        let m = row0 + i;
        for (var tap = 0u; tap < KK; tap++) { // unroll
            if (m < rows && ci_id < p.c_in) {
                add_weight_grad(wid.z, m * cols + ci_id * KK + tap, acc[i][tap]);
            }
        }
    }
}

// d_weight[i] += sum over splits of partials[split, i].
@compute @workgroup_size(256)
fn conv_weight_grad_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var i = gid.x; i < p.out_len; i += nwg.x * 256u) {
        var sum = 0.0;
        for (var z = 0u; z < p.splits; z++) {
            sum += lhs[z * p.out_len + i];
        }
        out[i] += sum;
    }
}

// The zero-bordered copies the GEMMs gather from: out[n, c, pad + y, pad + x] = lhs[n, c, y, x]
// for lhs [batch, c_in, h_in, w_in] and out [batch, c_in, h_out, w_out]. Only the interior is
// written; the border stays the zeros the buffer was created with. One thread per row: integer
// division is scalar on CPU adapters, so it is done per row, not per value.
@compute @workgroup_size(256)
fn conv_pad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let rows = p.batch * p.c_in * p.h_in;
    for (var row = gid.x; row < rows; row += nwg.x * 256u) {
        let plane = row / p.h_in;
        let src = row * p.w_in;
        let dst = (plane * p.h_out + p.pad + row % p.h_in) * p.w_out + p.pad;
        for (var x = 0u; x < p.w_in; x++) {
            out[dst + x] = lhs[src + x];
        }
    }
}

// conv_pad for rows of a multiple of 4 values, read as vec4s: on CPU adapters a vector load
// costs about what a scalar one does.
@compute @workgroup_size(256)
fn conv_pad4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let rows = p.batch * p.c_in * p.h_in;
    let w4 = p.w_in / 4u;
    for (var row = gid.x; row < rows; row += nwg.x * 256u) {
        let plane = row / p.h_in;
        let dst = (plane * p.h_out + p.pad + row % p.h_in) * p.w_out + p.pad;
        for (var x = 0u; x < w4; x++) {
            let v = lhs4[row * w4 + x];
            for (var e = 0u; e < 4u; e++) { // unroll
                out[dst + 4u * x + e] = v[e];
            }
        }
    }
}
