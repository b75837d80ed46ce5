//! GEMM and dense layers: GPU vs the CPU reference on odd shapes, every
//! main, tile and split-K (the shared checks, tests/checks/dense.rs, with
//! their tolerances), the CPU backward vs central finite differences in f64,
//! the subgroup main's fallback and refusal without subgroups, and shape
//! mismatches refused at record time.

use crate::common::*;
use vae_vs_gan::ops::bias::{bias_grad, bias_grad_cpu};
use vae_vs_gan::ops::dense::*;
use vae_vs_gan::ops::gemm::{GemmConfig, Main, Policy};
use vae_vs_gan::{Step, Tensor};

use crate::checks::dense::{self as check, atol};

#[test]
fn gemm_all_transposes_match_cpu() {
    pass(check::gemm_all_transposes(gpu()));
}

#[test]
fn gemm_every_tile_and_split_matches_cpu() {
    pass(check::gemm_every_tile_and_split(gpu()));
}

#[test]
fn dense_forward_and_backward_match_cpu() {
    pass(check::forward_and_backward(gpu()));
}

#[test]
fn bias_grad_long_reduction_matches_cpu() {
    pass(check::bias_grad_long_reduction(gpu()));
}

/// The CPU backward of dense is the gradient of `sum(dense(x, w, b) * dy)`:
/// central differences in f64, h = 1e-4 (the function is bilinear, so the
/// truncation error is 0 and only rounding, ~1e-16 / h, remains).
#[test]
fn dense_backward_cpu_matches_finite_differences() {
    let (batch, fin, fout) = (3, 4, 5);
    let x = to_f64(&uniform(batch * fin, -1.0, 1.0, 1));
    let w = to_f64(&uniform(fin * fout, -1.0, 1.0, 2));
    let b = to_f64(&uniform(fout, -1.0, 1.0, 3));
    let dy = to_f64(&uniform(batch * fout, -1.0, 1.0, 4));
    let fx = |x: &[f64]| dot(&dense_forward_cpu(x, &w, Some(&b), batch, fin, fout), &dy);
    let fw = |w: &[f64]| dot(&dense_forward_cpu(&x, w, Some(&b), batch, fin, fout), &dy);
    let fb = |b: &[f64]| dot(&dense_forward_cpu(&x, &w, Some(b), batch, fin, fout), &dy);
    assert_close_f64(
        "dense_backward_data_fd",
        &dense_backward_data_cpu(&dy, &w, batch, fin, fout),
        &fd_grad(fx, &x, 1e-4),
        1e-9,
        1e-7,
    );
    assert_close_f64(
        "dense_backward_weights_fd",
        &dense_backward_weights_cpu(&x, &dy, batch, fin, fout),
        &fd_grad(fw, &w, 1e-4),
        1e-9,
        1e-7,
    );
    assert_close_f64(
        "dense_bias_grad_fd",
        &bias_grad_cpu(&dy, fout),
        &fd_grad(fb, &b, 1e-4),
        1e-9,
        1e-7,
    );
}

#[test]
fn dense_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[4, 5], "x").unwrap();
    let w = Tensor::zeros(g, &[6, 7], "w").unwrap();
    let y = Tensor::zeros(g, &[4, 7], "y").unwrap();
    let mut s = Step::new("bad");
    let err = dense_forward(g, &mut s, &x, &w, None, &y)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dense_forward") && err.contains("[4, 5]") && err.contains("[6, 7]"),
        "{err}"
    );
    let w = Tensor::zeros(g, &[5, 7], "w").unwrap();
    let y = Tensor::zeros(g, &[4, 8], "y").unwrap();
    let err = dense_forward(g, &mut s, &x, &w, None, &y)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dense_forward") && err.contains("[4, 7]") && err.contains("[4, 8]"),
        "{err}"
    );
    let db = Tensor::zeros(g, &[3], "db").unwrap();
    let err = bias_grad(g, &mut s, &y, &db).unwrap_err().to_string();
    assert!(
        err.contains("bias_grad") && err.contains("[8]") && err.contains("[3]"),
        "{err}"
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");
}

/// The subgroup main needs a device running subgroups of exactly 8: on the
/// device opened without subgroups the CPU policy falls back to the direct
/// main, and forcing the subgroup main is refused, naming what is missing.
#[test]
fn subgroup_main_falls_back_and_is_refused_without_subgroups() {
    let g = gpu_without_subgroups();
    let want = if g.cpu_kernels() {
        Policy::CPU
    } else {
        Policy::GPU
    };
    assert_eq!(Policy::of(g), want);
    let (m, n, k) = (64, 40, 30);
    let (a, b) = (uniform(m * k, -1.0, 1.0, 1), uniform(k * n, -1.0, 1.0, 2));
    let at = Tensor::from_f32(g, &[m, k], &a, "a").unwrap();
    let bt = Tensor::from_f32(g, &[k, n], &b, "b").unwrap();
    let c = Tensor::from_f32(g, &[m, n], &vec![f32::NAN; m * n], "c").unwrap();
    let mut s = Step::new("gemm");
    let _scratch = gemm(
        g,
        &mut s,
        &at,
        false,
        &bt,
        false,
        None,
        &c,
        &GemmConfig::default(),
    )
    .unwrap();
    let keys: Vec<&str> = s.kernels().collect();
    assert!(keys.iter().all(|k| !k.contains(",Subgroup,")), "{keys:?}");
    g.run(&[&s]).unwrap();
    let want = gemm_cpu(&a, false, &b, false, None, m, n, k);
    assert_close(
        "direct fallback",
        &c.read_f32(g).unwrap(),
        &want,
        atol(k),
        1e-4,
    );
    let forced = GemmConfig {
        main: Some(Main::Subgroup),
        ..GemmConfig::default()
    };
    let mut s = Step::new("gemm");
    let e = gemm(g, &mut s, &at, false, &bt, false, None, &c, &forced).unwrap_err();
    assert!(
        e.to_string().contains("subgroups of exactly 8 invocations"),
        "{e}"
    );
}
