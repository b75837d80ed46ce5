//! The IDX reader on arbitrary bytes, plain or gzip (detected by its
//! magic, so the fuzzer reaches both paths): it must return Ok or Err,
//! never panic, hang or allocate what a header merely claims.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vae_vs_gan::data::read_idx;

/// One file per process, rewritten every iteration (the reader takes a path).
fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vae-vs-gan-fuzz-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("input-idx-ubyte")
    })
}

fuzz_target!(|data: &[u8]| {
    let p = scratch();
    std::fs::write(p, data).unwrap();
    let full = read_idx(p, None);
    for limit in [0, 1, 2] {
        let part = read_idx(p, Some(limit));
        // A subset read checks the whole file too: it fails exactly when the
        // full read fails, and when both succeed it is a prefix of the full one.
        match (&full, &part) {
            (Ok(f), Ok(s)) => {
                assert_eq!(s.dims[0], f.dims[0].min(limit));
                assert_eq!(s.dims[1..], f.dims[1..]);
                assert_eq!(s.data[..], f.data[..s.data.len()]);
            }
            (Err(_), Err(_)) => {}
            _ => panic!("full read {full:?} but subset read {part:?}"),
        }
    }
    if let Ok(f) = &full {
        // The data fills the dimensions. Checked: sizes with a 0 among them
        // (an empty array) may multiply past 2^64 before reaching it.
        let n = if f.dims.contains(&0) {
            Some(0)
        } else {
            f.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
        };
        assert_eq!(Some(f.data.len()), n, "{:?}", f.dims);
    }
});
