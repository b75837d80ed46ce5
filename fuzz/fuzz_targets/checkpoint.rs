//! The checkpoint loader on arbitrary bytes: it must return Ok or Err,
//! never panic, hang or allocate what a header merely claims.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vae_vs_gan::io::Checkpoint;

/// One file per process, rewritten every iteration (the loader takes a path).
fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("vae-vs-gan-fuzz-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("input.safetensors")
    })
}

fuzz_target!(|data: &[u8]| {
    let p = scratch();
    std::fs::write(p, data).unwrap();
    if let Ok(ck) = Checkpoint::load(p) {
        // What loads is consistent: every tensor fills its shape.
        for (name, (shape, values)) in &ck.tensors {
            assert_eq!(values.len(), shape.iter().product::<usize>(), "{name}");
        }
    }
});
