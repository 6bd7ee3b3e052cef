// Adam (PyTorch's torch.optim.Adam without weight decay or amsgrad) over one flat buffer.
//
// Shape legend: params, grads, m, v [len]: a whole network's parameters, their gradients and
// Adam's two moments, each one flat buffer with the same layout.
// Entry point:
//   adam_step  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
//              params -= lr * (m / c1) / (sqrt(v / c2) + eps)      (params, m, v updated)
// c1 = 1 - b1^t and c2 = 1 - b2^t are the bias corrections for step t; the host computes them
// (in f64) and rewrites the uniform before each step, so the shader needs no step count.

struct Params {
    len: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    c1: f32,
    c2: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn adam_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var i = gid.x; i < p.len; i += nwg.x * WG) {
        let g = grads[i];
        let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
        let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        // eps after the square root, as PyTorch (not inside it, as some papers write it).
        params[i] -= p.lr * (mi / p.c1) / (sqrt(vi / p.c2) + p.eps);
    }
}
