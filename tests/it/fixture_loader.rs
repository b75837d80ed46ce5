//! Loader for the PyTorch golden fixtures in `tests/fixtures/*.json`
//! (written by `tests/fixtures/make_fixtures.py`; fields documented in
//! `tests/fixtures/README.md`).
//!
//! A fixture file is one JSON object: integer sizes, float hyperparameters,
//! a `description` string, and tensors stored as
//! `{"shape": [...], "data": [flat row-major values]}` in the engine's
//! layouts (NHWC activations, HWIO conv weights, `[KH, KW, Co_t, Ci_t]`
//! transposed conv weights). Every accessor panics with the fixture and key
//! names on a missing key or a malformed value: these are test helpers, and
//! a broken fixture is a test failure.
//!
//! A module of the `it` test crate: use from a test module with
//! `use crate::fixture_loader;`.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{Map, Value};

/// One parsed fixture file.
pub struct Fixture {
    name: String,
    map: Map<String, Value>,
}

/// Directory holding the fixture files.
pub fn dir() -> PathBuf {
    crate::common::root().join("tests/fixtures")
}

/// Names (file stems, sorted) of every `*.json` fixture in [`dir`].
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("tests/fixtures is readable")
        .filter_map(|e| {
            let path = e.expect("directory entry").path();
            match path.extension() {
                Some(ext) if ext == "json" => {
                    Some(path.file_stem()?.to_string_lossy().into_owned())
                }
                _ => None,
            }
        })
        .collect();
    names.sort();
    names
}

/// Load `tests/fixtures/{name}.json` (`name` without the extension).
pub fn load(name: &str) -> Fixture {
    let path = dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {name}: cannot read {}: {e}", path.display()));
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {name}: invalid JSON: {e}"));
    match value {
        Value::Object(map) => Fixture {
            name: name.to_string(),
            map,
        },
        _ => panic!("fixture {name}: top level is not a JSON object"),
    }
}

impl Fixture {
    /// The fixture's name (file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every key, in file order.
    pub fn keys(&self) -> Vec<&str> {
        self.map.keys().map(String::as_str).collect()
    }

    /// Whether `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Whether `key` holds a tensor (`{"shape", "data"}` object).
    pub fn is_tensor(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(Value::Object(o)) if o.contains_key("shape") && o.contains_key("data"))
    }

    /// The JSON value at `key`, for a fixture's structured entries.
    pub fn value(&self, key: &str) -> &Value {
        self.get(key)
    }

    fn get(&self, key: &str) -> &Value {
        self.map
            .get(key)
            .unwrap_or_else(|| panic!("fixture {}: no key {key:?}", self.name))
    }

    /// A tensor: its shape and its flat row-major f32 data. Panics unless the
    /// data length equals the product of the shape.
    pub fn tensor(&self, key: &str) -> (Vec<usize>, Vec<f32>) {
        let what = || format!("fixture {}: tensor {key:?}", self.name);
        let obj = self
            .get(key)
            .as_object()
            .unwrap_or_else(|| panic!("{}: not an object", what()));
        let shape: Vec<usize> = obj
            .get("shape")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{}: no \"shape\" array", what()))
            .iter()
            .map(|d| {
                d.as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .unwrap_or_else(|| panic!("{}: bad dimension {d}", what()))
            })
            .collect();
        let data: Vec<f32> = obj
            .get("data")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{}: no \"data\" array", what()))
            .iter()
            .map(|v| {
                v.as_f64()
                    .unwrap_or_else(|| panic!("{}: non-number {v}", what())) as f32
            })
            .collect();
        let n: usize = shape.iter().product();
        assert_eq!(
            data.len(),
            n,
            "{}: {} values for shape {shape:?}",
            what(),
            data.len()
        );
        (shape, data)
    }

    /// A number (integer or float) as f64.
    pub fn scalar(&self, key: &str) -> f64 {
        self.get(key)
            .as_f64()
            .unwrap_or_else(|| panic!("fixture {}: {key:?} is not a number", self.name))
    }

    /// A non-negative integer.
    pub fn int(&self, key: &str) -> usize {
        self.get(key)
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or_else(|| {
                panic!(
                    "fixture {}: {key:?} is not a non-negative integer",
                    self.name
                )
            })
    }

    /// A string (e.g. `description`, `padding`).
    pub fn text(&self, key: &str) -> &str {
        self.get(key)
            .as_str()
            .unwrap_or_else(|| panic!("fixture {}: {key:?} is not a string", self.name))
    }
}
