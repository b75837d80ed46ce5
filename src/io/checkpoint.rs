//! Checkpoints: named f32 tensors plus string metadata in a safetensors
//! file, written atomically ([`write_atomic`]) so a crash or a failed run
//! never leaves a half-written checkpoint in place of a good one.
//!
//! Tensor names and layouts are PyTorch's (`encoder.0.weight` `[32,1,3,3]`);
//! models convert from the engine's layouts when they save.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Tensors by name, each with its shape, and metadata strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Add a tensor; the element count must match the shape.
    pub fn insert(&mut self, name: &str, shape: &[usize], data: Vec<f32>) -> Result<()> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::shape("checkpoint", name, shape, &[data.len()]));
        }
        self.tensors
            .insert(name.to_string(), (shape.to_vec(), data));
        Ok(())
    }

    /// The tensor `name`, which must have `shape`.
    pub fn get(&self, path: &Path, name: &str, shape: &[usize]) -> Result<&[f32]> {
        match self.tensors.get(name) {
            Some((s, d)) if s == shape => Ok(d),
            Some((s, _)) => Err(Error::data(
                path,
                format!("tensor {name} has shape {s:?}, expected {shape:?}"),
            )),
            None => Err(Error::data(path, format!("tensor {name} is missing"))),
        }
    }

    /// Refuse a checkpoint whose tensors are not exactly `expected` (name and
    /// shape), listing every missing, unexpected and mis-shaped tensor: the
    /// error a checkpoint of another architecture or size gets.
    pub fn expect(&self, path: &Path, expected: &[(String, Vec<usize>)]) -> Result<()> {
        let mut problems = Vec::new();
        let want: HashMap<&str, &Vec<usize>> =
            expected.iter().map(|(n, s)| (n.as_str(), s)).collect();
        for (name, shape) in expected {
            match self.tensors.get(name) {
                None => problems.push(format!("{name}: missing (expected {shape:?})")),
                Some((s, _)) if s != shape => {
                    problems.push(format!("{name}: shape {s:?}, expected {shape:?}"))
                }
                _ => {}
            }
        }
        for (name, (s, _)) in &self.tensors {
            if !want.contains_key(name.as_str()) {
                problems.push(format!("{name}: unexpected tensor {s:?}"));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::data(
            path,
            format!(
                "checkpoint does not match this model ({} mismatched tensors):\n  {}",
                problems.len(),
                problems.join("\n  ")
            ),
        ))
    }

    /// Write to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes(path)?)
    }

    /// The safetensors file's bytes (what [`Checkpoint::save`] writes, and
    /// what a browser downloads); `path` names the file in errors.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>> {
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(n, (s, d))| (n.clone(), bytemuck::cast_slice(d).to_vec(), s.clone()))
            .collect();
        let views = bytes
            .iter()
            .map(|(n, b, s)| {
                TensorView::new(Dtype::F32, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| Error::data(path, format!("tensor {n}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::data(path, format!("cannot serialise: {e}")))
    }

    /// Read a checkpoint; a missing, truncated or non-safetensors file, or
    /// non-f32 tensors, are errors naming the file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        Checkpoint::from_bytes(&crate::io::file::read(path, "checkpoint")?, path)
    }

    /// A checkpoint from a safetensors file's bytes (a file read, or one a
    /// browser was given); refused as [`Checkpoint::load`] refuses it, the
    /// errors naming `path`.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        check_offsets(path, bytes)?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::data(path, format!("not a valid safetensors file: {e}")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::data(path, format!("not a valid safetensors file: {e}")))?;
        let mut ck = Checkpoint::default();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(Error::data(
                    path,
                    format!("tensor {name} is {:?}, expected F32", view.dtype()),
                ));
            }
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            ck.tensors.insert(name, (view.shape().to_vec(), data));
        }
        if let Some(m) = meta.metadata() {
            ck.metadata = m.clone().into_iter().collect();
        }
        Ok(ck)
    }
}

/// The part of a safetensors header that [`check_offsets`] reads: every
/// entry's data offsets, nothing else. It accepts every header the
/// safetensors crate accepts (it ignores dtypes and shapes).
#[derive(Deserialize)]
struct Offsets {
    #[serde(rename = "__metadata__")]
    _metadata: Option<HashMap<String, String>>,
    #[serde(flatten)]
    tensors: HashMap<String, TensorOffsets>,
}

#[derive(Deserialize)]
struct TensorOffsets {
    data_offsets: (u64, u64),
}

/// Refuse a tensor whose data offsets run past the end of the file, before
/// the safetensors crate sees them: it adds the last tensor's end offset to
/// the header length unchecked, an overflow panic (where overflow checks are
/// on) for offsets near 2^64, which a chain of tensors of up to 2^61 bytes
/// each passes its other checks with. A header that does not parse here is
/// left to the safetensors crate, whose error names the problem.
fn check_offsets(path: &Path, bytes: &[u8]) -> Result<()> {
    let Some(&len) = bytes.first_chunk::<8>() else {
        return Ok(());
    };
    let n = u64::from_le_bytes(len);
    // The safetensors crate refuses a larger header before parsing it.
    const MAX_HEADER_SIZE: u64 = 100_000_000;
    if n > MAX_HEADER_SIZE {
        return Ok(());
    }
    let Some(header) = bytes.get(8..8 + n as usize) else {
        return Ok(());
    };
    let data_len = (bytes.len() - 8 - header.len()) as u64;
    let Ok(offsets) = serde_json::from_slice::<Offsets>(header) else {
        return Ok(());
    };
    // Sorted, so the error names the same tensor every time.
    let mut tensors: Vec<_> = offsets.tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in tensors {
        let (s, e) = t.data_offsets;
        if s > data_len || e > data_len {
            return Err(Error::data(
                path,
                format!(
                    "not a valid safetensors file: tensor {name} has data offsets [{s}, {e}] \
                     past the end of its {data_len} data bytes"
                ),
            ));
        }
    }
    Ok(())
}
