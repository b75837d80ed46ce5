//! Adapter and device selection, tensors, the pipeline cache, the step
//! recorder and per-step GPU state.

pub mod context;
pub mod pipeline;
pub mod recorder;
pub mod state;
pub mod tensor;

pub use crate::shaders::Shader;
pub use context::{
    list_adapters, select_adapter, Gpu, GpuOptions, KernelPolicy, LimitsPolicy, ADAPTER_ENV,
    KERNELS_ENV,
};
pub use pipeline::{Access, Kernel};
pub use recorder::{f32_param, grid, DispatchTime, Step};
pub use state::{StepLosses, StepState};
pub use tensor::{DType, Tensor};
