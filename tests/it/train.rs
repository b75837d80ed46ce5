//! Whole training runs with the tiny preset: resuming continues
//! bit-identically (after Ctrl-C too, mid-epoch), and bad input (an --out
//! that is a file or cannot be written, an --out that holds another run, a
//! checkpoint of another size, settings that cannot train, a diverging run)
//! ends in a clear error before any work, with nothing already written
//! lost. The example binaries are driven as a user runs them where that is
//! the honest check (signals, exit status, what stderr says).

use crate::common::*;
use vae_vs_gan::io::Checkpoint;
use vae_vs_gan::train::session::CHECKPOINT;
use vae_vs_gan::train::vae_run::{train_vae, VaeRun};
use vae_vs_gan::train::{Metrics, Preset};
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
    // The same metadata but for the history's wall-clock figures.
    let key = vae_vs_gan::train::session::META_METRICS;
    let without = |c: &Checkpoint| {
        let mut m = c.metadata.clone();
        m.remove(key);
        m
    };
    assert_eq!(without(&ca), without(&cb));
    let history = |c: &Checkpoint| -> Vec<(usize, Option<f64>, Option<f64>)> {
        let m: Metrics = serde_json::from_str(&c.metadata[key]).unwrap();
        m.epochs
            .iter()
            .map(|e| (e.epoch, e.train_loss, e.test_loss))
            .collect()
    };
    assert_eq!(history(&ca), history(&cb));
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

/// metrics.json carries figures that `compare --resume` compares for
/// equality, so every finite f64 must come back bit for bit: awkward
/// hand-picked values (the one that failed in CI, subnormals, extremes,
/// values whose shortest decimal form is 17 digits) and 10,000 random bit
/// patterns.
#[test]
fn metrics_json_round_trips_f64_bit_for_bit() {
    use rand::{Rng, SeedableRng};
    use vae_vs_gan::train::{AdapterDesc, EpochMetrics};
    let mut values = vec![
        12.284847993022186,
        12.284847993022188,
        0.1 + 0.2,
        1.0 / 3.0,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        2.225073858507201e-308,
        -0.0,
        9007199254740993.0,
        123456789.12345679,
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    while values.len() < 10_000 {
        let v = f64::from_bits(rng.random::<u64>());
        if v.is_finite() {
            values.push(v);
        }
    }
    let m = Metrics {
        model: "vae".into(),
        preset: "tiny".into(),
        settings: [("kl".to_string(), "mc".to_string())].into_iter().collect(),
        adapter: AdapterDesc {
            name: "test".into(),
            backend: "Vulkan".into(),
            device_type: "Cpu".into(),
        },
        params: 1,
        epochs: values
            .chunks(4)
            .enumerate()
            .map(|(i, c)| EpochMetrics {
                epoch: i + 1,
                train_loss: Some(c[0]),
                test_loss: c.get(1).copied(),
                g_loss: None,
                d_loss: None,
                seconds: *c.get(2).unwrap_or(&0.0),
                images_per_sec: *c.get(3).unwrap_or(&0.0),
                train_blocking_waits: Some(i as u64),
                ready_seconds: Some(i as f64 + 0.5),
            })
            .collect(),
        peak_gpu_bytes: u64::MAX,
        peak_train_gpu_bytes: 1,
        train_step: None,
        train_allocator: None,
        curve: Vec::new(),
    };
    let d = tempfile::tempdir().unwrap();
    m.save(d.path()).unwrap();
    let back = Metrics::load(d.path()).unwrap();
    let bits = |m: &Metrics| -> Vec<u64> {
        m.epochs
            .iter()
            .flat_map(|e| {
                [
                    e.train_loss,
                    e.test_loss,
                    Some(e.seconds),
                    Some(e.images_per_sec),
                ]
            })
            .flatten()
            .map(f64::to_bits)
            .collect()
    };
    let (a, b) = (bits(&m), bits(&back));
    assert_eq!(a.len(), b.len());
    let wrong: Vec<(f64, f64)> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .map(|(&x, &y)| (f64::from_bits(x), f64::from_bits(y)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} f64 values changed through metrics.json, first {:?}",
        wrong.len(),
        a.len(),
        wrong[0]
    );
    assert_eq!(m, back);
}

/// A metrics.json from before the step counts, blocking waits and
/// allocator figures were recorded still loads, with those fields absent;
/// one written now carries them and round-trips.
#[test]
fn metrics_json_from_before_the_step_counts_still_loads() {
    let old = r#"{
  "model": "vae", "preset": "tiny",
  "adapter": {"name": "llvmpipe", "backend": "Vulkan", "type": "Cpu"},
  "params": 69989,
  "epochs": [{"epoch": 1, "train_loss": 532.9, "test_loss": 511.3,
              "seconds": 0.5, "images_per_sec": 142.0}],
  "peak_gpu_bytes": 50740952, "peak_train_gpu_bytes": 15928248
}"#;
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("metrics.json"), old).unwrap();
    let mut m = Metrics::load(d.path()).unwrap();
    assert_eq!(m.epochs[0].train_blocking_waits, None);
    assert_eq!((m.train_step, m.train_allocator), (None, None));
    m.epochs[0].train_blocking_waits = Some(1);
    m.train_step = Some(vae_vs_gan::gpu::StepStats {
        dispatches: 78,
        bind_groups: 78,
        bytes_bound: 87_466_880,
        gemm_flops: 0,
    });
    m.note_allocator(Some(vae_vs_gan::gpu::AllocatorFigures {
        allocated_bytes: 2,
        reserved_bytes: 4,
        engine_bytes: 1,
    }));
    m.note_allocator(Some(vae_vs_gan::gpu::AllocatorFigures {
        allocated_bytes: 1,
        reserved_bytes: 4,
        engine_bytes: 1,
    }));
    assert_eq!(
        m.train_allocator.unwrap().allocated_bytes,
        2,
        "the largest kept"
    );
    m.save(d.path()).unwrap();
    assert_eq!(Metrics::load(d.path()).unwrap(), m);
}

/// Run `train_vae` at the tiny preset with 256 images (32 steps, one
/// submit, per epoch) for `epochs` into `out` (or resuming it).
fn tiny_vae_cmd(out: &std::path::Path, epochs: usize, resume: bool) -> std::process::Command {
    let mut c = example_cmd("train_vae");
    c.args(["--preset", "tiny", "--train-images", "256", "--epochs"])
        .arg(epochs.to_string())
        .arg(if resume { "--resume" } else { "--out" })
        .arg(out);
    c
}

/// Ctrl-C during a run: the chunks in flight finish, a checkpoint is
/// written where it stopped (mid-epoch or at an epoch's end, wherever the
/// signal lands), the message says how to resume, the exit status is not
/// 0; resuming then ends bit-identical to a run never interrupted.
#[test]
fn ctrl_c_saves_and_the_resumed_run_is_bit_identical() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("straight"), d.path().join("stopped"));
    let (code, err) = output(tiny_vae_cmd(&a, 4, false));
    assert_eq!(code, Some(0), "{err}");
    let child = tiny_vae_cmd(&b, 4, false)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&b.join(CHECKPOINT)); // after epoch 1 of 4
    signal(child.id(), "-INT");
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("interrupted after") && err.contains("--resume"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let (code, err) = output(tiny_vae_cmd(&b, 4, true));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("resuming"), "{err}");
    let (ca, cb) = (
        Checkpoint::load(&a.join(CHECKPOINT)).unwrap(),
        Checkpoint::load(&b.join(CHECKPOINT)).unwrap(),
    );
    assert_eq!(ca.tensors, cb.tensors, "interrupted + resumed == straight");
    let (ma, mb) = (Metrics::load(&a).unwrap(), Metrics::load(&b).unwrap());
    let losses = |m: &Metrics| -> Vec<(usize, Option<f64>, Option<f64>)> {
        m.epochs
            .iter()
            .map(|e| (e.epoch, e.train_loss, e.test_loss))
            .collect()
    };
    assert_eq!(losses(&ma), losses(&mb), "the same history, bit for bit");
    assert_eq!(mb.epochs.len(), 4);
}

/// A second Ctrl-C exits at once (status 130), without waiting to save.
/// The second signal is sent only once the first has been handled (its
/// message read from stderr): two signals sent back to back can reach the
/// process as one. Batches of 32 over 1024 images make an epoch one
/// submit of 32 steps lasting seconds on lavapipe, so the second arrives
/// while the first is still waiting for the chunk in flight.
#[test]
fn a_second_ctrl_c_exits_at_once() {
    use std::io::{BufRead, Read};
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let mut c = example_cmd("train_vae");
    c.args([
        "--preset",
        "tiny",
        "--train-images",
        "1024",
        "--batch-size",
        "32",
    ])
    .args(["--epochs", "20", "--out"])
    .arg(&out)
    .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    wait_for(&out.join(CHECKPOINT));
    signal(child.id(), "-INT");
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "stderr ended: {seen}"
        );
        seen.push_str(&line);
        if line.contains("interrupted: finishing") {
            break;
        }
    }
    signal(child.id(), "-INT");
    err.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("exiting without saving"), "{seen}");
}

/// An ordinary error prints `Error: ...` and exits 1, with no stack
/// backtrace even under RUST_BACKTRACE=1, and no --out folder is made.
#[test]
fn errors_print_one_message_without_a_backtrace() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("never-made");
    let mut c = example_cmd("train_vae");
    c.env("RUST_BACKTRACE", "1")
        .args(["--preset", "tiny", "--data-dir", "/nonexistent", "--out"])
        .arg(&out);
    let (code, err) = output(c);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("Error: /nonexistent/train-images"), "{err}");
    assert!(
        !err.contains("backtrace") && !err.contains("panicked"),
        "{err}"
    );
    assert!(!out.exists(), "a refused run makes no folder");

    let mut c = example_cmd("train_vae");
    c.env("WGPU_BACKEND", "bogus")
        .args(["--preset", "tiny", "--out"])
        .arg(&out);
    let (code, err) = output(c);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("unknown backend \"bogus\"") && err.contains("vulkan"),
        "{err}"
    );
    assert!(!err.contains("Backends("), "{err}");

    // Negative numbers reach the validation (not a clap parse error).
    let mut c = example_cmd("train_vae");
    c.args(["--preset", "tiny", "--lr", "-1", "--out"])
        .arg(&out);
    let (code, err) = output(c);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--lr -1: must be a positive number"), "{err}");
    assert!(!out.exists());
}

/// Settings that cannot train are refused before anything is loaded or
/// written, each with one message; nothing is created.
#[test]
fn bad_settings_are_refused_before_any_work() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let refuse = |r: VaeRun, want: &str| {
        let e = train_vae(g, &r).err().expect("must refuse").to_string();
        assert!(e.contains(want), "{e}");
        assert!(!out.exists(), "{want}: no folder made");
    };
    refuse(tiny(&out, 0), "--epochs must be at least 1");
    let mut r = tiny(&out, 1);
    r.common.latent_dim = Some(100_000);
    refuse(r, "--latent-dim 100000");
    let mut r = tiny(&out, 1);
    r.common.lr = Some(f32::NAN);
    refuse(r, "must be a positive number");
    let mut r = tiny(&out, 1);
    r.common.batch_size = Some(0);
    refuse(r, "--batch-size");
    // An --out under a file cannot be written.
    let file = d.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let e = train_vae(g, &tiny(&file.join("run"), 1))
        .err()
        .expect("must refuse")
        .to_string();
    assert!(e.contains("cannot write there"), "{e}");
    // --resume of a folder with no run, and of a run that has done its
    // epochs.
    let mut r = tiny(&out, 1);
    r.common.resume = true;
    refuse(r, "no checkpoint to resume from");
    train_vae(g, &tiny(&out, 1)).unwrap();
    let before = std::fs::read(out.join(CHECKPOINT)).unwrap();
    let mut r = tiny(&out, 1);
    r.common.resume = true;
    let e = train_vae(g, &r).err().expect("must refuse").to_string();
    assert!(
        e.contains("has done 1 epochs") && e.contains("--epochs above 1"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join(CHECKPOINT)).unwrap(), before);
}

/// The checkpoint carries the run's history, so a resume rebuilds it even
/// when metrics.json is gone or lags (a kill between the two renames);
/// a checkpoint without it (older versions) resumes only from a
/// metrics.json that lists exactly its epochs, else is refused.
#[test]
fn resume_rebuilds_the_history_from_the_checkpoint_or_refuses() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    train_vae(g, &tiny(&out, 1)).unwrap();
    let one = std::fs::read(out.join("metrics.json")).unwrap();
    let mut r = tiny(&out, 2);
    r.common.resume = true;
    train_vae(g, &r).unwrap();
    // Killed between the checkpoint's rename and metrics.json's: the
    // checkpoint is after epoch 2, metrics.json still after epoch 1.
    std::fs::write(out.join("metrics.json"), &one).unwrap();
    let mut r = tiny(&out, 3);
    r.common.resume = true;
    let (_, m) = train_vae(g, &r).unwrap();
    let epochs: Vec<usize> = m.epochs.iter().map(|e| e.epoch).collect();
    assert_eq!(epochs, [1, 2, 3]);
    // metrics.json gone: the same.
    std::fs::remove_file(out.join("metrics.json")).unwrap();
    let mut r = tiny(&out, 4);
    r.common.resume = true;
    let (_, m) = train_vae(g, &r).unwrap();
    assert_eq!(m.epochs.len(), 4);
    // A checkpoint from before the history moved into it (the legacy
    // fixture's kind): metrics.json must list exactly its epochs.
    let mut ck = Checkpoint::load(&out.join(CHECKPOINT)).unwrap();
    ck.metadata.remove(vae_vs_gan::train::session::META_METRICS);
    ck.save(&out.join(CHECKPOINT)).unwrap();
    std::fs::write(out.join("metrics.json"), &one).unwrap();
    let mut r = tiny(&out, 5);
    r.common.resume = true;
    let e = train_vae(g, &r).err().expect("must refuse").to_string();
    assert!(
        e.contains("cannot rebuild this run's per-epoch history") && e.contains("[1]"),
        "{e}"
    );
    std::fs::remove_file(out.join("metrics.json")).unwrap();
    let e = train_vae(g, &r).err().expect("must refuse").to_string();
    assert!(e.contains("cannot rebuild"), "{e}");
}

/// Temporary files a killed writer left are removed at the next start in
/// that folder; --overwrite removes the earlier run's files (a GAN run
/// over a VAE run keeps none of the VAE's pictures) and nothing else.
#[test]
fn a_new_start_cleans_stale_temporaries_and_overwrite_the_old_run() {
    use vae_vs_gan::train::gan_run::{train_gan, GanRun};
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let mut r = tiny(&out, 1);
    r.common.plots = true;
    train_vae(g, &r).unwrap();
    for f in [".checkpoint.safetensors.tmp-99999", ".metrics.json.tmp-12"] {
        std::fs::write(out.join(f), b"half-written").unwrap();
    }
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    assert!(out.join("reconstructions.png").is_file());
    let mut r = GanRun::new(Preset::Tiny, &out);
    r.common.epochs = Some(1);
    r.common.train_images = Some(16);
    r.common.plots = false;
    r.common.overwrite = true;
    train_gan(g, &r).unwrap();
    for f in [
        ".checkpoint.safetensors.tmp-99999",
        ".metrics.json.tmp-12",
        "reconstructions.png",
        "latent_scatter.png",
    ] {
        assert!(!out.join(f).exists(), "{f} removed");
    }
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
    let ck = Checkpoint::load(&out.join(CHECKPOINT)).unwrap();
    assert_eq!(ck.metadata["model"], "gan");
}

/// Resuming on another adapter than the run's warns, naming both.
#[test]
fn resuming_on_another_adapter_warns() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let (code, err) = output(tiny_vae_cmd(&out, 1, false));
    assert_eq!(code, Some(0), "{err}");
    let path = out.join(CHECKPOINT);
    let mut ck = Checkpoint::load(&path).unwrap();
    let key = vae_vs_gan::train::session::META_METRICS;
    let mut m: Metrics = serde_json::from_str(&ck.metadata[key]).unwrap();
    m.adapter.name = "Some Other GPU".into();
    ck.metadata
        .insert(key.into(), serde_json::to_string(&m).unwrap());
    ck.save(&path).unwrap();
    let (code, err) = output(tiny_vae_cmd(&out, 2, true));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning: this run was trained on Some Other GPU")
            && err.contains(&format!("resuming on {}", gpu().info.name)),
        "{err}"
    );
}

/// train_classifier refuses, before any work: an --out holding a
/// classifier (the shipped one included) without --overwrite, --epochs 0
/// (which would write nothing), and an --out that is a file, each naming
/// the path; the shipped classifier stays as it was.
#[test]
fn train_classifier_refuses_before_any_work() {
    let shipped = root().join("data/classifier/classifier.safetensors");
    let before = std::fs::read(&shipped).unwrap();
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    let fresh = d.path().join("fresh");
    for (args, want) in [
        (
            vec!["--out", "data/classifier"],
            "a classifier is already there",
        ),
        (
            vec!["--epochs", "0", "--out", fresh.to_str().unwrap()],
            "--epochs must be at least 1",
        ),
        (vec!["--out", file.to_str().unwrap()], "is a file"),
        (
            vec!["--lr", "-0.5", "--out", fresh.to_str().unwrap()],
            "--lr -0.5",
        ),
    ] {
        let mut c = example_cmd("train_classifier");
        c.args(&args);
        let (code, err) = output(c);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&shipped).unwrap(), before);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    assert!(!fresh.exists());
}

/// A user's shell has no XDG_RUNTIME_DIR: opening the adapter prints no
/// "error:" line (Mesa's device-select layer and the GL probe used to),
/// and `adapters` says which kernels auto picks.
#[test]
fn no_error_lines_without_xdg_runtime_dir() {
    let mut c = example_cmd("adapters");
    c.env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY");
    let o = c.output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    assert!(!err.to_lowercase().contains("error"), "{err}");
    assert!(out.contains("kernels: auto picks the"), "{out}");
    let mut c = example_cmd("train_vae");
    c.env_remove("XDG_RUNTIME_DIR").args([
        "--preset",
        "tiny",
        "--epochs",
        "0",
        "--out",
        "/nonexistent/x",
    ]);
    let (code, err) = output(c);
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("rror")).collect();
    assert_eq!(lines.len(), 1, "one error line, the refusal: {err}");
}

/// An unknown kernel policy is refused with the valid ones, and
/// dump_kernels refuses a path that is a file; both before any work.
#[test]
fn unknown_kernel_policy_and_a_dump_into_a_file_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let mut c = example_cmd("train_vae");
    c.env("VAE_VS_GAN_KERNELS", "fast")
        .args(["--preset", "tiny", "--out"])
        .arg(&out);
    let (code, err) = output(c);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("\"fast\" is no kernel policy") && err.contains("auto, gpu, cpu"),
        "{err}"
    );
    assert!(!out.exists());
    let file = d.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    let mut c = example_cmd("dump_kernels");
    c.arg(&file);
    let (code, err) = output(c);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is a file"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

/// The article's options default off in every run's options, and a value
/// a model cannot take is refused before any work, naming the flag: a
/// negative, NaN or infinite `--label-noise`; a GAN option given to the
/// VAE's run, or the VAE's `--kl` to the GAN's, is no flag of that run.
#[test]
fn article_options_default_off_and_bad_values_are_refused() {
    use vae_vs_gan::models::gan::GanOptions;
    use vae_vs_gan::models::vae::{KlEstimator, VaeOptions};
    use vae_vs_gan::train::gan_run::{train_gan, GanRun};
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let o = GanRun::new(Preset::Tiny, &out).options;
    assert_eq!((o.label_noise, o.fresh_noise_for_g), (0.0, false));
    assert_eq!(o, GanOptions::default());
    let o = tiny(&out, 1).options;
    assert_eq!((o.kl, o.binarize), (KlEstimator::Analytic, false));
    assert_eq!(o, VaeOptions::default());
    for bad in [-0.05f32, f32::NAN, f32::INFINITY] {
        let mut r = GanRun::new(Preset::Tiny, &out);
        r.options.label_noise = bad;
        let e = train_gan(g, &r).err().expect("must refuse").to_string();
        assert!(e.contains("--label-noise") && e.contains(">= 0"), "{e}");
        assert!(!out.exists(), "no folder made");
    }
    for (example, flag) in [
        ("train_vae", &["--label-noise", "0.05"][..]),
        ("train_vae", &["--fresh-noise-for-g"][..]),
        ("train_gan", &["--kl", "mc"][..]),
    ] {
        let mut c = example_cmd(example);
        c.args(["--preset", "tiny", "--out"]).arg(&out).args(flag);
        let (code, err) = output(c);
        assert_ne!(code, Some(0), "{example} {flag:?}: {err}");
        assert!(
            err.contains(&format!("unexpected argument '{}'", flag[0])),
            "{example} {flag:?}: {err}"
        );
        assert!(!out.exists(), "no folder made");
    }

    // From the command line: a negative value reaches the check (not a
    // clap parse error), one message, exit status 1.
    for v in ["-1", "nan"] {
        let mut c = example_cmd("train_gan");
        c.args(["--preset", "tiny", "--label-noise", v, "--out"])
            .arg(&out);
        let (code, err) = output(c);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(&format!("--label-noise {}", v.replace("nan", "NaN")))
                && err.contains(">= 0"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!out.exists());
}

/// A GAN run with the article's options records them (checkpoint metadata,
/// metrics.json's settings), a resume with another value of either is
/// refused naming both values (the checkpoint intact), and a resume with
/// the same values is bit-identical to the uninterrupted run: the label
/// noise and G's latents are drawn from the step counter like every other
/// draw.
#[test]
fn train_gan_article_options_are_recorded_and_resume_bit_identically() {
    use vae_vs_gan::train::gan_run::{train_gan, GanRun};
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path, epochs: usize, resume: bool| {
        let mut r = GanRun::new(Preset::Tiny, out);
        r.common.epochs = Some(epochs);
        r.common.train_images = Some(32);
        r.common.plots = false;
        r.common.resume = resume;
        r.options.label_noise = 0.05;
        r.options.fresh_noise_for_g = true;
        r
    };
    let (a, b) = (d.path().join("straight"), d.path().join("resumed"));
    train_gan(g, &run(&a, 2, false)).unwrap();
    train_gan(g, &run(&b, 1, false)).unwrap();
    let ck = Checkpoint::load(&b.join(CHECKPOINT)).unwrap();
    assert_eq!(ck.metadata["label_noise"], "0.05");
    assert_eq!(ck.metadata["fresh_noise_for_g"], "true");
    let m = Metrics::load(&b).unwrap();
    assert_eq!(m.settings["label_noise"], "0.05");
    assert_eq!(m.settings["fresh_noise_for_g"], "true");
    let before = std::fs::read(b.join(CHECKPOINT)).unwrap();

    let mut r = run(&b, 2, true);
    r.options.label_noise = 0.0;
    let e = train_gan(g, &r).err().expect("must refuse").to_string();
    assert!(
        e.contains("label_noise = 0.05") && e.contains("label_noise = 0:"),
        "{e}"
    );
    let mut r = run(&b, 2, true);
    r.options.fresh_noise_for_g = false;
    let e = train_gan(g, &r).err().expect("must refuse").to_string();
    assert!(
        e.contains("fresh_noise_for_g = true") && e.contains("fresh_noise_for_g = false"),
        "{e}"
    );
    assert_eq!(std::fs::read(b.join(CHECKPOINT)).unwrap(), before, "intact");

    train_gan(g, &run(&b, 2, true)).unwrap();
    let ca = Checkpoint::load(&a.join(CHECKPOINT)).unwrap();
    let cb = Checkpoint::load(&b.join(CHECKPOINT)).unwrap();
    assert_eq!(
        ca.tensors, cb.tensors,
        "2 epochs straight == 1 + resume + 1"
    );
}

/// A VAE run with `--kl mc` records it, a resume with the analytic KL is
/// refused, and a checkpoint from before the option (no `kl` key) counts as
/// analytic: resuming it with `--kl mc` is refused too.
#[test]
fn train_vae_kl_estimator_is_recorded_and_resume_checks_it() {
    use vae_vs_gan::models::vae::KlEstimator;
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mc");
    let mut r = tiny(&out, 1);
    r.options.kl = KlEstimator::Mc;
    let (_, m) = train_vae(g, &r).unwrap();
    assert!(m.epochs[0].train_loss.unwrap().is_finite());
    assert_eq!(m.settings["kl"], "mc");
    let path = out.join(CHECKPOINT);
    let mut ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.metadata["kl"], "mc");
    assert_eq!(Metrics::load(&out).unwrap().settings["kl"], "mc");
    let mut r = tiny(&out, 2);
    r.common.resume = true;
    let e = train_vae(g, &r).err().expect("must refuse").to_string();
    assert!(e.contains("kl = mc") && e.contains("kl = analytic"), "{e}");

    // As a checkpoint written before the option: no "kl" key.
    ck.metadata.remove("kl");
    ck.save(&path).unwrap();
    let mut r = tiny(&out, 2);
    r.common.resume = true;
    r.options.kl = KlEstimator::Mc;
    let e = train_vae(g, &r).err().expect("must refuse").to_string();
    assert!(e.contains("kl = analytic") && e.contains("kl = mc"), "{e}");
}

/// The tiny runs the browser also trains (tests/checks/training.rs): every
/// loss of 4 steps finite.
#[test]
fn tiny_vae_and_gan_runs_have_finite_losses() {
    use crate::checks::training::{finite, runs, Tiny};
    let runs = pollster::block_on(runs(gpu())).unwrap();
    pass(async { finite(&runs, Tiny::Vae) });
    pass(async { finite(&runs, Tiny::Gan) });
}

/// `--gan-loss`: an unknown name is refused listing the valid ones; label
/// noise with a loss that has no cross-entropy is refused naming both; a
/// run records its loss, trains with finite losses, and a resume with
/// another loss is refused naming both (the checkpoint intact).
#[test]
fn gan_loss_option_is_checked_recorded_and_resumed() {
    use vae_vs_gan::models::gan_loss::GanLoss;
    use vae_vs_gan::train::gan_run::{train_gan, GanRun};
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("gan");
    let mut c = example_cmd("train_gan");
    c.args(["--preset", "tiny", "--gan-loss", "wasserstein-gp", "--out"])
        .arg(&out);
    let (code, err) = output(c);
    assert_ne!(code, Some(0), "{err}");
    for name in ["minimax", "non-saturating", "least-squares", "hinge"] {
        assert!(err.contains(name), "valid names listed: {err}");
    }
    let mut c = example_cmd("train_gan");
    c.args([
        "--preset",
        "tiny",
        "--gan-loss",
        "hinge",
        "--label-noise",
        "0.05",
    ])
    .arg("--out")
    .arg(&out);
    let (code, err) = output(c);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--label-noise") && err.contains("--gan-loss hinge"),
        "{err}"
    );
    assert!(!out.exists(), "no folder made");

    let run = |epochs: usize, resume: bool, loss: GanLoss| {
        let mut r = GanRun::new(Preset::Tiny, &out);
        r.common.epochs = Some(epochs);
        r.common.train_images = Some(16);
        r.common.plots = false;
        r.common.resume = resume;
        r.options.loss = loss;
        r
    };
    let (_, m) = train_gan(g, &run(1, false, GanLoss::LeastSquares)).unwrap();
    let e = &m.epochs[0];
    assert!(e.g_loss.unwrap().is_finite() && e.d_loss.unwrap().is_finite());
    assert_eq!(m.settings["loss"], "least-squares");
    let ck = Checkpoint::load(&out.join(CHECKPOINT)).unwrap();
    assert_eq!(ck.metadata["loss"], "least-squares");
    let before = std::fs::read(out.join(CHECKPOINT)).unwrap();
    let e = train_gan(g, &run(2, true, GanLoss::Hinge))
        .err()
        .expect("must refuse")
        .to_string();
    assert!(
        e.contains("loss = least-squares") && e.contains("loss = hinge"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join(CHECKPOINT)).unwrap(), before);
    train_gan(g, &run(2, true, GanLoss::LeastSquares)).unwrap();
}

/// The Wasserstein GAN's options (`--n-critic`, `--weight-clip`,
/// `--rmsprop-lr`): each refused with another loss, naming both, and out of
/// its domain, naming the paper's value (no folder made); a run records the
/// settings it trains with (the paper's where not given), counts an epoch
/// in steps of n_critic batches (48 images, batch 8, 2 critic iterations:
/// 3 steps), trains with finite losses, and a resume with another n_critic
/// is refused naming both.
#[test]
fn wasserstein_options_are_checked_recorded_and_resumed() {
    use vae_vs_gan::models::gan_loss::GanLoss;
    use vae_vs_gan::train::gan_run::{train_gan, GanRun};
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("gan");
    for (args, want) in [
        (
            &["--gan-loss", "hinge", "--n-critic", "3"][..],
            &["--n-critic 3", "--gan-loss hinge"][..],
        ),
        (
            &["--weight-clip", "0.1"],
            &["--weight-clip 0.1", "--gan-loss non-saturating"],
        ),
        (
            &["--gan-loss", "minimax", "--rmsprop-lr", "1e-4"],
            &["--rmsprop-lr", "--gan-loss minimax"],
        ),
        (
            &["--gan-loss", "wasserstein", "--n-critic", "0"],
            &["--n-critic 0", "the paper's 5"],
        ),
        (
            &["--gan-loss", "wasserstein", "--weight-clip", "-1"],
            &["--weight-clip -1", "0.01"],
        ),
        (
            &["--gan-loss", "wasserstein", "--rmsprop-lr", "nan"],
            &["--rmsprop-lr NaN", "0.00005"],
        ),
        (
            &["--gan-loss", "wasserstein", "--lr", "1e-4"],
            &["--lr sets Adam's", "--rmsprop-lr"],
        ),
    ] {
        let mut c = example_cmd("train_gan");
        c.args(["--preset", "tiny"])
            .args(args)
            .arg("--out")
            .arg(&out);
        let (code, err) = output(c);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        for w in want {
            assert!(err.contains(w), "{args:?}: want {w:?} in: {err}");
        }
        assert!(!out.exists(), "{args:?}: no folder made");
    }

    let run = |epochs: usize, resume: bool, n_critic: Option<u32>| {
        let mut r = GanRun::new(Preset::Tiny, &out);
        r.common.epochs = Some(epochs);
        r.common.train_images = Some(48);
        r.common.batch_size = Some(8);
        r.common.plots = false;
        r.common.resume = resume;
        r.options.loss = GanLoss::Wasserstein;
        r.options.n_critic = n_critic;
        r
    };
    let (gan, m) = train_gan(g, &run(1, false, Some(2))).unwrap();
    let e = &m.epochs[0];
    assert!(e.g_loss.unwrap().is_finite() && e.d_loss.unwrap().is_finite());
    for (k, v) in [
        ("loss", "wasserstein"),
        ("n_critic", "2"),
        ("weight_clip", "0.01"),
        ("rmsprop_lr", "0.00005"),
    ] {
        assert_eq!(m.settings[k], v, "{k}");
    }
    let ck = Checkpoint::load(&out.join(CHECKPOINT)).unwrap();
    assert_eq!(ck.metadata["n_critic"], "2");
    // every critic value clipped to [-0.01, 0.01]
    for p in gan.discriminator_params() {
        let v = p.value.read_f32(g).unwrap();
        assert!(v.iter().all(|x| x.abs() <= 0.01), "{}", p.name);
    }
    let before = std::fs::read(out.join(CHECKPOINT)).unwrap();
    let e = train_gan(g, &run(2, true, Some(3)))
        .err()
        .expect("must refuse")
        .to_string();
    assert!(
        e.contains("n_critic = 2") && e.contains("n_critic = 3"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join(CHECKPOINT)).unwrap(), before);
    let (_, m) = train_gan(g, &run(2, true, Some(2))).unwrap();
    assert_eq!(m.epochs.len(), 2);
}
