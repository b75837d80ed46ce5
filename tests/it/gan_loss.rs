//! The GAN losses of `--gan-loss` beside the default (src/models/
//! gan_loss.rs): each one's whole step against the f64 reference (the
//! shared check, tests/checks/gan_step.rs, `loss_configs`), and the list of
//! losses under its names. Their kernels' own checks are target_loss's;
//! a loss's step differs from the default's (gan_step) in those kernels
//! alone, so the GPU kernel policy's and SwiftShader's CI runs take
//! target_loss and gan_step, not these.

use crate::gan_step::matches_cpu;

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
