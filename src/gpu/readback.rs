//! Persistent host-visible buffers that step state is copied into inside
//! the submit that produced it, so reading it back costs one map and one
//! blocking wait, and allocates no staging buffer.
//!
//! [`crate::Tensor::read_bytes`] (a fresh staging buffer, a submit of its
//! own, a wait) is right for a one-off read; the training loop reads the
//! same few hundred bytes (step counter and loss ring) once per log
//! interval for a whole run, so it copies them into a [`Readback`] at the
//! end of each chunk's submit instead and maps that when the chunk is done.
//!
//! wgpu refuses a submit that uses a buffer while it is mapped or waiting
//! to be mapped, and a map resolves only after every submission using the
//! buffer is done. So one readback buffer serves one chunk in flight:
//! [`crate::gpu::StepState`] holds two, one per chunk of the two it keeps
//! in flight.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::context::{Gpu, MemoryCounter};
use crate::gpu::tensor::Tensor;

/// Counts a non-tensor buffer in [`Gpu::allocated_bytes`] while it lives.
#[derive(Debug)]
struct Accounted {
    bytes: u64,
    counter: Arc<MemoryCounter>,
}

impl Drop for Accounted {
    fn drop(&mut self) {
        self.counter.sub(self.bytes);
    }
}

/// A `MAP_READ | COPY_DST` buffer filled by copies encoded into a submit
/// and read after it. Counted in the engine's memory figures.
#[derive(Debug)]
pub struct Readback {
    buffer: wgpu::Buffer,
    label: String,
    /// Set while a submit that copies into the buffer has not been read
    /// (or given up on): a second copy then would overwrite the first
    /// before it is read, so [`Readback::claim`] refuses it.
    busy: AtomicBool,
    _accounted: Accounted,
}

/// Bytes of `t` a readback copies: its elements, rounded to whole words
/// (copies move whole 4-byte words).
pub fn copy_bytes(t: &Tensor) -> u64 {
    t.dtype().bytes(t.numel())
}

impl Readback {
    /// A readback buffer of `size` bytes (a multiple of 4).
    pub fn new(gpu: &Gpu, size: u64, label: &str) -> Result<Readback> {
        if size == 0 || !size.is_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT) {
            return Err(Error::invalid(
                "readback",
                format!("{label}: {size} bytes is not a positive multiple of 4"),
            ));
        }
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.memory.add(size);
        Ok(Readback {
            buffer,
            label: label.to_string(),
            busy: AtomicBool::new(false),
            _accounted: Accounted {
                bytes: size,
                counter: gpu.memory.clone(),
            },
        })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.buffer.size()
    }

    /// Mark the buffer as taken by a submit about to copy into it; false
    /// when an earlier copy has not been read yet.
    pub fn claim(&self) -> bool {
        self.busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Free the buffer for the next submit (after its copy was read, or
    /// when the read is given up: a later map still waits for that copy,
    /// since a map resolves only after every submission using the buffer).
    pub fn release(&self) {
        self.busy.store(false, Ordering::Release);
    }

    /// Encode copies of `sources`' elements, back to back from byte 0, into
    /// this buffer. They must fit ([`copy_bytes`] each).
    pub fn encode(&self, enc: &mut wgpu::CommandEncoder, sources: &[&Tensor]) {
        let mut at = 0;
        for t in sources {
            let n = copy_bytes(t);
            enc.copy_buffer_to_buffer(t.buffer(), 0, &self.buffer, at, n);
            at += n;
        }
        debug_assert!(at <= self.size(), "{}: copies overflow", self.label);
    }

    /// Map the buffer once `index` (the submit that copied into it) is
    /// done, and return its bytes: one blocking wait, counted in
    /// [`Gpu::blocking_waits`]. Errors name `context`; a lost device is
    /// [`Error::DeviceLost`]. The blocking form of [`Readback::read_async`].
    pub fn read(&self, gpu: &Gpu, index: wgpu::SubmissionIndex, context: &str) -> Result<Vec<u8>> {
        pollster::block_on(self.read_async(gpu, index, context))
    }

    /// [`Readback::read`] as a future, which a browser awaits.
    pub async fn read_async(
        &self,
        gpu: &Gpu,
        index: wgpu::SubmissionIndex,
        context: &str,
    ) -> Result<Vec<u8>> {
        read_mapped(
            gpu,
            &self.buffer,
            After::Submission(index),
            &self.label,
            context,
        )
        .await
    }
}

/// What a map waits for before it can resolve.
pub(crate) enum After {
    /// Every submission so far (a one-off read's own copy).
    All,
    /// One submission (later ones may still run).
    Submission(wgpu::SubmissionIndex),
}

/// Map `buffer` for reading once `after` is done and return its bytes:
/// the one implementation of every readback, blocking or awaited.
/// Natively the wait blocks on the device (counted in
/// [`Gpu::blocking_waits`]), so the map has resolved when it returns; in a
/// browser the device cannot be blocked on (the wait returns at once) and
/// the future awaits the map's callback, which the browser's event loop
/// runs. The buffer is unmapped before returning, which also cancels a map
/// still pending after an error, so the next submit may use it again.
pub(crate) async fn read_mapped(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    after: After,
    label: &str,
    context: &str,
) -> Result<Vec<u8>> {
    let (tx, rx) = futures_channel::oneshot::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    let out = mapped_bytes(gpu, buffer, after, rx, label, context).await;
    buffer.unmap();
    out
}

async fn mapped_bytes(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    after: After,
    mut rx: futures_channel::oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    label: &str,
    context: &str,
) -> Result<Vec<u8>> {
    let fail = |message: String| Error::Readback {
        label: label.to_string(),
        message,
    };
    match after {
        After::All => gpu.sync(context)?,
        After::Submission(index) => gpu.wait_for(index, context)?,
    }
    // A wait runs the map callbacks it completes; only if wgpu deferred
    // this one does a native read need a second wait (a browser's returns
    // at once, and the await below yields to the event loop).
    let mapped = match rx.try_recv() {
        Ok(Some(r)) => r,
        Ok(None) => {
            gpu.sync(context)?;
            rx.await.map_err(|e| fail(e.to_string()))?
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    // A lost device fails the map: say that, not a bare map error.
    gpu.check_errors(context)?;
    mapped.map_err(|e| fail(e.to_string()))?;
    let view = buffer
        .get_mapped_range(..)
        .map_err(|e| fail(e.to_string()))?;
    let bytes = view.to_vec();
    drop(view);
    Ok(bytes)
}
