// Pointwise activations, forward and backward, over flat tensors of any shape.
//
// Shape legend: x, y, dy, dx [len] (any layout; the op is elementwise).
// Entry points:
//   activation_forward   y = f(x)
//   activation_backward  dx = dy * f'(x), with x the forward's INPUT (overwritten)
// f by OP, compiled in per activation (a switch on a uniform costs every element all the
// branches on CPU adapters): 0 relu, 1 leaky relu (slope alpha below zero), 2 tanh, 3 sigmoid.
// At the kink x = 0 the negative branch is taken (relu'(0) = 0, leaky'(0) = alpha), as PyTorch
// and the CPU reference do.

struct Params {
    len: u32,
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// activation_backward only.
@group(0) @binding(2) var<storage, read> dy: array<f32>;
// activation_forward: y.  activation_backward: dx.
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
const OP: u32 = 0u;
const RELU: u32 = 0u;
const LEAKY_RELU: u32 = 1u;
const TANH: u32 = 2u;

// Built from e = exp(-|x|) in (0, 1], which cannot overflow: some drivers implement tanh and
// sigmoid with exp(+|x|) and return inf/inf = NaN for large |x|.
fn stable_tanh(v: f32) -> f32 {
    let e = exp(-2.0 * abs(v));
    return sign(v) * (1.0 - e) / (1.0 + e);
}

fn stable_sigmoid(v: f32) -> f32 {
    let e = exp(-abs(v));
    return select(e, 1.0, v >= 0.0) / (1.0 + e);
}

fn f(v: f32) -> f32 {
    switch OP {
        case RELU: { return max(v, 0.0); }
        case LEAKY_RELU: { return select(p.alpha * v, v, v > 0.0); }
        case TANH: { return stable_tanh(v); }
        default: { return stable_sigmoid(v); }
    }
}

fn df(v: f32) -> f32 {
    switch OP {
        case RELU: { return select(0.0, 1.0, v > 0.0); }
        case LEAKY_RELU: { return select(p.alpha, 1.0, v > 0.0); }
        // 1 - tanh^2 and s * (1 - s) cancel where the curves flatten out; these do not.
        case TANH: {
            let e = exp(-2.0 * abs(v));
            return 4.0 * e / ((1.0 + e) * (1.0 + e));
        }
        default: {
            let e = exp(-abs(v));
            return e / ((1.0 + e) * (1.0 + e));
        }
    }
}

@compute @workgroup_size(WG)
fn activation_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var i = gid.x; i < p.len; i += nwg.x * WG) {
        out[i] = f(x[i]);
    }
}

@compute @workgroup_size(WG)
fn activation_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var i = gid.x; i < p.len; i += nwg.x * WG) {
        out[i] = dy[i] * df(x[i]);
    }
}
