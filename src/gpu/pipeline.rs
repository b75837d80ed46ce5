//! Kernels and the pipeline cache.
//!
//! A [`Kernel`] is a WGSL source (a shader family with its tile parameters
//! substituted into the text), an entry point, and the access of each storage
//! binding. Pipelines are created once per distinct kernel and reused: every
//! layer records its dispatches at model build time, never per step.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
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

/// Compiled pipelines and their bind group layouts, keyed by kernel.
#[derive(Default)]
pub struct PipelineCache {
    modules: Mutex<HashMap<(String, bool), wgpu::ShaderModule>>,
    layouts: Mutex<HashMap<Vec<Access>, wgpu::BindGroupLayout>>,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    /// The WGSL of every module a pipeline was created from, by kernel key
    /// (what `examples/dump_kernels.rs` writes out for a second compiler).
    sources: Mutex<BTreeMap<String, String>>,
}

impl PipelineCache {
    /// (key, WGSL source) of every module compiled so far, sorted by key.
    pub fn compiled_kernels(&self) -> Vec<(String, String)> {
        // a poisoned lock still holds a consistent map (inserts only)
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
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
    pub fn compiled_kernels(&self) -> Vec<(String, String)> {
        self.pipelines.compiled_kernels()
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
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: None,
                entries: &entries,
            });
        layouts.insert(access.to_vec(), layout.clone());
        Ok(layout)
    }

    /// The compiled pipeline for `kernel`, created on first use. Compilation
    /// and validation errors are returned, naming the kernel.
    pub fn pipeline(&self, kernel: &Kernel) -> Result<wgpu::ComputePipeline> {
        let key = (kernel.key.clone(), kernel.entry, kernel.access.clone());
        if let Some(p) = self
            .pipelines
            .pipelines
            .lock()
            .map_err(|_| poisoned("pipeline"))?
            .get(&key)
        {
            return Ok(p.clone());
        }
        let layout = self.bind_group_layout(&kernel.access)?;
        let context = format!("compiling {}::{}", kernel.key, kernel.entry);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = {
            let mut modules = self
                .pipelines
                .modules
                .lock()
                .map_err(|_| poisoned("module"))?;
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
                            self.device.create_shader_module_trusted(
                                desc,
                                wgpu::ShaderRuntimeChecks::unchecked(),
                            )
                        }
                    } else {
                        self.device.create_shader_module(desc)
                    }
                })
                .clone()
        };
        let pl = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: None,
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&context),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(kernel.entry),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(err) = pollster::block_on(scope.pop()) {
            if let Ok(mut m) = self.pipelines.modules.lock() {
                m.remove(&(kernel.key.clone(), kernel.trusted));
            }
            return Err(Error::Gpu {
                context,
                message: err.to_string(),
            });
        }
        self.pipelines
            .sources
            .lock()
            .map_err(|_| poisoned("sources"))?
            .entry(kernel.key.clone())
            .or_insert_with(|| kernel.source.to_string());
        self.pipelines
            .pipelines
            .lock()
            .map_err(|_| poisoned("pipeline"))?
            .insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
