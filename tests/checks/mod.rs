//! The kernel checks that run in both places: natively in the `it` test
//! crate (each wrapped in a `#[test]` through [`pollster::block_on`]) and in
//! a browser (web/, awaited on the page's WebGPU). One implementation: a
//! check is an async function of the device that records an op, runs it on
//! random inputs and odd shapes, reads the outputs back with the `_async`
//! reads and compares them with the op's CPU reference.
//!
//! No check panics (a browser module aborts on a panic): every failure is a
//! [`Failure`], and `?` turns the library's errors into one. A check's
//! success is a line of figures: how close the worst element came to its
//! tolerance.
//!
//! Each op's module ends with `all`, the list the browser runs.
#![allow(dead_code)]

pub mod activation;
pub mod adam;
pub mod batch_norm;
pub mod bce;
pub mod clamp;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod copy;
pub mod dense;
pub mod dropout;
pub mod epilogue;
pub mod gan_step;
pub mod gather;
pub mod kl;
pub mod kl_mc;
pub mod pool;
pub mod reduce;
pub mod reparam;
pub mod rmsprop;
pub mod rng;
pub mod softmax_ce;
pub mod target_loss;
pub mod training;
pub mod vae_step;
pub mod whole_step;

use rand::{Rng, SeedableRng};
use vae_vs_gan::{Gpu, Step, Tensor};

/// Why a check failed: the first element out of tolerance, or an error
/// of the library.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<vae_vs_gan::Error> for Failure {
    fn from(e: vae_vs_gan::Error) -> Self {
        Failure(e.to_string())
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

/// What one check found: its figures, or why it failed.
pub type Outcome = Result<String, Failure>;

/// Fail with `msg` unless `ok`.
pub fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure(msg()))
    }
}

/// The outcomes of a run of checks, each reported as a line (`ok NAME:
/// figures` or `FAILED NAME: why`) as it comes.
pub struct Report<'a> {
    pub passed: u32,
    pub failed: u32,
    say: &'a mut dyn FnMut(&str),
}

impl<'a> Report<'a> {
    pub fn new(say: &'a mut dyn FnMut(&str)) -> Self {
        Report {
            passed: 0,
            failed: 0,
            say,
        }
    }

    /// Count and report one check's outcome.
    pub fn record(&mut self, name: &str, outcome: Outcome) {
        match outcome {
            Ok(figures) => {
                self.passed += 1;
                // A long log is reported by its last line, its summary.
                let summary = figures.lines().last().unwrap_or_default();
                (self.say)(&format!("ok {name}: {summary}"));
            }
            Err(why) => {
                self.failed += 1;
                (self.say)(&format!("FAILED {name}: {why}"));
            }
        }
    }

    /// Report a line that is not a check's outcome.
    pub fn say(&mut self, line: &str) {
        (self.say)(line)
    }
}

/// Every op's checks, in the order of the files.
pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    activation::all(g, r).await;
    adam::all(g, r).await;
    batch_norm::all(g, r).await;
    bce::all(g, r).await;
    clamp::all(g, r).await;
    conv2d::all(g, r).await;
    conv_transpose2d::all(g, r).await;
    copy::all(g, r).await;
    dense::all(g, r).await;
    dropout::all(g, r).await;
    epilogue::all(g, r).await;
    gather::all(g, r).await;
    kl::all(g, r).await;
    kl_mc::all(g, r).await;
    pool::all(g, r).await;
    reduce::all(g, r).await;
    reparam::all(g, r).await;
    rmsprop::all(g, r).await;
    rng::all(g, r).await;
    softmax_ce::all(g, r).await;
    target_loss::all(g, r).await;
}

/// Whether `g` can run GEMM `main`: every main but the subgroup main,
/// which needs subgroups of exactly
/// [`vae_vs_gan::ops::gemm::SUBGROUP_LANES`] (lavapipe; SwiftShader runs
/// 4, and its policy never picks the subgroup main). The refusal itself is
/// tested natively in
/// dense::subgroup_main_falls_back_and_is_refused_without_subgroups.
pub fn runs_here(g: &Gpu, main: vae_vs_gan::ops::gemm::Main) -> bool {
    use vae_vs_gan::ops::gemm::{runs_subgroup_main, Main};
    main != Main::Subgroup || runs_subgroup_main(g)
}

/// f32 unit roundoff, 2^-24.
pub const U: f64 = 1.0 / 16_777_216.0;

/// The bit patterns of `v`: what a bit-for-bit comparison compares (NaN
/// equal to itself, -0 apart from +0).
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `v` as f64.
pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Seeded RNG for test inputs; the seed is part of every failure's name.
pub fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// `n` uniform draws in `[lo, hi)`.
pub fn uniform(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

/// `n` draws that avoid `(-gap, gap)`: inputs for functions with a kink at 0
/// (ReLU), so a finite difference never straddles it.
pub fn away_from_zero(n: usize, gap: f32, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| {
            let v: f32 = r.random_range(gap..1.0);
            if r.random::<bool>() {
                v
            } else {
                -v
            }
        })
        .collect()
}

/// An f32 tensor holding `data`.
pub fn tensor(g: &Gpu, shape: &[usize], data: &[f32], label: &str) -> Result<Tensor, Failure> {
    Ok(Tensor::from_f32(g, shape, data, label)?)
}

/// An f32 tensor full of NaN: an output the op must overwrite everywhere.
pub fn poisoned(g: &Gpu, shape: &[usize], label: &str) -> Result<Tensor, Failure> {
    let t = Tensor::zeros(g, shape, label)?;
    t.poison(g);
    Ok(t)
}

/// Submit recorded steps (not waiting: the reads that follow do).
pub fn run(g: &Gpu, steps: &[&Step]) -> Result<(), Failure> {
    Ok(g.run(steps)?)
}

/// A tensor's values, awaited.
pub async fn read(g: &Gpu, t: &Tensor) -> Result<Vec<f32>, Failure> {
    Ok(t.read_f32_async(g).await?)
}

/// The worst error seen so far over a check's comparisons, as a fraction
/// of the tolerance.
#[derive(Default)]
pub struct Worst {
    ratio: f64,
    what: String,
    elements: usize,
}

impl Worst {
    /// Require `|got - want| <= atol + rtol |want|` elementwise (or both
    /// equal, infinities included); NaN anywhere fails (a poisoned output
    /// that was never written).
    pub fn close(
        &mut self,
        what: &str,
        got: &[f32],
        want: &[f32],
        atol: f64,
        rtol: f64,
    ) -> Result<(), Failure> {
        let got: Vec<f64> = got.iter().map(|&v| v as f64).collect();
        let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        self.close_f64(what, &got, &want, atol, rtol)
    }

    /// [`Worst::close`] on f64 values.
    pub fn close_f64(
        &mut self,
        what: &str,
        got: &[f64],
        want: &[f64],
        atol: f64,
        rtol: f64,
    ) -> Result<(), Failure> {
        ensure(got.len() == want.len(), || {
            format!("{what}: {} values, want {}", got.len(), want.len())
        })?;
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (g - w).abs();
            let tol = atol + rtol * w.abs();
            ensure(
                g.is_finite() == w.is_finite() && (err <= tol || g == w),
                || {
                    format!(
                        "{what}: element {i}: got {g}, want {w}, |diff| {err:e} > tol {tol:e} \
                     (atol {atol:e}, rtol {rtol:e})"
                    )
                },
            )?;
            let ratio = if g == w { 0.0 } else { err / tol.max(1e-300) };
            if ratio > self.ratio {
                self.ratio = ratio;
                self.what = format!("{what} element {i}");
            }
        }
        self.elements += got.len();
        Ok(())
    }

    /// Require the two equal bit for bit.
    pub fn equal<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        got: &[T],
        want: &[T],
    ) -> Result<(), Failure> {
        ensure(got.len() == want.len(), || {
            format!("{what}: {} values, want {}", got.len(), want.len())
        })?;
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            return Err(Failure(format!(
                "{what}: element {i}: got {:?}, want {:?} (bit for bit)",
                got[i], want[i]
            )));
        }
        self.elements += got.len();
        Ok(())
    }

    /// [`Worst::done`], saying when `g` cannot run the subgroup GEMM main
    /// (the checks that force each main leave it out there: a skip that
    /// shows).
    pub fn done_on(self, g: &Gpu) -> Outcome {
        let note = if runs_here(g, vae_vs_gan::ops::gemm::Main::Subgroup) {
            String::new()
        } else {
            format!(
                "; the subgroup GEMM main not run (subgroups of {:?} here)",
                g.subgroup_lanes()
            )
        };
        Ok(self.done()? + &note)
    }

    /// The line a passing check reports.
    pub fn done(self) -> Outcome {
        Ok(if self.what.is_empty() {
            format!("{} elements, all exact", self.elements)
        } else {
            format!(
                "{} elements within tolerance (worst {:.3} of it, {})",
                self.elements, self.ratio, self.what
            )
        })
    }
}
