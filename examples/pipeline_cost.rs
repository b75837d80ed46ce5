//! What each WGSL module costs the driver to build: for every `.wgsl` file
//! given (or in a folder given, e.g. what `dump_kernels` writes), the
//! seconds and the process's memory growth to create its compute
//! pipeline(s) and dispatch each entry point once (one workgroup, every
//! parameter zero, 1 KiB buffers), which is where a driver that compiles
//! late (lavapipe) compiles. One line per module, slowest last in the
//! summary; `--json FILE` writes them all.
//!
//! `cargo run --release --example pipeline_cost -- target/kernels`
//! (`VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json` for
//! SwiftShader). `--off bounds,loop-bounding,int-div` leaves runtime
//! checks out of naga's SPIR-V (the engine keeps them all), to tell which
//! of them a driver's cost comes from.
//!
//! Resident memory is read from /proc/self/status (VmRSS before and after
//! each module, and VmHWM, the process's peak, after it): growth a module
//! leaves behind, and the peak it drove the process to. Run one module per
//! process to see each one's own peak.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use serde::Serialize;

/// A runtime check naga adds to an untrusted module's SPIR-V.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Check {
    /// Out-of-range indices clamped.
    Bounds,
    /// Every loop given an iteration counter that breaks it.
    LoopBounding,
    /// Integer `/` and `%` through helpers that guard zero and overflow.
    IntDiv,
}

/// The engine's checks (all of them) less `off`.
fn runtime_checks(off: &[Check]) -> wgpu::ShaderRuntimeChecks {
    let mut c = wgpu::ShaderRuntimeChecks::checked();
    c.bounds_checks = !off.contains(&Check::Bounds);
    c.force_loop_bounding = !off.contains(&Check::LoopBounding);
    c.int_div_checks = !off.contains(&Check::IntDiv);
    c
}

#[derive(Parser, Debug)]
#[command(about = "Seconds and memory to build and first dispatch each WGSL module's pipelines")]
struct Args {
    /// `.wgsl` files, or folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Runtime checks to leave out of the SPIR-V (default: none left out,
    /// as the engine builds its modules); repeat or comma-separate.
    #[arg(long, value_enum, value_delimiter = ',')]
    off: Vec<Check>,
    /// Also write every module's figures to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Cost {
    module: String,
    entries: usize,
    seconds: f64,
    rss_before_mib: f64,
    rss_after_mib: f64,
    peak_mib: f64,
}

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut files = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "wgsl"))
                .collect();
            v.sort();
            files.extend(v);
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            bail!("{}: no such file or folder", p.display());
        }
    }
    if files.is_empty() {
        bail!("no .wgsl files in {:?}", args.paths);
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&Default::default())).context("no adapter")?;
    let info = adapter.get_info();
    let features = adapter.features() & wgpu::Features::SUBGROUP;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("pipeline_cost"),
        required_features: features,
        ..Default::default()
    }))
    .context("request_device")?;
    eprintln!(
        "{} ({:?}, {}), checks left out {:?}: {} modules",
        info.name,
        info.backend,
        info.driver_info,
        args.off,
        files.len()
    );
    let mut costs = Vec::new();
    for f in &files {
        let c = cost(&device, &queue, f, &args.off)?;
        println!(
            "{:8.3} s  rss {:7.1} -> {:7.1} MiB  peak {:7.1} MiB  {}",
            c.seconds, c.rss_before_mib, c.rss_after_mib, c.peak_mib, c.module
        );
        costs.push(c);
    }
    let total: f64 = costs.iter().map(|c| c.seconds).sum();
    let peak = costs.iter().map(|c| c.peak_mib).fold(0.0, f64::max);
    costs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    eprintln!(
        "{} modules in {total:.1} s, peak resident {peak:.0} MiB; slowest:",
        costs.len()
    );
    for c in costs.iter().rev().take(5) {
        eprintln!("  {:.2} s  {}", c.seconds, c.module);
    }
    if let Some(j) = &args.json {
        std::fs::write(j, serde_json::to_string_pretty(&costs)?)
            .with_context(|| format!("writing {}", j.display()))?;
    }
    Ok(())
}

/// VmRSS and VmHWM of this process, in MiB.
fn memory() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The bindings an entry point uses: (binding, is uniform), group 0.
fn bindings(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    entry: usize,
) -> Vec<(u32, bool)> {
    let ep = info.get_entry_point(entry);
    let mut v: Vec<(u32, bool)> = module
        .global_variables
        .iter()
        .filter(|(h, _)| !ep[*h].is_empty())
        .filter_map(|(_, g)| {
            let b = g.binding.as_ref()?;
            Some((b.binding, g.space == naga::AddressSpace::Uniform))
        })
        .collect();
    v.sort();
    v
}

fn cost(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    path: &Path,
    off: &[Check],
) -> anyhow::Result<Cost> {
    let source = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let module = naga::front::wgsl::parse_str(&source)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.emit_to_string(&source)))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))?;
    let (before, _) = memory();
    let t = Instant::now();
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    // SAFETY: with checks off, the dispatch below reads and writes only
    // 1 KiB buffers with every parameter zero; the modules bound their
    // work by the parameters (zero rows, zero columns).
    let sm = unsafe {
        device.create_shader_module_trusted(
            wgpu::ShaderModuleDescriptor {
                label: Some("pipeline_cost"),
                source: wgpu::ShaderSource::Wgsl(source.as_str().into()),
            },
            runtime_checks(off),
        )
    };
    let buffer = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 1024,
            usage,
            mapped_at_creation: false,
        })
    };
    let mut enc = device.create_command_encoder(&Default::default());
    for (i, ep) in module.entry_points.iter().enumerate() {
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&ep.name),
            layout: None,
            module: &sm,
            entry_point: Some(&ep.name),
            compilation_options: Default::default(),
            cache: None,
        });
        let used = bindings(&module, &info, i);
        let buffers: Vec<wgpu::Buffer> = used
            .iter()
            .map(|&(_, uniform)| {
                buffer(if uniform {
                    wgpu::BufferUsages::UNIFORM
                } else {
                    wgpu::BufferUsages::STORAGE
                })
            })
            .collect();
        let entries: Vec<wgpu::BindGroupEntry> = used
            .iter()
            .zip(&buffers)
            .map(|(&(binding, _), b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            })
            .collect();
        let group = (!entries.is_empty()).then(|| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            })
        });
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        if let Some(g) = &group {
            pass.set_bind_group(0, g, &[]);
        }
        pass.dispatch_workgroups(1, 1, 1);
    }
    queue.submit([enc.finish()]);
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .context("poll")?;
    if let Some(e) = pollster::block_on(scope.pop()) {
        bail!("{}: {e}", path.display());
    }
    let seconds = t.elapsed().as_secs_f64();
    let (after, peak) = memory();
    Ok(Cost {
        module: path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        entries: module.entry_points.len(),
        seconds,
        rss_before_mib: before,
        rss_after_mib: after,
        peak_mib: peak,
    })
}
