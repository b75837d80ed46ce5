//! Kernels and the pipeline cache.
//!
//! A [`Kernel`] is a WGSL source (a shader family with its tile parameters
//! substituted into the text), an entry point, and the access of each storage
//! binding. Pipelines are created once per distinct kernel and reused: every
//! layer records its dispatches at model build time, never per step.
//!
//! Creation runs on a pool of worker threads, one per core (wgpu's device
//! is thread-safe): recording a step only asks for its pipelines, and the
//! step waits for them all before its first submit ([`PendingPipeline`]).
//! GPU drivers compile at creation (130-940 ms a pipeline on NVIDIA), so a
//! model's kernels compile side by side; lavapipe compiles at the first
//! dispatch instead, on its queue thread, which no pool can spread.
//! On lavapipe the pool spreads the compiles anyway: each worker owns a
//! second device on the same adapter and dispatches each new pipeline
//! there once, on empty buffers, before the pipeline counts as ready;
//! lavapipe compiles it then, on that device's queue thread, and stores
//! the machine code in Mesa's shader cache, where the engine's device
//! finds it at its first dispatch (the pool and its warmer:
//! [`crate::gpu::pool`]).
//! Where the backend supports it (Vulkan), every pipeline goes through one
//! `wgpu::PipelineCache` loaded from and saved to the cache folder
//! ([`crate::gpu::disk_cache`]), so a second run skips the driver's compile.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::disk_cache;
use crate::gpu::pool::{Job, Pool, Warmer, Worker};
use crate::shaders::Shader;

/// How a kernel uses a storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One compute entry point ready to be compiled.
///
/// Binding convention, for every kernel: group 0, binding 0 is a uniform
/// block of scalar `u32`/`f32` parameters; bindings 1.. are the storage
/// buffers in the order of `access`.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// Cache key: shader name plus the substituted parameters.
    pub key: String,
    pub source: Cow<'static, str>,
    pub entry: &'static str,
    pub access: Vec<Access>,
    /// Compile without runtime bounds checks. Only for kernels whose every
    /// index is in range by construction (and tested on odd shapes).
    pub trusted: bool,
    /// The module uses subgroup operations: the device must have been
    /// opened with them (naga validates it with the SUBGROUP capability).
    pub subgroups: bool,
}

impl Kernel {
    /// A kernel from a shader file as it is.
    pub fn new(shader: Shader, entry: &'static str, access: &[Access]) -> Kernel {
        Kernel {
            key: shader.name.to_string(),
            source: Cow::Borrowed(shader.source),
            entry,
            access: access.to_vec(),
            trusted: false,
            subgroups: false,
        }
    }

    /// A kernel whose shader declares `const NAME: u32 = ...;` for each of
    /// `consts`, prepended here (WGSL override constants cannot size the
    /// per-thread arrays that register tiling needs).
    pub fn with_consts(
        shader: Shader,
        entry: &'static str,
        access: &[Access],
        consts: &[(&str, u32)],
    ) -> Kernel {
        let source = with_consts(shader.source, consts);
        let key = consts
            .iter()
            .fold(shader.name.to_string(), |k, (n, v)| format!("{k},{n}={v}"));
        Kernel {
            key,
            source: Cow::Owned(source),
            entry,
            access: access.to_vec(),
            trusted: false,
            subgroups: false,
        }
    }
}

/// `source` with one `const NAME: u32 = V;` line per parameter in front.
pub fn with_consts(source: &str, consts: &[(&str, u32)]) -> String {
    let mut out = String::new();
    for (name, value) in consts {
        out.push_str(&format!("const {name}: u32 = {value}u;\n"));
    }
    out.push_str(source);
    out
}

/// Pipeline cache key: kernel key, entry point, binding access.
type PipelineKey = (String, &'static str, Vec<Access>);

/// A pipeline being created on the pool: [`PendingPipeline::wait`] blocks
/// until it is ready, or gives the creation's error (naming the kernel).
#[derive(Debug, Default)]
pub struct PendingPipeline {
    done: Mutex<Option<std::result::Result<wgpu::ComputePipeline, (String, String)>>>,
    ready: Condvar,
}

impl PendingPipeline {
    fn finish(&self, r: std::result::Result<wgpu::ComputePipeline, (String, String)>) {
        let mut d = self.done.lock().unwrap_or_else(|e| e.into_inner());
        *d = Some(r);
        self.ready.notify_all();
    }

    /// The pipeline, once created.
    pub fn wait(&self) -> Result<wgpu::ComputePipeline> {
        let mut d = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while d.is_none() {
            d = self.ready.wait(d).unwrap_or_else(|e| e.into_inner());
        }
        match d.as_ref() {
            Some(Ok(p)) => Ok(p.clone()),
            Some(Err((context, message))) => Err(Error::Gpu {
                context: context.clone(),
                message: message.clone(),
            }),
            None => unreachable!("waited until set"),
        }
    }
}

/// What the pool's jobs share with the device's cache.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) modules: Mutex<HashMap<(String, bool), wgpu::ShaderModule>>,
    /// The WGSL of every module a pipeline was created from, by kernel key
    /// (what `examples/dump_kernels.rs` writes out for a second compiler).
    pub(super) sources: Mutex<BTreeMap<String, String>>,
}

/// The driver's pipeline cache and where it is kept between runs.
pub(super) struct DriverCache {
    cache: wgpu::PipelineCache,
    path: PathBuf,
    /// Pipelines were created since it was last saved.
    dirty: AtomicBool,
}

/// Kind and format version of the pipeline cache file.
const PIPELINE_CACHE_KIND: &str = "pipelines";
const PIPELINE_CACHE_VERSION: u32 = 1;

/// Compiled pipelines and their bind group layouts, keyed by kernel.
pub struct PipelineCache {
    shared: Arc<Shared>,
    layouts: Mutex<HashMap<Vec<Access>, wgpu::BindGroupLayout>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<PendingPipeline>>>,
    /// The pool, its threads started on first use.
    jobs: Mutex<Option<Pool>>,
    driver: Option<Arc<DriverCache>>,
    warmer: Option<Warmer>,
}

impl PipelineCache {
    /// A cache for `device`, with the driver's pipeline cache loaded from
    /// the cache folder where the device has `PIPELINE_CACHE`. A missing
    /// file is an empty cache; a corrupt or foreign one is ignored with one
    /// warning (the framing's checksum, then wgpu's own header check with
    /// `fallback`).
    pub(crate) fn new(
        adapter: &wgpu::Adapter,
        device: &wgpu::Device,
        info: &wgpu::AdapterInfo,
    ) -> PipelineCache {
        let driver = (|| {
            if !device.features().contains(wgpu::Features::PIPELINE_CACHE) {
                return None;
            }
            let name = wgpu::util::pipeline_cache_key(info)?;
            let path = disk_cache::cache_dir()?.join(disk_cache::file_name(&[&name]));
            let data = disk_cache::read(&path, PIPELINE_CACHE_KIND, PIPELINE_CACHE_VERSION);
            let scope = ValidationScope::push(device);
            // SAFETY: the data is what `get_data` gave an earlier run on an
            // adapter with this cache key, intact by its CRC; wgpu checks
            // its own header and falls back to an empty cache otherwise.
            let cache = unsafe {
                device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("vae-vs-gan pipelines"),
                    data: data.as_deref(),
                    fallback: true,
                })
            };
            if let Some(e) = scope.pop() {
                disk_cache::warn_once(&format!(
                    "the pipeline cache {} was refused ({e}); going on without it",
                    path.display()
                ));
                return None;
            }
            Some(Arc::new(DriverCache {
                cache,
                path,
                dirty: AtomicBool::new(false),
            }))
        })();
        PipelineCache {
            shared: Arc::default(),
            layouts: Mutex::default(),
            pipelines: Mutex::default(),
            jobs: Mutex::default(),
            driver,
            warmer: Warmer::for_adapter(adapter, info, device.features()),
        }
    }

    /// (key, WGSL source) of every module compiled so far, sorted by key.
    pub fn compiled_kernels(&self) -> Vec<(String, String)> {
        // a poisoned lock still holds a consistent map (inserts only)
        let sources = self
            .shared
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        sources
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// Write the driver's pipeline cache to disk if pipelines were created
    /// since the last save (atomically; a failure is one warning).
    pub(crate) fn save(&self) {
        if let Some(d) = &self.driver {
            if d.dirty.swap(false, Ordering::Relaxed) {
                if let Some(data) = d.cache.get_data() {
                    disk_cache::write(&d.path, PIPELINE_CACHE_KIND, PIPELINE_CACHE_VERSION, &data);
                }
            }
        }
    }

    /// Where the driver's pipeline cache is kept, when there is one.
    pub fn driver_cache_path(&self) -> Option<PathBuf> {
        self.driver.as_ref().map(|d| d.path.clone())
    }

    /// Run `job` on the pool (started on first use, one thread per core).
    fn spawn(&self, job: Job) -> Result<()> {
        let mut jobs = self.jobs.lock().map_err(|_| poisoned("pool"))?;
        let pool = jobs.get_or_insert_with(Pool::start);
        match &pool.tx {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    job(&mut Worker::default());
                }
            }
            None => job(&mut Worker::default()),
        }
        Ok(())
    }
}

impl Drop for PipelineCache {
    /// The pool first (its last jobs may still create pipelines), then the
    /// driver's cache is saved.
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        self.save();
    }
}

fn poisoned(what: &str) -> Error {
    Error::Gpu {
        context: what.to_string(),
        message: "pipeline cache lock poisoned".into(),
    }
}

impl Gpu {
    /// (key, WGSL source) of every distinct shader module this device has
    /// compiled a pipeline from, sorted by key: what its recorded steps run.
    /// Waits for the pipelines still being built on the pool first, so a
    /// step recorded and never run is counted too.
    pub fn compiled_kernels(&self) -> Vec<(String, String)> {
        let pending: Vec<Arc<PendingPipeline>> = self
            .pipelines
            .pipelines
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for p in pending {
            // a pipeline that failed has no module to list
            let _ = p.wait();
        }
        self.pipelines.compiled_kernels()
    }

    /// Save the driver's pipeline cache now (it is also saved when the
    /// device is dropped).
    pub fn save_pipeline_cache(&self) {
        self.pipelines.save()
    }

    /// The file the driver's pipeline cache is kept in, where the backend
    /// has one (Vulkan) and there is a cache folder.
    pub fn pipeline_cache_path(&self) -> Option<PathBuf> {
        self.pipelines.driver_cache_path()
    }

    /// The bind group layout for a kernel's bindings (uniform + storage).
    pub fn bind_group_layout(&self, access: &[Access]) -> Result<wgpu::BindGroupLayout> {
        let mut layouts = self
            .pipelines
            .layouts
            .lock()
            .map_err(|_| poisoned("layout"))?;
        if let Some(l) = layouts.get(access) {
            return Ok(l.clone());
        }
        let layout = bind_group_layout(&self.device, access);
        layouts.insert(access.to_vec(), layout.clone());
        Ok(layout)
    }

    /// The compiled pipeline for `kernel`, waiting for its creation.
    /// Compilation and validation errors are returned, naming the kernel.
    pub fn pipeline(&self, kernel: &Kernel) -> Result<wgpu::ComputePipeline> {
        self.request_pipeline(kernel)?.wait()
    }

    /// The pipeline for `kernel`, created on the pool on first request:
    /// returns at once; [`PendingPipeline::wait`] gives it (or its error).
    pub fn request_pipeline(&self, kernel: &Kernel) -> Result<Arc<PendingPipeline>> {
        let key = (kernel.key.clone(), kernel.entry, kernel.access.clone());
        let mut pipelines = self
            .pipelines
            .pipelines
            .lock()
            .map_err(|_| poisoned("pipeline"))?;
        if let Some(p) = pipelines.get(&key) {
            return Ok(p.clone());
        }
        let pending = Arc::new(PendingPipeline::default());
        pipelines.insert(key, pending.clone());
        drop(pipelines);
        let layout = self.bind_group_layout(&kernel.access)?;
        let job = {
            let (device, kernel, pending) = (self.device.clone(), kernel.clone(), pending.clone());
            let shared = self.pipelines.shared.clone();
            let driver = self.pipelines.driver.clone();
            let warmer = self.pipelines.warmer.clone();
            move |worker: &mut Worker| {
                let made = create(&device, &shared, driver.as_deref(), &kernel, &layout);
                if let (Ok(_), Some(w)) = (&made, &warmer) {
                    w.warm(worker, &kernel);
                }
                pending.finish(made)
            }
        };
        self.pipelines.spawn(Box::new(job))?;
        Ok(pending)
    }
}

/// The layout of a kernel's bindings: a uniform block, then storage
/// buffers read-only or read-write as `access` says.
pub(super) fn bind_group_layout(device: &wgpu::Device, access: &[Access]) -> wgpu::BindGroupLayout {
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }];
    for (i, a) in access.iter().enumerate() {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: 1 + i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: *a == Access::Read,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &entries,
    })
}

/// A validation error scope around device calls, popped by blocking:
/// natively wgpu's scopes resolve at once, so a kernel that does not
/// compile is caught here and named. Without the native feature (a
/// browser, whose scopes resolve only on its event loop, which cannot be
/// blocked on) none is pushed: the error reaches the device's
/// uncaptured-error handler and is reported at the next wait
/// ([`Gpu::check_errors`]), without the kernel's name.
pub(super) struct ValidationScope(Option<wgpu::ErrorScopeGuard>);

impl ValidationScope {
    pub(super) fn push(device: &wgpu::Device) -> ValidationScope {
        ValidationScope(
            cfg!(feature = "native")
                .then(|| device.push_error_scope(wgpu::ErrorFilter::Validation)),
        )
    }

    pub(super) fn pop(self) -> Option<wgpu::Error> {
        self.0.and_then(|scope| pollster::block_on(scope.pop()))
    }
}

/// Create `kernel`'s module (once per source) and pipeline, on the calling
/// thread (error scopes are per thread in wgpu): the error names the kernel.
pub(super) fn create(
    device: &wgpu::Device,
    shared: &Shared,
    driver: Option<&DriverCache>,
    kernel: &Kernel,
    layout: &wgpu::BindGroupLayout,
) -> std::result::Result<wgpu::ComputePipeline, (String, String)> {
    let context = format!("compiling {}::{}", kernel.key, kernel.entry);
    let fail = |m: &str| (context.clone(), m.to_string());
    let scope = ValidationScope::push(device);
    let module = {
        let mut modules = shared
            .modules
            .lock()
            .map_err(|_| fail("module lock poisoned"))?;
        modules
            .entry((kernel.key.clone(), kernel.trusted))
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(&kernel.key),
                    source: wgpu::ShaderSource::Wgsl(kernel.source.clone()),
                };
                if kernel.trusted {
                    // SAFETY: `trusted` kernels index only in range by
                    // construction, and are tested on odd shapes.
                    unsafe {
                        device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                } else {
                    device.create_shader_module(desc)
                }
            })
            .clone()
    };
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(&context),
        layout: Some(&pl),
        module: &module,
        entry_point: Some(kernel.entry),
        compilation_options: Default::default(),
        cache: driver.map(|d| &d.cache),
    });
    if let Some(err) = scope.pop() {
        if let Ok(mut m) = shared.modules.lock() {
            m.remove(&(kernel.key.clone(), kernel.trusted));
        }
        return Err(fail(&err.to_string()));
    }
    if let Some(d) = driver {
        d.dirty.store(true, Ordering::Relaxed);
    }
    shared
        .sources
        .lock()
        .map_err(|_| fail("sources lock poisoned"))?
        .entry(kernel.key.clone())
        .or_insert_with(|| kernel.source.to_string());
    Ok(pipeline)
}
