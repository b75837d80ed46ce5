//! Atomic file writes: every file the engine writes (checkpoints, metrics,
//! pictures, IDX files, reports) goes through [`write_atomic`].

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Write `bytes` to `path` through a temporary file in the same folder,
/// flushed to disk, then renamed over `path`: readers see the old file or
/// the new one, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::data(path, "not a file path"))?
        .to_string_lossy();
    let tmp: PathBuf = dir.join(temp_name(&name, std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::data(path, format!("cannot write: {e}"))
    })
}

/// The temporary name [`write_atomic`] writes `path` through.
fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.tmp-{pid}")
}

/// Remove the temporary files that writers killed mid-write left in `dir`
/// (`.NAME.tmp-PID` of another process); returns how many. A missing
/// folder has none.
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::data(dir, format!("cannot list: {e}"))),
    };
    let own = format!(".tmp-{}", std::process::id());
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = name.starts_with('.')
            && !name.ends_with(&own)
            && name
                .rsplit_once(".tmp-")
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if stale && e.path().is_file() {
            std::fs::remove_file(e.path()).map_err(|err| {
                Error::data(&e.path(), format!("cannot remove stale file: {err}"))
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}
