//! The end of a training step in one dispatch: the step's losses (each the
//! sum of its per-sample rows times a factor) written to their ring slots,
//! then the step counter advanced. It replaces, per loss, the scalar
//! reduction and the ring copy, and the separate advance: three small
//! dispatches that only ever fed a loss.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::pipeline::{Access, Kernel};
use crate::gpu::recorder::{f32_param, Step};
use crate::gpu::state::StepState;
use crate::gpu::tensor::{DType, Tensor};
use crate::shaders;

/// One loss of a step: `scale * sum(rows)` into ring slot `slot`.
#[derive(Clone, Copy, Debug)]
pub struct StepLoss<'a> {
    pub slot: usize,
    /// Per-sample losses `[N]`, f32.
    pub rows: &'a Tensor,
    /// The factor of the sum (the loss op's, e.g. `1 / N` for a mean).
    pub scale: f32,
}

fn end_kernel(losses: usize) -> Kernel {
    let entry = if losses == 1 {
        "step_end1"
    } else {
        "step_end2"
    };
    let mut access = vec![Access::ReadWrite, Access::ReadWrite];
    access.extend(std::iter::repeat_n(Access::Read, losses));
    Kernel {
        key: format!("{}+{}", shaders::WG_REDUCE.name, shaders::STEP_END.name),
        source: Cow::Owned(format!(
            "{}\n{}",
            shaders::WG_REDUCE.source,
            shaders::STEP_END.source
        )),
        entry,
        access,
        trusted: false,
        subgroups: false,
    }
}

impl StepState {
    /// Record the end of a step: each of `losses` (one or two) summed into
    /// its slot, then the counter advanced. Must be the last dispatch of
    /// the step, as [`StepState::record_advance`].
    pub fn record_end(&self, gpu: &Gpu, step: &mut Step, losses: &[StepLoss]) -> Result<()> {
        const OP: &str = "step_end";
        if !(1..=2).contains(&losses.len()) {
            return Err(Error::invalid(
                OP,
                format!("{} losses: a step ends with one or two", losses.len()),
            ));
        }
        let mut words = vec![self.slots as u32, self.capacity as u32];
        for l in losses {
            if l.slot >= self.slots {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "slot {} out of range: the ring has {} slots",
                        l.slot, self.slots
                    ),
                ));
            }
            l.rows.expect_dtype(OP, DType::F32)?;
            let n = u32::try_from(l.rows.numel())
                .map_err(|_| Error::invalid(OP, "more than 2^32 rows"))?;
            words.extend([n, l.slot as u32, f32_param(l.scale)]);
        }
        words.resize(8, 0);
        let mut tensors = vec![&self.counters, &self.ring];
        tensors.extend(losses.iter().map(|l| l.rows));
        step.dispatch(
            gpu,
            OP,
            &end_kernel(losses.len()),
            &words,
            &tensors,
            [1, 1, 1],
        )
    }
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![end_kernel(1), end_kernel(2)]
}
