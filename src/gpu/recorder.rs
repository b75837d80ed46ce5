//! The step recorder: a training step is an explicit list of dispatches,
//! recorded once (pipelines, bind groups and parameter blocks created then,
//! shapes checked then) and re-encoded cheaply every time it runs.
//!
//! wgpu cannot replay a compute command buffer, so [`Gpu::submit`] walks the
//! list again each time; that walk allocates nothing and hashes nothing.
//! Several steps can share one encoder and one submit: per-step values (the
//! step count, RNG offsets, the loss ring slot) live on the GPU in
//! [`crate::gpu::StepState`], advanced by a kernel, so no uniform is
//! overwritten between steps of the same submit.
//!
//! A step owns what it binds: every tensor a dispatch binds is kept (one
//! clone per buffer) as long as the step, so the engine's memory count
//! ([`Gpu::allocated_bytes`]) holds a step's scratch buffers while the step
//! can run, whatever its recorder remembered to keep. And it counts what
//! it records ([`Step::stats`]): dispatches, bind groups and bytes bound,
//! the figures a GPU's step time follows (each dispatch and bind group
//! costs the driver microseconds whatever its size).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use web_time::Instant;

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::pipeline::{Kernel, PendingPipeline};
use crate::gpu::tensor::Tensor;

/// One recorded dispatch. Its pipeline is created on the pipeline pool
/// while the rest of the step records; [`Step::ready`] waits for it.
#[derive(Debug)]
struct Dispatch {
    op: &'static str,
    /// The kernel's key ([`Kernel::key`]).
    kernel: Arc<str>,
    /// Its matrix-product FLOPs ([`Step::add_gemm_flops`]), 0 for others.
    flops: u64,
    pending: Arc<PendingPipeline>,
    pipeline: OnceLock<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
}

impl Dispatch {
    /// The pipeline; only after [`Step::ready`] succeeded.
    fn pipeline(&self) -> &wgpu::ComputePipeline {
        self.pipeline
            .get()
            .expect("Step::ready runs before a step is encoded")
    }
}

/// A recorded sequence of dispatches: one training step, or one op in a test.
#[derive(Debug, Default)]
pub struct Step {
    pub label: String,
    dispatches: Vec<Dispatch>,
    /// Every tensor a dispatch binds, and those given to [`Step::retain`],
    /// one clone per buffer: the buffers live (and are counted in the
    /// engine's memory) as long as the step.
    kept: Vec<Tensor>,
    kept_buffers: HashSet<wgpu::Buffer>,
    stats: StepStats,
    /// FLOPs given to [`Step::add_gemm_flops`] for the next dispatch.
    next_flops: u64,
}

/// What a recorded step costs to encode and bind ([`Step::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    /// Dispatches recorded.
    pub dispatches: usize,
    /// Bind groups created for them (today one per dispatch).
    pub bind_groups: usize,
    /// Sum over the dispatches of the bytes each binds: its parameter
    /// block and every storage binding ([`binding_bytes`]), a tensor bound
    /// by several dispatches counted each time.
    pub bytes_bound: u64,
    /// Floating-point operations of the matrix products recorded (2 per
    /// multiply-add of every GEMM dispatch: dense, conv and transposed
    /// conv, forward and backward), as the kernels execute them, padding
    /// taps included; element-wise work is not counted. 0 in files from
    /// before it was recorded.
    #[serde(default)]
    pub gemm_flops: u64,
}

impl std::ops::AddAssign for StepStats {
    fn add_assign(&mut self, o: StepStats) {
        self.dispatches += o.dispatches;
        self.bind_groups += o.bind_groups;
        self.bytes_bound += o.bytes_bound;
        self.gemm_flops += o.gemm_flops;
    }
}

impl std::fmt::Display for StepStats {
    /// `78 dispatches, 78 bind groups, 12.3 MiB bound (12898304 bytes)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} dispatches, {} bind groups, {:.1} MiB bound ({} bytes)",
            self.dispatches,
            self.bind_groups,
            self.bytes_bound as f64 / (1u64 << 20) as f64,
            self.bytes_bound
        )
    }
}

/// Bytes a storage binding of `t` covers: what [`StepStats::bytes_bound`]
/// counts for it (a view's range, not its whole buffer).
pub fn binding_bytes(t: &Tensor) -> u64 {
    t.bytes()
}

/// Time spent in one dispatch.
#[derive(Clone, Debug)]
pub struct DispatchTime {
    pub op: &'static str,
    /// The kernel's key: its shader and the parameters it was built with.
    pub kernel: Arc<str>,
    /// Matrix-product FLOPs the dispatch executes (0 for other kernels).
    pub gemm_flops: u64,
    pub seconds: f64,
    /// True when measured by GPU timestamps, false when by wall clock.
    pub gpu_timestamps: bool,
}

/// Bit pattern of an f32 parameter, for the `u32` parameter block.
pub fn f32_param(x: f32) -> u32 {
    x.to_bits()
}

/// Workgroup grid for `groups` workgroups: along x while it fits the
/// per-dimension limit, spilling into y. Kernels rebuild the linear index as
/// `wid.x + wid.y * nwg.x` and return early past the end.
pub fn grid(gpu: &Gpu, groups: u64) -> Result<[u32; 3]> {
    let max = gpu.limits.max_compute_workgroups_per_dimension as u64;
    if groups <= max {
        return Ok([groups.max(1) as u32, 1, 1]);
    }
    let y = groups.div_ceil(max);
    if y > max {
        return Err(Error::invalid(
            "grid",
            format!("{groups} workgroups exceed {max} x {max}"),
        ));
    }
    Ok([max as u32, y as u32, 1])
}

impl Step {
    pub fn new(label: &str) -> Step {
        Step {
            label: label.to_string(),
            ..Step::default()
        }
    }

    /// Keep `tensors` alive as long as this step. [`Step::dispatch`]
    /// already keeps every tensor it binds, so this is needed only for a
    /// tensor no dispatch binds.
    pub fn retain(&mut self, tensors: impl IntoIterator<Item = Tensor>) {
        for t in tensors {
            self.keep(&t);
        }
    }

    /// Keep a clone of `t` unless its buffer is already kept.
    fn keep(&mut self, t: &Tensor) {
        if self.kept_buffers.insert(t.buffer().clone()) {
            self.kept.push(t.clone());
        }
    }

    /// Dispatches, bind groups and bytes bound, over everything recorded.
    pub fn stats(&self) -> StepStats {
        self.stats
    }

    /// Record one dispatch of `kernel` over `groups` workgroups, with the
    /// scalar parameter block `params` (u32 words; f32 via [`f32_param`]) and
    /// the storage tensors bound in the kernel's binding order. The step
    /// keeps every bound tensor alive as long as itself.
    pub fn dispatch(
        &mut self,
        gpu: &Gpu,
        op: &'static str,
        kernel: &Kernel,
        params: &[u32],
        tensors: &[&Tensor],
        groups: [u32; 3],
    ) -> Result<()> {
        if tensors.len() != kernel.access.len() {
            return Err(Error::invalid(
                op,
                format!(
                    "kernel {}::{} binds {} tensors, {} given",
                    kernel.key,
                    kernel.entry,
                    kernel.access.len(),
                    tensors.len()
                ),
            ));
        }
        let max = gpu.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::invalid(
                op,
                format!("dispatch {groups:?} exceeds {max} workgroups per dimension"),
            ));
        }
        let pending = gpu.request_pipeline(kernel)?;
        let layout = gpu.bind_group_layout(&kernel.access)?;
        // Uniform blocks are 16-byte aligned in size.
        let mut words = params.to_vec();
        words.resize(params.len().div_ceil(4).max(1) * 4, 0);
        let uniform = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(op),
                contents: bytemuck::cast_slice(&words),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut bytes_bound = uniform.size();
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, t) in tensors.iter().enumerate() {
            if !t.bindable(gpu) {
                return Err(Error::invalid(
                    op,
                    format!(
                        "{} starts at byte {} of its buffer, not a multiple of the \
                         adapter's storage offset alignment {}",
                        t.label(),
                        t.offset(),
                        gpu.limits.min_storage_buffer_offset_alignment
                    ),
                ));
            }
            bytes_bound += binding_bytes(t);
            entries.push(wgpu::BindGroupEntry {
                binding: 1 + i as u32,
                resource: t.binding(),
            });
        }
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(op),
            layout: &layout,
            entries: &entries,
        });
        self.dispatches.push(Dispatch {
            op,
            kernel: kernel.key.as_str().into(),
            flops: std::mem::take(&mut self.next_flops),
            pending,
            pipeline: OnceLock::new(),
            bind_group,
            groups,
        });
        for t in tensors {
            self.keep(t);
        }
        self.stats += StepStats {
            dispatches: 1,
            bind_groups: 1,
            bytes_bound,
            gemm_flops: 0,
        };
        Ok(())
    }

    /// Count `flops` matrix-product operations in [`StepStats::gemm_flops`]
    /// and on the next dispatch recorded (the GEMM recorder calls this once
    /// per product, just before dispatching it).
    pub fn add_gemm_flops(&mut self, flops: u64) {
        self.stats.gemm_flops += flops;
        self.next_flops += flops;
    }

    /// Append all of `other`'s dispatches after this step's (with what it
    /// keeps and its counts).
    pub fn extend(&mut self, other: Step) {
        self.dispatches.extend(other.dispatches);
        for t in &other.kept {
            self.keep(t);
        }
        self.stats += other.stats;
    }

    /// Wait until every pipeline this step dispatches is created (they are
    /// built on the pipeline pool, side by side, while the step records);
    /// the first creation error names its kernel. Submitting a step does
    /// this first; calling it after recording reports a kernel that does
    /// not compile at build time, and measures the build.
    pub fn ready(&self) -> Result<()> {
        for d in &self.dispatches {
            if d.pipeline.get().is_none() {
                let p = d.pending.wait()?;
                let _ = d.pipeline.set(p);
            }
        }
        Ok(())
    }

    /// Number of recorded dispatches.
    pub fn len(&self) -> usize {
        self.dispatches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dispatches.is_empty()
    }

    /// Op names in recorded order.
    pub fn ops(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.dispatches.iter().map(|d| d.op)
    }

    /// Kernel keys ([`Kernel::key`]) in recorded order.
    pub fn kernels(&self) -> impl Iterator<Item = &str> + '_ {
        self.dispatches.iter().map(|d| &*d.kernel)
    }

    fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.dispatches {
            pass.set_pipeline(d.pipeline());
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        }
    }
}

impl Gpu {
    /// Encode `steps`, in order, into ONE encoder and ONE compute pass, and
    /// submit once. Does not wait (except, the first time, for the steps'
    /// pipelines: [`Step::ready`]).
    pub fn submit(&self, steps: &[&Step]) -> Result<wgpu::SubmissionIndex> {
        self.submit_then(steps, |_| {})
    }

    /// [`Gpu::submit`], with `after` encoding more commands (copies) into
    /// the same encoder after the compute pass: they run in the same
    /// submit, after the steps (how step state is read back without a
    /// submit of its own).
    pub fn submit_then(
        &self,
        steps: &[&Step],
        after: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<wgpu::SubmissionIndex> {
        for s in steps {
            s.ready()?;
        }
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("steps"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("steps"),
                timestamp_writes: None,
            });
            for s in steps {
                s.encode(&mut pass);
            }
        }
        after(&mut enc);
        Ok(self.queue.submit([enc.finish()]))
    }

    /// Submit `steps` in one submit and wait for them, reporting GPU errors.
    pub fn run(&self, steps: &[&Step]) -> Result<()> {
        self.submit(steps)?;
        let label = steps.first().map(|s| s.label.as_str()).unwrap_or("");
        self.sync(&format!("running step {label}"))
    }

    /// Run `step` once, timing each dispatch: by GPU timestamps when the
    /// device has `TIMESTAMP_QUERY`, else by wall clock around a submit and
    /// wait per dispatch (which then includes the submit round trip).
    pub fn profile(&self, step: &Step) -> Result<Vec<DispatchTime>> {
        step.ready()?;
        if self.features.contains(wgpu::Features::TIMESTAMP_QUERY) && !step.is_empty() {
            return self.profile_timestamps(step);
        }
        let mut out = Vec::with_capacity(step.len());
        for d in &step.dispatches {
            let single = Step {
                label: step.label.clone(),
                dispatches: vec![Dispatch {
                    op: d.op,
                    kernel: d.kernel.clone(),
                    flops: d.flops,
                    pending: d.pending.clone(),
                    pipeline: d.pipeline.clone(),
                    bind_group: d.bind_group.clone(),
                    groups: d.groups,
                }],
                ..Step::default()
            };
            let t0 = Instant::now();
            self.run(&[&single])?;
            out.push(DispatchTime {
                op: d.op,
                kernel: d.kernel.clone(),
                gemm_flops: d.flops,
                seconds: t0.elapsed().as_secs_f64(),
                gpu_timestamps: false,
            });
        }
        Ok(out)
    }

    fn profile_timestamps(&self, step: &Step) -> Result<Vec<DispatchTime>> {
        let n = step.len() as u32;
        let queries = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * n,
        });
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile resolve"),
            size: 16 * n as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile readback"),
            size: 16 * n as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("profile"),
            });
        for (i, d) in step.dispatches.iter().enumerate() {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(d.op),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &queries,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            pass.set_pipeline(d.pipeline());
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        }
        enc.resolve_query_set(&queries, 0..2 * n, &resolve, 0);
        enc.copy_buffer_to_buffer(&resolve, 0, &readback, 0, 16 * n as u64);
        self.queue.submit([enc.finish()]);
        readback.map_async(wgpu::MapMode::Read, .., |_| {});
        self.sync("profiling")?;
        let view = readback.get_mapped_range(..).map_err(|e| Error::Readback {
            label: "timestamps".into(),
            message: e.to_string(),
        })?;
        let ticks: Vec<u64> = bytemuck::cast_slice(&view).to_vec();
        drop(view);
        readback.unmap();
        let period = self.queue.get_timestamp_period() as f64;
        Ok(step
            .dispatches
            .iter()
            .enumerate()
            .map(|(i, d)| DispatchTime {
                op: d.op,
                kernel: d.kernel.clone(),
                gemm_flops: d.flops,
                seconds: ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period * 1e-9,
                gpu_timestamps: true,
            })
            .collect())
    }
}
