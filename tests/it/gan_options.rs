//! The GAN's options beside the default step: the article's label noise
//! and fresh noise for G, and each loss of `--gan-loss` (src/models/
//! gan_loss.rs), each one's whole step against the f64 reference (the
//! shared check, tests/checks/gan_step.rs, `option_configs`); and the list
//! of losses under its names. An option's step differs from the default's
//! (gan_step) in its loss kernels (checked on their own in bce and
//! target_loss) or in one more generator forward, not in the GEMMs a
//! kernel policy or a driver changes: the GPU kernel policy's and
//! SwiftShader's CI runs (.ci/run) and the browser take gan_step and the
//! kernels' modules, not these.

use crate::gan_step::matches_cpu;

/// The article's label noise (`--label-noise 0.05`): D's targets
/// `1 + 0.05 u`, `0.05 u` drawn in the loss kernel, against the reference's
/// `label_noise_targets_cpu` (bit-equal targets: u is exact, and a fused
/// multiply-add would move a target by 1 ulp, ~1e-7 relative on the loss,
/// far inside the check's tolerances). Everything else as the default step.
#[test]
fn gan_step_with_label_noise_matches_cpu_reference() {
    matches_cpu("label noise");
}

/// The article's fresh latents for G's update (`--fresh-noise-for-g`): G's
/// own z (the GPU's draws on stream STREAM_Z_FOR_G fed to the reference),
/// its own training-mode forward (batch-norm running averages updated
/// twice: their tolerance sums both updates), its fake batch checked as the
/// first, and three more LeakyReLU outputs whose sides are compared.
#[test]
fn gan_step_with_fresh_noise_for_g_matches_cpu_reference() {
    matches_cpu("fresh noise for G");
}

/// Each GAN loss (`--gan-loss`) beside the default: its D and G losses and
/// gradients from its ops (minimax: the cross-entropy against 0, negated;
/// least squares; hinge with the linear loss for G), the rest of the step
/// as the default's, against the reference's `GanLoss::d_cpu`/`g_cpu`.
#[test]
fn gan_step_with_minimax_loss_matches_cpu_reference() {
    matches_cpu("minimax loss");
}

#[test]
fn gan_step_with_least_squares_loss_matches_cpu_reference() {
    matches_cpu("least-squares loss");
}

#[test]
fn gan_step_with_hinge_loss_matches_cpu_reference() {
    matches_cpu("hinge loss");
}

/// The Wasserstein GAN (Arjovsky et al. 2017) at one critic iteration: the
/// critic's linear loss -D(x) + D(G(z)) and G's -D(G(z)), RMSProp on both
/// networks (at lr 5e-8: `option_configs` says why not the paper's 5e-5),
/// and every critic parameter clipped to
/// [-0.01, 0.01] after its update (the check requires every value inside
/// and, at step 1, most weights at ±c: the Glorot initialisation's lie
/// beyond it); RMSProp's tolerance is derived in
/// tests/checks/whole_step.rs (`rmsprop_step_tol`).
#[test]
fn gan_step_with_wasserstein_loss_matches_cpu_reference() {
    matches_cpu("wasserstein loss");
}

/// Three critic iterations per step, each on its own real batch (batch
/// `3 step + j` of the epoch's order), latents and dropout masks (the
/// GPU's draws of each iteration's stream fed to the reference), each
/// followed by the clipping; the last one's gradients and activations and
/// every iteration's batch norm statistics against the reference (at lr
/// 1e-30, see `option_configs`).
#[test]
fn gan_step_with_three_critic_iterations_matches_cpu_reference() {
    matches_cpu("wasserstein loss, 3 critic iterations");
}

/// Every GAN loss is in `GanLoss::ALL` once, under the name the command
/// line (clap), the checkpoint (serde) and `from_name` use.
#[test]
fn gan_losses_are_listed_under_their_flag_names() {
    use clap::ValueEnum;
    use vae_vs_gan::models::gan_loss::GanLoss;
    assert_eq!(GanLoss::ALL.as_slice(), GanLoss::value_variants());
    for l in GanLoss::ALL {
        let flag = l.to_possible_value().expect("not skipped");
        assert_eq!(flag.get_name(), l.name());
        assert_eq!(serde_json::to_value(l).unwrap(), l.name());
        assert_eq!(GanLoss::from_name(l.name()), Some(l));
    }
}
