//! The one error type of the library: every failure says what went wrong and,
//! where there is one, what to do about it.

/// Library result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the engine can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter on any enabled backend.
    #[error(
        "no GPU adapter found on backends {backends}. Install a GPU driver, or the CPU Vulkan \
         driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`); WGPU_BACKEND selects \
         backends (vulkan, metal, dx12, gl)"
    )]
    NoAdapter { backends: String },

    /// `VAE_VS_GAN_ADAPTER` named an adapter that does not exist.
    #[error("VAE_VS_GAN_ADAPTER={wanted:?} matches no adapter; available: {available}")]
    AdapterNotFound { wanted: String, available: String },

    /// The adapter refused to open a device.
    #[error("could not open a device on adapter {adapter:?}: {reason}")]
    RequestDevice { adapter: String, reason: String },

    /// Two recorded ops disagree about a tensor's shape.
    #[error("{op}: shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        op: &'static str,
        what: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },

    /// An argument that no shape check covers is out of range.
    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },

    /// A buffer larger than one storage binding may be.
    #[error(
        "tensor {label:?} needs {size} bytes, but this adapter's max_storage_buffer_binding_size \
         is {limit} bytes: use a smaller batch"
    )]
    TooLarge {
        label: String,
        size: u64,
        limit: u64,
    },

    /// The GPU device was lost (driver reset, GPU timeout, destroyed): no
    /// later GPU work can succeed.
    #[error(
        "the GPU device was lost while {context} ({reason}); nothing more can run on it: \
         restart the program (a training run resumes from its last checkpoint)"
    )]
    DeviceLost { context: String, reason: String },

    /// A validation, out-of-memory or internal error reported by wgpu.
    #[error("GPU error in {context}: {message}")]
    Gpu { context: String, message: String },

    /// A data file is missing, truncated, corrupt or not what it claims.
    #[error("{path}: {problem}")]
    Data { path: String, problem: String },

    /// A loss became NaN or infinite: training stops at the step that did it.
    #[error("loss {loss} is {value} at epoch {epoch}, step {step} (step {global_step} overall): training stopped")]
    NonFinite {
        loss: String,
        value: f32,
        epoch: usize,
        step: usize,
        global_step: u64,
    },

    /// Training stopped; `hint` says what was kept (the last checkpoint).
    #[error("{cause}; {hint}")]
    Stopped { cause: Box<Error>, hint: String },

    /// Ctrl-C or SIGTERM stopped a training run after the steps in flight,
    /// and its checkpoint was saved there.
    #[error(
        "interrupted after {steps} steps (epoch {epoch}, {done} of {per_epoch} steps done); \
         saved {checkpoint}. To continue, run the same command with --resume (train_vae and \
         train_gan take the run's folder: --resume {dir})"
    )]
    Interrupted {
        checkpoint: String,
        dir: String,
        epoch: usize,
        done: usize,
        per_epoch: usize,
        steps: u64,
    },

    /// Mapping a buffer for readback failed (device lost, out of memory).
    #[error("reading back {label:?} failed: {message}")]
    Readback { label: String, message: String },
}

impl Error {
    /// Shorthand for a shape mismatch.
    pub fn shape(
        op: &'static str,
        what: impl Into<String>,
        expected: &[usize],
        got: &[usize],
    ) -> Self {
        Error::Shape {
            op,
            what: what.into(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        }
    }

    /// Shorthand for a data file problem.
    pub fn data(path: &std::path::Path, problem: impl Into<String>) -> Self {
        Error::Data {
            path: path.display().to_string(),
            problem: problem.into(),
        }
    }

    /// Shorthand for an invalid argument.
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Invalid {
            op,
            msg: msg.into(),
        }
    }
}
