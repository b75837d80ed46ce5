//! Whole training runs with the tiny preset: resuming continues
//! bit-identically, and bad input (an --out that is a file, an --out that
//! holds another run, a checkpoint of another size, a diverging run) ends in
//! a clear error with nothing already written lost.

mod common;
use common::*;
use vae_vs_gan::train::session::CHECKPOINT;
use vae_vs_gan::train::vae_run::{train_vae, VaeRun};
use vae_vs_gan::train::{Checkpoint, Preset};
use vae_vs_gan::Error;

fn tiny(out: &std::path::Path, epochs: usize) -> VaeRun {
    let mut r = VaeRun::new(Preset::Tiny, out);
    r.common.epochs = Some(epochs);
    r.common.plots = false;
    r
}

#[test]
fn train_vae_resume_is_bit_identical() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("straight"), d.path().join("resumed"));
    train_vae(g, &tiny(&a, 2)).unwrap();
    train_vae(g, &tiny(&b, 1)).unwrap();
    let mut r = tiny(&b, 2);
    r.common.resume = true;
    let (_, m) = train_vae(g, &r).unwrap();
    assert_eq!(m.epochs.len(), 2, "metrics continue the resumed run");
    let ca = Checkpoint::load(&a.join(CHECKPOINT)).unwrap();
    let cb = Checkpoint::load(&b.join(CHECKPOINT)).unwrap();
    assert!(!ca.tensors.is_empty());
    assert_eq!(
        ca.tensors, cb.tensors,
        "2 epochs straight == 1 + resume + 1"
    );
    assert_eq!(ca.metadata.get("steps"), Some(&"16".to_string()));
    assert_eq!(ca.metadata, cb.metadata);
    for f in [
        "metrics.json",
        "samples_epoch_001.png",
        "samples_epoch_002.png",
    ] {
        assert!(b.join(f).is_file(), "{f} written");
    }
}

#[test]
fn train_vae_refuses_bad_out_and_mismatched_checkpoints() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    // --out is a file.
    let file = d.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    let e = train_vae(g, &tiny(&file, 1))
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.contains("is a file"), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    // A folder that already holds a run: refused, untouched.
    let run = d.path().join("run");
    train_vae(g, &tiny(&run, 1)).unwrap();
    let before = std::fs::read(run.join(CHECKPOINT)).unwrap();
    let e = train_vae(g, &tiny(&run, 1))
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.contains("--resume") && e.contains("--overwrite"), "{e}");

    // Resuming with another latent size: every mismatched tensor listed.
    let mut other = tiny(&run, 2);
    other.common.resume = true;
    other.common.latent_dim = Some(3);
    let e = train_vae(g, &other).err().expect("must fail").to_string();
    assert!(
        e.contains("encoder.5.weight") && e.contains("mismatched"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(run.join(CHECKPOINT)).unwrap(),
        before,
        "checkpoint intact"
    );
}

#[test]
fn train_vae_divergence_stops_naming_the_step() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let mut r = tiny(d.path(), 1);
    r.common.lr = Some(1e30);
    match train_vae(g, &r) {
        Err(Error::Stopped { cause, hint }) => {
            let msg = cause.to_string();
            assert!(matches!(*cause, Error::NonFinite { epoch: 1, .. }), "{msg}");
            assert!(msg.contains("step"), "{msg}");
            assert!(hint.contains("no checkpoint"), "{hint}");
        }
        other => panic!(
            "expected a stop on a non-finite loss, got {:?}",
            other.map(|_| ())
        ),
    }
    assert!(!d.path().join(CHECKPOINT).exists());
}

#[test]
fn prior_grid_spans_the_prior_quantiles() {
    use vae_vs_gan::train::session::{normal_quantile, prior_grid};
    assert!((normal_quantile(0.975) - 1.959963985).abs() < 1e-8);
    assert!((normal_quantile(0.05) + 1.644853627).abs() < 1e-8);
    assert_eq!(normal_quantile(0.5), 0.0);
    let z = prior_grid(20);
    assert_eq!(z.len(), 800);
    // Top-left cell: lowest z0, highest z1.
    assert!((z[0] as f64 - normal_quantile(0.05)).abs() < 1e-6);
    assert!((z[1] as f64 - normal_quantile(0.95)).abs() < 1e-6);
}

#[test]
fn train_gan_resume_is_bit_identical() {
    use vae_vs_gan::train::gan_run::{train_gan, GanRun};
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path, epochs: usize, resume: bool| {
        let mut r = GanRun::new(Preset::Tiny, out);
        r.common.epochs = Some(epochs);
        r.common.train_images = Some(32); // 4 steps per epoch: a GAN step is slow on lavapipe
        r.common.plots = false;
        r.common.resume = resume;
        r
    };
    let (a, b) = (d.path().join("straight"), d.path().join("resumed"));
    train_gan(g, &run(&a, 2, false)).unwrap();
    train_gan(g, &run(&b, 1, false)).unwrap();
    let (_, m) = train_gan(g, &run(&b, 2, true)).unwrap();
    assert_eq!(m.epochs.len(), 2);
    assert!(m
        .epochs
        .iter()
        .all(|e| e.g_loss.unwrap().is_finite() && e.d_loss.unwrap().is_finite()));
    let ca = Checkpoint::load(&a.join(CHECKPOINT)).unwrap();
    let cb = Checkpoint::load(&b.join(CHECKPOINT)).unwrap();
    assert_eq!(
        ca.tensors, cb.tensors,
        "2 epochs straight == 1 + resume + 1 (incl. BN running stats, Adam moments)"
    );
    // A VAE run folder cannot be resumed as a GAN.
    let v = d.path().join("vae");
    train_vae(g, &tiny(&v, 1)).unwrap();
    let e = train_gan(g, &run(&v, 2, true))
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.contains("this is a vae run, not a gan run"), "{e}");
}

/// The training-only memory high-water mark excludes the evaluation: on a
/// device of its own (the shared test device's counter sees other tests),
/// a tiny VAE run's training peak holds at least the parameters with their
/// gradients and Adam moments, and stays below the overall peak, which
/// includes the test-set ELBO at a batch of 64 (8x the training batch).
#[test]
fn train_vae_records_the_training_memory_peak() {
    let own = vae_vs_gan::Gpu::new().unwrap();
    let d = tempfile::tempdir().unwrap();
    let (vae, m) = train_vae(&own, &tiny(d.path(), 1)).unwrap();
    let params = 4 * 4 * vae.param_count() as u64;
    assert!(
        params <= m.peak_train_gpu_bytes && m.peak_train_gpu_bytes < m.peak_gpu_bytes,
        "params x4 {params}, training peak {}, overall peak {}",
        m.peak_train_gpu_bytes,
        m.peak_gpu_bytes
    );
}
