//! Storage buffers and views into them.

use super::Gpu;
use wgpu::util::DeviceExt;

/// Storage buffers may be bound at offsets that are multiples of this (WebGPU's default
/// minStorageBufferOffsetAlignment), so every tensor inside a flat buffer starts at one.
pub const ALIGN: u64 = 256;

/// A run of `len` f32 values inside a buffer, starting `offset` bytes in: one tensor.
#[derive(Clone, Debug)]
pub struct View {
    pub buffer: wgpu::Buffer,
    pub offset: u64,
    pub len: usize,
}

impl View {
    pub fn bytes(&self) -> u64 {
        self.len as u64 * 4
    }

    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.bytes().max(4)),
        })
    }

    /// The `len` values starting `start` values into this view; `start` must keep the offset aligned.
    pub fn slice(&self, start: usize, len: usize) -> View {
        let offset = self.offset + start as u64 * 4;
        assert!(offset.is_multiple_of(ALIGN), "a view must start at a {ALIGN}-byte boundary");
        assert!(start + len <= self.len, "slice past the end of the view");
        View { buffer: self.buffer.clone(), offset, len }
    }
}

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl Gpu {
    /// A zeroed storage buffer of `len` f32 values.
    pub fn zeros(&self, label: &str, len: usize) -> View {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len.max(1) as u64 * 4).next_multiple_of(4),
            usage: STORAGE,
            mapped_at_creation: false,
        });
        View { buffer, offset: 0, len }
    }

    /// A storage buffer holding `data`.
    pub fn upload(&self, label: &str, data: &[f32]) -> View {
        let bytes: &[u8] = if data.is_empty() { &[0; 4] } else { bytemuck::cast_slice(data) };
        let buffer = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytes,
            usage: STORAGE,
        });
        View { buffer, offset: 0, len: data.len() }
    }

    /// Overwrites a view's contents (queued; takes effect in order with later submissions).
    pub fn write(&self, view: &View, data: &[f32]) {
        assert_eq!(view.len, data.len(), "write of the wrong length");
        self.queue.write_buffer(&view.buffer, view.offset, bytemuck::cast_slice(data));
    }

    /// One buffer holding several tensors, each at an ALIGN-byte boundary (all parameters of a
    /// network, or their gradients, or Adam's moments): returns the whole and a view per tensor.
    pub fn flat(&self, label: &str, lens: &[usize]) -> (View, Vec<View>) {
        let mut offsets = Vec::with_capacity(lens.len());
        let mut end = 0u64;
        for &len in lens {
            offsets.push(end);
            end = (end + len as u64 * 4).next_multiple_of(ALIGN);
        }
        let whole = self.zeros(label, (end / 4) as usize);
        let parts = offsets
            .iter()
            .zip(lens)
            .map(|(&offset, &len)| View { buffer: whole.buffer.clone(), offset, len })
            .collect();
        (whole, parts)
    }

    pub(crate) fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// The binding for an optional read-only input: the view, or a dummy the kernel ignores.
    pub(crate) fn optional<'a>(&'a self, view: Option<&'a View>) -> wgpu::BindingResource<'a> {
        match view {
            Some(v) => v.binding(),
            None => self.dummy.as_entire_binding(),
        }
    }
}
