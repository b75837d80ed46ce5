//! The WGSL of one GEMM variant at one tile: the template's sections glued
//! together with the tile constants, and the unrolled parts of the loop
//! generated here (naga bounds every WGSL loop, which stops drivers from
//! unrolling it).

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::gpu::{Access, Kernel};
use crate::ops::epilogue::{epilogue_kernel, EpiKind, EPI_PARAMS};
use crate::ops::gemm::policy::{Main, Tile, SUBGROUP_LANES};
use crate::shaders;

/// Which operand of a backward-weights GEMM is dy, whose column sums the
/// fused bias gradient computes (`shaders/gemm.wgsl`, section bias_grad):
/// B for conv and dense (dW = x^T dy), A for transposed conv (its weight
/// gradient is the adjoint conv's with the roles swapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DySide {
    A,
    B,
}

/// The template cut into its `//! section NAME` parts.
fn section(name: &str) -> &'static str {
    let src = shaders::GEMM.source;
    let marker = format!("//! section {name}\n");
    let start = src
        .find(&marker)
        .unwrap_or_else(|| panic!("gemm.wgsl has no section {name}"))
        + marker.len();
    let end = src[start..]
        .find("//! section ")
        .map_or(src.len(), |e| start + e);
    &src[start..end]
}

/// Build the kernel for variant `sections` (setup, A, B, C-row) at `tile`,
/// storing through the epilogue `epi`, and computing the bias gradient from
/// `bias_grad`'s operand in extra workgroups when given. Bindings: 1 A,
/// 2 B, 3 C, then the epilogue's.
pub fn gemm_kernel(
    sections: &[&str],
    epi: EpiKind,
    bias_grad: Option<DySide>,
    tile: Tile,
    main: Main,
) -> Kernel {
    let Tile { bm, bn, bk, tm, tn } = tile;
    let nt = tile.threads();
    let mut src = String::new();
    for (n, v) in [
        ("BM", bm),
        ("BN", bn),
        ("BK", bk),
        ("TM", tm),
        ("TN", tn),
        ("NT", nt),
    ] {
        let _ = writeln!(src, "const {n}: u32 = {v}u;");
    }
    if main == Main::Subgroup {
        let _ = writeln!(src, "const SG: u32 = {SUBGROUP_LANES}u;");
    }
    src.push_str(&section("common").replace("{{EPI_PARAMS}}", EPI_PARAMS));
    for s in sections {
        src.push_str(section(s));
    }
    src.push_str(&epi.wgsl(4));
    src.push_str(section("store"));
    let side = match bias_grad {
        Some(d) => {
            let operand = if d == DySide::A { "src_a" } else { "src_b" };
            src.push_str(&section("bias_grad").replace("BG_SRC", operand));
            "    {
        let lin = wid.x + wid.y * nwg.x;
                     let tiles = p.tiles_m * p.tiles_n * p.nsplit;
                     if (lin >= tiles) {
                         if (lin - tiles < (p.bias_cols + NT - 1u) / NT) { bias_grad_job(lin - tiles, t); }
                         return;
        }
    }"
        }
        None => "",
    };
    let majors = k_major(sections);
    // every main's names for its block's fields
    let block = section("block_lets").trim_end();
    let body = match main {
        Main::Tiled => section("main")
            .replace("{{SIDE}}", side)
            .replace("{{BLOCK}}", block)
            .replace("{{SETUP}}", &gen_setup(tile, majors))
            .replace("{{ACC}}", &gen_acc(tile))
            .replace("{{LOAD}}", &gen_load(tile, majors))
            .replace("{{INNER}}", &gen_inner(tile))
            .replace("{{STORE}}", &gen_store(tile, main)),
        Main::Direct => section("main_direct")
            .replace("{{SIDE}}", side)
            .replace("{{BLOCK}}", block)
            .replace("{{SETUP}}", &gen_setup_direct(tile))
            .replace("{{ACC}}", &gen_acc(tile))
            .replace("{{INNER}}", &gen_inner_direct(tile, bk))
            .replace(
                "{{INNER1}}",
                &if bk == 1 {
                    String::new()
                } else {
                    gen_inner_direct(tile, 1)
                },
            )
            .replace("{{STORE}}", &gen_store_two_pass(tile, main, epi)),
        Main::Subgroup => section("main_subgroup")
            .replace("{{SIDE}}", side)
            .replace("{{BLOCK}}", block)
            .replace("{{SETUP}}", &gen_setup_subgroup(tile))
            .replace("{{ACC}}", &gen_acc(tile))
            .replace("{{INNER}}", &gen_inner_subgroup(tile))
            .replace("{{STORE}}", &gen_store_two_pass(tile, main, epi)),
    };
    src.push_str(&body);
    let bg = match bias_grad {
        Some(d) => format!("+bias_grad_{d:?}"),
        None => String::new(),
    };
    let mut access = vec![Access::Read, Access::Read, Access::ReadWrite];
    access.extend(epi.access());
    Kernel {
        key: format!(
            "gemm[{}{}{bg}],{main:?},{bm}x{bn}x{bk},{tm}x{tn}",
            sections.join("+"),
            epi.key()
        ),
        source: Cow::Owned(src),
        entry: "gemm",
        access,
        trusted: false,
        subgroups: main == Main::Subgroup,
    }
}

/// How a thread's loads of one operand tile are laid out. `b` is the
/// tile's row count (BM for A, BN for B), `bk` its K depth.
/// - m-major: consecutive invocations take consecutive rows (m or n): for
///   operands contiguous along m/n. Each thread keeps its rows and loads
///   several k, calling the k part (`a_k`) per load.
/// - k-major: consecutive invocations take consecutive k: for operands
///   contiguous along k (im2col reads channel runs). Each thread keeps one
///   kk, calls the k part once per K step, and loads several rows.
struct LoadPlan {
    /// Tile-relative row expressions whose row info is computed once, with
    /// whether the row may fall past the tile (then its stores are skipped).
    rows: Vec<(String, bool)>,
    /// Per K step: (row slot, kk expression, needs `kk < BK` guard).
    loads: Vec<(usize, String, bool)>,
    k_major: bool,
}

fn load_plan(b: u32, bk: u32, nt: u32, k_major: bool) -> LoadPlan {
    if k_major && nt.is_multiple_of(bk) {
        // kk = t % bk; rows t / bk + i * (nt / bk)
        let rs = nt / bk;
        let nrows = b.div_ceil(rs);
        let guard = !b.is_multiple_of(rs);
        LoadPlan {
            rows: (0..nrows)
                .map(|i| (format!("t / {bk}u + {}u", i * rs), guard))
                .collect(),
            loads: (0..nrows as usize)
                .map(|i| (i, format!("t % {bk}u"), false))
                .collect(),
            k_major: true,
        }
    } else if nt.is_multiple_of(b) {
        // every thread keeps one row: t % b; kk = t / b + j * (nt / b)
        let ks = nt / b;
        let slots = bk.div_ceil(ks);
        LoadPlan {
            rows: vec![(format!("t % {b}u"), false)],
            loads: (0..slots)
                .map(|j| (0, format!("t / {b}u + {}u", j * ks), !bk.is_multiple_of(ks)))
                .collect(),
            k_major: false,
        }
    } else {
        // b = c * nt: rows t + i * nt, every kk
        let c = b / nt;
        LoadPlan {
            rows: (0..c)
                .map(|i| (format!("t + {}u", i * nt), false))
                .collect(),
            loads: (0..bk)
                .flat_map(|kk| (0..c as usize).map(move |i| (i, format!("{kk}u"), false)))
                .collect(),
            k_major: false,
        }
    }
}

/// Which operands are read k-major: those whose sections read along k
/// contiguously (row-major A, transposed B, the conv gathers over channels).
fn k_major(sections: &[&str]) -> (bool, bool) {
    let a = sections
        .iter()
        .any(|s| matches!(*s, "a_dense" | "a_conv_fwd" | "conv_dgrad"));
    let b = sections
        .iter()
        .any(|s| matches!(*s, "b_dense_t" | "conv_dgrad"));
    (a, b)
}

fn gen_setup(tile: Tile, majors: (bool, bool)) -> String {
    let nt = tile.threads();
    let mut s = String::new();
    for (i, (r, _)) in load_plan(tile.bm, tile.bk, nt, majors.0)
        .rows
        .iter()
        .enumerate()
    {
        let _ = writeln!(s, "    let ar{i} = {r};");
        let _ = writeln!(s, "    let ai{i} = a_row(m0 + ar{i});");
    }
    for (i, (r, _)) in load_plan(tile.bn, tile.bk, nt, majors.1)
        .rows
        .iter()
        .enumerate()
    {
        let _ = writeln!(s, "    let br{i} = {r};");
        let _ = writeln!(s, "    let bi{i} = b_col(n0 + br{i});");
    }
    s
}

fn gen_acc(tile: Tile) -> String {
    let mut s = String::new();
    for i in 0..tile.tm {
        for j in 0..tile.tn {
            let _ = writeln!(s, "    var c{i}_{j} = 0.0;");
        }
    }
    s
}

fn gen_load(tile: Tile, majors: (bool, bool)) -> String {
    let nt = tile.threads();
    let mut s = String::new();
    for (side, b, km) in [("a", tile.bm, majors.0), ("b", tile.bn, majors.1)] {
        let (arr, info, r, kf, f) = if side == "a" {
            ("As", "ai", "ar", "a_k", "load_a")
        } else {
            ("Bs", "bi", "br", "b_k", "load_b")
        };
        let plan = load_plan(b, tile.bk, nt, km);
        if plan.k_major {
            let kk = &plan.loads[0].1;
            let _ = writeln!(
                s,
                "        {{ let kk = {kk}; let k = k0 + kk; let q = {kf}(k); let kin = k < kend;"
            );
            for (slot, (_, guard)) in plan.rows.iter().enumerate() {
                let open = if *guard {
                    format!("if ({r}{slot} < {b}u) ")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "            {open}{{ {arr}[kk * {b}u + {r}{slot}] = select(0.0, {f}({info}{slot}, q), kin); }}"
                );
            }
            s.push_str("        }\n");
        } else {
            for (slot, kk, guard) in plan.loads {
                let open = if guard {
                    format!("if ({kk} < {}u) ", tile.bk)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "        {open}{{ let kk = {kk}; let k = k0 + kk; \
                     {arr}[kk * {b}u + {r}{slot}] = select(0.0, {f}({info}{slot}, {kf}(k)), k < kend); }}"
                );
            }
        }
    }
    s
}

fn gen_inner(tile: Tile) -> String {
    let Tile { bm, bn, bk, tm, tn } = tile;
    let mut s = String::new();
    for kk in 0..bk {
        s.push_str("        {\n");
        for i in 0..tm {
            let _ = writeln!(s, "            let a{i} = As[tr + {}u];", kk * bm + i);
        }
        for j in 0..tn {
            let _ = writeln!(s, "            let b{j} = Bs[tc + {}u];", kk * bn + j);
        }
        for i in 0..tm {
            for j in 0..tn {
                let _ = writeln!(s, "            c{i}_{j} = fma(a{i}, b{j}, c{i}_{j});");
            }
        }
        s.push_str("        }\n");
    }
    s
}

/// Offset of an invocation's `i`-th row (or column) from `tr` (`tc`):
/// consecutive in the tiled main, interleaved by `b / t` in the direct one.
fn lane_off(main: Main, i: u32, b: u32, t: u32) -> u32 {
    match main {
        Main::Tiled => i,
        Main::Direct | Main::Subgroup => i * (b / t),
    }
}

/// Row and column infos of the direct main, computed once per invocation.
fn gen_setup_direct(tile: Tile) -> String {
    let mut s = String::new();
    for i in 0..tile.tm {
        let o = lane_off(Main::Direct, i, tile.bm, tile.tm);
        let _ = writeln!(s, "    let ai{i} = a_row(m0 + tr + {o}u);");
    }
    for j in 0..tile.tn {
        let o = lane_off(Main::Direct, j, tile.bn, tile.tn);
        let _ = writeln!(s, "    let bi{j} = b_col(n0 + tc + {o}u);");
    }
    s
}

/// `unroll` consecutive k of the direct main: one a_k / b_k per k, TM + TN
/// loads from storage, TM * TN FMAs.
fn gen_inner_direct(tile: Tile, unroll: u32) -> String {
    let mut s = String::new();
    for u in 0..unroll {
        let _ = writeln!(
            s,
            "        {{ let kk = k + {u}u; let qa = a_k(kk); let qb = b_k(kk);"
        );
        for i in 0..tile.tm {
            let _ = writeln!(s, "            let a{i} = load_a(ai{i}, qa);");
        }
        for j in 0..tile.tn {
            let _ = writeln!(s, "            let b{j} = load_b(bi{j}, qb);");
        }
        for i in 0..tile.tm {
            for j in 0..tile.tn {
                let _ = writeln!(s, "            c{i}_{j} = fma(a{i}, b{j}, c{i}_{j});");
            }
        }
        s.push_str("        }\n");
    }
    s
}

/// Row infos of the subgroup main (as the direct main's) and the infos of
/// the columns this lane loads for its subgroup: TN / SG of them.
fn gen_setup_subgroup(tile: Tile) -> String {
    let mut s = String::new();
    for i in 0..tile.tm {
        let o = lane_off(Main::Subgroup, i, tile.bm, tile.tm);
        let _ = writeln!(s, "    let ai{i} = a_row(m0 + tr + {o}u);");
    }
    let cg = tile.bn / tile.tn;
    for q in 0..tile.tn / SUBGROUP_LANES {
        let _ = writeln!(
            s,
            "    let bi{q} = b_col(n0 + tc + ({}u + lane) * {cg}u);",
            q * SUBGROUP_LANES
        );
    }
    s
}

/// One K step (BK consecutive k) of the subgroup main: per k, TM loads of
/// A and TN / SG of B, zero past the range's end; then column by column
/// its broadcasts and TM FMAs per k. Column-major, so the few live values
/// are the step's A loads, one column's broadcasts and one accumulator: on
/// a CPU driver the TM x TN accumulators live in memory, and each is
/// loaded and stored once per BK k instead of once per k.
fn gen_inner_subgroup(tile: Tile) -> String {
    let mut s = String::new();
    for u in 0..tile.bk {
        let _ = writeln!(
            s,
            "        let in{u} = k + {u}u < kend; let qa{u} = a_k(k + {u}u); let qb{u} = b_k(k + {u}u);"
        );
        for i in 0..tile.tm {
            let _ = writeln!(
                s,
                "        let a{u}_{i} = select(0.0, load_a(ai{i}, qa{u}), in{u});"
            );
        }
        for q in 0..tile.tn / SUBGROUP_LANES {
            let _ = writeln!(
                s,
                "        let v{u}_{q} = select(0.0, load_b(bi{q}, qb{u}), in{u});"
            );
        }
    }
    for j in 0..tile.tn {
        for u in 0..tile.bk {
            let _ = writeln!(
                s,
                "        let b{u}_{j} = subgroupBroadcast(v{u}_{}, {}u);",
                j / SUBGROUP_LANES,
                j % SUBGROUP_LANES
            );
        }
        for i in 0..tile.tm {
            for u in 0..tile.bk {
                let _ = writeln!(s, "        c{i}_{j} = fma(a{u}_{i}, b{u}_{j}, c{i}_{j});");
            }
        }
    }
    s
}

fn gen_store(tile: Tile, main: Main) -> String {
    gen_store_with(tile, main, "store_c(row, n, ", ")")
}

/// The TM x TN stores of an invocation's outputs in range, each
/// `{open}c{i}_{j}{close};`.
fn gen_store_with(tile: Tile, main: Main, open: &str, close: &str) -> String {
    let mut s = String::new();
    for i in 0..tile.tm {
        let oi = lane_off(main, i, tile.bm, tile.tm);
        let _ = writeln!(
            s,
            "    {{ let m = m0 + tr + {oi}u; if (m < dm) {{ let row = c_row(split, m);"
        );
        for j in 0..tile.tn {
            let oj = lane_off(main, j, tile.bn, tile.tn);
            let _ = writeln!(
                s,
                "        {{ let n = n0 + tc + {oj}u; if (n < dn) {{ {open}c{i}_{j}{close}; }} }}"
            );
        }
        s.push_str("    } }\n");
    }
    s
}

/// The store of the direct and subgroup mains. With an epilogue, in two
/// passes: the raw accumulators first (TM x TN unrolled stores), then one
/// loop over them that applies the epilogue in place, so its code appears
/// once instead of TM x TN times. Inlined 256 times, LLVM on lavapipe took
/// 3.9 s to compile a 4 x 64 kernel with bias and LeakyReLU, 19.7 s with
/// dropout, against 1.2 s with no epilogue; SwiftShader 13-20 s and 1 GiB
/// for the direct main's 8 x 16 with dropout. The second pass costs one
/// load and one store per output.
fn gen_store_two_pass(tile: Tile, main: Main, epi: EpiKind) -> String {
    if epi == EpiKind::default() {
        return gen_store(tile, main);
    }
    let mut s = gen_store_with(tile, main, "dst[row + n] = ", "");
    s.push_str(
        "    for (var i = 0u; i < TM; i = i + 1u) {
        let m = m0 + tr + i * (BM / TM);
        if (m < dm) {
            let row = c_row(split, m);
            for (var j = 0u; j < TN; j = j + 1u) {
                let n = n0 + tc + j * (BN / TN);
                if (n < dn) { store_c(row, n, dst[row + n]); }
            }
        }
    }
",
    );
    s
}

/// The split-K reduction ending in `epi`.
pub(crate) fn reduce_kernel(epi: EpiKind) -> Kernel {
    epilogue_kernel(
        shaders::SPLITS,
        "reduce_splits",
        &[Access::Read, Access::ReadWrite],
        epi,
    )
}
