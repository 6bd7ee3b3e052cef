//! Whether a model fits an adapter, decided from the configuration alone, before any buffer
//! exists: [`check`] computes every storage binding and every dispatch's workgroup counts that
//! [`crate::train::Trainer::new`] would create, and refuses the configuration with the limit
//! named, its value, and the buffer or dispatch that needs more.
//!
//! The ops check their own bindings again when they are built; this check exists so that a
//! configuration too large for the adapter costs nothing (no half-built model, no out-of-memory
//! from a buffer that could never be bound). All sizes are computed in u128 from the layer
//! geometry, so absurd values (a width of 10^15) are refused, not overflowed.

use super::config::{Kind, ModelConfig};
use super::spec::{discriminator, generator, LayerSpec, NetSpec, STRIDE};
use crate::gpu::{GpuError, Tiles, Tuning};
use crate::ops::conv;

/// `Gpu::flat`'s tensor alignment (WebGPU's minStorageBufferOffsetAlignment).
const ALIGN: u128 = 256;

/// What a configuration needs: (what, bytes) per storage binding and (what, count) per
/// workgroup dimension of a dispatch.
#[derive(Default)]
struct Needs {
    bindings: Vec<(String, u128)>,
    workgroups: Vec<(String, u128)>,
}

fn mul(factors: &[u128]) -> u128 {
    factors.iter().fold(1u128, |a, &b| a.saturating_mul(b))
}

/// 1,234,567
fn commas(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Needs {
    fn binding(&mut self, what: impl Into<String>, values: u128) {
        self.bindings.push((what.into(), values.saturating_mul(4)));
    }

    fn workgroups(&mut self, what: impl Into<String>, count: u128) {
        self.workgroups.push((what.into(), count));
    }

    /// The largest binding against maxStorageBufferBindingSize and maxBufferSize (every buffer
    /// of a model is bound whole somewhere), then the largest workgroup count.
    fn verdict(&self, limits: &wgpu::Limits) -> Result<(), GpuError> {
        let hint = "(a smaller batch, width or image size fits)";
        if let Some((what, bytes)) = self.bindings.iter().max_by_key(|(_, b)| *b) {
            let binding = limits.max_storage_buffer_binding_size as u128;
            if *bytes > binding {
                return Err(GpuError::Limit(format!(
                    "{what} needs {} bytes in one storage binding; maxStorageBufferBindingSize is {} {hint}",
                    commas(*bytes),
                    commas(binding)
                )));
            }
            let buffer = limits.max_buffer_size as u128;
            if *bytes > buffer {
                return Err(GpuError::Limit(format!(
                    "{what} needs a buffer of {} bytes; maxBufferSize is {} {hint}",
                    commas(*bytes),
                    commas(buffer)
                )));
            }
        }
        if let Some((what, count)) = self.workgroups.iter().max_by_key(|(_, c)| *c) {
            let max = limits.max_compute_workgroups_per_dimension as u128;
            if *count > max {
                return Err(GpuError::Limit(format!(
                    "{what} needs {} workgroups in one dimension; maxComputeWorkgroupsPerDimension is {} {hint}",
                    commas(*count),
                    commas(max)
                )));
            }
        }
        Ok(())
    }
}

/// Refuses `cfg` (with `tiles`, the GEMM tile shape the trainer will use) when anything the
/// trainer would allocate or dispatch exceeds `limits`: the error names the limit, its value and
/// what needs more. Call it before allocating anything; it allocates nothing on the GPU.
pub fn check(cfg: &ModelConfig, tiles: &Tuning, limits: &wgpu::Limits) -> Result<(), GpuError> {
    cfg.validate().map_err(GpuError::Limit)?;
    // First the few buffers whose size follows from the fields directly: once they fit, every
    // product the layer specifications compute fits in a usize (also on wasm32).
    coarse(cfg).verdict(limits)?;
    let (g, d) = (generator(cfg), discriminator(cfg));
    let batch = cfg.batch as u128;
    let mut needs = Needs::default();
    needs.binding("the real batch (u8)", (batch * cfg.image_len() as u128).div_ceil(4));
    network(&mut needs, &g, batch, false);
    network(&mut needs, &d, batch, true);
    needs.verdict(limits)?;
    // Workgroup counts: the GEMM grids depend on the tile shapes, and every product below is
    // now known to fit.
    let mut needs = Needs::default();
    dispatches(&mut needs, &g, cfg.batch, tiles, false);
    dispatches(&mut needs, &d, cfg.batch, tiles, true);
    needs.verdict(limits)
}

/// The buffers computable from the configuration's fields alone.
fn coarse(cfg: &ModelConfig) -> Needs {
    let [batch, size, channels, z, ngf, ndf] =
        [cfg.batch, cfg.image_size, cfg.channels, cfg.z_dim, cfg.ngf, cfg.ndf].map(|v| v as u128);
    let image = mul(&[channels, size, size]);
    let mut needs = Needs::default();
    needs.binding(format!("z (batch {batch} x z size {z})"), mul(&[batch, z]));
    needs.binding(format!("D's input (batch {batch} x {channels}x{size}x{size})"), mul(&[batch, image]));
    match cfg.kind {
        Kind::Dcgan => {
            let top = mul(&[ngf, 1u128 << (cfg.stages().saturating_sub(1)).min(64)]);
            needs.binding(format!("G's first layer output (batch {batch} x {top}x4x4)"), mul(&[batch, top, 16]));
            needs.binding(format!("G's first layer weight ({z} x {top}x4x4)"), mul(&[z, top, 16]));
            let half = size / 2;
            needs.binding(
                format!("D's first layer output (batch {batch} x {ndf}x{half}x{half})"),
                mul(&[batch, ndf, half, half]),
            );
            let last = mul(&[ndf, 1u128 << (cfg.stages().saturating_sub(1)).min(64)]);
            needs.binding(format!("D's last conv output (batch {batch} x {last}x4x4)"), mul(&[batch, last, 16]));
        }
        Kind::Basic => {
            needs.binding(format!("G's widest layer output (batch {batch} x {})", 32 * ngf), mul(&[batch, 32, ngf]));
            needs.binding(format!("G's layer weight ({} x {})", 16 * ngf, 32 * ngf), mul(&[16, ngf, 32, ngf]));
            needs.binding(format!("G's last weight ({} x {image})", 32 * ngf), mul(&[32, ngf, image]));
            needs.binding(format!("D's first weight ({image} x {})", 16 * ndf), mul(&[image, 16, ndf]));
            needs.binding(format!("D's widest layer output (batch {batch} x {})", 16 * ndf), mul(&[batch, 16, ndf]));
        }
    }
    needs
}

/// Conv2d's output side for `hw_in` (as `shape::Conv2d::h_out`).
fn conv_out(hw_in: usize, kernel: usize, pad: usize) -> u128 {
    ((hw_in + 2 * pad - kernel) / STRIDE + 1) as u128
}

/// ConvTranspose2d's output side for `hw_in` (as `shape::ConvTranspose2d::h_out`).
fn conv_t_out(hw_in: usize, kernel: usize, pad: usize, out_pad: usize) -> u128 {
    ((hw_in - 1) * STRIDE + kernel + out_pad - 2 * pad) as u128
}

/// (values per sample out, parameter tensor lengths) of one layer, in u128.
fn layer_sizes(layer: &LayerSpec, len_in: u128) -> (u128, Vec<u128>) {
    match *layer {
        LayerSpec::Linear { d_in, d_out } => (d_out as u128, vec![mul(&[d_in as u128, d_out as u128]), d_out as u128]),
        LayerSpec::Conv { c_in, c_out, hw_in, kernel, pad } => {
            let side = conv_out(hw_in, kernel, pad);
            let (c_in, c_out, k) = (c_in as u128, c_out as u128, kernel as u128);
            (mul(&[c_out, side, side]), vec![mul(&[c_out, c_in, k, k]), c_out])
        }
        LayerSpec::ConvTranspose { c_in, c_out, hw_in, kernel, pad, out_pad } => {
            let side = conv_t_out(hw_in, kernel, pad, out_pad);
            let (c_in, c_out, k) = (c_in as u128, c_out as u128, kernel as u128);
            (mul(&[c_out, side, side]), vec![mul(&[c_in, c_out, k, k]), c_out])
        }
        LayerSpec::BatchNorm { channels, spatial } => {
            (mul(&[channels as u128, spatial as u128]), vec![2 * channels as u128])
        }
        LayerSpec::Act(_) => (len_in, vec![]),
    }
}

fn describe(layer: &LayerSpec) -> String {
    match *layer {
        LayerSpec::Linear { d_in, d_out } => format!("linear {d_in} -> {d_out}"),
        LayerSpec::Conv { c_in, c_out, hw_in, .. } => format!("conv {c_in}x{hw_in}x{hw_in} -> {c_out} channels"),
        LayerSpec::ConvTranspose { c_in, c_out, hw_in, .. } => {
            format!("transposed conv {c_in}x{hw_in}x{hw_in} -> {c_out} channels")
        }
        LayerSpec::BatchNorm { channels, .. } => format!("batchnorm over {channels} channels"),
        LayerSpec::Act(a) => format!("{a:?}"),
    }
}

/// Every storage buffer of one network at `batch` (all bound whole): input, each layer's output
/// and output gradient, each parameter tensor, and the flat parameter, gradient and Adam
/// buffers (one each, tensors at ALIGN-byte offsets).
fn network(needs: &mut Needs, net: &NetSpec, batch: u128, input_grad: bool) {
    let name = net.name;
    let input = mul(&[batch, net.input_len as u128]);
    needs.binding(format!("{name}'s input"), input);
    if input_grad {
        needs.binding(format!("{name}'s input gradient"), input);
    }
    let mut len = net.input_len as u128;
    let mut flat_bytes = 0u128;
    for (i, layer) in net.layers.iter().enumerate() {
        let (out, params) = layer_sizes(layer, len);
        len = out;
        let what = format!("{name} layer {i} ({})", describe(layer));
        needs.binding(format!("{what} output at batch {batch}"), mul(&[batch, out]));
        for p in params {
            needs.binding(format!("{what} parameters"), p);
            flat_bytes = flat_bytes.saturating_add(p.saturating_mul(4)).next_multiple_of(ALIGN);
        }
    }
    needs.binding(format!("{name}'s flat parameters (also its gradients and Adam's moments)"), flat_bytes / 4);
}

/// The workgroup counts of every dispatch of one network, as the ops compute them.
fn dispatches(needs: &mut Needs, net: &NetSpec, batch: usize, tiles: &Tuning, input_grad: bool) {
    let name = net.name;
    let gemm = |needs: &mut Needs, what: String, tiles: &Tiles, rows: usize, cols: usize| {
        let t = tiles.fit(rows, cols);
        needs.workgroups(
            format!("{what} ({rows} x {cols} outputs)"),
            cols.div_ceil(t.tile_n() as usize).max(rows.div_ceil(t.tile_m() as usize)) as u128,
        );
    };
    let mut per_channel = Vec::new();
    for (i, layer) in net.layers.iter().enumerate() {
        let what = |op: &str| format!("{name} layer {i} ({}) {op}", describe(layer));
        let dx = i > 0 || input_grad;
        match layer {
            LayerSpec::Linear { .. } => {
                let g = layer.linear(batch);
                gemm(needs, what("forward"), &tiles.linear, g.batch, g.d_out);
                if dx {
                    gemm(needs, what("input gradient"), &tiles.linear, g.batch, g.d_in);
                }
                gemm(needs, what("weight gradient"), &tiles.linear, g.d_out, g.d_in);
                per_channel.push((what("bias gradient (one workgroup per output)"), g.d_out));
            }
            LayerSpec::Conv { .. } | LayerSpec::ConvTranspose { .. } => {
                // A transposed conv runs its adjoint conv's kernels, forward and input gradient
                // exchanged; the weight gradient's grid is the same either way.
                let (g, c_out) = match layer {
                    LayerSpec::Conv { .. } => (layer.conv(batch), layer.conv(batch).c_out),
                    _ => (layer.conv_transpose(batch).adjoint(), layer.conv_transpose(batch).c_out),
                };
                let [direct, gather, weight] = conv::gemm_workgroups(&g, tiles);
                let (forward, backward) =
                    if matches!(layer, LayerSpec::Conv { .. }) { (direct, gather) } else { (gather, direct) };
                let gemm = |op: &str, rows: usize, cols: usize| format!("{} ({rows} x {cols} outputs)", what(op));
                let (pixels_out, pixels_in) = (g.batch * g.h_out() * g.w_out(), g.batch * g.h_in * g.w_in);
                let (rows_fwd, cols_fwd, rows_bwd, cols_bwd) = match layer {
                    LayerSpec::Conv { .. } => (g.c_out, pixels_out, g.c_in, pixels_in),
                    _ => (g.c_in, pixels_in, g.c_out, pixels_out),
                };
                needs.workgroups(gemm("forward", rows_fwd, cols_fwd), forward as u128);
                if dx {
                    needs.workgroups(gemm("input gradient", rows_bwd, cols_bwd), backward as u128);
                }
                needs.workgroups(gemm("weight gradient", g.c_out, g.c_in * g.kernel * g.kernel), weight as u128);
                per_channel.push((what("bias gradient (one workgroup per channel)"), c_out));
            }
            LayerSpec::BatchNorm { channels, .. } => {
                per_channel.push((what("statistics (one workgroup per channel)"), *channels));
            }
            LayerSpec::Act(_) => {} // grid_1d: at most 4096 workgroups
        }
    }
    for (what, count) in per_channel {
        needs.workgroups(what, count as u128);
    }
}
