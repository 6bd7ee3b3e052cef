// Small utilities shared by the layers.
//
// unpack_u8: out[i] = byte i of `words` (little-endian), mapped from [0, 255] to [-1, 1]. Real
// images are uploaded as bytes (a quarter of the f32 traffic) and become the discriminator's
// input here. Overwrites out.
//
// channel_sum: out[c] += sum over (n, s) of src[n, c, s], for src [N, C, S] (NCHW with S = H*W).
// This is the bias gradient of conv2d, conv_transpose2d (S = H*W) and linear (S = 1).
// One workgroup per channel reduces in workgroup memory; it ADDS into out (gradients are zeroed
// once per step). Two variants for common shapes, where finding a value's place (two integer
// divisions, scalar on CPU adapters) would cost more than the sum: channel_sum4 takes four
// neighbouring values of a plane as a vec4 (S % 4 == 0), and channel_sum_columns, for S = 1
// (a linear layer's [N, C]), gives each thread whole channels, neighbouring threads neighbouring
// channels.

struct Params {
    batch: u32,
    channels: u32,
    spatial: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> words: array<u32>;
// src as vec4s for channel_sum4 (no entry point uses both views).
@group(0) @binding(1) var<storage, read> src4: array<vec4f>;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn channel_sum(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
    let c = wid.x;
    let count = p.batch * p.spatial;
    var sum = 0.0;
    for (var i = lid; i < count; i += WG) {
        let n = i / p.spatial;
        sum += src[(n * p.channels + c) * p.spatial + i % p.spatial];
    }
    add_workgroup_sum(lid, c, sum);
}

@compute @workgroup_size(WG)
fn channel_sum4(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
    let c = wid.x;
    let s4 = p.spatial / 4u;
    var sum = vec4f(0.0);
    for (var i = lid; i < p.batch * s4; i += WG) {
        sum += src4[((i / s4) * p.channels + c) * s4 + i % s4];
    }
    add_workgroup_sum(lid, c, dot(sum, vec4f(1.0)));
}

@compute @workgroup_size(WG)
fn channel_sum_columns(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    for (var c = gid.x; c < p.channels; c += nwg.x * WG) {
        var sum = 0.0;
        for (var n = 0u; n < p.batch; n++) {
            sum += src[n * p.channels + c];
        }
        out[c] += sum;
    }
}

// out[c] += the sum of `v` over the workgroup. Must be called in uniform control flow.
fn add_workgroup_sum(lid: u32, c: u32, v: f32) {
    partial[lid] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[c] += partial[0];
    }
}

@compute @workgroup_size(WG)
fn unpack_u8(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
    let len = p.batch * p.channels * p.spatial;
    for (var i = gid.x; i < len; i += nwg.x * WG) {
        let byte = (words[i / 4u] >> (8u * (i % 4u))) & 0xffu;
        out[i] = f32(byte) / 127.5 - 1.0;
    }
}
