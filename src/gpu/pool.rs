//! The pipeline pool: the threads that create pipelines off the recording
//! thread (one per core, with the native feature), and lavapipe's compile
//! warmer, which spreads that driver's compiles over them
//! ([`crate::gpu::pipeline`] says why).

use std::sync::mpsc;
#[cfg(feature = "native")]
use std::sync::{Arc, Mutex};

use crate::gpu::pipeline::{bind_group_layout, create, Kernel, Shared, ValidationScope};

/// A job for a pool thread, given that thread's [`Warmer`] device.
#[cfg(feature = "native")]
pub(super) type Job = Box<dyn FnOnce(&mut Worker) + Send>;
/// A job run on its caller (without the native feature there is no pool:
/// a browser's WebGPU objects stay on the thread that made them).
#[cfg(not(feature = "native"))]
pub(super) type Job = Box<dyn FnOnce(&mut Worker)>;

/// What one pool thread keeps between jobs.
#[derive(Default)]
pub(super) struct Worker {
    /// The thread's own lavapipe device, opened on its first warm-up.
    warm: Option<(wgpu::Device, wgpu::Queue)>,
}

/// Compiles on lavapipe spread over the pool. Lavapipe compiles a compute
/// pipeline at its first dispatch, on the queue's one thread, so a model's
/// 30-60 kernels compile one after another whatever creates them (the
/// VAE's train step: 11.5 s of a 2-core machine's 16 s cold start). A
/// dispatch on another device of the same adapter compiles the same
/// shader on that device's thread and puts it in Mesa's shader cache; the
/// engine's device then loads it from there at its first dispatch. Only
/// where Mesa's cache is on (`MESA_SHADER_CACHE_DISABLE` unset): without
/// it every shader would compile twice.
#[derive(Clone)]
pub(super) struct Warmer {
    adapter: wgpu::Adapter,
    /// The engine device's shader features (subgroups), which the warm-up
    /// devices need too to create the same pipelines.
    features: wgpu::Features,
}

impl Warmer {
    pub(super) fn for_adapter(
        adapter: &wgpu::Adapter,
        info: &wgpu::AdapterInfo,
        features: wgpu::Features,
    ) -> Option<Warmer> {
        let off = std::env::var("MESA_SHADER_CACHE_DISABLE")
            .is_ok_and(|v| matches!(v.to_lowercase().as_str(), "1" | "true" | "yes"));
        (info.device_type == wgpu::DeviceType::Cpu
            && info.name.contains("llvmpipe")
            && info.backend == wgpu::Backend::Vulkan
            && !off)
            .then(|| Warmer {
                adapter: adapter.clone(),
                features: features & wgpu::Features::SUBGROUP,
            })
    }

    /// Dispatch `kernel` once on `worker`'s device: one workgroup, every
    /// parameter zero, buffers of 1 KiB (each kernel bounds its work by
    /// the parameters, and untrusted modules bound every access). Any
    /// failure only means the engine's device compiles it itself.
    pub(super) fn warm(&self, worker: &mut Worker, kernel: &Kernel) {
        if kernel.trusted {
            return; // no bounds checks: never run it on made-up buffers
        }
        if worker.warm.is_none() {
            let desc = wgpu::DeviceDescriptor {
                label: Some("vae-vs-gan compile warmer"),
                required_features: self.features,
                ..Default::default()
            };
            worker.warm = pollster::block_on(self.adapter.request_device(&desc)).ok();
        }
        let Some((device, queue)) = &worker.warm else {
            return;
        };
        let scope = ValidationScope::push(device);
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 1024,
                usage,
                mapped_at_creation: false,
            })
        };
        let uniform = buffer(wgpu::BufferUsages::UNIFORM);
        let storage: Vec<wgpu::Buffer> = kernel
            .access
            .iter()
            .map(|_| buffer(wgpu::BufferUsages::STORAGE))
            .collect();
        let layout = bind_group_layout(device, &kernel.access);
        let shared = Shared::default();
        let Ok(pipeline) = create(device, &shared, None, kernel, &layout) else {
            let _ = scope.pop();
            return;
        };
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in storage.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: 1 + i as u32,
                resource: b.as_entire_binding(),
            });
        }
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        queue.submit([enc.finish()]);
        let _ = device.poll(wgpu::PollType::wait_indefinitely());
        let _ = scope.pop();
    }
}

/// The pool's queue (`None` once closed) and its threads.
pub(super) struct Pool {
    pub(super) tx: Option<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    /// One thread per core (at most 16), with the native feature. Where no
    /// thread starts at all (or without the feature), the queue has no
    /// receiver and every job runs on its caller.
    pub(super) fn start() -> Pool {
        let (tx, rx) = mpsc::channel::<Job>();
        #[cfg(feature = "native")]
        let threads = Pool::threads(rx);
        #[cfg(not(feature = "native"))]
        let threads = {
            drop(rx);
            Vec::new()
        };
        Pool {
            tx: Some(tx),
            threads,
        }
    }

    #[cfg(feature = "native")]
    fn threads(rx: mpsc::Receiver<Job>) -> Vec<std::thread::JoinHandle<()>> {
        let rx = Arc::new(Mutex::new(rx));
        let n = std::thread::available_parallelism().map_or(2, |n| n.get().min(16));
        (0..n)
            .map_while(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("pipelines-{i}"))
                    .spawn(move || {
                        let mut worker = Worker::default();
                        loop {
                            let next = rx.lock().map(|r| r.recv());
                            match next {
                                Ok(Ok(job)) => job(&mut worker),
                                _ => return,
                            }
                        }
                    })
                    .ok()
            })
            .collect()
    }
}

/// Closing the queue ends each thread once the jobs already queued are
/// done (a channel delivers what was sent before it closed), and joining
/// them destroys their warm-up devices before the process exits: a driver
/// thread still compiling, or a device still open, while the C runtime
/// tears down the driver's libraries (LLVM's, for lavapipe) can crash the
/// process after it has done its work.
impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
