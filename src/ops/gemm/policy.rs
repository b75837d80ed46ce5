//! Which main loop, tile and split-K a GEMM of a given shape gets: the
//! choices by shape, and the tile table the naga test builds.

use crate::error::{Error, Result};

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
    /// `None`: a grid of at most half [`TARGET_WORKGROUPS`] tiles is split
    /// along K until it has about that many workgroups, each split at
    /// least [`MIN_SPLIT_K`] long.
    pub splits: Option<u32>,
}

/// Workgroups a dispatch should have before split-K stops adding more.
pub const TARGET_WORKGROUPS: usize = 48;

/// The shortest K range a split may have: below it, a split's partial
/// output and the reduction's read of it cost about what its FMAs do, and
/// the reduction is one more dispatch (a 128-long dot product split 8 ways,
/// the discriminator's head, was 8 partials and a second dispatch for 1 K
/// FMAs per output).
pub const MIN_SPLIT_K: usize = 256;

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
/// tiled, two direct (narrow and wide).
pub fn epilogue_test_tiles() -> Vec<(Main, Tile)> {
    vec![
        (Main::Tiled, Tile::T128X64),
        (Main::Direct, Tile::direct_auto(1000, 1)),
        (Main::Direct, Tile::direct_auto(1000, 100)),
    ]
}

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
