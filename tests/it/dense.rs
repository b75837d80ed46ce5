//! GEMM and dense layers, every direction: GPU vs the CPU reference on odd
//! shapes (none a multiple of any tile), the CPU backward vs central finite
//! differences in f64, and shape mismatches refused at record time.
//!
//! Tolerance: each output is a sum of K products of inputs in [-1, 1],
//! accumulated in f32 on the GPU in tile order vs f64 on the CPU. The f32
//! rounding error grows like sqrt(K) * eps * sqrt(sum of squares of terms)
//! (random-walk), bounded by K * eps * sum |terms|. With K <= 600 and
//! |terms| <= 1: atol = 2e-5 * sqrt(K/100) covers outputs near zero
//! (cancellation), rtol = 1e-4 the rest; split-K only reorders the sum.

use crate::common::*;
use vae_vs_gan::ops::bias::{bias_grad, bias_grad_cpu};
use vae_vs_gan::ops::dense::*;
use vae_vs_gan::ops::gemm::{GemmConfig, Main, Policy, Tile, SUBGROUP_TEST_SHAPES};
use vae_vs_gan::{Step, Tensor};

fn atol(k: usize) -> f64 {
    2e-5 * (k as f64 / 100.0).sqrt().max(1.0)
}

fn t(shape: &[usize], data: &[f32], label: &str) -> Tensor {
    Tensor::from_f32(gpu(), shape, data, label).unwrap()
}

fn poisoned(shape: &[usize], label: &str) -> Tensor {
    let x = Tensor::zeros(gpu(), shape, label).unwrap();
    x.poison(gpu());
    x
}

/// (M, N, K) triples: odd, smaller and larger than tiles, one long-K
/// (split-K), N = 1, 2, 3 and M <= 64 (the direct main's narrow and short
/// tiles).
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (3, 5, 7),
    (37, 129, 65),
    (130, 67, 33),
    (5, 3, 600),
    (257, 1, 41),
    (1030, 2, 45),
    (71, 3, 130),
    (25, 70, 301),
];

/// Every shape, transpose and bias choice, with the default main (direct
/// on lavapipe) and each main forced.
#[test]
fn gemm_all_transposes_match_cpu() {
    let g = gpu();
    for (si, &(m, n, k)) in SHAPES.iter().enumerate() {
        for main in [
            None,
            Some(Main::Tiled),
            Some(Main::Direct),
            Some(Main::Subgroup),
        ]
        .into_iter()
        .filter(|m| m.is_none_or(runs_here))
        {
            for ta in [false, true] {
                for tb in [false, true] {
                    let seed = 1000 + si as u64 * 10 + ta as u64 * 2 + tb as u64;
                    let a = uniform(m * k, -1.0, 1.0, seed);
                    let b = uniform(k * n, -1.0, 1.0, seed + 100);
                    let bias = uniform(n, -1.0, 1.0, seed + 200);
                    let at = t(&if ta { [k, m] } else { [m, k] }, &a, "a");
                    let bt = t(&if tb { [n, k] } else { [k, n] }, &b, "b");
                    let biast = t(&[n], &bias, "bias");
                    for with_bias in [false, true] {
                        let c = poisoned(&[m, n], "c");
                        let mut s = Step::new("gemm");
                        let bias_arg = with_bias.then_some(&biast);
                        let _scratch = gemm(
                            g,
                            &mut s,
                            &at,
                            ta,
                            &bt,
                            tb,
                            bias_arg,
                            &c,
                            &GemmConfig {
                                main,
                                ..GemmConfig::default()
                            },
                        )
                        .unwrap();
                        run(&s);
                        let want =
                            gemm_cpu(&a, ta, &b, tb, with_bias.then_some(&bias[..]), m, n, k);
                        assert_close(
                            &format!(
                            "gemm m={m} n={n} k={k} ta={ta} tb={tb} bias={with_bias} main={main:?}"
                        ),
                            &c.read_f32(g).unwrap(),
                            &want,
                            atol(k),
                            1e-4,
                        );
                    }
                }
            }
        }
    }
}

/// Every tile the template offers, with and without forced split-K, on a
/// shape that is a multiple of none of them.
#[test]
fn gemm_every_tile_and_split_matches_cpu() {
    let g = gpu();
    let (m, n, k) = (131, 70, 77);
    let a = uniform(m * k, -1.0, 1.0, 7);
    let b = uniform(k * n, -1.0, 1.0, 8);
    let at = t(&[m, k], &a, "a");
    let bt = t(&[k, n], &b, "b");
    let want = gemm_cpu(&a, false, &b, false, None, m, n, k);
    let tiles = [
        Tile::T128X128,
        Tile::T256X64,
        Tile::T128X64,
        Tile::T64X64,
        Tile::T128X32,
        Tile::T256X4,
        Tile::new(32, 32, 8, 2, 2),
        Tile::new(64, 16, 16, 4, 1),
    ];
    let direct = [
        Tile::direct_auto(1000, 1),
        Tile::direct_auto(40, 1),
        Tile::direct_auto(1000, 3),
        Tile::direct_auto(1000, 8),
        Tile::direct_auto(25, 100),
        Tile::direct_auto(60, 100),
        Tile::direct_auto(1000, 100),
        Tile::direct_auto(1000, 25),
        Tile::direct_auto(1000, 9),
        Tile::new(32, 32, 3, 2, 2),
        Tile::new(13, 7, 1, 13, 7),
    ];
    let all = tiles
        .iter()
        .map(|&t| (Main::Tiled, t))
        .chain(direct.iter().map(|&t| (Main::Direct, t)))
        .chain(
            SUBGROUP_TEST_SHAPES
                .iter()
                .map(|&(m, n)| (Main::Subgroup, Tile::subgroup_auto(m, n))),
        )
        .filter(|c| runs_here(c.0));
    for (main, tile) in all {
        for splits in [Some(1), Some(3), None] {
            let c = poisoned(&[m, n], "c");
            let mut s = Step::new("gemm");
            let cfg = GemmConfig {
                main: Some(main),
                tile: Some(tile),
                col2im: None,
                splits,
            };
            let _scratch = gemm(g, &mut s, &at, false, &bt, false, None, &c, &cfg).unwrap();
            run(&s);
            assert_close(
                &format!("gemm {main:?} tile={tile:?} splits={splits:?}"),
                &c.read_f32(g).unwrap(),
                &want,
                atol(k),
                1e-4,
            );
        }
    }
}

/// Dense forward, backward data, backward weights and the bias gradient at
/// batch 3 and batch 67 (the backward-weights reduction is over the batch).
#[test]
fn dense_forward_and_backward_match_cpu() {
    let g = gpu();
    for (i, &(batch, fin, fout)) in [(3, 5, 7), (67, 130, 33), (2, 300, 1)].iter().enumerate() {
        let seed = 2000 + 10 * i as u64;
        let x = uniform(batch * fin, -1.0, 1.0, seed);
        let w = uniform(fin * fout, -1.0, 1.0, seed + 1);
        let b = uniform(fout, -1.0, 1.0, seed + 2);
        let dy = uniform(batch * fout, -1.0, 1.0, seed + 3);
        let (xt, wt, bt, dyt) = (
            t(&[batch, fin], &x, "x"),
            t(&[fin, fout], &w, "w"),
            t(&[fout], &b, "b"),
            t(&[batch, fout], &dy, "dy"),
        );
        let y = poisoned(&[batch, fout], "y");
        let dx = poisoned(&[batch, fin], "dx");
        let dw = poisoned(&[fin, fout], "dw");
        let db = poisoned(&[fout], "db");
        let mut s = Step::new("dense");
        let _s1 = dense_forward(g, &mut s, &xt, &wt, Some(&bt), &y).unwrap();
        let _s2 = dense_backward_data(g, &mut s, &dyt, &wt, &dx).unwrap();
        let _s3 = dense_backward_weights(g, &mut s, &xt, &dyt, &dw).unwrap();
        let _s4 = bias_grad(g, &mut s, &dyt, &db).unwrap();
        run(&s);
        let tag = format!("batch={batch} in={fin} out={fout}");
        assert_close(
            &format!("dense_forward {tag}"),
            &y.read_f32(g).unwrap(),
            &dense_forward_cpu(&x, &w, Some(&b), batch, fin, fout),
            atol(fin),
            1e-4,
        );
        assert_close(
            &format!("dense_backward_data {tag}"),
            &dx.read_f32(g).unwrap(),
            &dense_backward_data_cpu(&dy, &w, batch, fin, fout),
            atol(fout),
            1e-4,
        );
        assert_close(
            &format!("dense_backward_weights {tag}"),
            &dw.read_f32(g).unwrap(),
            &dense_backward_weights_cpu(&x, &dy, batch, fin, fout),
            atol(batch),
            1e-4,
        );
        assert_close(
            &format!("dense_bias_grad {tag}"),
            &db.read_f32(g).unwrap(),
            &bias_grad_cpu(&dy, fout),
            atol(batch),
            1e-4,
        );
    }
}

/// The bias gradient over many rows (the conv case: N*H*W rows), chunked.
#[test]
fn bias_grad_long_reduction_matches_cpu() {
    let g = gpu();
    for &(rows, c) in &[(3 * 13 * 13, 5), (10_007, 1), (1, 3)] {
        let dy = uniform(rows * c, -1.0, 1.0, rows as u64);
        let dyt = t(&[rows, c], &dy, "dy");
        let db = poisoned(&[c], "db");
        let mut s = Step::new("bias");
        let _scratch = bias_grad(g, &mut s, &dyt, &db).unwrap();
        run(&s);
        assert_close(
            &format!("bias_grad rows={rows} c={c}"),
            &db.read_f32(g).unwrap(),
            &bias_grad_cpu(&dy, c),
            atol(rows),
            1e-4,
        );
    }
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
