//! Tiny VAE and GAN training runs ([`STEPS`] steps in one submit on 64
//! images of seeded random pixels): every loss finite, and the same
//! numbers in the browser as natively.
//!
//! The agreement ([`agree`]) is asserted where a tolerance can be derived:
//! at step 1, where both places start from identical weights (initialised
//! on the CPU from the seed, the same bits everywhere) and the same data.
//! There each loss of each place lies within the whole-step checks'
//! rounding bound of the exact value from those inputs (tests/checks/
//! vae_step.rs and gan_step.rs: rtol 4 u sqrt(K), plus the KL's atol), so
//! the two places lie within twice that of each other:
//!
//! - VAE recon: `2 x 4 u sqrt(6272) |L|` = 3.8e-5 |L|;
//! - VAE KL (analytic): `2 (1e-6 + 4 u sqrt(6272) |KL|)`;
//! - GAN d_loss: `2 x 4 u sqrt(26,600) |L|` = 7.8e-5 |L|.
//!
//! The noise enters step 1 too (eps of the VAE's recon, z of the GAN's
//! fakes), drawn by each driver's `log` and `cos`: on the same driver (the
//! browser's WebGPU on Chromium's SwiftShader against native SwiftShader)
//! the same draws, so all three are asserted; across drivers (against
//! lavapipe) the draws may differ by up to WGSL's bound (`NORMAL_ATOL` =
//! 4e-3), whose effect on the recon and d_loss no rounding argument
//! bounds, so only the noise-free KL is asserted and the rest reported.
//! The GAN's g_loss is computed after D's update within the step, so its
//! bound needs D's sensitivities, which a training run does not compute
//! (the whole-step check has them): reported, not asserted. Steps 2 to 4
//! compare trajectories, which no rounding tolerance bounds (a unit
//! within rounding of a ReLU kink may take either branch; see the
//! whole-step checks): reported, with their largest relative difference.

use super::*;
use serde::{Deserialize, Serialize};
use vae_vs_gan::data::mnist::Images;
use vae_vs_gan::data::{GpuDataset, PIXELS};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::gan::{DHead, Gan, SLOT_D, SLOT_G};
use vae_vs_gan::models::vae::{Vae, SLOT_KL, SLOT_RECON};

/// Steps of each tiny run.
pub const STEPS: usize = 4;

/// The two tiny models: the tiny preset, seed 7 (as the whole-step
/// checks); the GAN with the max-pool head.
#[derive(Clone, Copy, Debug)]
pub enum Tiny {
    Vae,
    Gan,
}

impl Tiny {
    pub fn name(self) -> &'static str {
        match self {
            Tiny::Vae => "vae",
            Tiny::Gan => "gan",
        }
    }

    fn record(self, g: &Gpu, state: &StepState, data: &GpuDataset) -> vae_vs_gan::Result<Step> {
        Ok(match self {
            Tiny::Vae => {
                let vae = Vae::new(g, super::vae_step::tiny())?;
                vae.train_step(g, state, data)?.step
            }
            Tiny::Gan => {
                let gan = Gan::new(g, super::gan_step::tiny(DHead::GlobalMaxPool))?;
                gan.train_step(g, state, data)?.step
            }
        })
    }
}

/// 64 images of seeded random pixels, labels 0-9 in turn.
fn images() -> Images {
    let mut r = rng(5);
    Images {
        pixels: (0..64 * PIXELS).map(|_| r.random::<u8>()).collect(),
        labels: (0..64).map(|i| (i % 10) as u8).collect(),
    }
}

/// Build `model` and train it `steps` steps in one submit; each step's
/// losses (the model's loss slots), oldest first.
pub async fn losses(g: &Gpu, model: Tiny, steps: usize) -> Result<Vec<Vec<f32>>, Failure> {
    let data = GpuDataset::upload(g, &images(), "train")?;
    data.shuffle(g, 3, 0)?;
    let state = StepState::new(g, 2, steps, 0)?;
    let step = model.record(g, &state, &data)?;
    run(g, &vec![&step; steps])?;
    let snap = state.snapshot_async(g).await?;
    ensure(snap.steps_done == steps as u64, || {
        format!("{} steps done, want {steps}", snap.steps_done)
    })?;
    Ok(snap.losses(0)?.into_iter().map(|l| l.values).collect())
}

/// Warm steps [`images_per_second`] times.
pub const TIMED_STEPS: usize = 8;

/// The tiny `model`'s training speed on `g` in images per second: one
/// warm-up run (pipelines built), then runs of 1 and of 1 + [`TIMED_STEPS`]
/// steps in one submit each (model built, data uploaded, steps run, losses
/// read back), timed by `now` (seconds); the difference is the timed
/// steps' own time. `now` is the caller's clock: `std::time` does not run
/// in a browser.
pub async fn images_per_second(
    g: &Gpu,
    model: Tiny,
    now: &dyn Fn() -> f64,
) -> Result<f64, Failure> {
    losses(g, model, 1).await?;
    let t0 = now();
    losses(g, model, 1).await?;
    let t1 = now();
    losses(g, model, 1 + TIMED_STEPS).await?;
    let t2 = now();
    let steps = (t2 - t1) - (t1 - t0);
    let batch = match model {
        Tiny::Vae => super::vae_step::tiny().batch,
        Tiny::Gan => super::gan_step::tiny(DHead::GlobalMaxPool).batch,
    };
    ensure(steps > 0.0, || {
        format!("{TIMED_STEPS} steps timed at {steps} s: the clock is too coarse")
    })?;
    Ok((TIMED_STEPS * batch) as f64 / steps)
}

/// Both tiny runs' losses on one adapter, as the native runs write them
/// (examples/tiny_losses.rs) for the browser to compare with its own.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Runs {
    /// The adapter, as `Gpu::describe`.
    pub adapter: String,
    /// Per step, the VAE's loss slots (`vae::SLOT_RECON`, `SLOT_KL`).
    pub vae: Vec<Vec<f32>>,
    /// Per step, the GAN's loss slots (`gan::SLOT_G`, `SLOT_D`).
    pub gan: Vec<Vec<f32>>,
}

/// Both tiny runs on `g`.
pub async fn runs(g: &Gpu) -> Result<Runs, Failure> {
    Ok(Runs {
        adapter: g.describe(),
        vae: losses(g, Tiny::Vae, STEPS).await?,
        gan: losses(g, Tiny::Gan, STEPS).await?,
    })
}

/// The browser's list: both runs here, every loss finite, and each
/// native run of `natives` (the JSON of a [`Runs`], and whether the same
/// driver runs underneath) against them.
pub async fn all(g: &Gpu, natives: &[(&str, String, bool)], r: &mut Report<'_>) {
    let ours = match runs(g).await {
        Ok(ours) => ours,
        Err(e) => return r.record("tiny training runs", Err(e)),
    };
    for model in [Tiny::Vae, Tiny::Gan] {
        let name = format!("{} training steps", model.name());
        r.record(&name, finite(&ours, model));
    }
    for (name, json, same_driver) in natives {
        let outcome = serde_json::from_str::<Runs>(json)
            .map_err(|e| Failure(format!("the native runs' losses ({name}): {e}")))
            .and_then(|theirs| agree(&ours, &theirs, *same_driver));
        r.record(&format!("tiny runs agree with native {name}"), outcome);
    }
}

/// Every loss of every step finite.
pub fn finite(runs: &Runs, model: Tiny) -> Outcome {
    let losses = match model {
        Tiny::Vae => &runs.vae,
        Tiny::Gan => &runs.gan,
    };
    ensure(losses.len() == STEPS, || {
        format!("{} steps of losses, want {STEPS}", losses.len())
    })?;
    ensure(losses.iter().flatten().all(|v| v.is_finite()), || {
        format!("losses {losses:?}")
    })?;
    Ok(format!("{STEPS} steps, losses {losses:?}"))
}

/// `ours` against `theirs` (the same seeds on another adapter; `same_driver`
/// when the same driver runs underneath): step 1 within the tolerances of
/// the module doc, the rest reported.
pub fn agree(ours: &Runs, theirs: &Runs, same_driver: bool) -> Outcome {
    use super::gan_step::scale as gan_rounding;
    use super::vae_step::{grad_atol_scale as vae_rounding, KL_ATOL};
    for (what, a, b) in [
        ("vae", &ours.vae, &theirs.vae),
        ("gan", &ours.gan, &theirs.gan),
    ] {
        ensure(a.len() == STEPS && b.len() == STEPS, || {
            format!(
                "{what}: {} and {} steps of losses, want {STEPS}",
                a.len(),
                b.len()
            )
        })?;
        ensure(a.iter().chain(b).all(|l| l.len() == 2), || {
            format!("{what}: want two losses per step: {a:?} against {b:?}")
        })?;
    }
    // (loss, ours, theirs, tolerance; None: reported only)
    let (v, w) = (&ours.vae[0], &theirs.vae[0]);
    let (gd, gw) = (&ours.gan[0], &theirs.gan[0]);
    let noisy = |tol: f64| same_driver.then_some(tol);
    let step1 = [
        (
            "vae recon",
            v[SLOT_RECON],
            w[SLOT_RECON],
            noisy(2.0 * vae_rounding() * w[SLOT_RECON].abs() as f64),
        ),
        (
            "vae kl",
            v[SLOT_KL],
            w[SLOT_KL],
            Some(2.0 * (KL_ATOL + vae_rounding() * w[SLOT_KL].abs() as f64)),
        ),
        (
            "gan d_loss",
            gd[SLOT_D],
            gw[SLOT_D],
            noisy(2.0 * gan_rounding() * gw[SLOT_D].abs() as f64),
        ),
        ("gan g_loss", gd[SLOT_G], gw[SLOT_G], None),
    ];
    let mut lines = Vec::new();
    for (what, a, b, tol) in step1 {
        let diff = (a as f64 - b as f64).abs();
        match tol {
            Some(t) => {
                ensure(diff <= t, || {
                    format!(
                        "step 1 {what}: {a} here, {b} on {}: |diff| {diff:e} > tol {t:e}",
                        theirs.adapter
                    )
                })?;
                lines.push(format!(
                    "{what} |diff| {diff:.1e} ({:.3} of the tolerance)",
                    diff / t
                ));
            }
            None => lines.push(format!("{what} |diff| {diff:.1e} (reported)")),
        }
    }
    // Steps 2 to STEPS: the largest relative difference, reported.
    let later = ours.vae[1..]
        .iter()
        .zip(&theirs.vae[1..])
        .chain(ours.gan[1..].iter().zip(&theirs.gan[1..]))
        .flat_map(|(a, b)| a.iter().zip(b))
        .map(|(&a, &b)| (a as f64 - b as f64).abs() / (b as f64).abs().max(1e-30))
        .fold(0.0f64, f64::max);
    Ok(format!(
        "against {} ({}): step 1 {}; steps 2-{STEPS} largest relative difference {later:.1e} \
         (reported)",
        theirs.adapter,
        if same_driver {
            "same driver"
        } else {
            "another driver"
        },
        lines.join(", ")
    ))
}
