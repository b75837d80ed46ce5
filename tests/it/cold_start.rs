//! Cold start as a user meets it: the cache folder (where it is, what a
//! corrupt or unwritable one does), the driver's pipeline cache kept there
//! between runs, and the "ready in X s" line, driven through the
//! `train_vae` example with the cache folder pointed at a fresh temp dir.

use crate::common::*;
use vae_vs_gan::gpu::disk_cache::{self, CACHE_DIR_ENV};
use vae_vs_gan::train::Metrics;

/// `train_vae --preset tiny --epochs 1` into `out`, with `env` set and
/// the engine's cache folder override removed unless `env` sets it;
/// returns its stderr after checking it succeeded.
fn tiny_run(out: &std::path::Path, env: &[(&str, &std::path::Path)]) -> String {
    let mut c = example_cmd("train_vae");
    c.args(["--preset", "tiny", "--epochs", "1", "--overwrite", "--out"])
        .arg(out)
        .env_remove(CACHE_DIR_ENV);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("train_vae runs");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "train_vae failed:\n{err}");
    err
}

/// The pipeline cache file a run with cache folder `dir` writes: the one
/// file there whose name is wgpu's pipeline cache key.
fn pipeline_cache_in(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("wgpu_pipeline_cache"))
        })
}

#[test]
fn ready_is_said_once_and_recorded_in_the_metrics() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    let out = d.path().join("run");
    let err = tiny_run(&out, &[(CACHE_DIR_ENV, &cache)]);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("ready in ")).collect();
    assert_eq!(lines.len(), 1, "one ready line:\n{err}");
    let said: f64 = lines[0]
        .trim_start_matches("ready in ")
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a number of seconds in {:?}", lines[0]));
    let m: Metrics =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    let rec = m.epochs[0].ready_seconds.expect("metrics.json has it");
    assert!(rec > 0.0 && (rec - said).abs() < 0.051, "{rec} vs {said}");
    // from process start: more than the epoch's own clock saw of it
    assert!(rec < m.epochs[0].seconds + 60.0, "{rec}");
}

#[test]
fn the_pipeline_cache_is_kept_between_runs_and_a_corrupt_one_rebuilt() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    let out = d.path().join("run");
    let err = tiny_run(&out, &[(CACHE_DIR_ENV, &cache)]);
    let has = g.features.contains(wgpu::Features::PIPELINE_CACHE);
    let file = pipeline_cache_in(&cache);
    if !has {
        // no driver cache on this backend: nothing may be written
        assert!(file.is_none(), "{file:?}");
        return;
    }
    let file = file.unwrap_or_else(|| panic!("no pipeline cache in {cache:?}:\n{err}"));
    assert!(
        disk_cache::read(&file, "pipelines", 1).is_some(),
        "an intact, framed cache file"
    );
    assert!(
        !err.contains("warning"),
        "a clean run warns of nothing:\n{err}"
    );

    // Corrupt it: the next run warns once, runs, and writes a valid one.
    std::fs::write(&file, b"VVGCACHE but then garbage").unwrap();
    let err = tiny_run(&out, &[(CACHE_DIR_ENV, &cache)]);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{err}");
    assert!(
        warnings[0].contains("ignoring the pipelines cache"),
        "{err}"
    );
    assert!(disk_cache::read(&file, "pipelines", 1).is_some(), "rebuilt");
}

#[test]
fn an_unwritable_cache_folder_is_a_warning_not_a_failure() {
    let d = tempfile::tempdir().unwrap();
    // a "folder" under a regular file can never be created
    let blocker = d.path().join("a-file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let cache = blocker.join("cache");
    let out = d.path().join("run");
    let err = tiny_run(&out, &[(CACHE_DIR_ENV, &cache)]);
    assert!(out.join("metrics.json").is_file(), "the run finished");
    if gpu().features.contains(wgpu::Features::PIPELINE_CACHE) {
        let w: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
        assert_eq!(w.len(), 1, "one warning:\n{err}");
        assert!(w[0].contains("cannot write the pipelines cache"), "{err}");
    }
}

#[test]
fn the_cache_folder_is_under_xdg_cache_home() {
    let d = tempfile::tempdir().unwrap();
    let xdg = d.path().join("xdg");
    let out = d.path().join("run");
    tiny_run(&out, &[("XDG_CACHE_HOME", &xdg)]);
    if gpu().features.contains(wgpu::Features::PIPELINE_CACHE) {
        assert!(
            pipeline_cache_in(&xdg.join("vae-vs-gan")).is_some(),
            "{:?}",
            std::fs::read_dir(&xdg).map(|r| r.count())
        );
    }
}
