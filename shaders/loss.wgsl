// Binary cross-entropy on logits, the GAN loss, fused with its gradient and the metrics.
//
// Shape legend: logits, d_logits [N] (one logit per image); one target t (0 or 1) for the
// whole batch; metrics [any] with two slots at `offset`.
// Entry point (one workgroup; GAN batches are small):
//   bce_with_logits  d_logits[i] = (sigmoid(x_i) - t) / N                  (overwritten)
//                    metrics[offset]     = mean of max(x,0) - x*t + log(1 + exp(-|x|))
//                    metrics[offset + 1] = mean sigmoid(x): D(x) or D(G(z))
// The loss stays on the GPU: nothing is read back inside a training step.

struct Params {
    len: u32,
    offset: u32,
    target_value: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> d_logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<f32>;

const WG: u32 = 256u;
var<workgroup> partial: array<vec2f, WG>;

// From e = exp(-|x|), which cannot overflow (exp(+|x|) can, and inf/inf is NaN).
fn stable_sigmoid(v: f32) -> f32 {
    let e = exp(-abs(v));
    return select(e, 1.0, v >= 0.0) / (1.0 + e);
}

// log(1 + e) for e in (0, 1] without losing a small e to the rounding of 1 + e (WGSL has no
// log1p): log(u) / (u - 1) is accurate where u = fl(1 + e), and e / (u - 1) corrects the rounding.
fn log1p(e: f32) -> f32 {
    let u = 1.0 + e;
    if (u == 1.0) {
        return e;
    }
    return log(u) * e / (u - 1.0);
}

@compute @workgroup_size(WG)
fn bce_with_logits(@builtin(local_invocation_index) lid: u32) {
    let nf = f32(p.len);
    let t = p.target_value;
    var sums = vec2f(0.0);
    for (var i = lid; i < p.len; i += WG) {
        let v = logits[i];
        let s = stable_sigmoid(v);
        d_logits[i] = (s - t) / nf;
        sums += vec2f(max(v, 0.0) - v * t + log1p(exp(-abs(v))), s);
    }
    partial[lid] = sums;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        metrics[p.offset] = partial[0].x / nf;
        metrics[p.offset + 1u] = partial[0].y / nf;
    }
}
