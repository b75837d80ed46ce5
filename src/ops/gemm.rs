//! The one register-tiled GEMM template behind dense, conv2d and transposed
//! conv2d, forward and backward.
//!
//! `shaders/gemm.wgsl` holds the tiled loop (`main`) once, and small
//! sections of index functions: where A(m, k) and B(k, n) are read from and
//! where C(m, n) goes. A variant is a list of sections; [`gemm_kernel`]
//! glues them together with the tile constants and generates the unrolled
//! parts of the loop here in Rust (naga bounds every WGSL loop, which stops
//! drivers from unrolling it: DESIGN.md measured up to 2.5x lost).
//!
//! Two main loops share the sections ([`Main`]): the register-tiled one
//! (operands staged through workgroup memory, barriers) for wide outputs on
//! GPUs, and a barrier-free direct one (each invocation reads its operands
//! from storage) for outputs a few columns wide or rows tall, and for every
//! shape on CPU adapters, where workgroup memory only adds loads
//! (docs/PERFORMANCE.md).
//!
//! Small GEMMs (few output tiles, long K) are split along K into `nsplit`
//! partial outputs that a second kernel sums in a fixed order: more
//! workgroups, no float atomics, the same bits every run.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::gpu::{grid, Access, Gpu, Kernel, Step, Tensor};
use crate::shaders;

/// Register/workgroup tile of the GEMM: a workgroup computes a `bm x bn`
/// block of C, each invocation a `tm x tn` block in registers, stepping K by
/// `bk` through workgroup memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tile {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

impl Tile {
    /// 128x128 block, 8x8 per invocation, 256 invocations, 16 KiB of tiles.
    pub const T128X128: Tile = Tile::new(128, 128, 16, 8, 8);
    /// 128x64 block, 8x4 per invocation, 256 invocations.
    pub const T128X64: Tile = Tile::new(128, 64, 16, 8, 4);
    /// 256x64 block, 8x8 per invocation, BK 8: tall outputs 33..=64 wide.
    pub const T256X64: Tile = Tile::new(256, 64, 8, 8, 8);
    /// 64x64 block, 4x4 per invocation, 256 invocations.
    pub const T64X64: Tile = Tile::new(64, 64, 16, 4, 4);
    /// 128x32 block, 4x4 per invocation, 256 invocations: narrow outputs.
    pub const T128X32: Tile = Tile::new(128, 32, 16, 4, 4);
    /// 256x4 block, 4x1 per invocation: one or a few output columns.
    pub const T256X4: Tile = Tile::new(256, 4, 8, 4, 1);

    pub const fn new(bm: u32, bn: u32, bk: u32, tm: u32, tn: u32) -> Tile {
        Tile { bm, bn, bk, tm, tn }
    }

    /// Invocations per workgroup.
    pub fn threads(&self) -> u32 {
        (self.bm / self.tm) * (self.bn / self.tn)
    }

    /// Refuse tiles the template cannot build or the WebGPU limits forbid.
    /// The direct main has no workgroup memory; its `bk` (the K unroll) is
    /// at most 16 to bound the generated code.
    pub fn check(&self, main: Main) -> Result<()> {
        let Tile { bm, bn, bk, tm, tn } = *self;
        let nt = if tm > 0 && tn > 0 { self.threads() } else { 0 };
        let common =
            tm > 0 && tn > 0 && bk > 0 && bm % tm == 0 && bn % tn == 0 && (1..=256).contains(&nt);
        let ok = match main {
            Main::Tiled => {
                common
                    && (nt % bm == 0 || bm % nt == 0)
                    && (nt % bn == 0 || bn % nt == 0)
                    && (bm + bn) * bk * 4 <= 16384
            }
            Main::Direct => common && bk <= 16,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "gemm",
                format!(
                    "tile {self:?} unusable with the {main:?} main: need tm | bm, tn | bn, \
                     1..=256 invocations; tiled: invocations dividing or divided by bm and bn, \
                     (bm + bn) * bk * 4 <= 16 KiB; direct: bk <= 16"
                ),
            ))
        }
    }

    /// Default tile of the direct main for an `m x n` output, 4-deep K
    /// unroll. On lavapipe every load in a loop costs a per-lane scalar
    /// loop while an FMA is one vector op, so the tile maximises FMAs per
    /// load, TM * TN / (TM + TN), short of spilling (16 x 16 was slower
    /// than 16 x 8). Narrow N (<= 8): all columns and 16 rows per
    /// invocation, up to 64 row lanes but no more than M needs (lavapipe
    /// pays for idle invocations: 128 x 6272 -> 1 with 64 lanes of which 8
    /// had rows ran 0.27 GFLOP/s, with 8 lanes 1.1). Few rows (M <= 64): all rows in one or two
    /// row lanes, 8 columns each (M = 25: 25 x 8 per invocation 4.8
    /// GFLOP/s, 7 x 4 3.9). Otherwise 8 x 16 per invocation, 16 row lanes
    /// and 4 or 8 column lanes (columns are the cheaper loads: the weight
    /// or dy side, without the im2col bounds tests; 14x14 backward weights
    /// 5.2 GFLOP/s vs 4.4 for 16 x 8).
    pub fn direct_auto(m: usize, n: usize) -> Tile {
        if n <= 8 {
            let bn = (n.max(1).next_power_of_two()) as u32;
            let lanes = m.div_ceil(16).clamp(1, 64) as u32;
            Tile::new(16 * lanes, bn, 4, 16, bn)
        } else if n <= 32 && m > 64 {
            // all columns per invocation, ~200 accumulators (the col2im
            // GEMM of convT 14->28 64->1, N = 25: 8 x 25 6.4 GFLOP/s wall,
            // 8 x 16 in 2 column lanes 5.7, 4 x 25 5.1, default 8 x 16 in
            // 4 lanes 3.8)
            let tm = (200 / n as u32).clamp(1, 16);
            Tile::new(16 * tm, n as u32, 4, tm, n as u32)
        } else if m <= 64 {
            let rs = m.max(1).div_ceil(32);
            let tm = m.max(1).div_ceil(rs);
            Tile::new((rs * tm) as u32, 64, 4, tm as u32, 8)
        } else {
            Tile::new(128, if n > 64 { 128 } else { 64 }, 4, 8, 16)
        }
    }

    /// Default tile for an `m x n` output: as wide as N needs, no wider.
    /// (On lavapipe, 14x14 64->128 stride-2 backward data: 256x64 3.97
    /// GFLOP/s vs 128x64 3.08; see docs/PERFORMANCE.md.)
    pub fn auto(m: usize, n: usize) -> Tile {
        if n > 64 {
            Tile::T128X128
        } else if n > 32 && m >= 4096 {
            Tile::T256X64
        } else if n > 32 {
            Tile::T128X64
        } else if n > 4 {
            Tile::T128X32
        } else {
            Tile::T256X4
        }
    }
}

/// Main loop, tile and split-K choice for one GEMM. `Default` picks all
/// three by shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GemmConfig {
    /// `None`: [`Main::auto`].
    pub main: Option<Main>,
    /// `None`: [`Tile::auto`] (tiled) or [`Tile::direct_auto`] (direct).
    pub tile: Option<Tile>,
    /// Conv backward data only: `Some(true)` GEMM + col2im, `Some(false)`
    /// by stride phases, `None`: col2im when Cin <= 8 (see
    /// [`crate::ops::conv2d::record_backward_data`]).
    pub col2im: Option<bool>,
    /// `None`: split K until the dispatch has about [`TARGET_WORKGROUPS`].
    pub splits: Option<u32>,
}

/// Workgroups a dispatch should have before split-K stops adding more.
pub const TARGET_WORKGROUPS: usize = 48;

/// Intermediate buffers a recorded op owns (split-K partials). Keep it as
/// long as the step it was recorded into: it holds their memory accounting
/// (the step's bind groups keep the buffers themselves alive).
#[derive(Debug, Default)]
#[must_use = "keep the scratch alive as long as the step that uses it"]
pub struct Scratch {
    pub tensors: Vec<Tensor>,
}

impl Scratch {
    pub fn bytes(&self) -> u64 {
        self.tensors.iter().map(|t| 4 * t.numel() as u64).sum()
    }
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

/// Which main loop a GEMM kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Main {
    /// Register tiles fed through workgroup memory (`main`): wide outputs.
    Tiled,
    /// No workgroup memory, no barriers (`main_direct`): each invocation
    /// reads its operands from storage; for outputs a few columns wide or
    /// a few rows tall. The tile's `bk` is the K unroll.
    Direct,
}

impl Main {
    /// The default for an `m x n` output on a CPU (`cpu`) or GPU adapter.
    /// Direct on a CPU driver (lavapipe): there every load from storage or
    /// workgroup memory inside a loop is a per-lane scalar loop and a
    /// barrier a coroutine switch per 8 lanes, so staging operands through
    /// workgroup memory only adds loads (docs/PERFORMANCE.md: 2.7-3.5x).
    /// On a GPU, direct when N <= 8 (a K step of the tiled loop would hold
    /// a handful of FMAs per invocation between two barriers) or M <= 64
    /// (most of a tiled block would be padding); tiled otherwise.
    pub fn auto(cpu: bool, m: usize, n: usize) -> Main {
        if cpu || n <= 8 || m <= 64 {
            Main::Direct
        } else {
            Main::Tiled
        }
    }
}

/// Build the kernel for variant `sections` (setup, A, B, C-row, store) at
/// `tile`. `access` lists the storage bindings 1.. of the variant.
pub fn gemm_kernel(sections: &[&str], access: &[Access], tile: Tile, main: Main) -> Kernel {
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
    src.push_str(section("common"));
    for s in sections {
        src.push_str(section(s));
    }
    let majors = k_major(sections);
    let body = match main {
        Main::Tiled => section("main")
            .replace("{{SETUP}}", &gen_setup(tile, majors))
            .replace("{{ACC}}", &gen_acc(tile))
            .replace("{{LOAD}}", &gen_load(tile, majors))
            .replace("{{INNER}}", &gen_inner(tile))
            .replace("{{STORE}}", &gen_store(tile, main)),
        Main::Direct => section("main_direct")
            .replace("{{SETUP}}", &gen_setup_direct(tile))
            .replace("{{ACC}}", &gen_acc(tile))
            .replace("{{INNER}}", &gen_inner_direct(tile, bk))
            .replace("{{INNER1}}", &gen_inner_direct(tile, 1))
            .replace("{{STORE}}", &gen_store(tile, main)),
    };
    src.push_str(&body);
    Kernel {
        key: format!(
            "gemm[{}],{main:?},{bm}x{bn}x{bk},{tm}x{tn}",
            sections.join("+")
        ),
        source: Cow::Owned(src),
        entry: "gemm",
        access: access.to_vec(),
        trusted: false,
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
                    "            {open}{{ var v = 0.0; if (kin) {{ v = {f}({info}{slot}, q); }} \
                     {arr}[kk * {b}u + {r}{slot}] = v; }}"
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
                    "        {open}{{ let kk = {kk}; let k = k0 + kk; var v = 0.0; \
                     if (k < kend) {{ v = {f}({info}{slot}, {kf}(k)); }} {arr}[kk * {b}u + {r}{slot}] = v; }}"
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
        Main::Direct => i * (b / t),
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

fn gen_store(tile: Tile, main: Main) -> String {
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
                "        {{ let n = n0 + tc + {oj}u; if (n < dn) {{ store_c(row, n, c{i}_{j}); }} }}"
            );
        }
        s.push_str("    } }\n");
    }
    s
}

/// Geometry words of the parameter block beyond the GEMM sizes (zero for a
/// plain GEMM): batch, h, w, cin, oh, ow, cout, kh, kw, stride, pad_y, pad_x.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Geo {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub oh: usize,
    pub ow: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad_y: usize,
    pub pad_x: usize,
}

/// One GEMM to record: its variant (setup/A/B/C-row sections, without the
/// store), sizes (the largest over the `slices` stride phases), operands.
pub(crate) struct GemmCall<'a> {
    pub op: &'static str,
    pub sections: &'static [&'static str],
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub slices: u32,
    pub geo: Geo,
    pub a: &'a Tensor,
    pub b: &'a Tensor,
    pub out: &'a Tensor,
    pub bias: Option<&'a Tensor>,
}

fn u(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(op, format!("size {v} exceeds u32")))
}

/// The kernel a call compiles to (for the naga test: every variant).
pub(crate) fn call_kernel(sections: &[&str], bias: bool, tile: Tile, main: Main) -> Kernel {
    let mut all: Vec<&str> = sections.to_vec();
    let mut access = vec![Access::Read, Access::Read, Access::ReadWrite];
    if bias {
        all.push("store_bias");
        access.push(Access::Read);
    } else {
        all.push("store_plain");
    }
    gemm_kernel(&all, &access, tile, main)
}

/// Record one GEMM (and its split-K reduction). Shapes are the caller's to
/// check; this checks only the tile and the 32-bit index range.
pub(crate) fn record(
    gpu: &Gpu,
    step: &mut Step,
    call: &GemmCall,
    cfg: &GemmConfig,
) -> Result<Scratch> {
    let op = call.op;
    let main = cfg
        .main
        .unwrap_or_else(|| Main::auto(gpu.is_cpu(), call.m, call.n));
    let tile = cfg.tile.unwrap_or_else(|| match main {
        Main::Tiled => Tile::auto(call.m, call.n),
        Main::Direct => Tile::direct_auto(call.m, call.n),
    });
    tile.check(main)?;
    let (bm, bn, bk) = (tile.bm as usize, tile.bn as usize, tile.bk as usize);
    let tiles_m = call.m.div_ceil(bm).max(1);
    let tiles_n = call.n.div_ceil(bn).max(1);
    let tiles = tiles_m * tiles_n * call.slices as usize;
    let nsplit = match cfg.splits {
        Some(s) => s.max(1) as usize,
        None if tiles < TARGET_WORKGROUPS => TARGET_WORKGROUPS
            .div_ceil(tiles)
            .min(call.k / (4 * bk))
            .max(1),
        None => 1,
    };
    // K per split, a multiple of BK; then drop empty splits
    let ksplit = call.k.div_ceil(nsplit).div_ceil(bk).max(1) * bk;
    let nsplit = call.k.div_ceil(ksplit).max(1);
    if call.k >= 1 << 24 {
        // the kernels split k with an f32 division, exact below 2^24
        return Err(Error::invalid(
            op,
            format!("reduction length K = {} must be below 2^24", call.k),
        ));
    }
    let len = call.out.numel();
    // every index the kernels form must fit u32
    u(op, len * nsplit)?;
    u(op, call.a.numel())?;
    u(op, call.b.numel())?;
    let g = &call.geo;
    let params_for = |split_stride: usize| -> Result<Vec<u32>> {
        [
            call.m,
            call.n,
            call.k,
            ksplit,
            tiles_m,
            tiles_n,
            nsplit,
            g.batch,
            g.h,
            g.w,
            g.cin,
            g.oh,
            g.ow,
            g.cout,
            g.kh,
            g.kw,
            g.stride,
            g.pad_y,
            g.pad_x,
            split_stride,
        ]
        .iter()
        .map(|&v| u(op, v))
        .collect()
    };
    let mut groups = grid(gpu, (tiles_m * tiles_n * nsplit) as u64)?;
    groups[2] = call.slices;
    if nsplit == 1 {
        let kernel = call_kernel(call.sections, call.bias.is_some(), tile, main);
        let mut t = vec![call.a, call.b, call.out];
        t.extend(call.bias);
        step.dispatch(gpu, op, &kernel, &params_for(0)?, &t, groups)?;
        return Ok(Scratch::default());
    }
    let partial = Tensor::zeros(gpu, &[nsplit, len], &format!("{op} split-K partials"))?;
    let kernel = call_kernel(call.sections, false, tile, main);
    step.dispatch(
        gpu,
        op,
        &kernel,
        &params_for(len)?,
        &[call.a, call.b, &partial],
        groups,
    )?;
    reduce_splits(gpu, step, op, &partial, nsplit, call.out, call.bias)?;
    Ok(Scratch {
        tensors: vec![partial],
    })
}

/// Record `out[i] = sum_s part[s * len + i] (+ bias[i % ncols])`.
pub(crate) fn reduce_splits(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    part: &Tensor,
    nsplit: usize,
    out: &Tensor,
    bias: Option<&Tensor>,
) -> Result<()> {
    let len = out.numel();
    let ncols = bias.map_or(1, |b| b.numel());
    let params = [u(op, len)?, u(op, nsplit)?, u(op, ncols)?, 0, 0];
    let groups = grid(gpu, len.div_ceil(256) as u64)?;
    match bias {
        None => step.dispatch(
            gpu,
            op,
            &reduce_kernel(false),
            &params,
            &[part, out],
            groups,
        ),
        Some(b) => step.dispatch(
            gpu,
            op,
            &reduce_kernel(true),
            &params,
            &[part, out, b],
            groups,
        ),
    }
}

pub(crate) fn reduce_kernel(bias: bool) -> Kernel {
    if bias {
        Kernel::new(
            shaders::SPLITS,
            "reduce_splits_bias",
            &[Access::Read, Access::ReadWrite, Access::Read],
        )
    } else {
        Kernel::new(
            shaders::SPLITS,
            "reduce_splits",
            &[Access::Read, Access::ReadWrite],
        )
    }
}

/// Every tiled-main tile a default config can pick, for the naga test.
pub const AUTO_TILES: [Tile; 6] = [
    Tile::T128X128,
    Tile::T256X64,
    Tile::T128X64,
    Tile::T64X64,
    Tile::T128X32,
    Tile::T256X4,
];

/// (main, tile) pairs the naga test builds for every variant: the tiled
/// tiles and representative direct tiles (N = 1, 3 -> 4, 8; M = 25, 3).
pub fn test_tiles() -> Vec<(Main, Tile)> {
    let mut v: Vec<(Main, Tile)> = AUTO_TILES.iter().map(|&t| (Main::Tiled, t)).collect();
    for (m, n) in [
        (1000, 1),
        (40, 1),
        (1000, 3),
        (1000, 8),
        (25, 64),
        (3, 100),
        (1000, 100),
        (1000, 25),
        (1000, 9),
    ] {
        v.push((Main::Direct, Tile::direct_auto(m, n)));
    }
    v
}
