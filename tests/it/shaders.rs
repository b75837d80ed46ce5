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

/// Branches (`if` and `switch`, and what naga makes of `&&` and `||`)
/// in `block`, with each call's body counted where it is called, as a
/// driver that inlines sees it.
fn branches(module: &naga::Module, block: &naga::Block) -> usize {
    use naga::Statement as S;
    block
        .iter()
        .map(|st| match st {
            S::Block(b) => branches(module, b),
            S::If { accept, reject, .. } => 1 + branches(module, accept) + branches(module, reject),
            S::Switch { cases, .. } => {
                1 + cases
                    .iter()
                    .map(|c| branches(module, &c.body))
                    .sum::<usize>()
            }
            S::Loop {
                body, continuing, ..
            } => branches(module, body) + branches(module, continuing),
            S::Call { function, .. } => branches(module, &module.functions[*function].body),
            _ => 0,
        })
        .sum()
}

/// The most branches any one loop of `block` holds (nested loops' own
/// branches included, calls expanded).
fn worst_loop(module: &naga::Module, block: &naga::Block) -> usize {
    use naga::Statement as S;
    block
        .iter()
        .map(|st| match st {
            S::Block(b) => worst_loop(module, b),
            S::If { accept, reject, .. } => {
                worst_loop(module, accept).max(worst_loop(module, reject))
            }
            S::Switch { cases, .. } => cases
                .iter()
                .map(|c| worst_loop(module, &c.body))
                .max()
                .unwrap_or(0),
            S::Loop {
                body, continuing, ..
            } => (branches(module, body) + branches(module, continuing))
                .max(worst_loop(module, body)),
            S::Call { function, .. } => worst_loop(module, &module.functions[*function].body),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Most branches one loop of a kernel may hold (its exit test included).
/// SwiftShader's compiler takes time and memory exponential in the
/// branches of a loop body (measured on the conv GEMM's direct main, one
/// branch per load: 17 branches 0.1 s, 19 0.3 s, 25 8 s, 32 past 8 GiB;
/// docs/PERFORMANCE.md), so a kernel whose unrolled loop body branches per
/// load or per accumulator cannot build there. 8 leaves the kernels'
/// own few (a loop's exit test, a partial tile's guard, a store's range
/// test) and refuses any per-load or per-output pattern.
const MAX_LOOP_BRANCHES: usize = 8;

/// No loop of any kernel holds more than [`MAX_LOOP_BRANCHES`] branches
/// (docs/ARCHITECTURE.md, "Kernel rules"): loads are guarded by `select`,
/// never by `if`.
#[test]
fn kernel_loops_hold_few_branches() {
    let mut worst = (0usize, String::new());
    let mut bad = Vec::new();
    for k in &all_kernels() {
        let module = naga::front::wgsl::parse_str(&k.source).expect("parses (tested above)");
        let ep = module
            .entry_points
            .iter()
            .find(|e| e.name == k.entry)
            .expect("entry point");
        let n = worst_loop(&module, &ep.function.body);
        let what = format!("{}::{}", k.key, k.entry);
        if n > MAX_LOOP_BRANCHES {
            bad.push(format!("{what}: {n}"));
        }
        if n > worst.0 {
            worst = (n, what);
        }
    }
    eprintln!("most branches in one loop: {} ({})", worst.0, worst.1);
    assert!(
        bad.is_empty(),
        "loops with more than {MAX_LOOP_BRANCHES} branches (guard loads with select, combine \
         bools with & and |):\n  {}",
        bad.join("\n  ")
    );
}

/// No kernel uses WGSL's short-circuit `&&` or `||` (docs/ARCHITECTURE.md,
/// "Kernel rules"): naga turns each into a branch, and a loop whose body
/// inlines a few of them (the conv GEMMs' `load_a`, 16 per k step) took
/// SwiftShader's compiler exponential time and memory (over 12 GB for one
/// module). The bool operators `&` and `|` evaluate both sides and stay
/// branch-free. Comments are not code: they are left out of the scan.
#[test]
fn kernels_use_no_short_circuit_operators() {
    let mut bad = Vec::new();
    for k in &all_kernels() {
        for (i, line) in k.source.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("&&") || code.contains("||") {
                bad.push(format!("{} line {}: {}", k.key, i + 1, line.trim()));
            }
        }
    }
    bad.dedup();
    assert!(
        bad.is_empty(),
        "short-circuit operators (write `&` / `|` on parenthesised bools):\n  {}",
        bad.join("\n  ")
    );
}
