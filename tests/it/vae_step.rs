//! Whole-step numerics of the VAE: 3 training steps of the tiny preset on
//! 64 real MNIST images, each against one step of the f64 CPU reference
//! from the GPU's own state (the shared check, tests/checks/vae_step.rs,
//! which also runs in the browser, has the tolerances and why), on the
//! test device and on the device without subgroups; and what the step
//! records.

use crate::checks::vae_step::{self as check, tiny};
use crate::common::*;
use vae_vs_gan::data::mnist::Images;
use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::data::{load, Dataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::vae::{KlEstimator, Vae, VaeConfig, VaeOptions};
use vae_vs_gan::ops::gemm::Policy;
use vae_vs_gan::Gpu;

/// The first 64 MNIST training images (the tiny preset's).
fn images() -> Images {
    load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(64)).unwrap()
}

#[test]
fn vae_step_matches_cpu_reference() {
    pass(check::matches_cpu(gpu(), &images(), tiny()));
}

/// The step with the article's KL estimate (`--kl mc`) against the
/// reference's (`kl_mc_cpu` at the reparameterised z, its gradient through
/// z); its KL checks take `rtol * kl_abs` instead of `rtol * |kl|` (see
/// the check).
#[test]
fn vae_step_with_mc_kl_matches_cpu_reference() {
    let cfg = VaeConfig {
        options: VaeOptions {
            kl: KlEstimator::Mc,
            ..VaeOptions::default()
        },
        ..tiny()
    };
    pass(check::matches_cpu(gpu(), &images(), cfg));
}

#[test]
fn vae_step_kl_estimators_cost_the_same_dispatches() {
    let g = gpu();
    let imgs = images();
    let data = GpuDataset::upload(g, &imgs, "train").unwrap();
    let state = StepState::new(g, 2, 1, 0).unwrap();
    assert_eq!(tiny().options.kl, KlEstimator::Analytic, "the default");
    let stats = |kl: KlEstimator| {
        let options = VaeOptions {
            kl,
            ..VaeOptions::default()
        };
        let vae = Vae::new(g, VaeConfig { options, ..tiny() }).unwrap();
        let s = vae.train_step(g, &state, &data).unwrap().step.stats();
        (s.dispatches, s.bind_groups)
    };
    let (a, m) = (stats(KlEstimator::Analytic), stats(KlEstimator::Mc));
    eprintln!("vae step: analytic {a:?}, mc {m:?} (dispatches, bind groups)");
    assert_eq!(a, m);
}

/// The same step on the device opened without subgroups: the CPU policy's
/// fallback (the direct GEMM main), which an adapter without subgroups of
/// 8 runs. On lavapipe the default device's step uses the subgroup main.
#[test]
fn vae_step_without_subgroups_matches_cpu_reference() {
    let g = gpu_without_subgroups();
    assert_eq!(g.subgroup_lanes(), None);
    let mains = |g: &Gpu| {
        let imgs = load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(8)).unwrap();
        let data = GpuDataset::upload(g, &imgs, "train").unwrap();
        let state = StepState::new(g, 2, 1, 0).unwrap();
        let vae = Vae::new(g, tiny()).unwrap();
        let step = vae.train_step(g, &state, &data).unwrap().step;
        let keys: Vec<String> = step.kernels().map(str::to_string).collect();
        keys.iter().any(|k| k.contains(",Subgroup,"))
    };
    assert!(!mains(g), "no subgroup kernel without subgroups");
    if Policy::of(gpu()).subgroups {
        assert!(
            mains(gpu()),
            "the default device's step uses the subgroup main"
        );
    }
    pass(check::matches_cpu(g, &images(), tiny()));
}

/// What the CPU policy runs on the test's device: the subgroup main (for
/// the larger GEMMs) where the device runs subgroups of exactly
/// `SUBGROUP_LANES` (lavapipe: 8), only the direct main where it runs
/// others (SwiftShader: 4; measured there against the tiled main in
/// docs/PERFORMANCE.md, "What SwiftShader's subgroups of 4 run"); the GPU
/// policy never the subgroup main.
#[test]
fn vae_step_runs_the_subgroup_main_only_with_subgroups_of_eight() {
    let g = gpu();
    let imgs = load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(8)).unwrap();
    let data = GpuDataset::upload(g, &imgs, "train").unwrap();
    let state = StepState::new(g, 2, 1, 0).unwrap();
    let vae = Vae::new(g, tiny()).unwrap();
    let step = vae.train_step(g, &state, &data).unwrap().step;
    let has = |main: &str| step.kernels().any(|k| k.contains(&format!(",{main},")));
    let policy = Policy::of(g);
    eprintln!(
        "subgroups {:?}, policy {policy:?}: subgroup main {}, direct main {}",
        g.subgroup_lanes(),
        has("Subgroup"),
        has("Direct")
    );
    if !policy.cpu {
        assert!(!policy.subgroups && !has("Subgroup"));
    } else if vae_vs_gan::ops::gemm::runs_subgroup_main(g) {
        assert!(policy.subgroups && has("Subgroup"));
    } else {
        assert!(!policy.subgroups && !has("Subgroup") && has("Direct"));
    }
}
