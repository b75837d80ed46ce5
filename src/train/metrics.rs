//! `metrics.json`: what a training run measured, rewritten (atomically)
//! after every epoch.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gpu::{AllocatorFigures, Gpu, StepStats};
use crate::io::write_atomic;
use crate::train::budget::CurvePoint;

/// The adapter a run used.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AdapterDesc {
    pub name: String,
    pub backend: String,
    #[serde(rename = "type")]
    pub device_type: String,
}

impl AdapterDesc {
    pub fn of(gpu: &Gpu) -> AdapterDesc {
        AdapterDesc {
            name: gpu.info.name.clone(),
            backend: format!("{:?}", gpu.info.backend),
            device_type: format!("{:?}", gpu.info.device_type),
        }
    }
}

/// One epoch's figures. VAE runs fill `train_loss` and `test_loss`; GAN
/// runs `g_loss` and `d_loss`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub g_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub d_loss: Option<f64>,
    pub seconds: f64,
    pub images_per_sec: f64,
    /// Blocking waits on the device (CPU-GPU round trips) in the epoch's
    /// training loop: about one per 100-step log interval (absent in files
    /// from before it was recorded). The evaluation, pictures and
    /// checkpoint after the loop are not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_blocking_waits: Option<u64>,
    /// Seconds from process start to the first finished training step
    /// ("ready in X s"), in the epoch that had it: the process's first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_seconds: Option<f64>,
}

/// A run's metrics.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub model: String,
    pub preset: String,
    /// The run's settings as its checkpoint's metadata records them (the
    /// ones a resume must match: batch, seed, learning rates, the
    /// article's options `kl`, `label_noise`, `fresh_noise_for_g`, ...;
    /// empty in files from before they were recorded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
    pub adapter: AdapterDesc,
    pub params: usize,
    pub epochs: Vec<EpochMetrics>,
    /// High-water mark of the engine's own buffer accounting, in bytes,
    /// evaluation included.
    pub peak_gpu_bytes: u64,
    /// The same during the training steps only: model, optimizer state,
    /// step activations and the dataset (0 in files from before it was
    /// recorded).
    #[serde(default)]
    pub peak_train_gpu_bytes: u64,
    /// The training step as recorded, once per run: dispatches, bind
    /// groups, bytes bound (absent in files from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_step: Option<StepStats>,
    /// wgpu's own allocator figures at the end of an epoch's training
    /// steps (the epoch where its allocations were largest), with the
    /// engine's count at that moment: a check on `peak_train_gpu_bytes`
    /// from below the engine. Absent where the backend does not report
    /// (only Vulkan and DX12 do) and in files from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_allocator: Option<AllocatorFigures>,
    /// The model scored along the way ([`crate::train::budget`]): empty
    /// for a run without a curve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<CurvePoint>,
}

impl Metrics {
    /// Keep `report` if it is the first or shows more allocated than the
    /// one kept.
    pub fn note_allocator(&mut self, report: Option<AllocatorFigures>) {
        if let Some(r) = report {
            if self
                .train_allocator
                .is_none_or(|k| r.allocated_bytes > k.allocated_bytes)
            {
                self.train_allocator = Some(r);
            }
        }
    }

    /// Write `dir/metrics.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join("metrics.json");
        let text =
            serde_json::to_string_pretty(self).map_err(|e| Error::data(&path, e.to_string()))?;
        write_atomic(&path, text.as_bytes())
    }

    /// `(epoch, value)` of one per-epoch figure, for plotting.
    pub fn curve(&self, f: fn(&EpochMetrics) -> Option<f64>) -> Vec<(f64, f64)> {
        self.epochs
            .iter()
            .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
            .collect()
    }

    /// Read `dir/metrics.json` (to continue it on resume).
    pub fn load(dir: &Path) -> Result<Metrics> {
        let path = dir.join("metrics.json");
        let bytes = crate::io::file::read(&path, "metrics file")?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::data(&path, format!("not valid metrics: {e}")))
    }
}
