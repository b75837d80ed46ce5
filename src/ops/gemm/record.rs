//! Recording one GEMM call: the policy's choices applied, the parameter
//! block, and split-K partials summed in a fixed order.

use crate::error::{Error, Result};
use crate::gpu::{grid, Gpu, Step, Tensor};
use crate::ops::gemm::codegen::{call_kernel, reduce_kernel};
use crate::ops::gemm::policy::{GemmConfig, Main, Tile, TARGET_WORKGROUPS};

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
        .unwrap_or_else(|| Main::auto(gpu.cpu_kernels(), call.m, call.n));
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
