//! The GEMM autotuner: when a model is built on a device where
//! [`Gpu::autotune`] is on, each distinct GEMM shape times a handful of
//! candidate (main, tile, split-K) choices and keeps the fastest.
//!
//! - Candidates ([`candidates`]): the policy's default first, then split-K
//!   variants of it, the neighbouring tiles of its chain and the other main
//!   loop; at most [`MAX_CANDIDATES`], all drawn from tiles the numerics
//!   tests force ([`crate::ops::gemm::gpu_tiles`] on the GPU policy; the CPU
//!   policy only varies split-K of its default tile).
//! - Timing: on scratch tensors of the call's sizes (never the call's own:
//!   its output may alias live training state) with the plain epilogue (the
//!   bias gradient, which adds workgroups, is kept); one warm-up run, then
//!   [`REPS`] timed runs ([`Gpu::profile`]: GPU timestamps, or the wall
//!   clock where the device has none), the fastest run counting. The default
//!   stays unless a candidate beats it by [`MARGIN`] (timing noise must not
//!   flip choices, and so summation orders, between machines of one kind).
//! - Memory: the choice is stored in the device's tuning table
//!   ([`Gpu::set_tuned`], cached per adapter and driver), so a second run
//!   takes it without timing and computes the same bits. A stored choice
//!   that does not parse, fails [`crate::ops::gemm::Tile::check`] or is not
//!   among today's candidates for the shape is ignored with one warning and
//!   the shape is tuned again.

use std::sync::Mutex;

use crate::error::Result;
use crate::gpu::disk_cache::warn_once;
use crate::gpu::tune_table::TuneEvent;
use crate::gpu::{Gpu, Step, Tensor};
use crate::ops::epilogue::Epilogue;
use crate::ops::gemm::policy::{Choice, GemmConfig, GemmShape, Main, Policy, Tile, MIN_SPLIT_K};
use crate::ops::gemm::record::{record_choice, GemmCall};

/// Candidates timed per shape, the default included.
pub const MAX_CANDIDATES: usize = 6;

/// Timed runs per candidate after the warm-up.
pub const REPS: usize = 5;

/// How much faster than the default a candidate must be to replace it.
pub const MARGIN: f64 = 0.03;

/// What the tuner did on one device in this process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TuneStats {
    /// Shapes whose candidates were timed.
    pub timed: usize,
    /// Shapes whose choice came from the tuning table (this run's or a
    /// cached file's) without timing.
    pub cached: usize,
    /// (key, choice) of every shape resolved either way, in order.
    pub choices: Vec<(String, Choice)>,
}

/// Held while a shape is looked up and tuned: two recorders of one shape
/// time it once, and no two tunings time against each other.
static TUNING: Mutex<()> = Mutex::new(());

fn note(gpu: &Gpu, timed: bool, key: &str, choice: Choice) {
    gpu.note_tuned(TuneEvent {
        timed,
        key: key.to_string(),
        choice: choice.encode(),
    });
}

/// What the tuner did on `gpu`'s device in this process so far.
pub fn stats(gpu: &Gpu) -> TuneStats {
    let mut s = TuneStats::default();
    for e in gpu.tune_events() {
        if e.timed {
            s.timed += 1;
        } else {
            s.cached += 1;
        }
        if let Ok(c) = Choice::decode(&e.choice) {
            s.choices.push((e.key, c));
        }
    }
    s
}

/// The tuning table's key for `call` under `policy`: every size that
/// affects speed (variant sections, bias-gradient side and size, m, n, k,
/// slices, conv geometry) and the policy (`cpu`, `cpu+subgroups`, `gpu`);
/// not the epilogue (the tuner times without it) nor the op's name.
fn key(policy: Policy, call: &GemmCall) -> String {
    let bg = call.bias_grad.map_or("none".to_string(), |b| {
        format!("{:?}{}x{}", b.side, b.rows, b.cols)
    });
    let geo: Vec<String> = call.geo.words().iter().map(|w| w.to_string()).collect();
    format!(
        "gemm v1 {} {} bg {bg} m{} n{} k{} z{} geo {}",
        match (policy.cpu, policy.subgroups) {
            (true, true) => "cpu+subgroups",
            (true, false) => "cpu",
            (false, _) => "gpu",
        },
        call.sections.join("+"),
        call.m,
        call.n,
        call.k,
        call.slices,
        geo.join(",")
    )
}

/// The choices the tuner times for `shape` under `policy`, the policy's
/// default first, without duplicates, at most [`MAX_CANDIDATES`]:
/// 1. the default;
/// 2. its tile with split-K off (when it splits) or doubled, or with 2 and
///    4 splits (when it does not and K allows splits of [`MIN_SPLIT_K`]);
/// 3. GPU policy only: the next smaller and next larger tile of its chain
///    (each with the policy's splits), and the other main loop's tile
///    unless the output is <= 8 wide (there the tiled main holds a few
///    FMAs per barrier).
pub fn candidates(policy: Policy, shape: GemmShape) -> Vec<Choice> {
    let d = Choice::of(policy, shape, &GemmConfig::default());
    let mut v = vec![d];
    let mut push = |c: Choice| {
        if v.len() < MAX_CANDIDATES && !v.contains(&c) {
            v.push(c);
        }
    };
    let with_splits = |s: u32| Choice {
        splits: shape.effective_splits(d.tile, s),
        ..d
    };
    let k_blocks = shape.k.div_ceil(d.tile.bk as usize);
    if d.splits > 1 {
        push(with_splits(1));
        if k_blocks >= 2 * d.splits as usize {
            push(with_splits(2 * d.splits));
        }
    } else {
        for s in [2u32, 4] {
            if shape.k >= s as usize * MIN_SPLIT_K {
                push(with_splits(s));
            }
        }
    }
    if policy.cpu {
        return v;
    }
    let forced = |main: Main, tile: Tile| {
        let cfg = GemmConfig {
            main: Some(main),
            tile: Some(tile),
            ..GemmConfig::default()
        };
        Choice::of(policy, shape, &cfg)
    };
    let chain = Tile::gpu_chain(d.main, shape.m, shape.n);
    if let Some(i) = chain.iter().position(|t| *t == d.tile) {
        if let Some(&t) = chain.get(i + 1) {
            push(forced(d.main, t));
        }
        if let Some(&t) = i.checked_sub(1).and_then(|j| chain.get(j)) {
            push(forced(d.main, t));
        }
    }
    if shape.n > 8 {
        let other = match d.main {
            Main::Tiled => Main::Direct,
            Main::Direct | Main::Subgroup => Main::Tiled,
        };
        push(forced(other, Tile::gpu_auto(other, shape)));
    }
    v
}

/// The choice for `call` on `gpu`: the tuning table's when it holds a
/// valid one, else the fastest candidate, timed now and stored.
pub(crate) fn choose(gpu: &Gpu, call: &GemmCall) -> Result<Choice> {
    let policy = Policy::of(gpu);
    let shape = call.shape();
    let cands = candidates(policy, shape);
    let default = cands[0];
    let empty = call.a.numel() == 0 || call.b.numel() == 0 || call.out.numel() == 0;
    if cands.len() == 1 || empty || call.k >= 1 << 24 {
        // nothing to choose between, or a call record() refuses
        return Ok(default);
    }
    let _held = TUNING.lock().unwrap_or_else(|e| e.into_inner());
    let key = key(policy, call);
    if let Some(stored) = gpu.tuned(&key) {
        match Choice::decode(&stored) {
            Ok(c) if cands.contains(&c) => {
                note(gpu, false, &key, c);
                return Ok(c);
            }
            Ok(_) => warn_once(&format!(
                "ignoring the tuned GEMM choice {stored:?} for {key:?}: not a candidate \
                 for this shape (a foreign or older cache); tuning it again"
            )),
            Err(e) => warn_once(&format!(
                "ignoring the tuned GEMM choice for {key:?} ({e}); tuning it again"
            )),
        }
    }
    let Some(best) = time_candidates(gpu, call, &cands)? else {
        return Ok(default);
    };
    gpu.set_tuned(&key, &best.encode());
    note(gpu, true, &key, best);
    Ok(best)
}

/// Time every candidate of `call` on scratch tensors; the fastest, or the
/// default unless one beats it by [`MARGIN`]. `None` when the default
/// itself could not be timed (then nothing is stored).
fn time_candidates(gpu: &Gpu, call: &GemmCall, cands: &[Choice]) -> Result<Option<Choice>> {
    let a = Tensor::zeros(gpu, &[call.a.numel()], "autotune A")?;
    let b = Tensor::zeros(gpu, &[call.b.numel()], "autotune B")?;
    let out = Tensor::zeros(gpu, &[call.out.numel()], "autotune C")?;
    let scratch_call = GemmCall {
        a: &a,
        b: &b,
        out: &out,
        bias: None,
        bias_off: 0,
        epi: Epilogue::NONE,
        ..*call
    };
    // record every candidate first: their pipelines build on the pool side
    // by side (a GPU driver compiles each for 0.1-1 s), then time each
    let mut recorded = Vec::with_capacity(cands.len());
    for &c in cands {
        let mut step = Step::new("autotune");
        match record_choice(gpu, &mut step, &scratch_call, c) {
            Ok(scratch) => recorded.push((c, step, scratch)),
            Err(e) => skipped(c, call, &e),
        }
    }
    let mut times = Vec::with_capacity(cands.len());
    for (c, step, _scratch) in &recorded {
        match time_one(gpu, step) {
            Ok(t) => times.push((*c, t)),
            Err(e) => skipped(*c, call, &e),
        }
    }
    let Some(&(d, td)) = times.first().filter(|(c, _)| *c == cands[0]) else {
        return Ok(None);
    };
    let best = times
        .iter()
        .copied()
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .filter(|&(_, t)| t < td * (1.0 - MARGIN))
        .map_or(d, |(c, _)| c);
    Ok(Some(best))
}

fn skipped(c: Choice, call: &GemmCall, e: &crate::error::Error) {
    warn_once(&format!(
        "autotune: skipping {} for {}: {e}",
        c.encode(),
        call.op
    ))
}

/// Seconds of the fastest of [`REPS`] runs of `step`, after a warm-up run.
fn time_one(gpu: &Gpu, step: &Step) -> Result<f64> {
    gpu.run(&[step])?;
    let mut best = f64::INFINITY;
    for _ in 0..REPS {
        let t: f64 = gpu.profile(step)?.iter().map(|d| d.seconds).sum();
        best = best.min(t);
    }
    Ok(best)
}
