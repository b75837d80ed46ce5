//! Adapter and device selection, tensors, the pipeline cache, the step
//! recorder, per-step GPU state and its readback.

pub mod adapter;
pub mod context;
pub mod disk_cache;
pub mod pipeline;
mod pool;
pub mod readback;
pub mod recorder;
pub mod state;
pub mod step_end;
pub mod tensor;
pub mod tune_table;

pub use crate::shaders::Shader;
pub use adapter::{list_adapters, list_adapters_async, select_adapter, ADAPTER_ENV};
pub use context::{
    AllocatorFigures, AutotunePolicy, Gpu, GpuOptions, KernelPolicy, LimitsPolicy, AUTOTUNE_ENV,
    KERNELS_ENV,
};
pub use pipeline::{Access, Kernel};
pub use readback::Readback;
pub use recorder::{binding_bytes, f32_param, grid, DispatchTime, Step, StepStats};
pub use state::{InFlight, Snapshot, StepLosses, StepState, IN_FLIGHT};
pub use step_end::StepLoss;
pub use tensor::{DType, Tensor};
