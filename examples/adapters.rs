//! List every adapter wgpu finds, with what matters for compute, and say
//! which one the engine would pick.
//!
//! `cargo run --release --example adapters`
//! Select another with `VAE_VS_GAN_ADAPTER=<index or name substring>`, and
//! narrow backends with `WGPU_BACKEND=vulkan|metal|dx12|gl`.

use vae_vs_gan::gpu::{list_adapters, select_adapter, KernelPolicy, ADAPTER_ENV, KERNELS_ENV};

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let policy = KernelPolicy::from_env()?;
    let entries = list_adapters()?;
    if entries.is_empty() {
        // The same error the engine gives, with how to get an adapter.
        select_adapter(entries)?;
        return Ok(());
    }
    for (i, e) in entries.iter().enumerate() {
        let info = &e.info;
        let l = e.adapter.limits();
        let f = e.adapter.features();
        println!("[{i}] {}", info.name);
        println!(
            "    backend {:?}, type {:?}, vendor 0x{:04x}, device 0x{:04x}",
            info.backend, info.device_type, info.vendor, info.device
        );
        println!("    driver {} ({})", info.driver, info.driver_info);
        println!(
            "    limits: storage binding {} MiB, buffer {} MiB, workgroup storage {} KiB, \
             invocations/workgroup {}, workgroup size {}x{}x{}, workgroups/dim {}, \
             storage buffers/stage {}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_size_x,
            l.max_compute_workgroup_size_y,
            l.max_compute_workgroup_size_z,
            l.max_compute_workgroups_per_dimension,
            l.max_storage_buffers_per_shader_stage,
        );
        let has = |x: wgpu::Features| if f.contains(x) { "yes" } else { "no" };
        println!(
            "    features: SHADER_F16 {}, SUBGROUP {}, TIMESTAMP_QUERY {}, \
             TIMESTAMP_QUERY_INSIDE_PASSES {}",
            has(wgpu::Features::SHADER_F16),
            has(wgpu::Features::SUBGROUP),
            has(wgpu::Features::TIMESTAMP_QUERY),
            has(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
        );
        let cpu = |p: KernelPolicy| {
            if p.cpu_kernels(info.device_type) {
                "cpu"
            } else {
                "gpu"
            }
        };
        let forced = match policy {
            KernelPolicy::Auto => String::new(),
            p => format!("; {KERNELS_ENV}={} makes it {}", p.name(), cpu(p)),
        };
        println!(
            "    kernels: auto picks the {} kernels{forced}",
            cpu(KernelPolicy::Auto)
        );
    }
    let chosen = select_adapter(list_adapters()?)?;
    let how = match std::env::var(ADAPTER_ENV) {
        Ok(v) => format!("{ADAPTER_ENV}={v:?}"),
        Err(_) => "best ranked: discrete > integrated > virtual > CPU; lavapipe > SwiftShader among CPU drivers".into(),
    };
    println!(
        "selected: {} ({:?}) [{how}]",
        chosen.info.name, chosen.info.backend
    );
    Ok(())
}
