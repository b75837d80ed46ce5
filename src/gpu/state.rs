//! Per-step state on the GPU: the step counter and the loss ring buffer,
//! and the persistent readback buffers they are copied into.
//!
//! Adam's step count, the RNG stream offset and the ring slot all derive from
//! `counters[0]`, which only a kernel advances. So N steps recorded into one
//! submit see N distinct counter values, exactly as N submits would, and
//! the counter read back after a submit says exactly which steps ran.
//!
//! Reading: [`StepState::submit`] encodes steps and, in the same submit,
//! copies the counters and the whole ring into one of two persistent
//! [`Readback`] buffers; [`InFlight::wait`] maps it when that submit is done
//! (one blocking wait, no staging buffer). Two readbacks let two chunks be
//! in flight: the training loop submits chunk k+1 before it waits for k.

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::pipeline::{Access, Kernel};
use crate::gpu::readback::{copy_bytes, Readback};
use crate::gpu::recorder::Step;
use crate::gpu::tensor::{DType, Tensor};
use crate::shaders;

/// Chunks a [`StepState`] can have in flight at once (one readback each).
pub const IN_FLIGHT: usize = 2;

/// The step counter and a ring of per-step losses.
pub struct StepState {
    /// `[steps completed, reserved x3]`, u32.
    pub counters: Tensor,
    /// `capacity` steps x `slots` losses, f32.
    pub ring: Tensor,
    pub slots: usize,
    pub capacity: usize,
    /// Where submits copy counters and ring: `[counters | ring]` each.
    readbacks: [Readback; IN_FLIGHT],
}

/// Losses of one step read from the ring.
#[derive(Clone, Debug, PartialEq)]
pub struct StepLosses {
    /// Zero-based index of the step that wrote them.
    pub step: u64,
    pub values: Vec<f32>,
}

/// The step counter and the whole loss ring as they were at the end of one
/// submit.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// `counters[0]`: steps completed.
    pub steps_done: u64,
    /// `capacity` rows of `slots` losses; row `s % capacity` is step `s`'s.
    pub ring: Vec<f32>,
    pub slots: usize,
    pub capacity: usize,
}

impl Snapshot {
    /// The losses of steps `from .. steps_done`, oldest first. Errors if
    /// the ring has been overwritten past `from` (read more often).
    pub fn losses(&self, from: u64) -> Result<Vec<StepLosses>> {
        let done = self.steps_done;
        if done.saturating_sub(from) > self.capacity as u64 {
            return Err(Error::invalid(
                "read_losses",
                format!(
                    "{} steps since the last read but the ring holds {}",
                    done - from,
                    self.capacity
                ),
            ));
        }
        Ok((from..done)
            .map(|s| {
                let row = (s % self.capacity as u64) as usize * self.slots;
                StepLosses {
                    step: s,
                    values: self.ring[row..row + self.slots].to_vec(),
                }
            })
            .collect())
    }
}

/// A submit of steps whose readback copy has not been read yet: wait for it
/// with [`InFlight::wait`]. Dropping it gives the read up (the steps still
/// run) and frees its readback buffer.
#[must_use = "an InFlight holds one of the two readback buffers until waited for or dropped"]
pub struct InFlight<'a> {
    state: &'a StepState,
    readback: usize,
    index: wgpu::SubmissionIndex,
    steps: usize,
}

impl InFlight<'_> {
    /// Steps in this submit.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Block until this submit is done (later ones may still run), then
    /// read the counters and ring it copied: one blocking wait. GPU errors
    /// since the last check are reported naming `context`. The blocking
    /// form of [`InFlight::wait_async`].
    pub fn wait(self, gpu: &Gpu, context: &str) -> Result<Snapshot> {
        pollster::block_on(self.wait_async(gpu, context))
    }

    /// [`InFlight::wait`] as a future, which a browser awaits.
    pub async fn wait_async(self, gpu: &Gpu, context: &str) -> Result<Snapshot> {
        let bytes = self.state.readbacks[self.readback]
            .read_async(gpu, self.index.clone(), context)
            .await?;
        let words: &[u32] = bytemuck::cast_slice(&bytes);
        let ring_at = (copy_bytes(&self.state.counters) / 4) as usize;
        let n = self.state.capacity * self.state.slots;
        Ok(Snapshot {
            steps_done: words[0] as u64,
            ring: bytemuck::cast_slice::<u32, f32>(&words[ring_at..ring_at + n]).to_vec(),
            slots: self.state.slots,
            capacity: self.state.capacity,
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.state.readbacks[self.readback].release();
    }
}

impl StepState {
    /// A counter starting at `start` and an empty ring of `capacity` steps.
    pub fn new(gpu: &Gpu, slots: usize, capacity: usize, start: u32) -> Result<StepState> {
        if slots == 0 || capacity == 0 {
            return Err(Error::invalid(
                "step_state",
                "slots and capacity must be positive",
            ));
        }
        let counters = Tensor::from_u32(gpu, &[4], &[start, 0, 0, 0], "step counters")?;
        let ring = Tensor::new(gpu, &[capacity, slots], DType::F32, "loss ring")?;
        let size = copy_bytes(&counters) + copy_bytes(&ring);
        let readback = |i: usize| Readback::new(gpu, size, &format!("step state readback {i}"));
        Ok(StepState {
            readbacks: [readback(0)?, readback(1)?],
            counters,
            ring,
            slots,
            capacity,
        })
    }

    /// Submit `steps` (in order, one encoder, one compute pass, as
    /// [`Gpu::submit`]) followed, in the same submit, by a copy of the
    /// counters and the ring into a free readback buffer. Does not wait.
    /// Refused while [`IN_FLIGHT`] earlier submits are unread.
    pub fn submit(&self, gpu: &Gpu, steps: &[&Step]) -> Result<InFlight<'_>> {
        let Some(readback) = self.readbacks.iter().position(Readback::claim) else {
            return Err(Error::invalid(
                "step_state",
                format!("{IN_FLIGHT} submits are already in flight unread: wait for one first"),
            ));
        };
        let rb = &self.readbacks[readback];
        let index = gpu
            .submit_then(steps, |enc| rb.encode(enc, &[&self.counters, &self.ring]))
            .inspect_err(|_| rb.release())?;
        Ok(InFlight {
            state: self,
            readback,
            index,
            steps: steps.len(),
        })
    }

    /// The counters and ring now (after all work submitted so far): one
    /// submit of copies and one blocking wait.
    pub fn snapshot(&self, gpu: &Gpu) -> Result<Snapshot> {
        pollster::block_on(self.snapshot_async(gpu))
    }

    /// [`StepState::snapshot`] as a future, which a browser awaits.
    pub async fn snapshot_async(&self, gpu: &Gpu) -> Result<Snapshot> {
        self.submit(gpu, &[])?
            .wait_async(gpu, "reading the step state")
            .await
    }

    /// Record: copy the scalar `loss` (first element) into this step's `slot`.
    pub fn record_loss(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        loss: &Tensor,
        slot: usize,
    ) -> Result<()> {
        if slot >= self.slots {
            return Err(Error::invalid(
                "ring_write",
                format!(
                    "slot {slot} out of range: the ring has {} slots",
                    self.slots
                ),
            ));
        }
        loss.expect_dtype("ring_write", DType::F32)?;
        let k = Kernel::new(
            shaders::STEP,
            "ring_write",
            &[Access::ReadWrite, Access::Read, Access::ReadWrite],
        );
        let params = [slot as u32, self.slots as u32, self.capacity as u32];
        step.dispatch(
            gpu,
            "ring_write",
            &k,
            &params,
            &[&self.counters, loss, &self.ring],
            [1, 1, 1],
        )
    }

    /// Record: advance the step counter. Must be the last dispatch of a step.
    pub fn record_advance(&self, gpu: &Gpu, step: &mut Step) -> Result<()> {
        let k = Kernel::new(shaders::STEP, "advance", &[Access::ReadWrite]);
        step.dispatch(gpu, "advance", &k, &[], &[&self.counters], [1, 1, 1])
    }

    /// Steps completed (one blocking read; the training loop takes it from
    /// the chunks' own readbacks instead).
    pub fn steps_done(&self, gpu: &Gpu) -> Result<u64> {
        Ok(self.snapshot(gpu)?.steps_done)
    }

    /// The losses of steps `from .. steps_done()`, oldest first (one
    /// blocking read). Errors if the ring has been overwritten past `from`
    /// (read more often).
    pub fn read_losses(&self, gpu: &Gpu, from: u64) -> Result<Vec<StepLosses>> {
        self.snapshot(gpu)?.losses(from)
    }
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![
        Kernel::new(shaders::STEP, "advance", &[Access::ReadWrite]),
        Kernel::new(
            shaders::STEP,
            "ring_write",
            &[Access::ReadWrite, Access::Read, Access::ReadWrite],
        ),
    ]
}
