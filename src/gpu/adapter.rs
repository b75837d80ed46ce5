//! Adapter discovery and selection: every adapter on the enabled backends,
//! ranked (discrete GPUs first, lavapipe before SwiftShader), or the one
//! `VAE_VS_GAN_ADAPTER` names.

use crate::error::{Error, Result};

/// Environment variable that picks an adapter by index (as listed by
/// `cargo run --example adapters`) or by a case-insensitive name substring.
pub const ADAPTER_ENV: &str = "VAE_VS_GAN_ADAPTER";

/// One adapter as enumerated, with the facts the `adapters` example prints.
pub struct AdapterEntry {
    pub adapter: wgpu::Adapter,
    pub info: wgpu::AdapterInfo,
}

/// Sort key: discrete > integrated > virtual > CPU; Vulkan/Metal/DX12 before
/// GL; among CPU drivers, the faster first: Mesa's lavapipe ("llvmpipe")
/// before Google's SwiftShader (the tiny comparison 13 s against 108 s on
/// 2 cores, docs/PERFORMANCE.md), then any other; last the name, so the
/// choice never depends on the order the loader lists drivers in.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8, u8, String) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    };
    let name = info.name.to_lowercase();
    let cpu_driver = if name.contains("llvmpipe") {
        0
    } else if name.contains("swiftshader") {
        1
    } else {
        2
    };
    (ty, backend, cpu_driver, name)
}

/// The backends `WGPU_BACKEND` enables (all when it is unset), each name
/// checked: a name wgpu does not know is an error listing the known ones,
/// not a silently empty set.
pub fn enabled_backends() -> Result<wgpu::Backends> {
    let Ok(list) = std::env::var("WGPU_BACKEND") else {
        return Ok(wgpu::Backends::all());
    };
    let mut b = wgpu::Backends::empty();
    for name in list.split(',').map(str::trim) {
        let one = wgpu::Backends::from_comma_list(name);
        if one.is_empty() {
            return Err(Error::invalid(
                "WGPU_BACKEND",
                format!(
                    "{list:?}: unknown backend {name:?}; use vulkan, metal, dx12 or gl \
                     (comma-separated), or unset it to try them all"
                ),
            ));
        }
        b |= one;
    }
    Ok(b)
}

/// Backend names as a user types them (`vulkan, gl`).
pub fn backend_names(b: wgpu::Backends) -> String {
    let names: Vec<&str> = [
        (wgpu::Backends::VULKAN, "vulkan"),
        (wgpu::Backends::METAL, "metal"),
        (wgpu::Backends::DX12, "dx12"),
        (wgpu::Backends::GL, "gl"),
        (wgpu::Backends::BROWSER_WEBGPU, "webgpu"),
    ]
    .iter()
    .filter(|(f, _)| b.contains(*f))
    .map(|&(_, n)| n)
    .collect();
    names.join(", ")
}

/// Mesa's implicit Vulkan layer `VK_LAYER_MESA_device_select` probes for
/// a Wayland display while the loader enumerates devices, and prints
/// "error: XDG_RUNTIME_DIR is invalid or not set in the environment." where
/// there is none (CI, containers, ssh): a new user reads that as a failure.
/// With neither `XDG_RUNTIME_DIR` nor `WAYLAND_DISPLAY` set no Wayland
/// session can exist, the layer has nothing to select by, and the engine
/// ranks adapters itself; so the layer is switched off there with its own
/// documented switch, `NODEVICE_SELECT=1`, unless the user set it. Only
/// natively: a browser has neither Mesa nor environment variables.
fn quiet_mesa_device_select() {
    if !cfg!(feature = "native") {
        return;
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let unset = |k: &str| std::env::var_os(k).is_none();
        if unset("XDG_RUNTIME_DIR") && unset("WAYLAND_DISPLAY") && unset("NODEVICE_SELECT") {
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    });
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    quiet_mesa_device_select();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    desc.flags = wgpu::InstanceFlags::from_build_config().with_env();
    wgpu::Instance::new(desc)
}

/// Every adapter on the enabled backends, in enumeration order: the index
/// `VAE_VS_GAN_ADAPTER` refers to. With `WGPU_BACKEND` set, exactly the
/// backends it names; unset, Vulkan, Metal and DX12 first, and GL only when
/// none of them has an adapter (probing GL opens EGL, which prints errors
/// on machines without a display).
pub fn list_adapters() -> Result<Vec<AdapterEntry>> {
    pollster::block_on(list_adapters_async())
}

/// [`list_adapters`] as a future, which a browser awaits (its WebGPU
/// lists the one adapter it offers).
pub async fn list_adapters_async() -> Result<Vec<AdapterEntry>> {
    let asked = std::env::var("WGPU_BACKEND").is_ok();
    let backends = enabled_backends()?;
    let mut found = enumerate(if asked {
        backends
    } else {
        wgpu::Backends::PRIMARY
    })
    .await;
    if found.is_empty() && !asked {
        found = enumerate(wgpu::Backends::GL).await;
    }
    Ok(found)
}

async fn enumerate(backends: wgpu::Backends) -> Vec<AdapterEntry> {
    let inst = instance(backends);
    inst.enumerate_adapters(backends)
        .await
        .into_iter()
        .map(|adapter| {
            let info = adapter.get_info();
            AdapterEntry { adapter, info }
        })
        .collect()
}

/// The adapter `VAE_VS_GAN_ADAPTER` names, or else the best-ranked one.
pub fn select_adapter(mut entries: Vec<AdapterEntry>) -> Result<AdapterEntry> {
    if entries.is_empty() {
        return Err(Error::NoAdapter {
            backends: backend_names(enabled_backends()?),
        });
    }
    if let Ok(wanted) = std::env::var(ADAPTER_ENV) {
        let wanted = wanted.trim().to_string();
        let found = match wanted.parse::<usize>() {
            Ok(i) if i < entries.len() => Some(i),
            Ok(_) => None,
            Err(_) => {
                let w = wanted.to_lowercase();
                entries
                    .iter()
                    .position(|e| e.info.name.to_lowercase().contains(&w))
            }
        };
        return match found {
            Some(i) => Ok(entries.swap_remove(i)),
            None => Err(Error::AdapterNotFound {
                wanted,
                available: entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| format!("[{i}] {} ({})", e.info.name, e.info.backend))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        };
    }
    let best = (0..entries.len())
        .min_by_key(|&i| rank(&entries[i].info))
        .expect("non-empty");
    Ok(entries.swap_remove(best))
}
