// linear: y = x w^T + b, forward and backward, as one register-tiled strided GEMM.
//
// Shape legend (PyTorch's nn.Linear layout):
//   x [N, D_in]   w [D_out, D_in]   b [D_out]   y [N, D_out]
// Each entry point is the same GEMM C[M, Ncol] = A[M, K] B[K, Ncol] read with its own strides:
//   linear_forward          y  = x  w^T (+ b)   M = N,     Ncol = D_out, K = D_in   (overwrites)
//   linear_backward_input   dx = dy w           M = N,     Ncol = D_in,  K = D_out  (overwrites)
//   linear_backward_weight  dw += dy^T x        M = D_out, Ncol = D_in,  K = N      (ADDS into dw)
// d_bias is util.wgsl's channel_sum over dy. Tiling as in conv.wgsl: a thread holds TM x TN
// outputs in registers, its TN columns WG_N apart so neighbouring threads read neighbouring values.

struct Params {
    batch: u32,
    d_in: u32,
    d_out: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// forward: x.  backward_input: dy.  backward_weight: dy.
@group(0) @binding(1) var<storage, read> lhs: array<f32>;
// forward: w.  backward_input: w.  backward_weight: x.
@group(0) @binding(2) var<storage, read> rhs: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// forward: y.  backward_input: dx.  backward_weight: dw.
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const TM: u32 = 4u;
const TN: u32 = 4u;
const WG_M: u32 = 4u;
const WG_N: u32 = 16u;

struct Gemm {
    m: u32,
    n: u32,
    k: u32,
    // A[i, k] = lhs[i * a_row + k * a_k]; B[k, j] = rhs[k * b_k + j * b_col].
    a_row: u32,
    a_k: u32,
    b_k: u32,
    b_col: u32,
}

// Returns this thread's TM x TN block of A B; rows beyond M and columns beyond Ncol are clamped
// to the last valid one (computed, never stored).
fn gemm_block(g: Gemm, row0: u32, col0: u32) -> array<array<f32, TN>, TM> {
    var a_at: array<u32, TM>;
    for (var i = 0u; i < TM; i++) { // unroll
        a_at[i] = min(row0 + i, g.m - 1u) * g.a_row;
    }
    var b_at: array<u32, TN>;
    for (var j = 0u; j < TN; j++) { // unroll
        b_at[j] = min(col0 + j * WG_N, g.n - 1u) * g.b_col;
    }
    var acc: array<array<f32, TN>, TM>;
    for (var k = 0u; k < g.k; k++) {
        var a: array<f32, TM>;
        for (var i = 0u; i < TM; i++) { // unroll
            a[i] = lhs[a_at[i] + k * g.a_k];
        }
        for (var j = 0u; j < TN; j++) { // unroll
            let b = rhs[k * g.b_k + b_at[j]];
            for (var i = 0u; i < TM; i++) { // unroll
                acc[i][j] = fma(a[i], b, acc[i][j]);
            }
        }
    }
    return acc;
}

@compute @workgroup_size(WG_N, WG_M, 1)
fn linear_forward(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let g = Gemm(p.batch, p.d_out, p.d_in, p.d_in, 1u, 1u, p.d_in);
    let row0 = (wid.y * WG_M + lid.y) * TM;
    let col0 = wid.x * WG_N * TN + lid.x;
    let acc = gemm_block(g, row0, col0);
    for (var i = 0u; i < TM; i++) { // unroll
        let m = row0 + i;
        for (var j = 0u; j < TN; j++) { // unroll
            let o = col0 + j * WG_N;
            if (m < g.m && o < g.n) {
                var v = acc[i][j];
                if (p.has_bias != 0u) {
                    v += bias[o];
                }
                out[m * g.n + o] = v;
            }
        }
    }
}

@compute @workgroup_size(WG_N, WG_M, 1)
fn linear_backward_input(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let g = Gemm(p.batch, p.d_in, p.d_out, p.d_out, 1u, p.d_in, 1u);
    let row0 = (wid.y * WG_M + lid.y) * TM;
    let col0 = wid.x * WG_N * TN + lid.x;
    let acc = gemm_block(g, row0, col0);
    for (var i = 0u; i < TM; i++) { // unroll
        for (var j = 0u; j < TN; j++) { // unroll
            let m = row0 + i;
            let c = col0 + j * WG_N;
            if (m < g.m && c < g.n) {
                out[m * g.n + c] = acc[i][j];
            }
        }
    }
}

@compute @workgroup_size(WG_N, WG_M, 1)
fn linear_backward_weight(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
    let g = Gemm(p.d_out, p.d_in, p.batch, 1u, p.d_out, p.d_in, 1u);
    let row0 = (wid.y * WG_M + lid.y) * TM;
    let col0 = wid.x * WG_N * TN + lid.x;
    let acc = gemm_block(g, row0, col0);
    for (var i = 0u; i < TM; i++) { // unroll
        for (var j = 0u; j < TN; j++) { // unroll
            let m = row0 + i;
            let c = col0 + j * WG_N;
            if (m < g.m && c < g.n) {
                out[m * g.n + c] += acc[i][j];
            }
        }
    }
}
