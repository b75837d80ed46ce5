//! The autotuner's memory: choices (a key naming a kernel family and shape,
//! a value naming the choice) kept per adapter and driver in the cache
//! folder ([`crate::gpu::disk_cache`]), so a second run takes them without
//! timing anything and computes the same bits.
//!
//! The gpu layer stores strings; what a key and a choice mean is the
//! tuner's (`crate::ops::gemm::tune`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::gpu::disk_cache;

/// Cache kind and format version of the file.
const KIND: &str = "gemm-tune";
const VERSION: u32 = 1;

/// Tuned choices of one device, loaded from disk on first use, and what
/// the tuner did on it in this process.
#[derive(Default)]
pub(crate) struct TuneTable {
    inner: Mutex<Option<Loaded>>,
    log: Mutex<Vec<TuneEvent>>,
}

/// One shape the tuner resolved on a device: timed now, or taken from the
/// table; with its key and the choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TuneEvent {
    pub timed: bool,
    pub key: String,
    pub choice: String,
}

struct Loaded {
    path: Option<PathBuf>,
    map: BTreeMap<String, String>,
}

impl TuneTable {
    fn with<R>(&self, info: &wgpu::AdapterInfo, f: impl FnOnce(&mut Loaded) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = g.get_or_insert_with(|| {
            let path = table_path(info);
            let map = path
                .as_deref()
                .and_then(|p| disk_cache::read(p, KIND, VERSION).map(|b| (p, b)))
                .and_then(|(p, bytes)| match serde_json::from_slice(&bytes) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        disk_cache::warn_once(&format!(
                            "ignoring the {KIND} cache {} ({e}); rebuilding it",
                            p.display()
                        ));
                        None
                    }
                })
                .unwrap_or_default();
            Loaded { path, map }
        });
        f(loaded)
    }

    pub(crate) fn get(&self, info: &wgpu::AdapterInfo, key: &str) -> Option<String> {
        self.with(info, |l| l.map.get(key).cloned())
    }

    /// Remember `value` for `key` and write the table back to disk.
    pub(crate) fn set(&self, info: &wgpu::AdapterInfo, key: &str, value: &str) {
        self.with(info, |l| {
            l.map.insert(key.to_string(), value.to_string());
            if let Some(p) = &l.path {
                match serde_json::to_vec_pretty(&l.map) {
                    Ok(bytes) => disk_cache::write(p, KIND, VERSION, &bytes),
                    Err(e) => {
                        disk_cache::warn_once(&format!("cannot encode the {KIND} cache: {e}"))
                    }
                }
            }
        })
    }

    pub(crate) fn note(&self, e: TuneEvent) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }

    pub(crate) fn events(&self) -> Vec<TuneEvent> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `<cache>/gemm-tune-<adapter>-<vendor>-<device>-<driver>-<driver info>.bin`.
pub(crate) fn table_path(info: &wgpu::AdapterInfo) -> Option<PathBuf> {
    let name = disk_cache::file_name(&[
        KIND,
        &info.name,
        &format!("{:x}", info.vendor),
        &format!("{:x}", info.device),
        &info.driver,
        &info.driver_info,
    ]);
    disk_cache::cache_dir().map(|d| d.join(format!("{name}.bin")))
}
