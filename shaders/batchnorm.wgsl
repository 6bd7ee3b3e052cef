// Batchnorm over (N, H, W) per channel, training and eval forward and the training backward.
//
// Shape legend: x, y, dy, dx [N, C, S] (NCHW with S = H*W; S = 1 after a linear layer);
// every channel normalises n = N*S values.
//   affine   [2C]: gamma at [0, C), beta at [C, 2C)
//   d_affine [2C]: d_gamma, d_beta, same layout
//   running  [2C]: running mean at [0, C), running (unbiased) var at [C, 2C)
//   stats    [4C]: scratch the op owns: batch mean, invstd = 1/sqrt(biased var + eps), and in
//                  the backward sum(dy), sum(dy * xhat), each at [k*C, (k+1)*C)
// The tensors come in pairs like this because a stage may bind at most 8 storage buffers.
//
// Entry points, in the order a step runs them:
//   batchnorm_stats            one workgroup per channel: mean and invstd into stats, and the
//                              running statistics updated (momentum m, as PyTorch)
//   batchnorm_normalize        y = (x - mean) * invstd * gamma + beta, elementwise
//   batchnorm_forward_eval     y = (x - running mean) / sqrt(running var + eps) * gamma + beta
//   batchnorm_backward_reduce  one workgroup per channel: the two sums into stats, and
//                              d_affine += [sum dy * xhat ; sum dy]   (ADDED into)
//   batchnorm_backward_input   dx = gamma * invstd / n * (n*dy - sum dy - xhat * sum dy*xhat)
//                              (overwritten)
// The backward reads the mean and invstd that batchnorm_stats left in stats, so it must follow
// the training forward of the same step.
//
// Each entry point has a twin ending in 4 for planes of a multiple of 4 values (H*W % 4 == 0): a thread
// takes four neighbouring values of one plane as a vec4, so finding the value's channel (two
// divisions), the per-channel loads and the memory accesses come once per four values. On CPU
// adapters those, not the arithmetic, are what these passes cost.
//
// An activation that follows the batchnorm can be fused in (ACT, compiled in: 0 none, 1 relu,
// 2 leaky relu with slope `alpha`; a switch on a uniform costs every element all its branches
// on CPU adapters): y is then act(batchnorm(x)) and dy is the gradient with respect to that,
// so the backward first takes dy * act'(z) with z = xhat * gamma + beta recomputed from x. That
// saves the activation's own passes over memory (two reads and a write forward, three backward).

struct Params {
    batch: u32,
    channels: u32,
    spatial: u32,
    // batch * channels * spatial: the elementwise entry points' range.
    len: u32,
    momentum: f32,
    eps: f32,
    _pad0: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> running: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> d_affine: array<f32>;
// x, dy, y and dx as vec4s, for the entry points ending in 4; no entry point uses both views of
// a binding.
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(3) var<storage, read> dy4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4f>;
@group(0) @binding(7) var<storage, read_write> dx4: array<vec4f>;

const WG: u32 = 256u;
const ACT: u32 = 0u;
// Two sums reduced side by side (the backward needs two; the statistics use .x only).
var<workgroup> partial: array<vec2f, WG>;

// The sum of `v` over the workgroup, returned to every thread. Must be called in uniform
// control flow.
fn workgroup_sum(lid: u32, v: vec2f) -> vec2f {
    partial[lid] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    // Everyone has read the total before a following call overwrites partial[0].
    workgroupBarrier();
    return total;
}

const RELU: u32 = 1u;
const LEAKY_RELU: u32 = 2u;

// As activation.wgsl: at z = 0 the negative branch is taken.
fn act4(z: vec4f) -> vec4f {
    switch ACT {
        case RELU: { return max(z, vec4f(0.0)); }
        case LEAKY_RELU: { return select(p.alpha * z, z, z > vec4f(0.0)); }
        default: { return z; }
    }
}

fn act_grad4(z: vec4f) -> vec4f {
    switch ACT {
        case RELU: { return select(vec4f(0.0), vec4f(1.0), z > vec4f(0.0)); }
        case LEAKY_RELU: { return select(vec4f(p.alpha), vec4f(1.0), z > vec4f(0.0)); }
        default: { return vec4f(1.0); }
    }
}

fn act(z: f32) -> f32 {
    return act4(vec4f(z)).x;
}

fn act_grad(z: f32) -> f32 {
    return act_grad4(vec4f(z)).x;
}

// Index of the i-th of channel c's n values: i runs over (batch, spatial).
fn at(c: u32, i: u32) -> u32 {
    return ((i / p.spatial) * p.channels + c) * p.spatial + i % p.spatial;
}

fn channel_of(j: u32) -> u32 {
    return (j / p.spatial) % p.channels;
}

// at and channel_of counting vec4s (spatial % 4 == 0).
fn at4(c: u32, i: u32) -> u32 {
    let s4 = p.spatial / 4u;
    return ((i / s4) * p.channels + c) * s4 + i % s4;
}

fn channel_of4(j: u32) -> u32 {
    return channel_of(4u * j);
}

fn sum4(v: vec4f) -> f32 {
    return dot(v, vec4f(1.0));
}

// Channel c's batch statistics from the sum of its n values and of their squared deviations:
// into stats, and the running statistics updated.
fn store_stats(c: u32, n: u32, mean: f32, sq_total: f32) {
    let var_biased = sq_total / f32(n);
    stats[c] = mean;
    stats[p.channels + c] = 1.0 / sqrt(var_biased + p.eps);
    // The running variance is the unbiased estimate, as PyTorch keeps it; one value has none.
    let var_unbiased = select(var_biased, sq_total / f32(n - 1u), n > 1u);
    let m = p.momentum;
    running[c] = (1.0 - m) * running[c] + m * mean;
    running[p.channels + c] = (1.0 - m) * running[p.channels + c] + m * var_unbiased;
}

// The backward's two sums of channel c: into stats, and added into d_affine.
fn store_grad_sums(c: u32, total: vec2f) {
    stats[2u * p.channels + c] = total.x;
    stats[3u * p.channels + c] = total.y;
    d_affine[c] += total.y;
    d_affine[p.channels + c] += total.x;
}

@compute @workgroup_size(WG)
fn batchnorm_stats(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
    let c = wid.x;
    let n = p.batch * p.spatial;
    let nf = f32(n);
    var sum = 0.0;
    for (var i = lid; i < n; i += WG) {
        sum += x[at(c, i)];
    }
    let mean = workgroup_sum(lid, vec2f(sum, 0.0)).x / nf;
    // Second pass over squared deviations: E[x^2] - E[x]^2 cancels catastrophically when the
    // mean is large against the spread.
    var sq = 0.0;
    for (var i = lid; i < n; i += WG) {
        let d = x[at(c, i)] - mean;
        sq += d * d;
    }
    let sq_total = workgroup_sum(lid, vec2f(sq, 0.0)).x;
    if (lid == 0u) {
        store_stats(c, n, mean, sq_total);
    }
}

@compute @workgroup_size(WG)
fn batchnorm_stats4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
    let c = wid.x;
    let n = p.batch * p.spatial;
    let n4 = n / 4u;
    var sum = vec4f(0.0);
    for (var i = lid; i < n4; i += WG) {
        sum += x4[at4(c, i)];
    }
    let mean = workgroup_sum(lid, vec2f(sum4(sum), 0.0)).x / f32(n);
    var sq = vec4f(0.0);
    for (var i = lid; i < n4; i += WG) {
        let d = x4[at4(c, i)] - mean;
        sq += d * d;
    }
    let sq_total = workgroup_sum(lid, vec2f(sum4(sq), 0.0)).x;
    if (lid == 0u) {
        store_stats(c, n, mean, sq_total);
    }
}

@compute @workgroup_size(WG)
fn batchnorm_normalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var j = gid.x; j < p.len; j += nwg.x * WG) {
        let c = channel_of(j);
        y[j] = act((x[j] - stats[c]) * stats[p.channels + c] * affine[c] + affine[p.channels + c]);
    }
}

@compute @workgroup_size(WG)
fn batchnorm_normalize4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var j = gid.x; j < p.len / 4u; j += nwg.x * WG) {
        let c = channel_of4(j);
        y4[j] = act4((x4[j] - stats[c]) * stats[p.channels + c] * affine[c] + affine[p.channels + c]);
    }
}

@compute @workgroup_size(WG)
fn batchnorm_forward_eval(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var j = gid.x; j < p.len; j += nwg.x * WG) {
        let c = channel_of(j);
        let xhat = (x[j] - running[c]) / sqrt(running[p.channels + c] + p.eps);
        y[j] = act(affine[c] * xhat + affine[p.channels + c]);
    }
}

@compute @workgroup_size(WG)
fn batchnorm_forward_eval4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var j = gid.x; j < p.len / 4u; j += nwg.x * WG) {
        let c = channel_of4(j);
        let xhat = (x4[j] - running[c]) / sqrt(running[p.channels + c] + p.eps);
        y4[j] = act4(affine[c] * xhat + affine[p.channels + c]);
    }
}

@compute @workgroup_size(WG)
fn batchnorm_backward_reduce(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
    let c = wid.x;
    let n = p.batch * p.spatial;
    let mean = stats[c];
    let invstd = stats[p.channels + c];
    let gamma = affine[c];
    let beta = affine[p.channels + c];
    var sums = vec2f(0.0);
    for (var i = lid; i < n; i += WG) {
        let j = at(c, i);
        let xhat = (x[j] - mean) * invstd;
        let g = dy[j] * act_grad(xhat * gamma + beta);
        sums += vec2f(g, g * xhat);
    }
    let total = workgroup_sum(lid, sums);
    if (lid == 0u) {
        store_grad_sums(c, total);
    }
}

@compute @workgroup_size(WG)
fn batchnorm_backward_reduce4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
    let c = wid.x;
    let n4 = p.batch * p.spatial / 4u;
    let mean = stats[c];
    let invstd = stats[p.channels + c];
    let gamma = affine[c];
    let beta = affine[p.channels + c];
    var g_sum = vec4f(0.0);
    var gx_sum = vec4f(0.0);
    for (var i = lid; i < n4; i += WG) {
        let j = at4(c, i);
        let xhat = (x4[j] - mean) * invstd;
        let g = dy4[j] * act_grad4(xhat * gamma + beta);
        g_sum += g;
        gx_sum += g * xhat;
    }
    let total = workgroup_sum(lid, vec2f(sum4(g_sum), sum4(gx_sum)));
    if (lid == 0u) {
        store_grad_sums(c, total);
    }
}

@compute @workgroup_size(WG)
fn batchnorm_backward_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let nf = f32(p.batch * p.spatial);
    let ch = p.channels;
    for (var j = gid.x; j < p.len; j += nwg.x * WG) {
        let c = channel_of(j);
        let invstd = stats[ch + c];
        let xhat = (x[j] - stats[c]) * invstd;
        let g = dy[j] * act_grad(xhat * affine[c] + affine[ch + c]);
        // The last two terms: the mean and the spread depend on every x of the channel.
        dx[j] = affine[c] * invstd / nf * (nf * g - stats[2u * ch + c] - xhat * stats[3u * ch + c]);
    }
}

@compute @workgroup_size(WG)
fn batchnorm_backward_input4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let nf = f32(p.batch * p.spatial);
    let ch = p.channels;
    for (var j = gid.x; j < p.len / 4u; j += nwg.x * WG) {
        let c = channel_of4(j);
        let invstd = stats[ch + c];
        let xhat = (x4[j] - stats[c]) * invstd;
        let g = dy4[j] * act_grad4(xhat * affine[c] + affine[ch + c]);
        dx4[j] = affine[c] * invstd / nf * (nf * g - stats[2u * ch + c] - xhat * stats[3u * ch + c]);
    }
}
