//! Recording one GEMM call: the policy's choices applied, the parameter
//! block, and split-K partials summed in a fixed order.

use crate::error::{Error, Result};
use crate::gpu::{grid, Gpu, Step, Tensor};
use crate::ops::epilogue::{EpiKind, Epilogue, Fused};
use crate::ops::gemm::codegen::{gemm_kernel, reduce_kernel, DySide};
use crate::ops::gemm::policy::{
    runs_subgroup_main, Choice, GemmConfig, GemmShape, Main, Policy, SUBGROUP_LANES,
};
use crate::ops::gemm::tune;

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

impl Geo {
    /// The twelve words in parameter-block order.
    pub fn words(&self) -> [usize; 12] {
        [
            self.batch,
            self.h,
            self.w,
            self.cin,
            self.oh,
            self.ow,
            self.cout,
            self.kh,
            self.kw,
            self.stride,
            self.pad_y,
            self.pad_x,
        ]
    }
}

/// The bias gradient fused into a backward-weights GEMM: the column sums
/// of dy (the operand on `side`, seen as `[rows, cols]`) written at element
/// `off` of the output (the bias follows the weight in the arena).
#[derive(Clone, Copy, Debug)]
pub struct BiasGrad {
    pub side: DySide,
    pub rows: usize,
    pub cols: usize,
    pub off: usize,
}

/// One GEMM to record: its variant (setup/A/B/C-row sections, without the
/// store), sizes (the largest over the `slices` stride phases), operands,
/// and what the store does ([`Epilogue`]; the bias is `bias[bias_off + n]`).
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
    pub bias_off: usize,
    pub epi: Epilogue<'a>,
    pub bias_grad: Option<BiasGrad>,
}

impl<'a> GemmCall<'a> {
    /// A call with no bias, epilogue or bias gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn plain(
        op: &'static str,
        sections: &'static [&'static str],
        (m, n, k): (usize, usize, usize),
        slices: u32,
        geo: Geo,
        a: &'a Tensor,
        b: &'a Tensor,
        out: &'a Tensor,
    ) -> GemmCall<'a> {
        GemmCall {
            op,
            sections,
            m,
            n,
            k,
            slices,
            geo,
            a,
            b,
            out,
            bias: None,
            bias_off: 0,
            epi: Epilogue::NONE,
            bias_grad: None,
        }
    }

    /// The sizes the policy and the tuner choose by.
    pub fn shape(&self) -> GemmShape {
        GemmShape {
            m: self.m,
            n: self.n,
            k: self.k,
            slices: self.slices,
        }
    }

    /// This call with `f`'s bias and epilogue (its bias gradient is the
    /// op's to place: see [`BiasGrad`]).
    pub fn with(mut self, f: &Fused<'a>) -> GemmCall<'a> {
        self.bias = f.bias.map(|b| b.0);
        self.bias_off = f.bias.map_or(0, |b| b.1);
        self.epi = f.epi;
        self
    }
}

fn u(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::invalid(op, format!("size {v} exceeds u32")))
}

/// Record one GEMM (and its split-K reduction). Shapes are the caller's to
/// check; this checks only the tile and the 32-bit index range. A config
/// that forces nothing takes the autotuner's choice where it is on
/// ([`Gpu::autotune`]), else the policy's ([`Choice::of`]).
pub(crate) fn record(
    gpu: &Gpu,
    step: &mut Step,
    call: &GemmCall,
    cfg: &GemmConfig,
) -> Result<Scratch> {
    let choice = if cfg.is_open() && gpu.autotune() {
        tune::choose(gpu, call)?
    } else {
        Choice::of(Policy::of(gpu), call.shape(), cfg)
    };
    record_choice(gpu, step, call, choice)
}

/// Record `call` as `choice` says (the tuner times candidates through
/// this too).
pub(crate) fn record_choice(
    gpu: &Gpu,
    step: &mut Step,
    call: &GemmCall,
    choice: Choice,
) -> Result<Scratch> {
    let op = call.op;
    let Choice { main, tile, splits } = choice;
    tile.check(main)?;
    if main == Main::Subgroup && !runs_subgroup_main(gpu) {
        return Err(Error::invalid(
            op,
            format!(
                "the subgroup GEMM main needs a device running subgroups of exactly \
                 {SUBGROUP_LANES} invocations; this one runs {} (use the direct main)",
                gpu.subgroup_lanes()
                    .map_or("none".to_string(), |n| format!("subgroups of {n}")),
            ),
        ));
    }
    let bk = tile.bk as usize;
    let tiles_m = call.m.div_ceil(tile.bm as usize).max(1);
    let tiles_n = call.n.div_ceil(tile.bn as usize).max(1);
    // K per split, a multiple of BK; then drop empty splits
    let ksplit = call.k.div_ceil(splits.max(1) as usize).div_ceil(bk).max(1) * bk;
    let nsplit = call.k.div_ceil(ksplit).max(1);
    if call.k >= 1 << 24 {
        // the kernels split k with an f32 division, exact below 2^24
        return Err(Error::invalid(
            op,
            format!("reduction length K = {} must be below 2^24", call.k),
        ));
    }
    call.epi.check(op, call.out)?;
    let len = call.out.numel();
    // every index the kernels form must fit u32
    u(op, len * nsplit)?;
    u(op, call.a.numel())?;
    u(op, call.b.numel())?;
    let g = &call.geo;
    let bg = call.bias_grad;
    let (bias_cols, bias_rows) = bg.map_or((0, 0), |b| (b.cols, b.rows));
    if let Some(b) = bg {
        u(op, b.off + b.cols)?;
        u(op, b.rows * b.cols)?;
    }
    let params_for = |split_stride: usize, epi: &Epilogue| -> Result<Vec<u32>> {
        let mut words = [call.m, call.n, call.k, ksplit, tiles_m, tiles_n, nsplit]
            .into_iter()
            .chain(g.words())
            .chain([split_stride, bias_cols, bias_rows, 0, 0])
            .map(|v| u(op, v))
            .collect::<Result<Vec<u32>>>()?;
        let off = bg.map_or(call.bias_off, |b| b.off);
        words.extend(epi.words(off)?);
        Ok(words)
    };
    let side = bg.map(|b| b.side);
    // the bias gradient's workgroups: one invocation per column
    let bias_groups = bias_cols.div_ceil(tile.threads() as usize);
    let mut groups = grid(gpu, (tiles_m * tiles_n * nsplit + bias_groups) as u64)?;
    groups[2] = call.slices;
    step.add_gemm_flops(2 * (call.m * call.n * call.k) as u64 * call.slices as u64);
    if nsplit == 1 {
        let epi = call.epi.kind(call.bias.is_some());
        let kernel = gemm_kernel(call.sections, epi, side, tile, main);
        let mut t = vec![call.a, call.b, call.out];
        t.extend(call.bias);
        t.extend(call.epi.tensors());
        step.dispatch(gpu, op, &kernel, &params_for(0, &call.epi)?, &t, groups)?;
        return Ok(Scratch::default());
    }
    let partial = Tensor::zeros(gpu, &[nsplit, len], &format!("{op} split-K partials"))?;
    let kernel = gemm_kernel(call.sections, EpiKind::default(), side, tile, main);
    step.dispatch(
        gpu,
        op,
        &kernel,
        &params_for(len, &Epilogue::NONE)?,
        &[call.a, call.b, &partial],
        groups,
    )?;
    let bias = call.bias.map(|b| (b, call.bias_off));
    reduce_splits(
        gpu, step, op, &partial, nsplit, call.out, call.n, bias, &call.epi,
    )?;
    Ok(Scratch {
        tensors: vec![partial],
    })
}

/// Record `out[i] = epilogue(sum_s part[s * len + i])`, the bias (when
/// given) `bias[off + i % ncols]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn reduce_splits(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    part: &Tensor,
    nsplit: usize,
    out: &Tensor,
    ncols: usize,
    bias: Option<(&Tensor, usize)>,
    epi: &Epilogue,
) -> Result<()> {
    epi.check(op, out)?;
    let len = out.numel();
    let mut params = vec![
        u(op, len)?,
        u(op, nsplit)?,
        u(op, ncols.max(1))?,
        0,
        0,
        0,
        0,
        0,
    ];
    params.extend(epi.words(bias.map_or(0, |b| b.1))?);
    let groups = grid(gpu, len.div_ceil(256) as u64)?;
    let mut t = vec![part, out];
    t.extend(bias.map(|b| b.0));
    t.extend(epi.tensors());
    let kernel = reduce_kernel(epi.kind(bias.is_some()));
    step.dispatch(gpu, op, &kernel, &params, &t, groups)
}
