//! The [`Gpu`] handle every op records into: the device opened on the
//! adapter [`crate::gpu::adapter`] selects, its kernel and autotune
//! policies, memory counter and error reporting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::adapter::{list_adapters_async, select_adapter};
use crate::gpu::pipeline::PipelineCache;
use crate::gpu::tune_table::{TuneEvent, TuneTable};

/// Environment variable that forces the kernel policy ([`KernelPolicy`]).
pub const KERNELS_ENV: &str = "VAE_VS_GAN_KERNELS";

/// Which kernel choices (GEMM main loop, tiles, split-K) the engine makes.
/// `Auto` picks by adapter type; `Gpu` and `Cpu` force what it would pick
/// on a discrete GPU or on a CPU driver, whatever the adapter, so a CPU
/// driver can run (and CI can test) exactly what a GPU would execute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelPolicy {
    #[default]
    Auto,
    Gpu,
    Cpu,
}

impl KernelPolicy {
    pub fn name(self) -> &'static str {
        match self {
            KernelPolicy::Auto => "auto",
            KernelPolicy::Gpu => "gpu",
            KernelPolicy::Cpu => "cpu",
        }
    }

    /// Parse a policy name (case-insensitive); an unknown one is refused
    /// with the valid ones.
    pub fn parse(s: &str) -> Result<KernelPolicy> {
        parse_named(KERNELS_ENV, "kernel policy", s)
    }

    /// The policy `VAE_VS_GAN_KERNELS` names (`Auto` when unset).
    pub fn from_env() -> Result<KernelPolicy> {
        named_from_env(KERNELS_ENV, "kernel policy")
    }

    /// Whether this policy makes the CPU-driver choices on an adapter of
    /// type `device_type`.
    pub fn cpu_kernels(self, device_type: wgpu::DeviceType) -> bool {
        match self {
            KernelPolicy::Auto => device_type == wgpu::DeviceType::Cpu,
            KernelPolicy::Gpu => false,
            KernelPolicy::Cpu => true,
        }
    }
}

/// Environment variable that turns the GEMM autotuner on or off
/// ([`AutotunePolicy`]).
pub const AUTOTUNE_ENV: &str = "VAE_VS_GAN_AUTOTUNE";

/// Whether GEMM tiles are timed on this device ([`Gpu::autotune`]): `Auto`
/// tunes on GPU adapters and not on CPU drivers (where the CPU policy's
/// choices were measured and timing would only add start-up time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AutotunePolicy {
    #[default]
    Auto,
    On,
    Off,
}

impl AutotunePolicy {
    /// Parse a setting (case-insensitive); an unknown one is refused with
    /// the valid ones.
    pub fn parse(s: &str) -> Result<AutotunePolicy> {
        parse_named(AUTOTUNE_ENV, "autotune setting", s)
    }

    /// The policy `VAE_VS_GAN_AUTOTUNE` names (`Auto` when unset).
    pub fn from_env() -> Result<AutotunePolicy> {
        named_from_env(AUTOTUNE_ENV, "autotune setting")
    }
}

/// `s` as one of `T`'s names, case-insensitive (empty: the default); an
/// unknown name is refused, naming `var` and the valid names.
fn parse_named<T: clap::ValueEnum + Default>(var: &'static str, what: &str, s: &str) -> Result<T> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(T::default());
    }
    T::from_str(s, true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect();
        Error::invalid(
            var,
            format!("{s:?} is no {what}: use one of {}", names.join(", ")),
        )
    })
}

/// The value of environment variable `var` parsed as by [`parse_named`]
/// (the default when unset).
fn named_from_env<T: clap::ValueEnum + Default>(var: &'static str, what: &str) -> Result<T> {
    match std::env::var(var) {
        Ok(s) => parse_named(var, what, &s),
        Err(_) => Ok(T::default()),
    }
}

/// Which device limits to request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitsPolicy {
    /// Exactly `wgpu::Limits::default()` (the WebGPU limits). The test suite
    /// uses this so a kernel that needs more fails here, not on a user's Mac.
    WebGpuDefaults,
    /// The WebGPU limits, except buffer sizes, which take what the adapter has.
    AdapterBuffers,
}

/// Options for opening a [`Gpu`].
#[derive(Clone, Debug)]
pub struct GpuOptions {
    pub limits: LimitsPolicy,
    /// Request timestamp queries when the adapter has them.
    pub timestamps: bool,
    /// The kernel policy; `None` takes `VAE_VS_GAN_KERNELS` (default auto).
    pub kernels: Option<KernelPolicy>,
    /// The autotuner; `None` takes `VAE_VS_GAN_AUTOTUNE` (default auto).
    pub autotune: Option<AutotunePolicy>,
    /// Request subgroup operations when the adapter has them (the CPU
    /// policy's subgroup GEMM main uses them; without, it keeps the
    /// direct main).
    pub subgroups: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            limits: LimitsPolicy::AdapterBuffers,
            timestamps: true,
            kernels: None,
            autotune: None,
            subgroups: true,
        }
    }
}

/// Bytes currently allocated in engine tensors, and the high-water mark.
#[derive(Debug, Default)]
pub struct MemoryCounter {
    pub(crate) current: AtomicU64,
    pub(crate) peak: AtomicU64,
}

impl MemoryCounter {
    pub(crate) fn add(&self, bytes: u64) {
        let now = self.current.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
    pub(crate) fn sub(&self, bytes: u64) {
        self.current.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// wgpu's allocator figures at one moment ([`Gpu::allocator_report`]),
/// with the engine's own count taken at the same moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AllocatorFigures {
    /// Bytes of live allocations (`AllocatorReport::total_allocated_bytes`).
    pub allocated_bytes: u64,
    /// Bytes of the memory blocks they are carved from, free space
    /// included (`total_reserved_bytes`).
    pub reserved_bytes: u64,
    /// [`Gpu::allocated_bytes`] at the same moment.
    pub engine_bytes: u64,
}

/// An open device with its queue, what we know about its adapter, and the
/// pipeline cache. Cheap to share by reference; ops take `&Gpu`.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// The limits the device was opened with (what kernels may rely on).
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pub(crate) pipelines: PipelineCache,
    pub(crate) memory: Arc<MemoryCounter>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Blocking waits on the device so far ([`Gpu::blocking_waits`]).
    waits: AtomicU64,
    /// Set by wgpu's device-lost callback: why the device was lost.
    lost: Arc<Mutex<Option<String>>>,
    kernels: KernelPolicy,
    autotune: AutotunePolicy,
    pub(crate) tuned: TuneTable,
}

impl Gpu {
    /// Open the best adapter with default options.
    pub fn new() -> Result<Gpu> {
        Gpu::with_options(GpuOptions::default())
    }

    /// Open the selected adapter with the given options. The blocking form
    /// of [`Gpu::open_async`].
    pub fn with_options(opts: GpuOptions) -> Result<Gpu> {
        pollster::block_on(Gpu::open_async(opts))
    }

    /// [`Gpu::with_options`] as a future, which a browser awaits.
    pub async fn open_async(opts: GpuOptions) -> Result<Gpu> {
        let entry = select_adapter(list_adapters_async().await?)?;
        Gpu::from_adapter_async(entry.adapter, opts).await
    }

    /// Open a device on a specific adapter. The blocking form of
    /// [`Gpu::from_adapter_async`].
    pub fn from_adapter(adapter: wgpu::Adapter, opts: GpuOptions) -> Result<Gpu> {
        pollster::block_on(Gpu::from_adapter_async(adapter, opts))
    }

    /// [`Gpu::from_adapter`] as a future, which a browser awaits.
    pub async fn from_adapter_async(adapter: wgpu::Adapter, opts: GpuOptions) -> Result<Gpu> {
        let kernels = match opts.kernels {
            Some(k) => k,
            None => KernelPolicy::from_env()?,
        };
        let autotune = match opts.autotune {
            Some(a) => a,
            None => AutotunePolicy::from_env()?,
        };
        let info = adapter.get_info();
        let have = adapter.limits();
        let mut limits = wgpu::Limits::default();
        if opts.limits == LimitsPolicy::AdapterBuffers {
            limits.max_buffer_size = have.max_buffer_size;
            limits.max_storage_buffer_binding_size = have.max_storage_buffer_binding_size;
        }
        let mut features = wgpu::Features::empty();
        if opts.timestamps {
            features |= adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        }
        // the driver's pipeline cache, persisted between runs where it exists
        features |= adapter.features() & wgpu::Features::PIPELINE_CACHE;
        if opts.subgroups {
            features |= adapter.features() & wgpu::Features::SUBGROUP;
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("vae-vs-gan"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) =
            adapter
                .request_device(&desc)
                .await
                .map_err(|e| Error::RequestDevice {
                    adapter: info.name.clone(),
                    reason: e.to_string(),
                })?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let why = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut w) = why.lock() {
                w.get_or_insert(format!("{reason:?}: {message}"));
            }
        });
        let pipelines = PipelineCache::new(&adapter, &device, &info);
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            features,
            pipelines,
            memory: Arc::default(),
            errors,
            waits: AtomicU64::new(0),
            lost,
            kernels,
            autotune,
            tuned: TuneTable::default(),
        })
    }

    /// One line naming the adapter: name, backend, type. (A browser may
    /// keep the name to itself: then "unnamed adapter".)
    pub fn describe(&self) -> String {
        let name = match self.info.name.as_str() {
            "" => "unnamed adapter",
            n => n,
        };
        format!(
            "{name} ({:?}, {:?})",
            self.info.backend, self.info.device_type
        )
    }

    /// The kernel choices in words: `gpu kernels (forced by
    /// VAE_VS_GAN_KERNELS)`, `cpu kernels (auto: CPU adapter)`.
    pub fn describe_kernels(&self) -> String {
        let chosen = if self.cpu_kernels() { "cpu" } else { "gpu" };
        match self.kernels {
            KernelPolicy::Auto => format!(
                "{chosen} kernels (auto: {} adapter)",
                if self.is_cpu() { "CPU" } else { "GPU" }
            ),
            _ => format!("{chosen} kernels (forced by {KERNELS_ENV})"),
        }
    }

    /// The kernel policy this device was opened with.
    pub fn kernel_policy(&self) -> KernelPolicy {
        self.kernels
    }

    /// Whether kernels are chosen as for a CPU driver: by the policy, and
    /// under `auto` by the adapter type.
    pub fn cpu_kernels(&self) -> bool {
        self.kernels.cpu_kernels(self.info.device_type)
    }

    /// Whether GEMM choices are timed on this device when a model is built
    /// (by the policy, and under `auto` on GPU adapters only).
    pub fn autotune(&self) -> bool {
        match self.autotune {
            AutotunePolicy::Auto => !self.is_cpu(),
            AutotunePolicy::On => true,
            AutotunePolicy::Off => false,
        }
    }

    /// The autotune setting in words, for the run's header line.
    pub fn describe_autotune(&self) -> String {
        let on = if self.autotune() { "on" } else { "off" };
        match self.autotune {
            AutotunePolicy::Auto => format!(
                "autotune {on} (auto: {} adapter)",
                if self.is_cpu() { "CPU" } else { "GPU" }
            ),
            _ => format!("autotune {on} (asked)"),
        }
    }

    /// A tuned choice remembered for `key` on this adapter and driver
    /// (this run's, or an earlier run's from the cache folder).
    pub fn tuned(&self, key: &str) -> Option<String> {
        self.tuned.get(&self.info, key)
    }

    /// Remember a tuned choice (and write the cache file; a failure to
    /// write is one warning).
    pub fn set_tuned(&self, key: &str, value: &str) {
        self.tuned.set(&self.info, key, value)
    }

    /// Record that the tuner resolved a shape (timed, or from the table).
    pub fn note_tuned(&self, event: TuneEvent) {
        self.tuned.note(event)
    }

    /// Every shape the tuner resolved on this device, in order.
    pub fn tune_events(&self) -> Vec<TuneEvent> {
        self.tuned.events()
    }

    /// The subgroup size of every dispatch on this device: `Some` when it
    /// was opened with subgroup operations and the adapter's smallest and
    /// largest subgroup sizes agree (lavapipe on AVX2: 8; a GPU that may
    /// pick 32 or 64 per pipeline: `None`).
    pub fn subgroup_lanes(&self) -> Option<u32> {
        (self.features.contains(wgpu::Features::SUBGROUP)
            && self.info.subgroup_min_size == self.info.subgroup_max_size)
            .then_some(self.info.subgroup_min_size)
    }

    /// True on a CPU driver such as lavapipe.
    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Bytes held by live engine tensors now.
    pub fn allocated_bytes(&self) -> u64 {
        self.memory.current.load(Ordering::Relaxed)
    }

    /// Largest value [`Gpu::allocated_bytes`] has reached (since the last
    /// [`Gpu::reset_peak`]).
    pub fn peak_bytes(&self) -> u64 {
        self.memory.peak.load(Ordering::Relaxed)
    }

    /// Start a new high-water mark at what is allocated now, to measure
    /// one phase (e.g. the training steps without the evaluation).
    pub fn reset_peak(&self) {
        self.memory
            .peak
            .store(self.allocated_bytes(), Ordering::Relaxed);
    }

    /// Block until all submitted work is done, then report any error wgpu
    /// raised since the last check (validation, out of memory). Counted in
    /// [`Gpu::blocking_waits`].
    pub fn sync(&self, context: &str) -> Result<()> {
        self.block(wgpu::PollType::wait_indefinitely(), context)
    }

    /// Block until submission `index` is done (later submissions may still
    /// run: this is how the training loop keeps a second chunk in flight),
    /// then report errors as [`Gpu::sync`] does. Counted in
    /// [`Gpu::blocking_waits`].
    pub fn wait_for(&self, index: wgpu::SubmissionIndex, context: &str) -> Result<()> {
        self.block(
            wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            },
            context,
        )
    }

    /// The one place the engine blocks on the device, so that every wait
    /// (syncs, readbacks, the training loop's) is counted.
    fn block(&self, poll: wgpu::PollType, context: &str) -> Result<()> {
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.device.poll(poll).map_err(|e| Error::Gpu {
            context: context.to_string(),
            message: e.to_string(),
        })?;
        self.check_errors(context)
    }

    /// Blocking waits on the device since it was opened: every
    /// [`Gpu::sync`] (so every tensor readback) and [`Gpu::wait_for`]. A
    /// wait is a CPU-GPU round trip during which the CPU records nothing
    /// and, once the GPU has drained, the GPU idles; the training loop
    /// reports how many its epochs took (`metrics.json`).
    pub fn blocking_waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// What wgpu's memory allocator holds now, where the backend reports it
    /// (Vulkan and DX12 through gpu-allocator; `None` elsewhere, or where
    /// the backend does not sub-allocate). It counts every buffer the
    /// device has (uniform blocks, readback buffers, pipelines' scratch),
    /// so it sits beside, not in place of, [`Gpu::allocated_bytes`].
    pub fn allocator_report(&self) -> Option<AllocatorFigures> {
        self.device
            .generate_allocator_report()
            .map(|r| AllocatorFigures {
                allocated_bytes: r.total_allocated_bytes,
                reserved_bytes: r.total_reserved_bytes,
                engine_bytes: self.allocated_bytes(),
            })
    }

    /// Why the device was lost, if it was (a driver reset, a GPU timeout,
    /// `destroy`).
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// Report (and clear) errors wgpu raised outside an error scope; a lost
    /// device first, since every later error follows from it.
    pub fn check_errors(&self, context: &str) -> Result<()> {
        if let Some(reason) = self.lost() {
            return Err(Error::DeviceLost {
                context: context.to_string(),
                reason,
            });
        }
        let mut errs = self.errors.lock().map_err(|_| Error::Gpu {
            context: context.to_string(),
            message: "error sink poisoned".into(),
        })?;
        if errs.is_empty() {
            return Ok(());
        }
        let message = errs.join("; ");
        errs.clear();
        Err(Error::Gpu {
            context: context.to_string(),
            message,
        })
    }
}
