//! The examples driven as a user drives them, where a run is refused or
//! killed: a refused run leaves nothing behind, a folder where a file
//! should be is named as one, and a replaced comparison killed half way
//! resumes as the new comparison, never as the old.

use std::path::Path;

use crate::common::*;
use vae_vs_gan::compare::runs::COMPARISON_FILE;
use vae_vs_gan::io::Checkpoint;
use vae_vs_gan::train::session::{CHECKPOINT, META_COMPARISON};

/// A batch larger than the training set is refused (exit 1, one message)
/// by train_vae, train_gan and train_classifier, and no `--out` folder is
/// made: the refusal comes before anything is created.
#[test]
fn a_refused_batch_size_leaves_no_folder() {
    let d = tempfile::tempdir().unwrap();
    for example in ["train_vae", "train_gan", "train_classifier"] {
        let out = d.path().join(example);
        let mut c = example_cmd(example);
        c.args(["--train-images", "64", "--batch-size", "100000", "--out"])
            .arg(&out);
        if example != "train_classifier" {
            c.args(["--preset", "tiny"]);
        }
        let (code, err) = output(c);
        assert_eq!(code, Some(1), "{example}: {err}");
        assert!(
            err.contains("batch size 100000 is larger than the 64 training images"),
            "{example}: {err}"
        );
        assert!(!err.contains("panicked"), "{example}: {err}");
        assert!(
            !out.exists(),
            "{example}: a refused run made {}",
            out.display()
        );
    }
}

/// A folder where a data file, a checkpoint or the classifier should be
/// is reported as a folder, not as a missing file, by every reader.
#[test]
fn a_folder_in_place_of_a_file_is_named_as_one() {
    let d = tempfile::tempdir().unwrap();
    // a data folder whose training images are a folder
    let data = d.path().join("data");
    std::fs::create_dir_all(data.join("train-images-idx3-ubyte.gz")).unwrap();
    for f in [
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(mnist_dir().join(f), data.join(f)).unwrap();
    }
    let mut c = example_cmd("train_vae");
    c.args(["--preset", "tiny", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(d.path().join("run"));
    let (code, err) = output(c);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("train-images-idx3-ubyte.gz") && err.contains("is a directory, not a file"),
        "{err}"
    );
    assert!(!err.contains("not found"), "{err}");

    // a checkpoint, and the classifier, that are folders
    let folder = d.path().join("ckpt.safetensors");
    std::fs::create_dir(&folder).unwrap();
    for flag in ["--vae-ckpt", "--classifier"] {
        let mut c = example_cmd("compare");
        c.args(["--preset", "tiny", flag])
            .arg(&folder)
            .arg("--out")
            .arg(d.path().join("cmp"));
        let (code, err) = output(c);
        assert_eq!(code, Some(1), "{flag}: {err}");
        assert!(
            err.contains("ckpt.safetensors") && err.contains("is a directory, not a file"),
            "{flag}: {err}"
        );
    }
}

/// `compare --preset tiny` into `out` with `extra` options.
fn tiny_compare(out: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = example_cmd("compare");
    c.args(["--preset", "tiny"])
        .args(extra)
        .arg("--out")
        .arg(out);
    c
}

/// The comparison id in `out`, if its file is there and complete.
fn comparison_id(out: &Path) -> Option<String> {
    let text = std::fs::read_to_string(out.join(COMPARISON_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(v["id"].as_str()?.to_string())
}

/// Start `compare --overwrite` with `extra` options into `out` and kill it
/// (SIGKILL) as soon as it has marked the folder as its own (a new id),
/// before it has trained anything; returns the new id.
fn overwrite_and_kill(out: &Path, extra: &[&str]) -> String {
    let old = comparison_id(out);
    let mut c = tiny_compare(out, extra);
    c.arg("--overwrite").stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let t = std::time::Instant::now();
    let id = loop {
        if let Some(id) = comparison_id(out).filter(|id| Some(id) != old.as_ref()) {
            break id;
        }
        assert!(t.elapsed().as_secs() < 180, "no new comparison id");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    signal(child.id(), "-KILL");
    child.wait().unwrap();
    id
}

/// Each model's checkpoint metadata of seed 0 in `out`.
fn seed0_meta(out: &Path, model: &str) -> std::collections::BTreeMap<String, String> {
    Checkpoint::load(&out.join("seed-0").join(model).join(CHECKPOINT))
        .unwrap()
        .metadata
}

/// A finished comparison replaced by `--overwrite`, killed before the new
/// one trained anything, then `--resume`d: the runs left from the old
/// comparison are trained anew (with the same settings as the old, they
/// used to be reused silently; with new ones, the resume was refused
/// asking for the old options), and every run ends carrying the new id.
#[test]
fn a_killed_overwrite_resumes_as_the_new_comparison() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("cmp");
    let (code, err) = output(tiny_compare(&out, &[]));
    assert_eq!(code, Some(0), "{err}");
    let first = comparison_id(&out).expect("a comparison id");
    assert_eq!(seed0_meta(&out, "gan").get(META_COMPARISON), Some(&first));
    let report = std::fs::read(out.join("report.md")).unwrap();

    // The same settings: nothing of the old comparison is taken as new.
    let second = overwrite_and_kill(&out, &[]);
    assert_ne!(first, second);
    assert_eq!(
        std::fs::read(out.join("report.md")).unwrap(),
        report,
        "the old report stays until the new one replaces it"
    );
    let (code, err) = output(tiny_compare(&out, &["--resume"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("training it anew"), "{err}");
    for model in ["vae", "gan"] {
        assert_eq!(
            seed0_meta(&out, model).get(META_COMPARISON),
            Some(&second),
            "{model}: trained for the new comparison"
        );
    }

    // New settings: the resume continues the new comparison.
    let third = overwrite_and_kill(&out, &["--label-noise", "0.05"]);
    let (code, err) = output(tiny_compare(&out, &["--label-noise", "0.05", "--resume"]));
    assert_eq!(code, Some(0), "{err}");
    let gan = seed0_meta(&out, "gan");
    assert_eq!(gan.get(META_COMPARISON), Some(&third));
    assert_eq!(gan.get("label_noise").map(String::as_str), Some("0.05"));
    assert_eq!(seed0_meta(&out, "vae").get(META_COMPARISON), Some(&third));
}
