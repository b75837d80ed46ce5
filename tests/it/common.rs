//! Shared test helpers: the test device, random inputs, tolerance checks,
//! finite differences, and where the files the tests read are
//! ([`root`]). A module of the `it` test crate (`crate::common`), and
//! included by the `global` crate with `#[path = "../it/common.rs"]`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
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

/// Seeded RNG for test inputs; `seed` is printed by failing assertions.
pub fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// `n` uniform draws in `[lo, hi)`.
pub fn uniform(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

/// `n` draws that avoid `(-gap, gap)`: inputs for functions with a kink at 0
/// (ReLU), so a finite difference never straddles it.
pub fn away_from_zero(n: usize, gap: f32, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| {
            let v: f32 = r.random_range(gap..1.0);
            if r.random::<bool>() {
                v
            } else {
                -v
            }
        })
        .collect()
}

/// Assert `|got - want| <= atol + rtol * |want|` elementwise. NaN anywhere
/// fails (poisoned outputs that were never written).
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0usize, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g as f64, w as f64);
        let err = (g - w).abs();
        let tol = atol + rtol * w.abs();
        assert!(
            g.is_finite() == w.is_finite() && (err <= tol || g == w),
            "{what}: element {i}: got {g}, want {w}, |diff| {err:e} > tol {tol:e} \
             (atol {atol:e}, rtol {rtol:e})"
        );
        if err / tol.max(1e-300) > worst.1 {
            worst = (i, err / tol.max(1e-300));
        }
    }
    eprintln!(
        "{what}: {} elements within tolerance (worst at {}: {:.2} of the allowed error)",
        got.len(),
        worst.0,
        worst.1
    );
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

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
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

/// Whether the test device can run GEMM `main`: every main but the
/// subgroup main, which needs subgroups of exactly
/// [`vae_vs_gan::ops::gemm::SUBGROUP_LANES`] (lavapipe; SwiftShader runs
/// 4, and its policy never picks the subgroup main). Where it cannot, one
/// line says so: the refusal itself is tested in
/// dense::subgroup_main_falls_back_and_is_refused_without_subgroups.
pub fn runs_here(main: vae_vs_gan::ops::gemm::Main) -> bool {
    use vae_vs_gan::ops::gemm::{runs_subgroup_main, Main};
    let ok = main != Main::Subgroup || runs_subgroup_main(gpu());
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

/// The normals the GPU's RNG kernel draws on stream `stream` of `seed` at
/// step counters `0..steps` (`n` each), as f64: what a whole-step test
/// feeds its CPU reference, so both sides compute from the same noise
/// whatever the driver's transcendental accuracy. Each draw is checked
/// only against what WGSL allows (`rng::NORMAL_ATOL`, derived from the
/// spec's `cos` and `log` bounds, plus 1e-5 relative, as tests/it/rng.rs).
pub fn gpu_normals(seed: u64, stream: u32, n: usize, steps: usize) -> Vec<Vec<f64>> {
    use vae_vs_gan::gpu::StepState;
    use vae_vs_gan::ops::rng::{fill_normal, Philox, NORMAL_ATOL};
    let g = gpu();
    let rng = Philox::new(seed, stream);
    (0..steps as u32)
        .map(|s| {
            let state = StepState::new(g, 1, 1, s).unwrap();
            let out = vae_vs_gan::Tensor::zeros(g, &[n], "normals").unwrap();
            let mut step = Step::new("normal draws");
            fill_normal(g, &mut step, rng, &state.counters, &out).unwrap();
            run(&step);
            let got: Vec<f64> = out.read_f32(g).unwrap().iter().map(|&v| v as f64).collect();
            let want: Vec<f64> = rng.normal_cpu(s, n);
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                let tol = NORMAL_ATOL + 1e-5 * b.abs();
                assert!(
                    (a - b).abs() <= tol,
                    "normal {i} at step {s}: gpu {a}, f64 {b}: beyond WGSL's bounds ({tol:e})"
                );
            }
            got
        })
        .collect()
}

/// Adam's own f32 arithmetic per step at lr 1e-3 (tests/it/adam.rs derives
/// 1.5e-7 from the bias corrections plus a few ulp); scales with lr.
const ADAM_ATOL_AT_1E3: f64 = 5e-7;
/// Largest |Adam update| for t <= 3, in units of lr.
const ADAM_MAX_UPDATE: f64 = 1.005;

/// Per-element tolerance of one parameter after one Adam step taken by the
/// GPU and by the CPU reference from the same state (values and moments):
/// the step's gradients differ by at most `dg` (the gradient tolerance),
/// and `history` holds the reference's gradients of this parameter at
/// every step so far, this one last.
///
/// Adam normalises the gradient: the update `lr c_t m / (sqrt(v) + eps)`
/// moves by at most `2 lr dg / max_k |g_k|` (the m and the sqrt(v) terms,
/// each <= lr x the relative error, since sqrt(v) >= sqrt(1 - b2) max_k
/// |g_k| up to b2^t and c_t (1 - b1) / sqrt(1 - b2) <= 1 for t <= 3), and
/// never by more than 2.01 lr (opposite signs, |update| <= 1.005 lr for t
/// <= 3): elements with a gradient near its own error get ~2 lr, the rest
/// stay tight. Plus Adam's own f32 arithmetic and the rounding of the
/// parameter (u |p|).
pub fn adam_step_tol(history: &[&[f64]], dg: &[f64], value: &[f64], lr: f64) -> Vec<f64> {
    const U: f64 = 1.0 / 16_777_216.0;
    (0..value.len())
        .map(|i| {
            let gmax = history.iter().fold(0.0f64, |m, g| m.max(g[i].abs()));
            let sens = (2.0 * lr * dg[i] / gmax).min(2.0 * ADAM_MAX_UPDATE * lr);
            ADAM_ATOL_AT_1E3 * lr / 1e-3 + U * value[i].abs() + sens
        })
        .collect()
}
