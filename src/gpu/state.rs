//! Per-step state on the GPU: the step counter and the loss ring buffer.
//!
//! Adam's step count, the RNG stream offset and the ring slot all derive from
//! `counters[0]`, which only a kernel advances. So N steps recorded into one
//! submit see N distinct counter values, exactly as N submits would.

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::pipeline::{Access, Kernel};
use crate::gpu::recorder::Step;
use crate::gpu::tensor::{DType, Tensor};
use crate::shaders;

/// The step counter and a ring of per-step losses.
pub struct StepState {
    /// `[steps completed, reserved x3]`, u32.
    pub counters: Tensor,
    /// `capacity` steps x `slots` losses, f32.
    pub ring: Tensor,
    pub slots: usize,
    pub capacity: usize,
}

/// Losses of one step read from the ring.
#[derive(Clone, Debug, PartialEq)]
pub struct StepLosses {
    /// Zero-based index of the step that wrote them.
    pub step: u64,
    pub values: Vec<f32>,
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
        Ok(StepState {
            counters,
            ring,
            slots,
            capacity,
        })
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

    /// Steps completed (reads back: once per log interval, not per step).
    pub fn steps_done(&self, gpu: &Gpu) -> Result<u64> {
        Ok(self.counters.read_u32(gpu)?[0] as u64)
    }

    /// The losses of steps `from .. steps_done()`, oldest first. Errors if
    /// the ring has been overwritten past `from` (read more often).
    pub fn read_losses(&self, gpu: &Gpu, from: u64) -> Result<Vec<StepLosses>> {
        let done = self.steps_done(gpu)?;
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
        let ring = self.ring.read_f32(gpu)?;
        Ok((from..done)
            .map(|s| {
                let row = (s % self.capacity as u64) as usize * self.slots;
                StepLosses {
                    step: s,
                    values: ring[row..row + self.slots].to_vec(),
                }
            })
            .collect())
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
