//! The engine's files on disk between runs (compiled pipelines, tuned GEMM
//! choices): where they live, and reading and writing them so that a
//! missing, corrupt, foreign or unwritable cache costs a warning and a
//! rebuild, never a failure and never a blindly trusted byte.
//!
//! Each file is framed: a magic, the kind of cache, its format version,
//! the payload's length and CRC-32, then the payload. Anything that does
//! not match is ignored with one warning. Files are written to a temporary
//! name and renamed over the old one, so a reader never sees half a file.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// First bytes of every cache file.
const MAGIC: &[u8; 8] = b"VVGCACHE";

/// Overrides the cache folder (default: `$XDG_CACHE_HOME/vae-vs-gan`, or
/// the platform's cache folder: `~/.cache`, `~/Library/Caches`,
/// `%LOCALAPPDATA%`). Set it to an empty string to use no cache at all.
pub const CACHE_DIR_ENV: &str = "VAE_VS_GAN_CACHE_DIR";

/// The folder the engine keeps its caches in, or `None` when there is no
/// cache folder (no home directory, or `VAE_VS_GAN_CACHE_DIR=""`).
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None => user_cache_dir().map(|d| d.join("vae-vs-gan")),
    }
}

/// The user's cache folder (`~/.cache` on Linux); none without the native
/// feature (a browser has no folders).
fn user_cache_dir() -> Option<PathBuf> {
    #[cfg(feature = "native")]
    return dirs::cache_dir();
    #[cfg(not(feature = "native"))]
    return None;
}

/// A file name made of `parts` (adapter name, driver, ...): every
/// character outside `[A-Za-z0-9._-]` becomes `_`.
pub fn file_name(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Print `warning: {msg}` on stderr, once per process for each `msg`.
pub fn warn_once(msg: &str) {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen
        .get_or_insert_with(HashSet::new)
        .insert(msg.to_string())
    {
        eprintln!("warning: {msg}");
    }
}

fn header(kind: &str, version: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(64);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&(kind.len() as u32).to_le_bytes());
    h.extend_from_slice(kind.as_bytes());
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    h.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

/// Why a framed file's bytes were refused.
fn unframe<'a>(bytes: &'a [u8], kind: &str, version: u32) -> Result<&'a [u8], String> {
    let take = |at: usize, n: usize| bytes.get(at..at + n).ok_or("truncated".to_string());
    if take(0, 8)? != MAGIC {
        return Err("not a vae-vs-gan cache file".into());
    }
    let klen = u32::from_le_bytes(take(8, 4)?.try_into().unwrap_or_default()) as usize;
    if klen > 256 || take(12, klen)? != kind.as_bytes() {
        return Err(format!("not a {kind} cache"));
    }
    let at = 12 + klen;
    let v = u32::from_le_bytes(take(at, 4)?.try_into().unwrap_or_default());
    if v != version {
        return Err(format!("format version {v}, this build reads {version}"));
    }
    let len = u64::from_le_bytes(take(at + 4, 8)?.try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(take(at + 12, 4)?.try_into().unwrap_or_default());
    let payload = bytes.get(at + 16..).unwrap_or_default();
    if payload.len() as u64 != len {
        return Err(format!(
            "{} payload bytes where the header says {len}",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(payload)
}

/// The payload of the `kind` cache file at `path` (format `version`), or
/// `None`: silently when there is no file, with one warning when it cannot
/// be read or is not an intact file of this kind and version.
pub fn read(path: &Path, kind: &str, version: u32) -> Option<Vec<u8>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        // no file, or a folder that cannot exist: nothing cached yet (an
        // unwritable folder is said once, when writing)
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return None
        }
        Err(e) => {
            warn_once(&format!(
                "cannot read the {kind} cache {}: {e}; rebuilding it",
                path.display()
            ));
            return None;
        }
    };
    match unframe(&bytes, kind, version) {
        Ok(p) => Some(p.to_vec()),
        Err(why) => {
            warn_once(&format!(
                "ignoring the {kind} cache {} ({why}); rebuilding it",
                path.display()
            ));
            None
        }
    }
}

/// Write `payload` as the `kind` cache file at `path`, atomically
/// (temporary file, then rename), creating its folder. A failure is one
/// warning: the run goes on without the cache.
pub fn write(path: &Path, kind: &str, version: u32, payload: &[u8]) {
    let attempt = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&header(kind, version, payload))?;
        f.write_all(payload)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    };
    if let Err(e) = attempt() {
        warn_once(&format!(
            "cannot write the {kind} cache {}: {e}; going on without it",
            path.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_and_refuses_damage() {
        let framed = [header("tune", 3, b"abc").as_slice(), b"abc"].concat();
        assert_eq!(unframe(&framed, "tune", 3).unwrap(), b"abc");
        assert!(unframe(&framed, "pipelines", 3).is_err());
        assert!(unframe(&framed, "tune", 4).is_err());
        let mut flipped = framed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            unframe(&flipped, "tune", 3).unwrap_err(),
            "checksum mismatch"
        );
        assert!(unframe(&framed[..framed.len() - 1], "tune", 3).is_err());
        assert!(unframe(b"VVGC", "tune", 3).is_err());
        assert!(unframe(b"garbage garbage garbage", "tune", 3).is_err());
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(
            file_name(&["llvmpipe (LLVM 15.0.6, 256 bits)", "Mesa 22.3.6"]),
            "llvmpipe__LLVM_15.0.6__256_bits_-Mesa_22.3.6"
        );
    }
}
