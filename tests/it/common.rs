//! Shared test helpers: the test device, random inputs, tolerance checks,
//! finite differences, and where the files the tests read are
//! ([`root`]). A module of the `it` test crate (`crate::common`), and
//! included by the `global` crate with `#[path = "../it/common.rs"]`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use vae_vs_gan::gpu::LimitsPolicy;
use vae_vs_gan::{Gpu, GpuOptions, Step};

/// The device every GPU test runs on: the selected adapter opened with
/// exactly `wgpu::Limits::default()`, so a kernel needing more fails here.
/// No adapter is a test failure with the library's error, never a skip.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| open_test_gpu(true))
}

/// The same adapter opened without subgroup operations: what the CPU
/// policy runs on an adapter without subgroups of 8 (the direct GEMM main
/// everywhere the subgroup main would be).
pub fn gpu_without_subgroups() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| open_test_gpu(false))
}

fn open_test_gpu(subgroups: bool) -> Gpu {
    let opts = GpuOptions {
        limits: LimitsPolicy::WebGpuDefaults,
        timestamps: true,
        kernels: None,
        autotune: None,
        subgroups,
    };
    match Gpu::with_options(opts) {
        Ok(g) => {
            eprintln!(
                "test adapter: {}; {}; subgroups {:?}",
                g.describe(),
                g.describe_kernels(),
                g.subgroup_lanes()
            );
            g
        }
        Err(e) => panic!("GPU tests need an adapter: {e}"),
    }
}

/// The folder the tests read their files from (`data/`, `tests/fixtures/`,
/// `src/`), and the working directory of the examples they run:
/// `VAE_VS_GAN_ROOT` when set (test binaries run from a packed folder, away
/// from the source tree they were built in), else the source tree they were
/// built from (`CARGO_MANIFEST_DIR` at compile time). Never the working
/// directory: `cargo test` sets it to the package root, a packed run need not.
pub fn root() -> PathBuf {
    match std::env::var_os("VAE_VS_GAN_ROOT") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// The MNIST files the repository ships: the library's default folder
/// (`Dataset::Mnist.default_dir()`, relative to the working directory)
/// under [`root`].
pub fn mnist_dir() -> PathBuf {
    root().join(vae_vs_gan::data::Dataset::Mnist.default_dir())
}

/// The Fashion-MNIST files: `VAE_VS_GAN_FASHION_DIR` when set (the GPU kit
/// carries the test set), else the Debian package's folder
/// (`Dataset::Fashion.default_dir()`).
pub fn fashion_dir() -> PathBuf {
    match std::env::var_os("VAE_VS_GAN_FASHION_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => vae_vs_gan::data::Dataset::Fashion.default_dir(),
    }
}

/// Run a recorded step and wait, failing the test on any GPU error.
pub fn run(step: &Step) {
    gpu().run(&[step]).expect("step failed on the GPU");
}

#[allow(unused_imports)] // not every including crate uses every helper
pub use crate::checks::{away_from_zero, bits, rng, to_f64, uniform};

/// Run one of the shared checks (tests/checks) to its end on this thread
/// and fail the test with its failure; the figures go to stderr.
pub fn pass(check: impl std::future::Future<Output = crate::checks::Outcome>) {
    match pollster::block_on(check) {
        Ok(figures) => eprintln!("{figures}"),
        Err(why) => panic!("{why}"),
    }
}

/// Assert `|got - want| <= atol + rtol * |want|` elementwise
/// ([`crate::checks::Worst::close`]). NaN anywhere fails (poisoned outputs
/// that were never written).
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f64, rtol: f64) {
    let mut worst = crate::checks::Worst::default();
    if let Err(why) = worst.close(what, got, want, atol, rtol) {
        panic!("{why}");
    }
    eprintln!("{what}: {}", worst.done().unwrap_or_default());
}

/// f64 version of [`assert_close`], for finite-difference checks.
pub fn assert_close_f64(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= atol + rtol * w.abs(),
            "{what}: element {i}: got {g}, want {w}, |diff| {err:e}"
        );
    }
}

/// Central finite differences of a scalar function of `x`, in f64.
pub fn fd_grad(f: impl Fn(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let x0 = x[i];
            x[i] = x0 + h;
            let fp = f(&x);
            x[i] = x0 - h;
            let fm = f(&x);
            x[i] = x0;
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

/// `sum(a * b)` in f64: the scalar whose gradient with respect to an op's
/// output is `b`, used to turn a vector backward into a gradient check.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `r` failed, with an error message that names every one of `parts` (the
/// op, the expected and the actual shape, ...).
pub fn assert_err_mentions<T>(r: vae_vs_gan::Result<T>, parts: &[&str]) {
    match r {
        Ok(_) => panic!("expected an error naming {parts:?}"),
        Err(e) => {
            let msg = e.to_string();
            for p in parts {
                assert!(msg.contains(p), "{msg:?} does not name {p:?}");
            }
        }
    }
}

/// An example binary built by `cargo test` beside this test binary, to
/// drive as a user would. Found relative to the test binary, not to
/// [`root`]: `<dir>/deps/<test binary>` -> `<dir>/examples/NAME`, which is
/// `target/<profile>/examples/NAME` in a build and the same layout in a
/// packed folder (the test binaries under `deps/`, the examples under
/// `examples/`).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps");
    let p = dir.join("examples").join(name);
    assert!(
        p.is_file(),
        "{} not built: `cargo test` builds the examples before it runs tests",
        p.display()
    );
    p
}

/// `example(name)` as a command run from [`root`] (where the default data
/// paths, `data/mnist` and `data/classifier`, point), stdin closed.
pub fn example_cmd(name: &str) -> std::process::Command {
    let mut c = std::process::Command::new(example(name));
    c.current_dir(root());
    c.stdin(std::process::Stdio::null());
    c
}

/// What a user sees when a run stops: exit status and stderr (ending
/// with the signal's number when a signal ended it: no status then).
pub fn output(mut c: std::process::Command) -> (Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    let o = c.output().expect("run the example");
    let mut err = String::from_utf8_lossy(&o.stderr).into_owned();
    if let Some(sig) = o.status.signal() {
        err.push_str(&format!("\n[killed by signal {sig}]"));
    }
    (o.status.code(), err)
}

/// Send the signal `sig` (`-INT`, `-KILL`) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Wait (at most 3 minutes) until `path` exists.
pub fn wait_for(path: &std::path::Path) {
    let t = std::time::Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed().as_secs() < 180,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// [`crate::checks::runs_here`] on the test device, saying once (on stderr)
/// where the subgroup main is not run.
pub fn runs_here(main: vae_vs_gan::ops::gemm::Main) -> bool {
    let ok = crate::checks::runs_here(gpu(), main);
    if !ok {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            eprintln!(
                "the subgroup GEMM main is not run on this device (subgroups of {:?}): the \
                 direct main stands in for it",
                gpu().subgroup_lanes()
            )
        });
    }
    ok
}
