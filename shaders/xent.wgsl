// Softmax cross-entropy with integer labels, the classifier's loss, fused with its gradient and
// the batch accuracy.
//
// Shape legend: logits, d_logits [N, C] (C class scores per sample, row-major); labels [N] u32,
// each < C; metrics [any] with two slots at `offset`.
// Entry point (one workgroup; one thread per sample in a grid-stride loop):
//   softmax_xent  d_logits[n, c] = (softmax(x_n)[c] - [c == label_n]) / N        (overwritten)
//                 metrics[offset]     = mean over n of logsumexp(x_n) - x_n[label_n]
//                 metrics[offset + 1] = share of n with argmax(x_n) == label_n (first maximum)
// Everything is computed relative to the row's maximum, so no exp overflows and the log never
// sees a rounded-to-zero probability. The loss stays on the GPU: nothing is read back in a step.

struct Params {
    batch: u32,
    classes: u32,
    offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> d_logits: array<f32>;
@group(0) @binding(4) var<storage, read_write> metrics: array<f32>;

const WG: u32 = 256u;
var<workgroup> partial: array<vec2f, WG>;

@compute @workgroup_size(WG)
fn softmax_xent(@builtin(local_invocation_index) lid: u32) {
    let nf = f32(p.batch);
    let c_len = p.classes;
    var sums = vec2f(0.0);
    for (var n = lid; n < p.batch; n += WG) {
        let row = n * c_len;
        var top = logits[row];
        var arg = 0u;
        for (var c = 1u; c < c_len; c++) {
            let v = logits[row + c];
            if (v > top) {
                top = v;
                arg = c;
            }
        }
        var total = 0.0;
        for (var c = 0u; c < c_len; c++) {
            total += exp(logits[row + c] - top);
        }
        let label = labels[n];
        for (var c = 0u; c < c_len; c++) {
            let prob = exp(logits[row + c] - top) / total;
            d_logits[row + c] = (prob - select(0.0, 1.0, c == label)) / nf;
        }
        let loss = log(total) - (logits[row + label] - top);
        sums += vec2f(loss, select(0.0, 1.0, arg == label));
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
