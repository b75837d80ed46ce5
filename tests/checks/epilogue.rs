//! Fused epilogues (`src/ops/epilogue.rs`): the pointwise tail a GEMM
//! store, the split-K reduction, col2im and the pool backward apply as they
//! write, and the bias gradient a backward-weights GEMM computes in extra
//! workgroups. Each is checked against the CPU references of the unfused
//! ops on odd shapes (no size a multiple of a tile), every output poisoned
//! (NaN) before the dispatch:
//! - conv2d forward `y = act(conv + b) [* mask]` for each activation and
//!   LeakyReLU + training dropout, both GEMM mains, unsplit (the GEMM's
//!   store applies it) and split-K (the reduction does);
//! - transposed conv forward (conv backward data) with bias + tanh (and
//!   LeakyReLU + dropout), by stride phases and by GEMM + col2im;
//! - backward data `dx = dact(saved) * mask * (dy W^T)` for conv2d and
//!   dense;
//! - weight and bias gradient in one output (conv2d, transposed conv,
//!   dense; both mains, split and unsplit);
//! - the pool backwards with dmask + dact, batch norm with a fused
//!   activation;
//! - a layer whose weight and bias are packed into a [`ParamArena`] against
//!   its unpacked twin, the arena's padding after Adam.
//!
//! (The refusals at record time are tested natively, tests/it/epilogue.rs.)
//!
//! The forced-main runs use small tiles (`TILED`, `DIRECT`) so the cases
//! share kernels: lavapipe compiles every (tile, epilogue) variant, and the
//! default tiles' unrolled code takes it about a second each (cold shader
//! cache: ~40 s for this file, warm ~2 s). The default configs (policy
//! tiles and splits) run through the ops' own entry points and the layers.
//!
//! Tolerances.
//! - A GEMM output sums K products of inputs in [-1, 1] in f32, in tile (or
//!   split, or tap) order; the reference sums in f64. As in
//!   tests/checks/conv2d.rs the error grows like sqrt(K) eps: the
//!   pre-activation `v` (bias
//!   included: one more rounding) is within `e(v) = atol(K) + 1e-4 |v|`,
//!   atol(K) = 2e-5 * sqrt(K/100) (at least 2e-5). K is the reduction
//!   length: KH*KW*Cin (forward), KH*KW*Cout (backward data; by phases a
//!   phase sums fewer taps, col2im sums the same products in another
//!   order: the bound for all taps covers both), N*OH*OW (backward weights
//!   and its bias gradient, which sums the same rows of dy), the inner size
//!   for dense.
//! - The forward activation maps that error through its slope: on
//!   [v - e, v + e], |relu'|, |leaky'| <= 1 (also across the kink), sigmoid'
//!   <= s(1-s) and tanh' <= 1 - t^2 at the end nearer 0. On top comes the
//!   activation's own error (WGSL `exp`, 3 + 2|x| ulp: 1e-6 + 1e-5 |y| as
//!   in tests/checks/activation.rs) and, with dropout, the factor of the
//!   mask (0 or 1/(1-p)) plus one rounding of the product (inside the
//!   1e-5 |y|).
//! - The dropout mask is compared bit for bit with `dropout_mask_cpu` for
//!   the same Philox key, stream and step counter (the draw and `u >= p` are
//!   exact). A dropped element is exactly 0. ReLU/LeakyReLU's side of the
//!   kink is compared exactly (ReLU: exactly 0 below, > 0 above; LeakyReLU:
//!   the sign) wherever |v| > e(v); the units within e(v) of the kink are
//!   counted and must be few (at most 1% + 1: with |v| spread over ~[-3, 3]
//!   they are ~1e-4 of all).
//! - Backward data: the GEMM value g is within `atol(K) + 1e-4 |g|`, then
//!   multiplied by the mask m and the derivative d (from the same saved f32
//!   output on both sides): tolerance |m d| (atol(K) + 1e-4 |g|) plus
//!   2^-22 |m g| (three f32 roundings, and tanh's `1 - y*y` whose `y*y`
//!   rounds by up to 2^-24 absolute). Where m = 0, or ReLU's saved output is
//!   <= 0, dx must be exactly 0.
//! - The pool backward copies dy or 0, then at most two products, each a
//!   single rounding on the GPU and in the CPU reference (an f32 x f32
//!   product is exact in f64): bit for bit (atol 0, rtol 0).
//! - Batch norm: y before the activation is within 2e-5 + 1e-4 |y| for R
//!   <= 507 rows (tests/checks/batch_norm.rs derives it); eval 1e-5 +
//!   1e-5 |y|; the fused ReLU/LeakyReLU has slope <= 1, kink sides as
//!   above.
//! - Packed vs unpacked layer: the same op on the same values, the bias
//!   read at an offset of the joined range (forward) and summed by the
//!   fused bias gradient instead of `bias_grad` (backward): the two within
//!   the GEMM tolerance of each other (atol(K), rtol 1e-4), each against
//!   the CPU reference with the same tolerance. Packing copies bytes: bit
//!   for bit. Adam over the arena: tests/checks/adam.rs's one-step bounds
//!   (atol 1e-6, rtol 1e-6 for values; 1e-7 / 1e-5 for m; 1e-12 / 1e-5
//!   for v), and the padding exactly 0.

use super::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::nn::{Layer, Param, ParamArena, WeightOp};
use vae_vs_gan::ops::activation::Activation;
use vae_vs_gan::ops::batch_norm::{
    forward_eval_cpu, forward_train_cpu, BatchNorm, BatchNormConfig, BnParams, BnSaved,
};
use vae_vs_gan::ops::bias::bias_grad_cpu;
use vae_vs_gan::ops::conv2d::{self, Conv2d, ConvDims, Padding};
use vae_vs_gan::ops::conv_transpose2d::{self, ConvTranspose2d};
use vae_vs_gan::ops::dense;
use vae_vs_gan::ops::dropout::{dropout_mask_cpu, keep_scale};
use vae_vs_gan::ops::gemm::{BiasGrad, Dropout, DySide, Epilogue, Fused, GemmConfig, Main, Tile};
use vae_vs_gan::ops::pool;
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::optim::adam::{adam_update_cpu, Adam, AdamConfig, AdamTensors};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("epilogue conv2d forward", conv2d_forward(g).await);
    r.record(
        "epilogue conv_transpose forward",
        conv_transpose_forward(g).await,
    );
    r.record(
        "epilogue conv2d backward data",
        conv2d_backward_data(g).await,
    );
    r.record("epilogue dense backward data", dense_backward_data(g).await);
    r.record(
        "epilogue conv2d backward weights+bias",
        conv2d_backward_weights_bias(g).await,
    );
    r.record(
        "epilogue conv_transpose+dense backward weights+bias",
        conv_transpose_and_dense_backward_weights_bias(g).await,
    );
    r.record("epilogue pool backward", pool_backward(g).await);
    r.record("epilogue batch norm", batch_norm(g).await);
    r.record("epilogue packed layers", packed_layers(g).await);
}

const RTOL: f64 = 1e-4;
pub const ALPHA: f32 = 0.2;
const ACTS: [Activation; 4] = [
    Activation::Relu,
    Activation::LeakyRelu(ALPHA),
    Activation::Sigmoid,
    Activation::Tanh,
];
/// Dropout rate of every dropout epilogue.
const RATE: f32 = 0.3;
/// Step counter the dropout draws at (not 0: the counter is read).
const STEP: u32 = 7;

fn atol(k: usize) -> f64 {
    2e-5 * (k as f64 / 100.0).sqrt().max(1.0)
}

fn is_kinked(act: Activation) -> bool {
    matches!(act, Activation::Relu | Activation::LeakyRelu(_))
}

/// Bound on |f'| over [v - e, v + e].
fn slope(act: Activation, v: f64, e: f64) -> f64 {
    let u = (v.abs() - e).max(0.0);
    match act {
        Activation::Relu => 1.0,
        Activation::LeakyRelu(a) => (a as f64).abs().max(1.0),
        Activation::Sigmoid => {
            let s = Activation::Sigmoid.apply(u);
            s * (1.0 - s)
        }
        Activation::Tanh => {
            let th = u.tanh();
            1.0 - th * th
        }
    }
}

/// The saved-output tensor of an activation for a backward test: the
/// activation of `pre`, times the dropout mask for ReLU/LeakyReLU (whose
/// derivative reads only the sign, which dropout keeps).
fn saved_output(act: Activation, pre: &[f32], mask: &[f32]) -> Vec<f32> {
    let y = act.forward_cpu(pre);
    if is_kinked(act) {
        y.iter().zip(mask).map(|(a, m)| a * m).collect()
    } else {
        y
    }
}

/// Record into `worst` the per-element errors `diff[i]` already checked
/// against their own tolerances `tol[i]`: as fractions of the tolerance
/// (an element with tolerance 0 was required exact).
fn record_within(worst: &mut Worst, what: &str, diff: &[f64], tol: &[f64]) -> Result<(), Failure> {
    let ratio: Vec<f64> = diff
        .iter()
        .zip(tol)
        .map(|(&d, &t)| if d == 0.0 { 0.0 } else { d / t })
        .collect();
    worst.close_f64(what, &ratio, &vec![0.0; ratio.len()], 1.0, 0.0)
}

/// Check a forward epilogue's output `got` = act(pre) [* mask] against the
/// f64 pre-activation `pre`, whose GPU value errs by at most `err(pre)`
/// (see the module doc).
fn check_forward(
    worst: &mut Worst,
    what: &str,
    act: Activation,
    got: &[f32],
    pre: &[f64],
    err: &dyn Fn(f64) -> f64,
    mask: Option<&[f32]>,
) -> Result<(), Failure> {
    ensure(got.len() == pre.len(), || {
        format!("{what}: {} values, want {}", got.len(), pre.len())
    })?;
    let mut near = 0usize;
    let mut diffs = Vec::with_capacity(got.len());
    let mut tols = Vec::with_capacity(got.len());
    for (i, (&gv, &v)) in got.iter().zip(pre).enumerate() {
        let g = gv as f64;
        let m = mask.map_or(1.0, |m| m[i] as f64);
        let e = err(v);
        let a = act.apply(v);
        let want = a * m;
        let tol = m * (slope(act, v, e) * e + 1e-6 + 1e-5 * a.abs());
        let diff = (g - want).abs();
        ensure(g.is_finite() && diff <= tol, || {
            format!(
                "{what}: element {i}: got {g}, want {want} (pre {v}, mask {m}), |diff| {diff:e} \
                 > tol {tol:e}"
            )
        })?;
        if m == 0.0 {
            ensure(gv == 0.0, || {
                format!("{what}: element {i} dropped but got {g}")
            })?;
        } else if is_kinked(act) {
            if v.abs() <= e {
                near += 1;
            } else if v > 0.0 {
                ensure(gv > 0.0, || {
                    format!("{what}: element {i}: pre {v} > 0 but got {g}")
                })?;
            } else if act == Activation::Relu {
                ensure(gv == 0.0, || {
                    format!("{what}: element {i}: pre {v} < 0 but relu gave {g}")
                })?;
            } else {
                ensure(gv < 0.0, || {
                    format!("{what}: element {i}: pre {v} < 0 but leaky gave {g}")
                })?;
            }
        }
        diffs.push(diff);
        tols.push(tol);
    }
    ensure(near <= got.len() / 100 + 1, || {
        format!(
            "{what}: {near} of {} pre-activations within tolerance of the kink",
            got.len()
        )
    })?;
    record_within(
        worst,
        &format!("{what} ({near} near the kink)"),
        &diffs,
        &tols,
    )
}

/// Check a backward-data epilogue's `got` = dact(saved) * mask * g against
/// the f64 GEMM value `g`, whose GPU value errs by at most atol + 1e-4 |g|.
#[allow(clippy::too_many_arguments)]
fn check_backward(
    worst: &mut Worst,
    what: &str,
    act: Activation,
    got: &[f32],
    g: &[f64],
    atol: f64,
    mask: &[f32],
    saved: &[f32],
) -> Result<(), Failure> {
    ensure(got.len() == g.len(), || {
        format!("{what}: {} values, want {}", got.len(), g.len())
    })?;
    let gm: Vec<f64> = g.iter().zip(mask).map(|(&v, &m)| v * m as f64).collect();
    let want = act.backward_cpu(&to_f64(saved), &gm);
    let ones = vec![1.0f64; g.len()];
    let d = act.backward_cpu(&to_f64(saved), &ones);
    let mut zeros = 0usize;
    let mut diffs = Vec::with_capacity(got.len());
    let mut tols = Vec::with_capacity(got.len());
    for i in 0..g.len() {
        let m = mask[i] as f64;
        let tol = (m * d[i]).abs() * (atol + RTOL * g[i].abs()) + 2f64.powi(-22) * gm[i].abs();
        let diff = (got[i] as f64 - want[i]).abs();
        ensure(got[i].is_finite() && diff <= tol, || {
            format!(
                "{what}: element {i}: got {}, want {} (g {}, mask {m}, saved {}), |diff| \
                 {diff:e} > tol {tol:e}",
                got[i], want[i], g[i], saved[i]
            )
        })?;
        if m == 0.0 || (act == Activation::Relu && saved[i] <= 0.0) {
            ensure(got[i] == 0.0, || {
                format!("{what}: element {i} must be exactly 0, got {}", got[i])
            })?;
            zeros += 1;
        }
        diffs.push(diff);
        tols.push(tol);
    }
    ensure(zeros > 0, || format!("{what}: the mask dropped nothing"))?;
    record_within(worst, &format!("{what} ({zeros} exactly 0)"), &diffs, &tols)
}

/// (batch, h, w, cin, cout, conv): kernels 3 and 5, stride 1 and 2,
/// asymmetric padding; K = 27, 100, 18 forward.
fn conv_cases() -> Vec<(usize, usize, usize, usize, usize, Conv2d)> {
    let asym = Padding {
        top: 2,
        bottom: 0,
        left: 1,
        right: 2,
    };
    vec![
        (2, 9, 11, 3, 5, Conv2d::new(3, 3, 1, Padding::uniform(1))),
        (
            2,
            11,
            10,
            4,
            7,
            Conv2d::new(5, 5, 2, Padding::same(11, 5, 2)),
        ),
        (1, 7, 9, 2, 9, Conv2d::new(3, 3, 2, asym)),
    ]
}

/// Small tiles for the forced mains: every shape here spans several
/// (ragged) tiles, and the cases share kernels (a kernel per tile and
/// epilogue: lavapipe compiles each, the default tiles' unrolled code
/// taking seconds; the default configs run elsewhere in this file).
const TILED: Tile = Tile::new(32, 16, 8, 4, 2);
const DIRECT: Tile = Tile::new(16, 8, 4, 4, 2);
const SUBGROUP: Tile = Tile::new(32, 16, 4, 4, 8);

fn cfg(main: Main, splits: Option<u32>, col2im: bool) -> GemmConfig {
    GemmConfig {
        main: Some(main),
        tile: Some(match main {
            Main::Tiled => TILED,
            Main::Direct => DIRECT,
            Main::Subgroup => SUBGROUP,
        }),
        col2im: Some(col2im),
        splits,
    }
}

/// Every main, each unsplit (Some(1): the GEMM's store applies the
/// epilogue), split in three (the reduction applies it) and by policy.
const MAIN_SPLITS: [(Main, Option<u32>); 9] = [
    (Main::Tiled, Some(1)),
    (Main::Tiled, Some(3)),
    (Main::Tiled, None),
    (Main::Direct, Some(1)),
    (Main::Direct, Some(3)),
    (Main::Direct, None),
    (Main::Subgroup, Some(1)),
    (Main::Subgroup, Some(3)),
    (Main::Subgroup, None),
];

/// Dispatches a recording of one GEMM must have under `splits` (None: not
/// checked): one unsplit, two (GEMM + reduction) split.
fn check_dispatches(what: &str, s: &Step, splits: Option<u32>) -> Result<(), Failure> {
    match splits {
        Some(1) => ensure(s.len() == 1, || {
            format!("{what}: unsplit is one GEMM dispatch, got {}", s.len())
        }),
        Some(_) => ensure(s.len() == 2, || {
            format!("{what}: split-K is GEMM + reduction, got {}", s.len())
        }),
        None => Ok(()),
    }
}

/// 1. conv2d forward: bias + each activation, and bias + LeakyReLU +
///    dropout (mask bit for bit), both mains, unsplit and split-K.
pub async fn conv2d_forward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let state = StepState::new(g, 1, 1, STEP)?;
    for (ci, (batch, h, w, cin, cout, conv)) in conv_cases().into_iter().enumerate() {
        let d = conv.dims("test", batch, h, w, cin, cout)?;
        let seed = 100 + 10 * ci as u64;
        let x = uniform(batch * h * w * cin, -1.0, 1.0, seed);
        let wt = uniform(conv.kh * conv.kw * cin * cout, -1.0, 1.0, seed + 1);
        let b = uniform(cout, -1.0, 1.0, seed + 2);
        let (xg, wg, bg) = (
            tensor(g, &d.x_shape(), &x, "x")?,
            tensor(g, &d.w_shape(), &wt, "w")?,
            tensor(g, &[cout], &b, "b")?,
        );
        let pre = conv2d::forward_cpu(&d, &to_f64(&x), &to_f64(&wt), Some(&to_f64(&b)));
        let k = conv.kh * conv.kw * cin;
        let err = |v: f64| atol(k) + RTOL * v.abs();
        let ny: usize = d.y_shape().iter().product();
        let rng = Philox::new(4242 + ci as u64, 3);
        let want_mask = dropout_mask_cpu(rng, STEP, ny, RATE);
        for (main, splits) in MAIN_SPLITS.into_iter().filter(|c| runs_here(g, c.0)) {
            let c = cfg(main, splits, false);
            let tag = format!(
                "{main:?} splits={splits:?} {conv:?} x={:?} cout={cout}",
                d.x_shape()
            );
            let mut s = Step::new("conv forward epilogues");
            let op = "conv2d_epilogue_test";
            let mut outs = Vec::new();
            for act in ACTS {
                let y = poisoned(g, &d.y_shape(), "y")?;
                let f = Fused {
                    bias: Some((&bg, 0)),
                    epi: Epilogue::act(act),
                    bias_grad: None,
                };
                let mut si = Step::new("one");
                let sc = conv2d::record_forward(g, &mut si, op, &d, &xg, &wg, &f, &y, &c)?;
                check_dispatches(&format!("{tag} {act:?}"), &si, splits)?;
                si.retain(sc.tensors);
                s.extend(si);
                outs.push((act, y));
            }
            let y = poisoned(g, &d.y_shape(), "y (dropout)")?;
            let mask = poisoned(g, &d.y_shape(), "mask")?;
            let leaky = Activation::LeakyRelu(ALPHA);
            let f = Fused {
                bias: Some((&bg, 0)),
                epi: Epilogue {
                    act: Some(leaky),
                    dropout: Some(Dropout {
                        rng,
                        rate: RATE,
                        counters: &state.counters,
                        mask: &mask,
                    }),
                    ..Epilogue::NONE
                },
                bias_grad: None,
            };
            let mut si = Step::new("one");
            let sc = conv2d::record_forward(g, &mut si, op, &d, &xg, &wg, &f, &y, &c)?;
            check_dispatches(&format!("{tag} dropout"), &si, splits)?;
            si.retain(sc.tensors);
            s.extend(si);
            run(g, &[&s])?;
            for (act, y) in &outs {
                check_forward(
                    &mut worst,
                    &format!("conv2d_forward +bias {act:?} {tag}"),
                    *act,
                    &read(g, y).await?,
                    &pre,
                    &err,
                    None,
                )?;
            }
            let got_mask = read(g, &mask).await?;
            worst.equal(
                &format!("conv2d_forward dropout mask {tag}"),
                &bits(&got_mask),
                &bits(&want_mask),
            )?;
            let kept = got_mask.iter().filter(|&&m| m != 0.0).count();
            ensure(kept > 0 && kept < ny, || {
                format!("{tag}: mask keeps {kept} of {ny}")
            })?;
            ensure(
                got_mask.iter().all(|&m| m == 0.0 || m == keep_scale(RATE)),
                || format!("{tag}: a mask value other than 0 and 1/(1-p)"),
            )?;
            check_forward(
                &mut worst,
                &format!("conv2d_forward +bias leaky+dropout {tag}"),
                leaky,
                &read(g, &y).await?,
                &pre,
                &err,
                Some(&want_mask),
            )?;
        }
    }
    worst.done_on(g)
}

/// 2. Transposed conv forward (conv2d::record_backward_data) with bias +
///    tanh, and bias + LeakyReLU + dropout, by stride phases and by GEMM +
///    col2im (each applying the epilogue in its last kernel).
pub async fn conv_transpose_forward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let state = StepState::new(g, 1, 1, STEP)?;
    // (batch, hi, wi, ci_t, co_t, convT)
    let cases = [
        (
            2,
            5,
            5,
            6,
            3,
            ConvTranspose2d::new(5, 5, 2, Padding::same(10, 5, 2), 10, 10),
        ),
        (
            1,
            7,
            6,
            5,
            9,
            ConvTranspose2d::new(3, 3, 1, Padding::uniform(1), 7, 6),
        ),
        (
            2,
            4,
            5,
            3,
            4,
            ConvTranspose2d::new(3, 3, 2, Padding::valid(), 9, 11),
        ),
    ];
    let configs = [
        (Main::Tiled, None, false),
        (Main::Tiled, None, true),
        (Main::Direct, None, false),
        (Main::Direct, None, true),
        (Main::Direct, Some(3), false),
        (Main::Tiled, Some(3), true),
        (Main::Subgroup, None, false),
        (Main::Subgroup, Some(3), true),
    ];
    let configs = configs
        .into_iter()
        .filter(|c| runs_here(g, c.0))
        .collect::<Vec<_>>();
    for (ci, (batch, hi, wi, ci_t, co_t, ct)) in cases.into_iter().enumerate() {
        let d = ct.dims("test", batch, hi, wi, ci_t, co_t)?;
        let seed = 200 + 10 * ci as u64;
        // the transposed conv's input is the adjoint conv's y
        let x = uniform(d.y_shape().iter().product(), -1.0, 1.0, seed);
        let wt = uniform(d.w_shape().iter().product(), -1.0, 1.0, seed + 1);
        let b = uniform(co_t, -1.0, 1.0, seed + 2);
        let (xg, wg, bg) = (
            tensor(g, &d.y_shape(), &x, "x")?,
            tensor(g, &d.w_shape(), &wt, "w")?,
            tensor(g, &[co_t], &b, "b")?,
        );
        let pre = conv_transpose2d::forward_cpu(&d, &to_f64(&x), &to_f64(&wt), Some(&to_f64(&b)));
        let k = d.conv.kh * d.conv.kw * ci_t;
        let err = |v: f64| atol(k) + RTOL * v.abs();
        let ny: usize = d.x_shape().iter().product();
        let rng = Philox::new(777 + ci as u64, 11);
        let want_mask = dropout_mask_cpu(rng, STEP, ny, RATE);
        for &(main, splits, col2im) in &configs {
            let c = cfg(main, splits, col2im);
            let tag = format!(
                "{main:?} splits={splits:?} col2im={col2im} {ct:?} x={:?}",
                d.y_shape()
            );
            let op = "conv_transpose_epilogue_test";
            let y = poisoned(g, &d.x_shape(), "y (tanh)")?;
            let y2 = poisoned(g, &d.x_shape(), "y (leaky+dropout)")?;
            let mask = poisoned(g, &d.x_shape(), "mask")?;
            let leaky = Activation::LeakyRelu(ALPHA);
            let f1 = Fused {
                bias: Some((&bg, 0)),
                epi: Epilogue::act(Activation::Tanh),
                bias_grad: None,
            };
            let f2 = Fused {
                bias: Some((&bg, 0)),
                epi: Epilogue {
                    act: Some(leaky),
                    dropout: Some(Dropout {
                        rng,
                        rate: RATE,
                        counters: &state.counters,
                        mask: &mask,
                    }),
                    ..Epilogue::NONE
                },
                bias_grad: None,
            };
            let mut s = Step::new("convT forward epilogues");
            let s1 = conv2d::record_backward_data(g, &mut s, op, &d, &xg, &wg, &f1, &y, &c)?;
            let n1 = s.len();
            let s2 = conv2d::record_backward_data(g, &mut s, op, &d, &xg, &wg, &f2, &y2, &c)?;
            // col2im: a GEMM (+ reduction) then the gather
            if col2im {
                ensure(n1 >= 2, || {
                    format!("{tag}: col2im records GEMM + col2im, got {n1}")
                })?;
            }
            s.retain(s1.tensors);
            s.retain(s2.tensors);
            run(g, &[&s])?;
            check_forward(
                &mut worst,
                &format!("conv_transpose_forward +bias Tanh {tag}"),
                Activation::Tanh,
                &read(g, &y).await?,
                &pre,
                &err,
                None,
            )?;
            worst.equal(
                &format!("conv_transpose_forward dropout mask {tag}"),
                &bits(&read(g, &mask).await?),
                &bits(&want_mask),
            )?;
            check_forward(
                &mut worst,
                &format!("conv_transpose_forward +bias leaky+dropout {tag}"),
                leaky,
                &read(g, &y2).await?,
                &pre,
                &err,
                Some(&want_mask),
            )?;
        }
    }
    worst.done_on(g)
}

/// 3a. conv2d backward data ending in the saved dropout mask and each
///     activation's derivative, both mains, unsplit and split-K, by phases;
///     and by col2im.
pub async fn conv2d_backward_data(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let mut configs: Vec<(Main, Option<u32>, bool)> =
        MAIN_SPLITS.iter().map(|&(m, s)| (m, s, false)).collect();
    configs.push((Main::Direct, None, true));
    configs.push((Main::Tiled, Some(3), true));
    configs.push((Main::Subgroup, None, true));
    configs.retain(|c| runs_here(g, c.0));
    for (ci, (batch, h, w, cin, cout, conv)) in conv_cases().into_iter().enumerate() {
        let d = conv.dims("test", batch, h, w, cin, cout)?;
        let seed = 300 + 20 * ci as u64;
        let nx: usize = d.x_shape().iter().product();
        let dy = uniform(d.y_shape().iter().product(), -1.0, 1.0, seed);
        let wt = uniform(d.w_shape().iter().product(), -1.0, 1.0, seed + 1);
        let (dyg, wg) = (
            tensor(g, &d.y_shape(), &dy, "dy")?,
            tensor(g, &d.w_shape(), &wt, "w")?,
        );
        let gv = conv2d::backward_data_cpu(&d, &to_f64(&dy), &to_f64(&wt));
        let k = conv.kh * conv.kw * cout;
        let mask = dropout_mask_cpu(Philox::new(99 + ci as u64, 2), 5, nx, RATE);
        let mg = tensor(g, &d.x_shape(), &mask, "mask")?;
        let mut saved: Vec<(Activation, Vec<f32>, Tensor)> = Vec::new();
        for (j, &act) in ACTS.iter().enumerate() {
            let pre = uniform(nx, -3.0, 3.0, seed + 2 + j as u64);
            let y = saved_output(act, &pre, &mask);
            let yt = tensor(g, &d.x_shape(), &y, "saved y")?;
            saved.push((act, y, yt));
        }
        for &(main, splits, col2im) in &configs {
            let c = cfg(main, splits, col2im);
            let tag = format!(
                "{main:?} splits={splits:?} col2im={col2im} {conv:?} x={:?} cout={cout}",
                d.x_shape()
            );
            let op = "conv2d_backward_data_epilogue_test";
            let mut s = Step::new("conv backward data epilogues");
            let mut outs = Vec::new();
            for (act, _, yt) in &saved {
                let dx = poisoned(g, &d.x_shape(), "dx")?;
                let f = Fused::epi(Epilogue {
                    dmask: Some(&mg),
                    dact: Some((*act, yt)),
                    ..Epilogue::NONE
                });
                let mut si = Step::new("one");
                let sc = conv2d::record_backward_data(g, &mut si, op, &d, &dyg, &wg, &f, &dx, &c)?;
                if !col2im {
                    check_dispatches(&format!("{tag} {act:?}"), &si, splits)?;
                }
                si.retain(sc.tensors);
                s.extend(si);
                outs.push(dx);
            }
            run(g, &[&s])?;
            for ((act, y, _), dx) in saved.iter().zip(&outs) {
                check_backward(
                    &mut worst,
                    &format!("conv2d_backward_data dmask+d{act:?} {tag}"),
                    *act,
                    &read(g, dx).await?,
                    &gv,
                    atol(k),
                    &mask,
                    y,
                )?;
            }
        }
    }
    worst.done_on(g)
}

/// 3b. dense backward data (dense_backward_data_fused, the policy's
///     choices) with dmask + each dact: an unsplit case (K = 13) and one the
///     policy splits (K = 601 on one output tile: splits of >= 256), the
///     same output shape (so the same tile and kernels).
pub async fn dense_backward_data(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let mut lens = Vec::new();
    for (ci, &(batch, fin, fout)) in [(3usize, 37usize, 13usize), (3, 37, 601)]
        .iter()
        .enumerate()
    {
        let seed = 400 + 20 * ci as u64;
        let dy = uniform(batch * fout, -1.0, 1.0, seed);
        let wt = uniform(fin * fout, -1.0, 1.0, seed + 1);
        let (dyg, wg) = (
            tensor(g, &[batch, fout], &dy, "dy")?,
            tensor(g, &[fin, fout], &wt, "w")?,
        );
        let gv = dense::dense_backward_data_cpu(&to_f64(&dy), &to_f64(&wt), batch, fin, fout);
        let nx = batch * fin;
        let mask = dropout_mask_cpu(Philox::new(55 + ci as u64, 4), 1, nx, RATE);
        let mg = tensor(g, &[batch, fin], &mask, "mask")?;
        for (j, act) in ACTS.into_iter().enumerate() {
            let pre = uniform(nx, -3.0, 3.0, seed + 2 + j as u64);
            let y = saved_output(act, &pre, &mask);
            let yt = tensor(g, &[batch, fin], &y, "saved y")?;
            let dx = poisoned(g, &[batch, fin], "dx")?;
            let epi = Epilogue {
                dmask: Some(&mg),
                dact: Some((act, &yt)),
                ..Epilogue::NONE
            };
            let mut s = Step::new("dense backward data");
            let sc = dense::dense_backward_data_fused(g, &mut s, &dyg, &wg, &epi, &dx)?;
            lens.push(s.len());
            s.retain(sc.tensors);
            run(g, &[&s])?;
            check_backward(
                &mut worst,
                &format!(
                    "dense_backward_data dmask+d{act:?} [{batch}, {fin}] <- [{batch}, {fout}]"
                ),
                act,
                &read(g, &dx).await?,
                &gv,
                atol(fout),
                &mask,
                &y,
            )?;
        }
    }
    // both stores covered: the GEMM's (one dispatch) and the reduction's
    ensure(lens.contains(&1) && lens.iter().any(|&n| n >= 2), || {
        format!(
            "dispatch counts {lens:?}: the cases no longer cover both the unsplit and the \
             split-K epilogue"
        )
    })?;
    worst.done_on(g)
}

/// Split `dwb` into (dw, db) and compare both with the references.
fn check_dwb(
    worst: &mut Worst,
    what: &str,
    dwb: &[f32],
    want_dw: &[f32],
    want_db: &[f32],
    kw: usize,
    kb: usize,
) -> Result<(), Failure> {
    ensure(dwb.len() == want_dw.len() + want_db.len(), || {
        format!(
            "{what}: {} values, want {} + {}",
            dwb.len(),
            want_dw.len(),
            want_db.len()
        )
    })?;
    let (dw, db) = dwb.split_at(want_dw.len());
    worst.close(&format!("{what} dw"), dw, want_dw, atol(kw), RTOL)?;
    worst.close(&format!("{what} db"), db, want_db, atol(kb), RTOL)
}

/// 4a. conv2d weight + bias gradient in one output: Conv2d::
///     backward_weights_bias (policy) and record_backward_weights with the
///     bias gradient on side B under forced mains and splits.
pub async fn conv2d_backward_weights_bias(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (ci, (batch, h, w, cin, cout, conv)) in conv_cases().into_iter().enumerate() {
        let d = conv.dims("test", batch, h, w, cin, cout)?;
        let seed = 500 + 10 * ci as u64;
        let x = uniform(d.x_shape().iter().product(), -1.0, 1.0, seed);
        let dy = uniform(d.y_shape().iter().product(), -1.0, 1.0, seed + 1);
        let (xg, dyg) = (
            tensor(g, &d.x_shape(), &x, "x")?,
            tensor(g, &d.y_shape(), &dy, "dy")?,
        );
        let nw: usize = d.w_shape().iter().product();
        let rows = batch * d.oh * d.ow;
        let want_dw = conv2d::backward_weights_cpu(&d, &x, &dy);
        let want_db = bias_grad_cpu(&dy, cout);
        let tag = format!("{conv:?} x={:?} cout={cout}", d.x_shape());
        let dw = Tensor::zeros(g, &d.w_shape(), "dw (shape)")?;
        let dwb = poisoned(g, &[nw + cout], "dw|db")?;
        let mut s = Step::new("conv wgrad+bias");
        let sc = conv.backward_weights_bias(g, &mut s, &xg, &dyg, &dw, &dwb)?;
        s.retain(sc.tensors);
        run(g, &[&s])?;
        check_dwb(
            &mut worst,
            &format!("Conv2d::backward_weights_bias {tag}"),
            &read(g, &dwb).await?,
            &want_dw,
            &want_db,
            rows,
            rows,
        )?;
        for (main, splits) in MAIN_SPLITS.into_iter().filter(|c| runs_here(g, c.0)) {
            let bgr = BiasGrad {
                side: DySide::B,
                rows,
                cols: cout,
                off: nw,
            };
            let dwb = poisoned(g, &[nw + cout], "dw|db")?;
            let mut s = Step::new("conv wgrad+bias");
            let op = "conv2d_backward_weights_bias_test";
            let c = cfg(main, splits, false);
            let sc =
                conv2d::record_backward_weights(g, &mut s, op, &d, &xg, &dyg, &dwb, Some(bgr), &c)?;
            let tag = format!("{main:?} splits={splits:?} {tag}");
            check_dispatches(&tag, &s, splits)?;
            s.retain(sc.tensors);
            run(g, &[&s])?;
            check_dwb(
                &mut worst,
                &format!("conv2d record_backward_weights +bias_grad {tag}"),
                &read(g, &dwb).await?,
                &want_dw,
                &want_db,
                rows,
                rows,
            )?;
        }
    }
    worst.done_on(g)
}

/// 4b. Transposed conv (bias gradient from the A side: dy is the adjoint
///     conv's x) and dense weight + bias gradient in one output.
pub async fn conv_transpose_and_dense_backward_weights_bias(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (ci, (batch, hi, wi, ci_t, co_t, ct)) in [
        (
            2,
            5,
            5,
            6,
            3,
            ConvTranspose2d::new(5, 5, 2, Padding::same(10, 5, 2), 10, 10),
        ),
        (
            3,
            4,
            5,
            3,
            5,
            ConvTranspose2d::new(3, 3, 2, Padding::valid(), 9, 11),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let d: ConvDims = ct.dims("test", batch, hi, wi, ci_t, co_t)?;
        let seed = 600 + 10 * ci as u64;
        let x = uniform(d.y_shape().iter().product(), -1.0, 1.0, seed);
        let dy = uniform(d.x_shape().iter().product(), -1.0, 1.0, seed + 1);
        let (xg, dyg) = (
            tensor(g, &d.y_shape(), &x, "x")?,
            tensor(g, &d.x_shape(), &dy, "dy")?,
        );
        let nw: usize = d.w_shape().iter().product();
        let dw = Tensor::zeros(g, &d.w_shape(), "dw (shape)")?;
        let dwb = poisoned(g, &[nw + co_t], "dw|db")?;
        let mut s = Step::new("convT wgrad+bias");
        let sc = ct.backward_weights_bias(g, &mut s, &xg, &dyg, &dw, &dwb)?;
        s.retain(sc.tensors);
        run(g, &[&s])?;
        let rows = batch * ct.out_h * ct.out_w;
        check_dwb(
            &mut worst,
            &format!(
                "ConvTranspose2d::backward_weights_bias {ct:?} x={:?}",
                d.y_shape()
            ),
            &read(g, &dwb).await?,
            &conv_transpose2d::backward_weights_cpu(&d, &x, &dy),
            &bias_grad_cpu(&dy, co_t),
            rows,
            rows,
        )?;
    }
    for (ci, &(batch, fin, fout)) in [(67usize, 9usize, 5usize), (300, 3, 2), (7, 37, 70)]
        .iter()
        .enumerate()
    {
        let seed = 700 + 10 * ci as u64;
        let x = uniform(batch * fin, -1.0, 1.0, seed);
        let dy = uniform(batch * fout, -1.0, 1.0, seed + 1);
        let (xg, dyg) = (
            tensor(g, &[batch, fin], &x, "x")?,
            tensor(g, &[batch, fout], &dy, "dy")?,
        );
        let dw = Tensor::zeros(g, &[fin, fout], "dw (shape)")?;
        let dwb = poisoned(g, &[fin * fout + fout], "dw|db")?;
        let mut s = Step::new("dense wgrad+bias");
        let sc = dense::dense_backward_weights_bias(g, &mut s, &xg, &dyg, &dw, &dwb)?;
        s.retain(sc.tensors);
        run(g, &[&s])?;
        check_dwb(
            &mut worst,
            &format!("dense_backward_weights_bias [{batch}, {fin}] -> {fout}"),
            &read(g, &dwb).await?,
            &dense::dense_backward_weights_cpu(&x, &dy, batch, fin, fout),
            &bias_grad_cpu(&dy, fout),
            batch,
            batch,
        )?;
    }
    worst.done_on(g)
}

/// 5. Pool backwards ending in dmask + dact(LeakyReLU) and dact(ReLU), the
///    saved tensor being the pool's input (the previous activation's
///    output): bit for bit.
pub async fn pool_backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let leaky = Activation::LeakyRelu(ALPHA);
    for (k, d) in [[2usize, 5, 7, 6], [2, 7, 9, 5], [1, 3, 2, 3]]
        .iter()
        .enumerate()
    {
        let n: usize = d.iter().product();
        let seed = 800 + 10 * k as u64;
        // channel 0 all negative: its ReLU outputs are 0, so the pooled
        // maximum is 0 and dact must zero the gradient routed to it
        let pre: Vec<f32> = uniform(n, -2.0, 2.0, seed)
            .into_iter()
            .enumerate()
            .map(|(i, v)| if i % d[3] == 0 { -v.abs() - 0.01 } else { v })
            .collect();
        let mask = dropout_mask_cpu(Philox::new(31 + k as u64, 6), 2, n, RATE);
        for global in [true, false] {
            for with_mask in [true, false] {
                let act = if with_mask { leaky } else { Activation::Relu };
                let x = if with_mask {
                    saved_output(act, &pre, &mask)
                } else {
                    act.forward_cpu(&pre)
                };
                let (_, arg) = if global {
                    pool::global_max_pool_cpu(&x, *d)
                } else {
                    pool::max_pool2x2_cpu(&x, *d)
                };
                let out_shape: Vec<usize> = if global {
                    vec![d[0], d[3]]
                } else {
                    pool::max_pool2x2_out_shape(d)?.to_vec()
                };
                let dy = uniform(arg.len(), -1.0, 1.0, seed + 1);
                let argt = Tensor::from_u32(g, &out_shape, &arg, "argmax")?;
                let (dyt, xt, mt) = (
                    tensor(g, &out_shape, &dy, "dy")?,
                    tensor(g, d, &x, "saved x")?,
                    tensor(g, d, &mask, "mask")?,
                );
                let dx = poisoned(g, d, "dx")?;
                let epi = Epilogue {
                    dmask: with_mask.then_some(&mt),
                    dact: Some((act, &xt)),
                    ..Epilogue::NONE
                };
                let mut s = Step::new("pool backward");
                if global {
                    pool::global_max_pool_backward_fused(g, &mut s, &argt, &dyt, &dx, &epi)?;
                } else {
                    pool::max_pool2x2_backward_fused(g, &mut s, &argt, &dyt, &dx, &epi)?;
                }
                run(g, &[&s])?;
                let routed = pool::max_pool_backward_cpu(&arg, &dy, n);
                let gm: Vec<f32> = if with_mask {
                    routed.iter().zip(&mask).map(|(a, m)| a * m).collect()
                } else {
                    routed
                };
                let want = act.backward_cpu(&x, &gm);
                let got = read(g, &dx).await?;
                let name = if global {
                    "global_max_pool"
                } else {
                    "max_pool2x2"
                };
                let what = format!("{name}_backward_fused {d:?} mask={with_mask} d{act:?}");
                worst.close(&what, &got, &want, 0.0, 0.0)?;
                // the epilogue did something: some routed gradient was
                // scaled by alpha, dropped, or (ReLU, channel 0) zeroed
                let changed = got
                    .iter()
                    .zip(pool::max_pool_backward_cpu(&arg, &dy, n))
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                ensure(changed > 0, || {
                    format!("{what}: the epilogue changed nothing")
                })?;
            }
        }
    }
    worst.done_on(g)
}

/// 6. Batch norm with a fused LeakyReLU (and ReLU): training and eval
///    forward vs the activation of the CPU batch norm.
pub async fn batch_norm(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let eps = 1e-3f64;
    let cases: [(&[usize], Activation); 3] = [
        (&[3, 7, 9, 5], Activation::LeakyRelu(ALPHA)),
        (&[9, 37], Activation::LeakyRelu(ALPHA)),
        (&[2, 5, 3, 19], Activation::Relu),
    ];
    for (k, (shape, act)) in cases.into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let c = shape[shape.len() - 1];
        let seed = 900 + 10 * k as u64;
        let x = uniform(n, -2.0, 3.0, seed);
        let gamma = uniform(c, 0.5, 1.5, seed + 1);
        let beta = uniform(c, -0.5, 0.5, seed + 2);
        let rmean = uniform(c, -1.0, 1.0, seed + 3);
        let rvar = uniform(c, 0.5, 2.0, seed + 4);
        let config = BatchNormConfig {
            act: Some(act),
            update_running: false,
            ..BatchNormConfig::default()
        };
        let bn = BatchNorm::new(g, shape, config)?;
        let (gt, bt, rmt, rvt) = (
            tensor(g, &[c], &gamma, "gamma")?,
            tensor(g, &[c], &beta, "beta")?,
            tensor(g, &[c], &rmean, "running_mean")?,
            tensor(g, &[c], &rvar, "running_var")?,
        );
        let params = BnParams {
            gamma: &gt,
            beta: &bt,
            running_mean: &rmt,
            running_var: &rvt,
        };
        let (mean, inv) = (poisoned(g, &[c], "mean")?, poisoned(g, &[c], "inv_std")?);
        let saved = BnSaved {
            mean: &mean,
            inv_std: &inv,
        };
        let xt = tensor(g, shape, &x, "x")?;
        let (y, ye) = (poisoned(g, shape, "y")?, poisoned(g, shape, "y eval")?);
        let mut s = Step::new("bn act");
        bn.forward_train(g, &mut s, &xt, &params, &saved, &y)?;
        bn.forward_eval(g, &mut s, &xt, &params, &ye)?;
        run(g, &[&s])?;
        let cpu = forward_train_cpu(&to_f64(&x), c, &to_f64(&gamma), &to_f64(&beta), eps);
        let tag = format!("batch_norm {shape:?} {act:?}");
        check_forward(
            &mut worst,
            &format!("{tag} train"),
            act,
            &read(g, &y).await?,
            &cpu.y,
            &|v| 2e-5 + RTOL * v.abs(),
            None,
        )?;
        let want_mean: Vec<f32> = cpu.mean.iter().map(|&v| v as f32).collect();
        worst.close(
            &format!("{tag} mean"),
            &read(g, &mean).await?,
            &want_mean,
            2e-5,
            RTOL,
        )?;
        let pre_eval = forward_eval_cpu(
            &to_f64(&x),
            c,
            &to_f64(&gamma),
            &to_f64(&beta),
            &to_f64(&rmean),
            &to_f64(&rvar),
            eps,
        );
        check_forward(
            &mut worst,
            &format!("{tag} eval"),
            act,
            &read(g, &ye).await?,
            &pre_eval,
            &|v| 1e-5 + 1e-5 * v.abs(),
            None,
        )?;
    }
    worst.done_on(g)
}

/// One of each weight layer, built from `seed`, with random values written
/// into every parameter's value, gradient and Adam moments (v >= 0).
struct Layers {
    dense: Layer<vae_vs_gan::nn::Dense>,
    conv: Layer<Conv2d>,
    convt: Layer<ConvTranspose2d>,
}

fn build_layers(g: &Gpu, seed: u64) -> Result<Layers, Failure> {
    let mut r = rng(seed);
    let dense = Layer::dense(g, &mut r, "fc", 37, 13, true, None, None)?;
    let conv = Layer::conv(g, &mut r, "conv", 3, 2, Padding::same(11, 3, 2), 3, 6, true)?;
    let convt = Layer::conv_transpose_same(g, &mut r, "convt", 3, 2, 5, 4, 3, true)?;
    let l = Layers { dense, conv, convt };
    for (i, p) in l.params().into_iter().enumerate() {
        let n = p.numel();
        let s = 10_000 + 10 * i as u64;
        if p.name.ends_with(".bias") {
            p.value.write_f32(g, &uniform(n, -0.5, 0.5, s))?;
        }
        p.grad.write_f32(g, &uniform(n, -1.0, 1.0, s + 1))?;
        p.m.write_f32(g, &uniform(n, -0.1, 0.1, s + 2))?;
        p.v.write_f32(g, &uniform(n, 0.0, 0.01, s + 3))?;
    }
    Ok(l)
}

impl Layers {
    fn params(&self) -> Vec<&Param> {
        let mut v = self.dense.params();
        v.extend(self.conv.params());
        v.extend(self.convt.params());
        v
    }
}

/// CPU references of a layer: forward (x, w, b), backward weights (x, dy)
/// and backward data (dy, w).
type FwdRef<'a> = &'a dyn Fn(&[f64], &[f64], &[f64]) -> Vec<f64>;
type WgradRef<'a> = &'a dyn Fn(&[f32], &[f32]) -> Vec<f32>;
type DgradRef<'a> = &'a dyn Fn(&[f64], &[f64]) -> Vec<f64>;

async fn read_param(g: &Gpu, p: &Param) -> Result<[Vec<f32>; 4], Failure> {
    Ok([
        read(g, &p.value).await?,
        read(g, &p.grad).await?,
        read(g, &p.m).await?,
        read(g, &p.v).await?,
    ])
}

/// Forward (relu epilogue) and backward (dx with dact(relu) of the input)
/// of one layer `a` (unpacked) and its twin `b` (packed), compared with each
/// other and with the CPU. `x` is the input (a ReLU output), `dy` the
/// upstream gradient; `fwd`/`wgrad`/`dgrad` the CPU references, K the
/// forward, backward-weights and backward-data reduction lengths.
#[allow(clippy::too_many_arguments)]
async fn check_twins<Op: WeightOp>(
    g: &Gpu,
    worst: &mut Worst,
    what: &str,
    a: &Layer<Op>,
    b: &Layer<Op>,
    x_shape: &[usize],
    y_shape: &[usize],
    seed: u64,
    fwd: FwdRef<'_>,
    wgrad: WgradRef<'_>,
    dgrad: DgradRef<'_>,
    (kf, kw, kd): (usize, usize, usize),
) -> Result<(), Failure> {
    let nx: usize = x_shape.iter().product();
    let ny: usize = y_shape.iter().product();
    let x = Activation::Relu.forward_cpu(&uniform(nx, -1.0, 1.0, seed));
    let dy = uniform(ny, -1.0, 1.0, seed + 1);
    let (xt, dyt) = (tensor(g, x_shape, &x, "x")?, tensor(g, y_shape, &dy, "dy")?);
    let mut outs = Vec::new();
    for l in [a, b] {
        let y = poisoned(g, y_shape, "y")?;
        let dx = poisoned(g, x_shape, "dx")?;
        for p in l.params() {
            p.grad.poison(g);
        }
        let mut s = Step::new("layer");
        l.forward_fused(g, &mut s, &xt, &y, Epilogue::act(Activation::Relu))?;
        let epi = Epilogue::dact(Activation::Relu, &xt);
        l.backward(g, &mut s, &xt, &dyt, Some((&dx, epi)))?;
        run(g, &[&s])?;
        let bias =
            l.b.as_ref()
                .ok_or_else(|| Failure(format!("{what}: the layer has no bias")))?;
        outs.push([
            read(g, &y).await?,
            read(g, &dx).await?,
            read(g, &l.w.grad).await?,
            read(g, &bias.grad).await?,
        ]);
    }
    let w = read(g, &a.w.value).await?;
    let a_bias =
        a.b.as_ref()
            .ok_or_else(|| Failure(format!("{what}: the layer has no bias")))?;
    let bv = read(g, &a_bias.value).await?;
    let names = ["y", "dx", "dw", "db"];
    let tols = [atol(kf), atol(kd), atol(kw), atol(kw)];
    for j in 0..4 {
        worst.close(
            &format!("{what} packed vs unpacked {}", names[j]),
            &outs[1][j],
            &outs[0][j],
            tols[j],
            RTOL,
        )?;
    }
    let pre = fwd(&to_f64(&x), &to_f64(&w), &to_f64(&bv));
    for (k, out) in outs.iter().enumerate() {
        let which = ["unpacked", "packed"][k];
        check_forward(
            worst,
            &format!("{what} {which} y = relu(op + b)"),
            Activation::Relu,
            &out[0],
            &pre,
            &|v| atol(kf) + RTOL * v.abs(),
            None,
        )?;
        let gx = dgrad(&to_f64(&dy), &to_f64(&w));
        let want_dx: Vec<f32> = Activation::Relu
            .backward_cpu(&to_f64(&x), &gx)
            .iter()
            .map(|&v| v as f32)
            .collect();
        worst.close(
            &format!("{what} {which} dx"),
            &out[1],
            &want_dx,
            atol(kd),
            RTOL,
        )?;
        worst.close(
            &format!("{what} {which} dw"),
            &out[2],
            &wgrad(&x, &dy),
            atol(kw),
            RTOL,
        )?;
        let nb = out[3].len();
        worst.close(
            &format!("{what} {which} db"),
            &out[3],
            &bias_grad_cpu(&dy, nb),
            atol(kw),
            RTOL,
        )?;
    }
    Ok(())
}

/// 7. Layers packed into a ParamArena vs their unpacked twins (same seed):
///    packing keeps every value bit for bit; forward (relu epilogue) and
///    backward (weight, bias through the fused bias gradient, dx with
///    dact) equal within tolerance; one Adam update over the whole arena
///    matches the CPU and leaves the padding between runs zero.
pub async fn packed_layers(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let a = build_layers(g, 41)?;
    let mut b = build_layers(g, 41)?;
    let mut before: Vec<[Vec<f32>; 4]> = Vec::new();
    for p in b.params() {
        before.push(read_param(g, p).await?);
    }
    let mut unpacked: Vec<[Vec<f32>; 4]> = Vec::new();
    for p in a.params() {
        unpacked.push(read_param(g, p).await?);
    }
    for (p, (x, y)) in b.params().iter().zip(before.iter().zip(&unpacked)) {
        for j in 0..4 {
            worst.equal(
                &format!("{}: twins before packing", p.name),
                &bits(&x[j]),
                &bits(&y[j]),
            )?;
        }
    }
    let arena = {
        let mut runs = b.dense.runs();
        runs.extend(b.conv.runs());
        runs.extend(b.convt.runs());
        ParamArena::pack(g, "twin", runs)?
    };
    // packing moved every tensor into the arena and kept its bits
    for (p, old) in b.params().into_iter().zip(&before) {
        ensure(p.value.same_buffer(&arena.value), || {
            format!("{} not in the arena", p.name)
        })?;
        ensure(p.grad.same_buffer(&arena.grad), || {
            format!("{}.grad not in the arena", p.name)
        })?;
        let now = read_param(g, p).await?;
        for (j, part) in ["value", "grad", "m", "v"].iter().enumerate() {
            worst.equal(
                &format!("{} {part} after packing", p.name),
                &bits(&now[j]),
                &bits(&old[j]),
            )?;
        }
    }
    for (name, w, bias) in [
        ("dense", &b.dense.w, &b.dense.b),
        ("conv", &b.conv.w, &b.conv.b),
        ("convt", &b.convt.w, &b.convt.b),
    ] {
        let bias = bias
            .as_ref()
            .ok_or_else(|| Failure(format!("{name}: no bias")))?;
        ensure(
            w.value.joined(&bias.value, "j").is_some() && w.grad.joined(&bias.grad, "j").is_some(),
            || format!("{name}: the bias does not follow the weight in the arena"),
        )?;
    }

    // dense 37 -> 13, batch 3
    check_twins(
        g,
        &mut worst,
        "Layer::dense",
        &a.dense,
        &b.dense,
        &[3, 37],
        &[3, 13],
        20,
        &|x, w, bb| dense::dense_forward_cpu(x, w, Some(bb), 3, 37, 13),
        &|x, dy| dense::dense_backward_weights_cpu(x, dy, 3, 37, 13),
        &|dy, w| dense::dense_backward_data_cpu(dy, w, 3, 37, 13),
        (37, 3, 13),
    )
    .await?;
    // conv 3x3 stride 2 same, 11x11x3 -> 6x6x6, batch 2
    let dc = a.conv.op.dims("test", 2, 11, 11, 3, 6)?;
    check_twins(
        g,
        &mut worst,
        "Layer::conv",
        &a.conv,
        &b.conv,
        &dc.x_shape(),
        &dc.y_shape(),
        30,
        &|x, w, bb| conv2d::forward_cpu(&dc, x, w, Some(bb)),
        &|x, dy| conv2d::backward_weights_cpu(&dc, x, dy),
        &|dy, w| conv2d::backward_data_cpu(&dc, dy, w),
        (27, 2 * 6 * 6, 9 * 6),
    )
    .await?;
    // transposed conv 3x3 stride 2 same, 5x5x4 -> 10x10x3, batch 2
    let dt = a.convt.op.dims("test", 2, 5, 5, 4, 3)?;
    check_twins(
        g,
        &mut worst,
        "Layer::conv_transpose_same",
        &a.convt,
        &b.convt,
        &dt.y_shape(),
        &dt.x_shape(),
        40,
        &|x, w, bb| conv_transpose2d::forward_cpu(&dt, x, w, Some(bb)),
        &|x, dy| conv_transpose2d::backward_weights_cpu(&dt, x, dy),
        &|dy, w| conv_transpose2d::backward_data_cpu(&dt, dy, w),
        (9 * 4, 2 * 10 * 10, 9 * 3),
    )
    .await?;

    // one Adam update over the whole arena (padding included)
    let len = arena.len();
    let mut covered = vec![false; len];
    for p in b.params() {
        let off = (p.value.offset() - arena.value.offset()) as usize / 4;
        ensure(off + p.numel() <= len, || {
            format!("{} runs past the arena", p.name)
        })?;
        for c in &mut covered[off..off + p.numel()] {
            ensure(!*c, || format!("{} overlaps another parameter", p.name))?;
            *c = true;
        }
    }
    let padding: Vec<usize> = (0..len).filter(|&i| !covered[i]).collect();
    ensure(!padding.is_empty(), || {
        format!("three runs of {len} values: the test needs padding between runs")
    })?;
    let parts = [&arena.value, &arena.grad, &arena.m, &arena.v];
    let mut host: Vec<Vec<f32>> = Vec::new();
    for t in parts {
        host.push(read(g, t).await?);
    }
    for (j, h) in host.iter().enumerate() {
        ensure(padding.iter().all(|&i| h[i].to_bits() == 0), || {
            format!("arena part {j}: padding not zero after packing and a backward")
        })?;
    }
    let [mut p, grad, mut m, mut v]: [Vec<f32>; 4] = host
        .try_into()
        .map_err(|_| Failure("the arena has four parts".into()))?;
    let value0 = p.clone();
    let state = StepState::new(g, 1, 1, 0)?;
    let config = AdamConfig::default();
    let adam = Adam::new(config)?;
    let mut s = Step::new("adam over the arena");
    adam.record_update(
        g,
        &mut s,
        &state.counters,
        &AdamTensors {
            param: &arena.value,
            grad: &arena.grad,
            m: &arena.m,
            v: &arena.v,
        },
    )?;
    run(g, &[&s])?;
    let mut after: Vec<Vec<f32>> = Vec::new();
    for t in parts {
        after.push(read(g, t).await?);
    }
    adam_update_cpu(&config, 1, &mut p, &grad, &mut m, &mut v);
    worst.close("adam over the arena: value", &after[0], &p, 1e-6, 1e-6)?;
    worst.close("adam over the arena: m", &after[2], &m, 1e-7, 1e-5)?;
    worst.close("adam over the arena: v", &after[3], &v, 1e-12, 1e-5)?;
    worst.equal(
        "adam must not write the gradients",
        &bits(&after[1]),
        &bits(&grad),
    )?;
    let params = covered.iter().filter(|&&c| c).count();
    let changed = (0..len)
        .filter(|&i| covered[i] && after[0][i] != value0[i])
        .count();
    ensure(2 * changed > params, || {
        format!("adam changed only {changed} of {params} parameter values")
    })?;
    for (j, h) in after.iter().enumerate() {
        let bad: Vec<usize> = padding
            .iter()
            .copied()
            .filter(|&i| h[i].to_bits() != 0)
            .collect();
        ensure(bad.is_empty(), || {
            format!("arena part {j}: padding elements {bad:?} not zero after one Adam update")
        })?;
    }
    worst.done_on(g)
}
