//! Every kernel the ops compile parses and validates with naga and translates
//! to SPIR-V (Vulkan), MSL (Metal) and HLSL (DX12). No adapter needed.

use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use vae_vs_gan::all_kernels;

/// What naga validates `k` with: subgroup operations for the kernels that
/// use them (the device opens with them where the adapter has them).
fn capabilities(k: &vae_vs_gan::gpu::Kernel) -> Capabilities {
    if k.subgroups {
        Capabilities::SUBGROUP
    } else {
        Capabilities::empty()
    }
}

#[test]
fn shaders_validate_and_translate_to_spirv_msl_hlsl() {
    let kernels = all_kernels();
    assert!(!kernels.is_empty());
    let mut seen = std::collections::BTreeSet::new();
    for k in &kernels {
        let what = format!("{}::{}", k.key, k.entry);
        let module = naga::front::wgsl::parse_str(&k.source).unwrap_or_else(|e| {
            panic!("{what}: WGSL parse error:\n{}", e.emit_to_string(&k.source))
        });
        assert!(
            module.entry_points.iter().any(|e| e.name == k.entry),
            "{what}: entry point missing"
        );
        if !seen.insert(k.key.clone()) {
            continue; // one module, several entry points: translate it once
        }
        let info = Validator::new(ValidationFlags::all(), capabilities(k))
            .validate(&module)
            .unwrap_or_else(|e| {
                panic!("{what}: validation error:\n{}", e.emit_to_string(&k.source))
            });
        if k.subgroups {
            // the flag is needed: without the capability naga refuses it
            assert!(
                Validator::new(ValidationFlags::all(), Capabilities::empty())
                    .validate(&module)
                    .is_err(),
                "{what}: marked as using subgroups but validates without them"
            );
        }

        spv::write_vec(&module, &info, &spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{what}: SPIR-V: {e}"));

        let mut msl_out = String::new();
        let mut w = msl::Writer::new(&mut msl_out);
        w.write(
            &module,
            &info,
            &msl::Options::default(),
            &msl::PipelineOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{what}: MSL: {e}"));

        let mut hlsl_out = String::new();
        let (hopts, hpipe) = (hlsl::Options::default(), hlsl::PipelineOptions::default());
        let mut w = hlsl::Writer::new(&mut hlsl_out, &hopts, &hpipe);
        w.write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{what}: HLSL: {e}"));
        assert!(!msl_out.is_empty() && !hlsl_out.is_empty());
    }
    eprintln!(
        "{} kernels in {} modules validated",
        kernels.len(),
        seen.len()
    );
}

/// WebGPU's default `maxComputeWorkgroupStorageSize`: what every adapter
/// (and Chrome's Tint) accepts. naga's validation does not check it.
const WORKGROUP_STORAGE_LIMIT: u32 = 16384;

/// No kernel's entry point uses more workgroup memory than WebGPU's
/// default limit (a 128x128 GEMM tile is exactly 16 KiB of operand tiles,
/// so any extra workgroup array on top of it is refused by Tint and by
/// adapters at that limit).
#[test]
fn kernels_fit_webgpu_workgroup_storage() {
    let mut worst = (0u32, String::new());
    for k in &all_kernels() {
        let what = format!("{}::{}", k.key, k.entry);
        let module = naga::front::wgsl::parse_str(&k.source).expect("parses (tested above)");
        let info = Validator::new(ValidationFlags::all(), capabilities(k))
            .validate(&module)
            .expect("validates (tested above)");
        let (index, _) = module
            .entry_points
            .iter()
            .enumerate()
            .find(|(_, e)| e.name == k.entry)
            .expect("entry point");
        let uses = info.get_entry_point(index);
        let bytes: u32 = module
            .global_variables
            .iter()
            .filter(|(h, g)| g.space == naga::AddressSpace::WorkGroup && !uses[*h].is_empty())
            .map(|(_, g)| module.types[g.ty].inner.size(module.to_ctx()))
            .sum();
        assert!(
            bytes <= WORKGROUP_STORAGE_LIMIT,
            "{what}: {bytes} bytes of workgroup storage, WebGPU allows {WORKGROUP_STORAGE_LIMIT}"
        );
        if bytes > worst.0 {
            worst = (bytes, what);
        }
    }
    eprintln!("most workgroup storage: {} bytes ({})", worst.0, worst.1);
}
