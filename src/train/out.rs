//! A run's output folder: refused before any work when it cannot take the
//! run, created when the run starts, cleared of an earlier run's files on
//! `--overwrite`, and the checkpoint a `--resume` continues.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The checkpoint file inside a run's output folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// Files a training run writes into its folder: what `--overwrite`
/// removes before the new run starts (nothing else in the folder is
/// touched).
pub const RUN_FILES: &[&str] = &[
    CHECKPOINT,
    "metrics.json",
    "loss.png",
    "reconstructions.png",
    "latent_manifold.png",
    "latent_scatter.png",
];

/// Refuse, before anything is loaded or written, an `out` that cannot take
/// this run: a file; a folder holding another run (unless `overwrite`); a
/// `--resume` folder with no checkpoint; a folder (or, for one not made
/// yet, its nearest existing parent) where no file can be created. Creates
/// nothing: [`create_out`] does, once the run is ready to start.
pub fn check_out(out: &Path, resuming: bool, overwrite: bool) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::data(out, "--out is a file, not a folder"));
    }
    if resuming {
        resume_path(out)?;
    }
    let ck = out.join(CHECKPOINT);
    if ck.exists() && !resuming && !overwrite {
        return Err(Error::data(
            &ck,
            "this folder already holds a training run: pass --resume to continue it, \
             --overwrite to replace it, or choose another --out",
        ));
    }
    check_writable(out)
}

/// Create and remove a probe file in `dir`, or in its nearest existing
/// parent when `dir` does not exist yet.
pub fn check_writable(dir: &Path) -> Result<()> {
    let mut at = dir;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    let probe = at.join(format!(".vae-vs-gan-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| Error::data(dir, format!("cannot write there ({}: {e})", at.display())))
}

/// Create `out` for a run that is ready to start; with `overwrite` (and not
/// resuming), remove the earlier run's files ([`RUN_FILES`] and its
/// per-epoch sample grids) so none of them survive into the new run.
pub fn create_out(out: &Path, resuming: bool, overwrite: bool) -> Result<()> {
    std::fs::create_dir_all(out)
        .map_err(|e| Error::data(out, format!("cannot create output folder: {e}")))?;
    if overwrite && !resuming {
        let entries =
            std::fs::read_dir(out).map_err(|e| Error::data(out, format!("cannot list: {e}")))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let old = RUN_FILES.contains(&name.as_str())
                || (name.starts_with("samples_epoch_") && name.ends_with(".png"));
            if old && e.path().is_file() {
                std::fs::remove_file(e.path()).map_err(|err| {
                    Error::data(
                        &e.path(),
                        format!("cannot remove the earlier run's file: {err}"),
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// The checkpoint path in a run folder given to `--resume`.
pub fn resume_path(dir: &Path) -> Result<PathBuf> {
    let p = dir.join(CHECKPOINT);
    if !p.is_file() {
        return Err(Error::data(&p, "no checkpoint to resume from"));
    }
    Ok(p)
}
