//! Which training runs in a comparison's folder are its own.
//!
//! A comparison trains its runs into `seed-N/{vae,gan}` of its folder. When
//! `--overwrite` replaces a comparison, the runs of the one being replaced
//! stay there until each is trained anew, so a replacement killed half way
//! leaves old and new runs side by side. Each comparison therefore has an
//! id, in [`COMPARISON_FILE`], written before its first run starts, and
//! each run it trains carries that id in its checkpoint's metadata
//! ([`META_COMPARISON`]). `--resume` continues only the runs whose id is the
//! folder's and trains the others anew; an old run is never taken for a new
//! one, whatever settings either had. A folder from before ids existed has
//! no file: its runs, which carry no id either, are its own.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::{write_atomic, Checkpoint};
use crate::train::session::{CHECKPOINT, META_COMPARISON};

/// The file in a comparison's folder that holds its id.
pub const COMPARISON_FILE: &str = "comparison.json";

#[derive(Serialize, Deserialize)]
struct Marker {
    /// Unique per comparison started: the start time and process.
    id: String,
}

/// The id of the comparison in `out`: a new one, written to `out` (which
/// must exist), unless `resuming`, when it is the one already there (none
/// for a folder from before ids).
pub fn begin(out: &Path, resuming: bool) -> Result<Option<String>> {
    let path = out.join(COMPARISON_FILE);
    if resuming {
        if !path.exists() {
            return Ok(None);
        }
        let bytes = crate::io::file::read(&path, "comparison id file")?;
        let m: Marker = serde_json::from_slice(&bytes)
            .map_err(|e| Error::data(&path, format!("not a valid comparison id file: {e}")))?;
        return Ok(Some(m.id));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let m = Marker {
        id: format!("{nanos:x}-{:x}", std::process::id()),
    };
    let text = serde_json::to_string_pretty(&m).map_err(|e| Error::data(&path, e.to_string()))?;
    write_atomic(&path, text.as_bytes())?;
    Ok(Some(m.id))
}

/// What is in a run's folder `dir` for the comparison `id`.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// No checkpoint: the run starts.
    Missing,
    /// A checkpoint of this comparison: a resume continues it.
    Own,
    /// A checkpoint of another (replaced) comparison: the run starts anew
    /// over it.
    Stale(PathBuf),
}

/// Whether the run in `dir` belongs to the comparison `id`.
pub fn run_state(dir: &Path, id: Option<&str>) -> Result<RunState> {
    let ck = dir.join(CHECKPOINT);
    if !ck.exists() {
        return Ok(RunState::Missing);
    }
    let meta = Checkpoint::load(&ck)?.metadata;
    Ok(if meta.get(META_COMPARISON).map(String::as_str) == id {
        RunState::Own
    } else {
        RunState::Stale(ck)
    })
}
