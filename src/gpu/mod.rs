//! The GPU context: one device and queue, the kernel (pipeline) cache, buffers and readback.
//! The same code runs natively (wgpu over Vulkan/Metal/DX12) and in the browser (WebGPU).

mod buffer;
mod kernel;
mod readback;
mod tuning;

pub use buffer::View;
pub use kernel::{entry_module, specialize, Binding, Dispatch, Family, Listing, OpLabel, Sink, Tiles};
pub use tuning::Tuning;

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// Why the GPU could not be used.
#[derive(Debug, Clone)]
pub enum GpuError {
    /// No adapter at all: the browser has no WebGPU, or no native driver was found.
    NoAdapter(String),
    /// The adapter exists but refused a device with the limits we need.
    Device(String),
    /// A layer needs more than this adapter's limits allow; names the limit.
    Limit(String),
    /// Mapping a buffer for readback failed (usually a lost device).
    Readback(String),
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::NoAdapter(why) => write!(f, "no WebGPU adapter: {why}"),
            GpuError::Device(why) => write!(f, "could not create a GPU device: {why}"),
            GpuError::Limit(why) => write!(f, "exceeds this adapter's limits: {why}"),
            GpuError::Readback(why) => write!(f, "GPU readback failed: {why}"),
        }
    }
}

impl std::error::Error for GpuError {}

/// A device, its queue, what the adapter is, and the pipelines built so far.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Tile shapes of the GEMM kernels and the reductions' workgroup size: the adapter class's
    /// default until `crate::autotune` measures better ones. Ops built before a change keep theirs.
    tuning: Mutex<Tuning>,
    kernels: Mutex<HashMap<String, wgpu::ComputePipeline>>,
    layouts: Mutex<HashMap<&'static str, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    /// A small read-only buffer bound where a kernel's optional input (a bias) is absent.
    dummy: wgpu::Buffer,
}

impl Gpu {
    /// Opens the default adapter (high performance) with WebGPU's default limits, raised to the
    /// adapter's own buffer-size limits so large layers fit where the hardware allows.
    pub async fn new() -> Result<Gpu, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::PRIMARY | wgpu::Backends::BROWSER_WEBGPU,
            ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
        });
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        Self::from_adapter(adapter).await
    }

    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<Gpu, GpuError> {
        let info = adapter.get_info();
        let max = adapter.limits();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: max.max_storage_buffer_binding_size,
            max_buffer_size: max.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("webgan"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let tuning = Tuning::for_adapter(&info);
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("absent optional input"),
            size: 256,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            tuning: Mutex::new(tuning),
            kernels: Mutex::new(HashMap::new()),
            layouts: Mutex::new(HashMap::new()),
            dummy,
        })
    }

    /// What the next ops built on this device are specialised with.
    pub fn tuning(&self) -> Tuning {
        *self.tuning.lock().unwrap()
    }

    pub fn set_tuning(&self, tuning: Tuning) {
        *self.tuning.lock().unwrap() = tuning;
    }

    /// "llvmpipe (Vulkan, Cpu)" and the like: what the figures in a benchmark were measured on.
    pub fn adapter_summary(&self) -> String {
        let i = &self.info;
        let driver = if i.driver.is_empty() { String::new() } else { format!(", {} {}", i.driver, i.driver_info) };
        format!("{} ({:?}, {:?}{})", i.name, i.backend, i.device_type, driver)
    }

    /// Fails with the limit's name when `bytes` cannot be bound as one storage buffer.
    pub fn check_binding(&self, what: &str, bytes: u64) -> Result<(), GpuError> {
        let max = self.limits.max_storage_buffer_binding_size;
        if bytes > max {
            return Err(GpuError::Limit(format!(
                "{what} needs {bytes} bytes in one storage binding; maxStorageBufferBindingSize is {max}"
            )));
        }
        Ok(())
    }

    /// Fails with the limit's name when a dispatch needs more workgroups than one dimension allows.
    pub fn check_workgroups(&self, what: &str, count: u32) -> Result<(), GpuError> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if count > max {
            return Err(GpuError::Limit(format!(
                "{what} needs {count} workgroups in one dimension; maxComputeWorkgroupsPerDimension is {max}"
            )));
        }
        Ok(())
    }
}
