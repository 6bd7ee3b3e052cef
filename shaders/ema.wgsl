// The exponential moving average of a network's parameters (G's, after each Adam step), over
// the flat parameter buffer.
//
// Shape legend: params, ema [len]: a whole network's parameters and their average, one flat
// buffer each with the same layout (len % 4 == 0: a network's flat buffers always are).
// Entry points:
//   ema_update4  ema = decay * ema + (1 - decay) * params, on vec4s
// The average has no backward: nothing trains through it, it is only drawn from.

struct Params {
    len: u32,
    decay: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> params4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> ema4: array<vec4f>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn ema_update4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var i = gid.x; i < p.len / 4u; i += nwg.x * WG) {
        ema4[i] = p.decay * ema4[i] + (1.0 - p.decay) * params4[i];
    }
}
