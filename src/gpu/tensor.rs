//! Tensors: one wgpu buffer each, with a shape and a dtype.
//!
//! One buffer per tensor because wgpu tracks hazards per buffer: a tensor read
//! by one binding and written by another in the same dispatch must live in
//! different buffers. Activations are NHWC; see docs/ARCHITECTURE.md.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::context::{Gpu, MemoryCounter};
use crate::gpu::readback::{read_mapped, After};

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    U32,
    /// Bytes packed four to a u32 word (the MNIST pixels).
    U8,
}

impl DType {
    /// Bytes for `n` elements, rounded up to whole 4-byte words.
    pub fn bytes(self, n: usize) -> u64 {
        match self {
            DType::F32 | DType::U32 => 4 * n as u64,
            DType::U8 => n.div_ceil(4) as u64 * 4,
        }
    }
}

/// Returns the accounted bytes to the [`MemoryCounter`] when the last clone
/// of a buffer goes away.
#[derive(Debug)]
struct Allocation {
    bytes: u64,
    counter: Arc<MemoryCounter>,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        self.counter.sub(self.bytes);
    }
}

/// A GPU tensor: a byte range of a buffer, with a shape and a dtype.
/// Cloning shares the buffer; [`Tensor::reshape`] gives the same range
/// another shape, and [`Tensor::view`] a sub-range (how a parameter arena
/// holds many tensors in one buffer).
#[derive(Clone, Debug)]
pub struct Tensor {
    buffer: wgpu::Buffer,
    /// Start of the range in bytes.
    offset: u64,
    /// Length of the range in bytes (a whole buffer: its size, at least
    /// [`MIN_BYTES`]).
    bytes: u64,
    shape: Vec<usize>,
    dtype: DType,
    label: Arc<str>,
    _alloc: Arc<Allocation>,
}

/// Storage buffers must be at least this large (and non-empty).
const MIN_BYTES: u64 = 16;

impl Tensor {
    /// Allocate an uninitialised (zero-filled by wgpu) tensor.
    pub fn new(gpu: &Gpu, shape: &[usize], dtype: DType, label: &str) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        let size = dtype.bytes(numel).max(MIN_BYTES);
        let limit = gpu.limits.max_storage_buffer_binding_size;
        if size > limit || size > gpu.limits.max_buffer_size {
            return Err(Error::TooLarge {
                label: label.to_string(),
                size,
                limit: limit.min(gpu.limits.max_buffer_size),
            });
        }
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.memory.add(size);
        Ok(Tensor {
            buffer,
            offset: 0,
            bytes: size,
            shape: shape.to_vec(),
            dtype,
            label: label.into(),
            _alloc: Arc::new(Allocation {
                bytes: size,
                counter: gpu.memory.clone(),
            }),
        })
    }

    /// f32 zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize], label: &str) -> Result<Tensor> {
        Tensor::new(gpu, shape, DType::F32, label)
    }

    /// An f32 tensor holding `data`.
    pub fn from_f32(gpu: &Gpu, shape: &[usize], data: &[f32], label: &str) -> Result<Tensor> {
        let t = Tensor::new(gpu, shape, DType::F32, label)?;
        t.write_f32(gpu, data)?;
        Ok(t)
    }

    /// A u32 tensor holding `data`.
    pub fn from_u32(gpu: &Gpu, shape: &[usize], data: &[u32], label: &str) -> Result<Tensor> {
        let t = Tensor::new(gpu, shape, DType::U32, label)?;
        t.write_words(gpu, bytemuck::cast_slice(data), data.len())?;
        Ok(t)
    }

    /// A u8 tensor holding `data`, packed four bytes per word.
    pub fn from_u8(gpu: &Gpu, shape: &[usize], data: &[u8], label: &str) -> Result<Tensor> {
        let t = Tensor::new(gpu, shape, DType::U8, label)?;
        let mut padded = data.to_vec();
        padded.resize(DType::U8.bytes(data.len()) as usize, 0);
        t.write_words(gpu, &padded, data.len())?;
        Ok(t)
    }

    fn write_words(&self, gpu: &Gpu, bytes: &[u8], n: usize) -> Result<()> {
        if n != self.numel() {
            return Err(Error::shape(
                "upload",
                self.label.to_string(),
                &self.shape,
                &[n],
            ));
        }
        if !bytes.is_empty() {
            gpu.queue.write_buffer(&self.buffer, self.offset, bytes);
        }
        Ok(())
    }

    /// Overwrite an f32 tensor's contents.
    pub fn write_f32(&self, gpu: &Gpu, data: &[f32]) -> Result<()> {
        self.expect_dtype("write_f32", DType::F32)?;
        self.write_words(gpu, bytemuck::cast_slice(data), data.len())
    }

    /// Overwrite a u32 tensor's contents.
    pub fn write_u32(&self, gpu: &Gpu, data: &[u32]) -> Result<()> {
        self.expect_dtype("write_u32", DType::U32)?;
        self.write_words(gpu, bytemuck::cast_slice(data), data.len())
    }

    /// Fill every word with NaN (quiet, 0x7fc00000), so a kernel that fails to
    /// write an element is caught by the comparison that follows.
    pub fn poison(&self, gpu: &Gpu) {
        let words = (self.bytes / 4) as usize;
        gpu.queue.write_buffer(
            &self.buffer,
            self.offset,
            bytemuck::cast_slice(&vec![0x7fc0_0000u32; words]),
        );
    }

    /// Copy the contents back to the CPU as raw little-endian bytes (one
    /// blocking wait). The blocking form of [`Tensor::read_bytes_async`].
    pub fn read_bytes(&self, gpu: &Gpu) -> Result<Vec<u8>> {
        pollster::block_on(self.read_bytes_async(gpu))
    }

    /// [`Tensor::read_bytes`] as a future, which a browser awaits: a copy
    /// into a fresh staging buffer in a submit of its own, then its map.
    pub async fn read_bytes_async(&self, gpu: &Gpu) -> Result<Vec<u8>> {
        let size = self.bytes;
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(&self.buffer, self.offset, &staging, 0, size);
        gpu.queue.submit([enc.finish()]);
        let context = format!("reading back {}", self.label);
        read_mapped(gpu, &staging, After::All, &self.label, &context).await
    }

    /// Read an f32 tensor.
    pub fn read_f32(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        pollster::block_on(self.read_f32_async(gpu))
    }

    /// [`Tensor::read_f32`] as a future.
    pub async fn read_f32_async(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        self.expect_dtype("read_f32", DType::F32)?;
        let bytes = self.read_bytes_async(gpu).await?;
        Ok(bytemuck::cast_slice::<u8, f32>(&bytes)[..self.numel()].to_vec())
    }

    /// Read a u32 tensor.
    pub fn read_u32(&self, gpu: &Gpu) -> Result<Vec<u32>> {
        pollster::block_on(self.read_u32_async(gpu))
    }

    /// [`Tensor::read_u32`] as a future.
    pub async fn read_u32_async(&self, gpu: &Gpu) -> Result<Vec<u32>> {
        self.expect_dtype("read_u32", DType::U32)?;
        let bytes = self.read_bytes_async(gpu).await?;
        Ok(bytemuck::cast_slice::<u8, u32>(&bytes)[..self.numel()].to_vec())
    }

    /// Read a u8 tensor.
    pub fn read_u8(&self, gpu: &Gpu) -> Result<Vec<u8>> {
        pollster::block_on(self.read_u8_async(gpu))
    }

    /// [`Tensor::read_u8`] as a future.
    pub async fn read_u8_async(&self, gpu: &Gpu) -> Result<Vec<u8>> {
        self.expect_dtype("read_u8", DType::U8)?;
        let mut bytes = self.read_bytes_async(gpu).await?;
        bytes.truncate(self.numel());
        Ok(bytes)
    }

    /// The same buffer seen with another shape of the same element count
    /// (flatten, unflatten): no copy, since the layout is row-major.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != self.numel() {
            return Err(Error::shape(
                "reshape",
                self.label.to_string(),
                &self.shape,
                shape,
            ));
        }
        let mut t = self.clone();
        t.shape = shape.to_vec();
        Ok(t)
    }

    /// Refuse a tensor whose shape is not `expected`, naming the op and tensor.
    pub fn expect_shape(&self, op: &'static str, expected: &[usize]) -> Result<()> {
        if self.shape != expected {
            return Err(Error::shape(
                op,
                self.label.to_string(),
                expected,
                &self.shape,
            ));
        }
        Ok(())
    }

    /// Refuse a tensor whose dtype is not `dtype`.
    pub fn expect_dtype(&self, op: &'static str, dtype: DType) -> Result<()> {
        if self.dtype != dtype {
            return Err(Error::invalid(
                op,
                format!(
                    "tensor {:?} is {:?}, expected {:?}",
                    self.label, self.dtype, dtype
                ),
            ));
        }
        Ok(())
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn label(&self) -> &str {
        &self.label
    }
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
    /// Start of this tensor's range in its buffer, in bytes.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// Length of this tensor's range, in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether `other` is a range of the same buffer.
    pub fn same_buffer(&self, other: &Tensor) -> bool {
        self.buffer == other.buffer
    }

    /// The binding of this tensor's range in a bind group.
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: std::num::NonZeroU64::new(self.bytes),
        })
    }

    /// The elements `start .. start + shape.product()` of this tensor, as a
    /// tensor of `shape` sharing the buffer (no copy). A kernel can bind it
    /// only when its byte offset is a multiple of the adapter's
    /// `min_storage_buffer_offset_alignment` ([`Tensor::bindable`]); copies,
    /// uploads and readbacks take any offset.
    pub fn view(&self, start: usize, shape: &[usize], label: &str) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if self.dtype == DType::U8 || n == 0 || start + n > self.numel() {
            return Err(Error::invalid(
                "view",
                format!(
                    "elements {start}..{} of {} {:?} ({:?}) are no view",
                    start + n,
                    self.label,
                    self.shape,
                    self.dtype
                ),
            ));
        }
        let mut t = self.clone();
        t.offset = self.offset + self.dtype.bytes(start);
        t.bytes = self.dtype.bytes(n);
        t.shape = shape.to_vec();
        t.label = label.into();
        Ok(t)
    }

    /// This tensor's range and `next`'s as one flat tensor `[n + m]`, when
    /// `next` starts where this one ends in the same buffer (a weight and
    /// the bias after it in a parameter arena); else None.
    pub fn joined(&self, next: &Tensor, label: &str) -> Option<Tensor> {
        let adjacent = self.same_buffer(next)
            && next.offset == self.offset + self.bytes
            && self.dtype == next.dtype
            && self.dtype.bytes(self.numel()) == self.bytes;
        adjacent.then(|| {
            let mut t = self.clone();
            t.bytes = self.bytes + next.bytes;
            t.shape = vec![self.numel() + next.numel()];
            t.label = label.into();
            t
        })
    }

    /// Whether a kernel may bind this tensor on `gpu` (its offset aligned).
    pub fn bindable(&self, gpu: &Gpu) -> bool {
        self.offset
            .is_multiple_of(gpu.limits.min_storage_buffer_offset_alignment as u64)
    }
}
