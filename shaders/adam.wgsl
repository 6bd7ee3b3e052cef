// Adam (PyTorch's torch.optim.Adam without weight decay or amsgrad) over one flat buffer.
//
// Shape legend: params, grads, m, v [len]: a whole network's parameters, their gradients and
// Adam's two moments, each one flat buffer with the same layout.
// Entry points:
//   adam_step   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
//               params -= lr * (m / c1) / (sqrt(v / c2) + eps)      (params, m, v updated)
//   adam_step4  the same on vec4s, for len % 4 == 0 (a network's flat buffers always are): on
//               CPU adapters one vector access costs about what one scalar access does
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
// The same buffers as vec4s, for adam_step4 (no entry point uses both views).
@group(0) @binding(1) var<storage, read> grads4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> params4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> m4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> v4: array<vec4f>;

const WG: u32 = 256u;

// The new moments from gradient g and the old ones.
fn moments(g: vec4f, m_old: vec4f, v_old: vec4f) -> array<vec4f, 2> {
    return array(p.beta1 * m_old + (1.0 - p.beta1) * g, p.beta2 * v_old + (1.0 - p.beta2) * g * g);
}

// The parameters' step for the new moments: eps after the square root, as PyTorch (not inside
// it, as some papers write it).
fn update(mv: array<vec4f, 2>) -> vec4f {
    return p.lr * (mv[0] / p.c1) / (sqrt(mv[1] / p.c2) + p.eps);
}

@compute @workgroup_size(WG)
fn adam_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var i = gid.x; i < p.len; i += nwg.x * WG) {
        let mv = moments(vec4f(grads[i]), vec4f(m[i]), vec4f(v[i]));
        m[i] = mv[0].x;
        v[i] = mv[1].x;
        params[i] -= update(mv).x;
    }
}

@compute @workgroup_size(WG)
fn adam_step4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var i = gid.x; i < p.len / 4u; i += nwg.x * WG) {
        let mv = moments(grads4[i], m4[i], v4[i]);
        m4[i] = mv[0];
        v4[i] = mv[1];
        params4[i] -= update(mv);
    }
}
