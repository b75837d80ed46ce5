//! A model's options as checkpoint metadata. Each model's options
//! ([`crate::models::vae::VaeOptions`], [`crate::models::gan::GanOptions`])
//! are one plain struct: its fields are the command-line flags (clap), the
//! `Default` is the engine's step, and serde turns it into one
//! `key = value` string per field for the checkpoint and back. A new option
//! is one field there and its use: the runs record it, `--resume` refuses
//! another value, the report's Settings table shows it, and a checkpoint
//! written before it existed reads as its default.
//!
//! Values are written as the metadata always held them: numbers as Rust
//! prints an `f32` or an integer (`0`, `0.05`), booleans as `true`/`false`,
//! enums by their serde names (which are their command-line names), and an
//! option that is not set (`None`) as `none`, as the run settings write it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// The text of an option that is not set.
const NONE: &str = "none";

/// `options` as metadata entries, by key.
pub fn to_settings<T: Serialize>(options: &T) -> Vec<(String, String)> {
    let Ok(Value::Object(fields)) = serde_json::to_value(options) else {
        unreachable!("options are a struct of plain fields")
    };
    fields
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                // an option's numbers are f32 or integers: print them as
                // Rust does (serde_json would write 0.0 for 0)
                Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                    (Some(u), _, _) => u.to_string(),
                    (None, Some(i), _) => i.to_string(),
                    (None, None, Some(f)) => (f as f32).to_string(),
                    _ => n.to_string(),
                },
                Value::Null => NONE.to_string(),
                other => other.to_string(),
            };
            (k, text)
        })
        .collect()
}

/// The options checkpoint metadata `meta` (read from `path`, which errors
/// name) records; a key it lacks takes its default (the checkpoint was
/// written before that option existed, when every run had the default).
pub fn from_settings<T: Serialize + DeserializeOwned + Default>(
    meta: &BTreeMap<String, String>,
    path: &Path,
) -> Result<T> {
    let mut fields = serde_json::Map::new();
    for (key, _) in to_settings(&T::default()) {
        let Some(text) = meta.get(&key) else {
            continue;
        };
        // a number or a boolean as itself, anything else (an enum's name)
        // as a string; a string where a number belongs is refused below
        let value = match serde_json::from_str::<Value>(text) {
            Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
            _ if text == NONE => Value::Null,
            _ => Value::String(text.clone()),
        };
        fields.insert(key, value);
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::data(path, format!("checkpoint settings are not valid: {e}")))
}

/// The default of option `key` of options `T`, as metadata holds it.
pub fn default_setting<T: Serialize + Default>(key: &str) -> Option<String> {
    to_settings(&T::default())
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}
