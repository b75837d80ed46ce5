//! Which main loop, tile and split-K a GEMM of a given shape gets
//! ([`Choice::of`]): the CPU driver's policy (the direct main, big register
//! blocks, few workgroups: measured on lavapipe), the GPU policy (tile
//! chains and split-K toward [`GPU_TARGET_WORKGROUPS`], at most 64
//! accumulators per invocation), and the tile tables the naga and numerics
//! tests build.

use crate::error::{Error, Result};
use crate::gpu::Gpu;

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
    /// 64x32 block, 4x4 per invocation, 128 invocations: narrow outputs
    /// with few rows of tiles (GPU policy).
    pub const T64X32: Tile = Tile::new(64, 32, 16, 4, 4);
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
            Main::Subgroup => {
                common && bk <= 16 && tn % SUBGROUP_LANES == 0 && (bm / tm) % SUBGROUP_LANES == 0
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "gemm",
                format!(
                    "tile {self:?} unusable with the {main:?} main: need tm | bm, tn | bn, \
                     1..=256 invocations; tiled: invocations dividing or divided by bm and bn, \
                     (bm + bn) * bk * 4 <= 16 KiB; direct: bk <= 16; subgroup: bk <= 16, \
                     tn and bm / tm multiples of {SUBGROUP_LANES}"
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
            Tile::new(16 * lanes, bn, DIRECT_UNROLL, 16, bn)
        } else if n <= 32 && m > 64 {
            // all columns per invocation, ~200 accumulators (the col2im
            // GEMM of convT 14->28 64->1, N = 25: 8 x 25 6.4 GFLOP/s wall,
            // 8 x 16 in 2 column lanes 5.7, 4 x 25 5.1, default 8 x 16 in
            // 4 lanes 3.8)
            let tm = (200 / n as u32).clamp(1, 16);
            Tile::new(16 * tm, n as u32, DIRECT_UNROLL, tm, n as u32)
        } else if m <= 64 {
            // 16 rows per row lane, as few lanes as M needs (rows are
            // interleaved across lanes, so a spare lane would not idle)
            let rs = m.max(1).div_ceil(16) as u32;
            Tile::new(16 * rs, 64, DIRECT_UNROLL, 16, 8)
        } else {
            Tile::new(128, if n > 64 { 128 } else { 64 }, DIRECT_UNROLL, 8, 16)
        }
    }

    /// Default tile of the subgroup main for an `m x n` output (N > 8):
    /// 4 rows and all of N's columns up to 64 per invocation (N rounded up
    /// to whole subgroups), one or two column groups, 8 or 16 row lanes.
    /// Per k an invocation loads 4 + TN / 8 values for 4 TN FMAs: 12 for
    /// 256 at N >= 64, against 24 for 128 in the direct main's 8 x 16.
    /// Measured on conv2d forward 7x7 256->128 at batch 32 (M = 1568, N =
    /// 128; GFLOP/s wall, 2 cores), K unrolled 1: 4 x 64 27.7, 4 x 32
    /// 22.8, 8 x 16 19.8, 2 x 64 20.5, 8 x 32 25.1, 4 x 128 29.0; with
    /// [`SUBGROUP_UNROLL`] 4 and the FMAs column by column, 4 x 64 37.3
    /// and 4 x 128 38.9 (512 accumulators, for 4% more), against 11.9 for
    /// the direct main (docs/PERFORMANCE.md, "Round 3").
    pub fn subgroup_auto(m: usize, n: usize) -> Tile {
        let tn =
            (n.div_ceil(SUBGROUP_LANES as usize) * SUBGROUP_LANES as usize).clamp(8, 64) as u32;
        let groups = if n > tn as usize { 2 } else { 1 };
        let lanes = if m <= 32 { 8 } else { 16 };
        Tile::new(4 * lanes, groups * tn, SUBGROUP_UNROLL, 4, tn)
    }

    /// The GPU policy's tile for `main` at `shape`: the largest of its
    /// chain ([`Tile::gpu_chain`]) whose grid has at least
    /// [`GPU_TARGET_WORKGROUPS`] tiles, else the chain's smallest (split-K
    /// then adds workgroups). Every GPU tile keeps at most 64 accumulators
    /// per invocation (NVIDIA's 255-register budget holds them with the
    /// loads and indices, where the CPU policy's 200-accumulator direct
    /// blocks spill).
    pub fn gpu_auto(main: Main, shape: GemmShape) -> Tile {
        let chain = Tile::gpu_chain(main, shape.m, shape.n);
        *chain
            .iter()
            .find(|t| shape.tiles(**t) >= GPU_TARGET_WORKGROUPS)
            .unwrap_or(chain.last().expect("chains are not empty"))
    }

    /// The GPU tiles for `main` at an `m x n` output, largest first, each
    /// the next one's block cut in half or quarter (more workgroups, fewer
    /// FMAs per load).
    /// - Tiled: [`Tile::auto`]'s tile, then down to 64x64 (64x32 for
    ///   outputs <= 32 wide; 256x4 stays alone: only a forced tiled main
    ///   gets it).
    /// - Subgroup (never the GPU policy's pick; only forced, on a device
    ///   with subgroups of 8): [`Tile::subgroup_auto`]'s tile.
    /// - Direct, N <= 8: all columns (rounded up to a power of two) and 2
    ///   rows per invocation, 64 invocations: at most 16 accumulators
    ///   (these GEMMs are bound by the loads of A, not by FMAs).
    /// - Direct, otherwise (M <= 64 on the GPU policy): 16 rows (M <= 16)
    ///   or 64 rows per workgroup, 4 x 4 per invocation over 64 columns,
    ///   then 4 x 1 over 16.
    pub fn gpu_chain(main: Main, m: usize, n: usize) -> Vec<Tile> {
        match main {
            Main::Tiled => match Tile::auto(m, n) {
                Tile::T128X128 => vec![Tile::T128X128, Tile::T128X64, Tile::T64X64],
                Tile::T256X64 => vec![Tile::T256X64, Tile::T128X64, Tile::T64X64],
                Tile::T128X64 => vec![Tile::T128X64, Tile::T64X64],
                Tile::T128X32 => vec![Tile::T128X32, Tile::T64X32],
                t => vec![t],
            },
            Main::Subgroup => vec![Tile::subgroup_auto(m, n)],
            Main::Direct if n <= 8 => {
                let bn = n.max(1).next_power_of_two() as u32;
                vec![Tile::new(128, bn, 4, 2, bn)]
            }
            Main::Direct => {
                let rows = if m <= 16 { 16 } else { 64 };
                vec![Tile::new(rows, 64, 4, 4, 4), Tile::new(rows, 16, 4, 4, 1)]
            }
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

/// Which main loop a GEMM kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Main {
    /// Register tiles fed through workgroup memory (`main`): wide outputs.
    Tiled,
    /// No workgroup memory, no barriers (`main_direct`): each invocation
    /// reads its operands from storage; for outputs a few columns wide or
    /// a few rows tall. The tile's `bk` is the K unroll.
    Direct,
    /// The direct main with each subgroup of [`SUBGROUP_LANES`]
    /// invocations sharing its columns' B loads (`main_subgroup`): for
    /// devices opened with subgroups of exactly that size.
    Subgroup,
}

/// The subgroup size the subgroup main is generated for: lavapipe's on
/// 256-bit SIMD (8 f32 lanes).
pub const SUBGROUP_LANES: u32 = 8;

/// The fewest output rows the CPU policy gives the subgroup main: one
/// subgroup's 8 lanes of 4 rows each. A shorter output (a dense layer at a
/// small batch) would idle most lanes, and its kernel would cost a
/// compile of 256 accumulators for little work.
pub const SUBGROUP_MIN_ROWS: usize = 32;

impl Main {
    /// The default for an `m x n` output under `policy`.
    /// On a CPU driver (lavapipe) direct, or subgroup where the device has
    /// subgroups of [`SUBGROUP_LANES`] and N > 8: there every load from
    /// storage or workgroup memory inside a loop is a per-lane scalar loop
    /// and a barrier a coroutine switch per 8 lanes, so staging operands
    /// through workgroup memory only adds loads (docs/PERFORMANCE.md:
    /// 2.7-3.5x), and sharing them through subgroup broadcasts removes
    /// most of them (about 3x on the big conv GEMMs). The direct main
    /// keeps N <= 8, where all columns already share each row's loads.
    /// On a GPU, direct when N <= 8 (a K step of the tiled loop would hold
    /// a handful of FMAs per invocation between two barriers) or M <= 64
    /// (most of a tiled block would be padding); tiled otherwise.
    pub fn auto(policy: Policy, m: usize, n: usize) -> Main {
        if policy.cpu {
            if policy.subgroups && n > 8 && m >= SUBGROUP_MIN_ROWS {
                Main::Subgroup
            } else {
                Main::Direct
            }
        } else if n <= 8 || m <= 64 {
            Main::Direct
        } else {
            Main::Tiled
        }
    }
}

/// What a GEMM's choice depends on besides its shape: the kernel family
/// (a CPU driver's or a GPU's, [`crate::gpu::KernelPolicy`]) and, for a
/// CPU driver's, whether the device runs subgroups of exactly
/// [`SUBGROUP_LANES`] invocations (the subgroup main's broadcasts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    pub cpu: bool,
    pub subgroups: bool,
}

impl Policy {
    /// The GPU policy (subgroups unused).
    pub const GPU: Policy = Policy {
        cpu: false,
        subgroups: false,
    };
    /// The CPU policy on a device without subgroups of 8: the direct main.
    pub const CPU: Policy = Policy {
        cpu: true,
        subgroups: false,
    };
    /// The CPU policy on a device with subgroups of 8 (lavapipe on AVX2).
    pub const CPU_SUBGROUPS: Policy = Policy {
        cpu: true,
        subgroups: true,
    };

    /// The policy `gpu` runs under.
    pub fn of(gpu: &Gpu) -> Policy {
        let cpu = gpu.cpu_kernels();
        Policy {
            cpu,
            subgroups: cpu && runs_subgroup_main(gpu),
        }
    }
}

/// Whether `gpu` can run the subgroup main: its device runs subgroups of
/// exactly [`SUBGROUP_LANES`] invocations.
pub fn runs_subgroup_main(gpu: &Gpu) -> bool {
    gpu.subgroup_lanes() == Some(SUBGROUP_LANES)
}

/// Main loop, tile and split-K choice for one GEMM. `Default` picks all
/// three by shape (and lets the autotuner time alternatives where it is on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GemmConfig {
    /// `None`: [`Main::auto`].
    pub main: Option<Main>,
    /// `None`: the policy's tile for the main: on a CPU driver
    /// [`Tile::auto`] (tiled) or [`Tile::direct_auto`] (direct), on a GPU
    /// [`Tile::gpu_auto`].
    pub tile: Option<Tile>,
    /// Conv backward data only: `Some(true)` GEMM + col2im, `Some(false)`
    /// by stride phases, `None`: col2im when Cin <= 8 (see
    /// [`crate::ops::conv2d::record_backward_data`]).
    pub col2im: Option<bool>,
    /// `None`: a grid of at most half the target ([`TARGET_WORKGROUPS`] on
    /// a CPU driver, [`GPU_TARGET_WORKGROUPS`] on a GPU) is split along K
    /// until it has about that many workgroups, each split at least
    /// [`MIN_SPLIT_K`] long.
    pub splits: Option<u32>,
}

impl GemmConfig {
    /// True when the config leaves main, tile and split-K to the policy
    /// (the autotuner may then replace the policy's choice).
    pub fn is_open(&self) -> bool {
        self.main.is_none() && self.tile.is_none() && self.splits.is_none()
    }
}

/// Workgroups a dispatch should have before split-K stops adding more, on
/// a CPU driver (lavapipe runs one workgroup per core at a time; more than
/// a few dozen only adds partials to sum).
pub const TARGET_WORKGROUPS: usize = 48;

/// Workgroups a GPU dispatch should have before smaller tiles and split-K
/// stop adding more. wgpu exposes no SM or CU count, so this is sized for
/// the large end: an H200 has 132 SMs, and at the <= 64 accumulators the
/// GPU tiles keep (about 100 registers per invocation) an SM holds two
/// 256-invocation workgroups, so 512 is about two full waves there; a
/// smaller GPU (an Apple M-series, a laptop part) gets a few more waves,
/// which costs it nothing but the split-K partials (bounded by
/// [`MIN_SPLIT_K`]).
pub const GPU_TARGET_WORKGROUPS: usize = 512;

/// The shortest K range a split may have: below it, a split's partial
/// output and the reduction's read of it cost about what its FMAs do, and
/// the reduction is one more dispatch (a 128-long dot product split 8 ways,
/// the discriminator's head, was 8 partials and a second dispatch for 1 K
/// FMAs per output).
pub const MIN_SPLIT_K: usize = 256;

/// The sizes a GEMM's choice depends on: `m x n` output, reduction length
/// `k`, `slices` independent GEMMs in one dispatch (the stride phases of a
/// conv backward data; workgroup z).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub slices: u32,
}

impl GemmShape {
    /// Output tiles of one split at `tile`, over all slices.
    pub fn tiles(&self, tile: Tile) -> usize {
        self.m.div_ceil(tile.bm as usize).max(1)
            * self.n.div_ceil(tile.bn as usize).max(1)
            * self.slices as usize
    }

    /// The number of K splits `splits` asks for, after rounding each
    /// split's length up to a multiple of BK and dropping empty splits
    /// (idempotent: the effective count maps to itself).
    pub fn effective_splits(&self, tile: Tile, splits: u32) -> u32 {
        let bk = tile.bk as usize;
        let ksplit = self.k.div_ceil(splits.max(1) as usize).div_ceil(bk).max(1) * bk;
        self.k.div_ceil(ksplit).max(1) as u32
    }

    /// The policy's split count at `tile`: only a grid of at most half
    /// `target` tiles is split (a fuller one gains at most 2x occupancy,
    /// which the reduction's pass and dispatch eat), into about `target`
    /// workgroups, each split at least [`MIN_SPLIT_K`] (and 4 BK) long.
    pub fn auto_splits(&self, tile: Tile, target: usize) -> u32 {
        let tiles = self.tiles(tile);
        let s = if 2 * tiles <= target {
            target
                .div_ceil(tiles)
                .min(self.k / MIN_SPLIT_K.max(4 * tile.bk as usize))
                .max(1)
        } else {
            1
        };
        self.effective_splits(tile, s as u32)
    }
}

/// What a GEMM runs: main loop, tile, and the number of K splits (already
/// effective: see [`GemmShape::effective_splits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Choice {
    pub main: Main,
    pub tile: Tile,
    pub splits: u32,
}

impl Choice {
    /// The choice of `cfg` for `shape` under `policy`: what `cfg` forces,
    /// the policy's default for the rest.
    pub fn of(policy: Policy, shape: GemmShape, cfg: &GemmConfig) -> Choice {
        let (m, n) = (shape.m, shape.n);
        let cpu = policy.cpu;
        let main = cfg.main.unwrap_or_else(|| Main::auto(policy, m, n));
        let tile = cfg.tile.unwrap_or_else(|| match (cpu, main) {
            (true, Main::Tiled) => Tile::auto(m, n),
            (true, Main::Direct) => Tile::direct_auto(m, n),
            (true, Main::Subgroup) => Tile::subgroup_auto(m, n),
            (false, _) => Tile::gpu_auto(main, shape),
        });
        let target = if cpu {
            TARGET_WORKGROUPS
        } else {
            GPU_TARGET_WORKGROUPS
        };
        let splits = match cfg.splits {
            Some(s) => shape.effective_splits(tile, s),
            None => shape.auto_splits(tile, target),
        };
        Choice { main, tile, splits }
    }

    /// The choice in the tuning cache's words: `Direct 128x4x4 2x4 s3`.
    pub fn encode(&self) -> String {
        let Tile { bm, bn, bk, tm, tn } = self.tile;
        format!("{:?} {bm}x{bn}x{bk} {tm}x{tn} s{}", self.main, self.splits)
    }

    /// Parse [`Choice::encode`]'s words; the tile is checked against the
    /// main (a cache file is never trusted blindly).
    pub fn decode(s: &str) -> Result<Choice> {
        let bad = || Error::invalid("gemm", format!("{s:?} is no GEMM choice"));
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [main, block, thread, splits] = parts[..] else {
            return Err(bad());
        };
        let main = match main {
            "Tiled" => Main::Tiled,
            "Direct" => Main::Direct,
            "Subgroup" => Main::Subgroup,
            _ => return Err(bad()),
        };
        let nums = |t: &str, n: usize| -> Result<Vec<u32>> {
            let v = t
                .split('x')
                .map(|x| x.parse::<u32>().map_err(|_| bad()))
                .collect::<Result<Vec<u32>>>()?;
            if v.len() == n {
                Ok(v)
            } else {
                Err(bad())
            }
        };
        let b = nums(block, 3)?;
        let t = nums(thread, 2)?;
        let splits = splits
            .strip_prefix('s')
            .and_then(|x| x.parse::<u32>().ok())
            .filter(|&x| x >= 1)
            .ok_or_else(bad)?;
        let tile = Tile::new(b[0], b[1], b[2], t[0], t[1]);
        tile.check(main)?;
        Ok(Choice { main, tile, splits })
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

/// (main, tile) pairs the naga test builds every epilogue with: one
/// tiled, two direct (narrow and wide), one subgroup.
pub fn epilogue_test_tiles() -> Vec<(Main, Tile)> {
    vec![
        (Main::Tiled, Tile::T128X64),
        (Main::Direct, Tile::direct_auto(1000, 1)),
        (Main::Direct, Tile::direct_auto(1000, 100)),
        (Main::Subgroup, Tile::subgroup_auto(1000, 100)),
    ]
}

/// Every (main, tile) the GPU policy or the autotuner can pick for a config
/// that forces nothing: the chains of [`Tile::gpu_chain`] over all shapes.
/// The numerics tests (tests/global/tune.rs) force each of them.
pub fn gpu_tiles() -> Vec<(Main, Tile)> {
    let mut v = Vec::new();
    // (m, n) pairs reaching every branch of Tile::auto and Tile::gpu_chain
    let shapes = [
        (1000, 100),
        (5000, 50),
        (1000, 50),
        (1000, 20),
        (1000, 1),
        (1000, 2),
        (1000, 3),
        (1000, 8),
        (10, 100),
        (40, 100),
    ];
    for main in [Main::Tiled, Main::Direct] {
        for (m, n) in shapes {
            if main == Main::Tiled && n <= 4 {
                continue; // 256x4: forced only
            }
            for t in Tile::gpu_chain(main, m, n) {
                if !v.contains(&(main, t)) {
                    v.push((main, t));
                }
            }
        }
    }
    v
}

/// (main, tile) pairs the naga test builds for every variant: the tiled
/// tiles, representative direct tiles of the CPU policy (N = 1, 3 -> 4, 8;
/// M = 25, 3), every subgroup tile it picks and every GPU policy tile.
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
    for (m, n) in SUBGROUP_TEST_SHAPES {
        let p = (Main::Subgroup, Tile::subgroup_auto(m, n));
        if !v.contains(&p) {
            v.push(p);
        }
    }
    for p in gpu_tiles() {
        if !v.contains(&p) {
            v.push(p);
        }
    }
    v
}

/// (m, n) pairs reaching every tile [`Tile::subgroup_auto`] picks: N of
/// one, two and eight subgroups, one column group or two, 8 or 16 row
/// lanes.
pub const SUBGROUP_TEST_SHAPES: [(usize, usize); 6] = [
    (1000, 9),
    (1000, 25),
    (1000, 64),
    (1000, 100),
    (25, 64),
    (20, 300),
];

pub const DIRECT_UNROLL: u32 = 1;

/// The subgroup main's K unroll: its FMAs are emitted column by column
/// over the unrolled k, so each accumulator is loaded and stored once per
/// 4 k (gemm 512^3, 4 x 64 per invocation, GFLOP/s wall on lavapipe:
/// unroll 1 27.3, 2 31.0, 4 36.7, 8 35.5 on conv2d 7x7).
pub const SUBGROUP_UNROLL: u32 = 4;
