//! The wasm-bindgen API the page (`www/main.js`) calls. Compiled only for `wasm32`.
//!
//! Everything here is a thin shim: the work lives in [`crate::gpu`] and friends, so the same
//! code paths are exercised natively by `cargo test` and in the browser by `wasm-pack test`.
//! Errors cross into JavaScript as `Error` objects whose message is the Rust `Display` text,
//! so the page can show them verbatim.

use wasm_bindgen::prelude::*;

use crate::gpu::Gpu;

/// Runs once when the module is instantiated: route Rust panics to `console.error` with a
/// readable message instead of the bare "unreachable executed".
#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Opens the GPU exactly as training will and describes it, one `label: value` per line.
///
/// The first line is the adapter summary; then the backend and device type as wgpu sees
/// them; then the limits our kernels care about, as granted to the device, each followed by
/// WebGPU's default for that limit in brackets (the floor every browser must offer).
/// Fails with a JS `Error` when there is no WebGPU adapter or it refuses a device.
#[wasm_bindgen]
pub async fn adapter_report() -> Result<String, JsValue> {
    let gpu = Gpu::new().await.map_err(|e| JsValue::from(js_sys::Error::new(&e.to_string())))?;
    Ok(report(&gpu))
}

fn report(gpu: &Gpu) -> String {
    let info = &gpu.info;
    let lim = &gpu.limits;
    let def = wgpu::Limits::default();
    let mut lines = vec![
        format!("adapter: {}", gpu.adapter_summary()),
        format!("name: {}", if info.name.is_empty() { "(not exposed by the browser)" } else { &info.name }),
        format!("backend: {:?}", info.backend),
        format!("device type: {:?}", info.device_type),
    ];
    let mut limit = |name: &str, have: u64, default: u64| {
        lines.push(format!("{name}: {have} [default {default}]"));
    };
    limit(
        "maxStorageBuffersPerShaderStage",
        lim.max_storage_buffers_per_shader_stage.into(),
        def.max_storage_buffers_per_shader_stage.into(),
    );
    limit(
        "maxComputeInvocationsPerWorkgroup",
        lim.max_compute_invocations_per_workgroup.into(),
        def.max_compute_invocations_per_workgroup.into(),
    );
    limit(
        "maxComputeWorkgroupStorageSize",
        lim.max_compute_workgroup_storage_size.into(),
        def.max_compute_workgroup_storage_size.into(),
    );
    limit(
        "maxComputeWorkgroupsPerDimension",
        lim.max_compute_workgroups_per_dimension.into(),
        def.max_compute_workgroups_per_dimension.into(),
    );
    limit("maxStorageBufferBindingSize", lim.max_storage_buffer_binding_size, def.max_storage_buffer_binding_size);
    limit("maxBufferSize", lim.max_buffer_size, def.max_buffer_size);
    lines.join("\n")
}
