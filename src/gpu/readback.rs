//! Reading results back: map_async plus a oneshot channel. Natively we poll the device until the
//! map completes; in the browser the callback arrives from the event loop, so we only await
//! (blocking the tab's thread would deadlock it).

use super::{Gpu, GpuError, View};

impl Gpu {
    /// Copies a view to a staging buffer, waits for the GPU, and returns its values.
    pub async fn read(&self, view: &View) -> Result<Vec<f32>, GpuError> {
        let bytes = view.bytes();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback staging"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&view.buffer, view.offset, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        self.map(&staging).await?;
        let values = {
            let mapped = staging.get_mapped_range(..).map_err(|e| GpuError::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, f32>(&mapped)[..view.len].to_vec()
        };
        staging.unmap();
        Ok(values)
    }

    /// Resolves once everything submitted so far has finished (for timing).
    pub async fn finish(&self) -> Result<(), GpuError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        self.wait().await?;
        rx.await.map_err(|_| GpuError::Readback("the device was lost".into()))
    }

    /// Maps a MAP_READ buffer whose copy has been submitted.
    pub async fn map(&self, buffer: &wgpu::Buffer) -> Result<(), GpuError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        buffer.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = tx.send(result);
        });
        self.wait().await?;
        rx.await
            .map_err(|_| GpuError::Readback("the device was lost".into()))?
            .map_err(|e| GpuError::Readback(e.to_string()))
    }

    #[cfg(not(target_arch = "wasm32"))]
    async fn wait(&self) -> Result<(), GpuError> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map(|_| ()).map_err(|e| GpuError::Readback(e.to_string()))
    }

    #[cfg(target_arch = "wasm32")]
    async fn wait(&self) -> Result<(), GpuError> {
        Ok(())
    }
}
