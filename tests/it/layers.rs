//! The layering rule of docs/ARCHITECTURE.md, checked on the source: a
//! module of src/ imports only from modules in layers below its own.
//!
//! ```text
//!   6  compare
//!   5  train
//!   4  models
//!   3  nn  optim  eval  report
//!   2  ops  data
//!   1  gpu  io
//!   0  error  shaders
//! ```
//!
//! Every `crate::X` path outside comments counts, `use crate::{X, ...}`
//! groups included; `crate::Error`/`crate::Result` are `error`'s
//! re-exports.

use std::collections::BTreeSet;
use std::path::Path;

const LAYERS: &[&[&str]] = &[
    &["error", "shaders"],
    &["gpu", "io"],
    &["ops", "data"],
    &["nn", "optim", "eval", "report"],
    &["models"],
    &["train"],
    &["compare"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level modules named by `crate::` paths in `code`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::X, b, C}`: the first segment of each item at depth 1.
            let (mut depth, mut item_start) = (0usize, true);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        out.insert(ident(&group[j..]));
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A root item's module: the error types are re-exported from `error`.
fn module_of(name: &str) -> Option<&str> {
    match name {
        "Error" | "Result" => Some("error"),
        n if layer(n).is_some() => Some(n),
        _ => None,
    }
}

fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_imports_only_from_layers_below_its_own() {
    let src = crate::common::root().join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    files.sort();
    let mut checked = 0;
    let mut broken = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if top == "lib" {
            continue; // the crate root sits above every module
        }
        let own = layer(top).unwrap_or_else(|| {
            panic!("src/{} is in no layer: add `{top}` to LAYERS and to docs/ARCHITECTURE.md's picture", rel.display())
        });
        let code: String = std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for name in imports(&code) {
            let Some(m) = module_of(&name) else {
                broken.push(format!(
                    "src/{}: crate::{name} is no known module",
                    rel.display()
                ));
                continue;
            };
            checked += 1;
            let theirs = layer(m).unwrap();
            if m != top && theirs >= own {
                broken.push(format!(
                    "src/{} (layer {own}, {top}) imports crate::{m} (layer {theirs})",
                    rel.display()
                ));
            }
        }
    }
    assert!(checked > 100, "the scan found only {checked} imports");
    assert!(
        broken.is_empty(),
        "rule: a module imports only from layers below its own (docs/ARCHITECTURE.md):\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn the_scan_sees_plain_paths_and_groups() {
    let got = imports("use crate::gpu::{Gpu, Tensor};\nuse crate::{io::Checkpoint, ops::{a, b}, Error};\nlet x = crate::train::run(1);");
    let want: BTreeSet<String> = ["gpu", "io", "ops", "Error", "train"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
}
