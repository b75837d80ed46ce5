//! GEMM and dense layers, every direction: GPU vs the CPU reference on odd
//! shapes (none a multiple of any tile), with every GEMM main, tile and
//! split-K.
//!
//! Tolerance: each output is a sum of K products of inputs in [-1, 1],
//! accumulated in f32 on the GPU in tile order vs f64 on the CPU. The f32
//! rounding error grows like sqrt(K) * eps * sqrt(sum of squares of terms)
//! (random-walk), bounded by K * eps * sum |terms|. With K <= 600 and
//! |terms| <= 1: atol = 2e-5 * sqrt(K/100) covers outputs near zero
//! (cancellation), rtol = 1e-4 the rest; split-K only reorders the sum.

use super::*;
use vae_vs_gan::ops::bias::{bias_grad, bias_grad_cpu};
use vae_vs_gan::ops::dense::*;
use vae_vs_gan::ops::gemm::{GemmConfig, Main, Tile, SUBGROUP_TEST_SHAPES};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("dense gemm all transposes", gemm_all_transposes(g).await);
    r.record(
        "dense gemm every tile and split",
        gemm_every_tile_and_split(g).await,
    );
    r.record("dense forward and backward", forward_and_backward(g).await);
    r.record(
        "dense bias_grad long reduction",
        bias_grad_long_reduction(g).await,
    );
}

/// The absolute tolerance of a reduction of length `k` (the module doc).
pub fn atol(k: usize) -> f64 {
    2e-5 * (k as f64 / 100.0).sqrt().max(1.0)
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
pub async fn gemm_all_transposes(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (si, &(m, n, k)) in SHAPES.iter().enumerate() {
        for main in [
            None,
            Some(Main::Tiled),
            Some(Main::Direct),
            Some(Main::Subgroup),
        ]
        .into_iter()
        .filter(|m| m.is_none_or(|m| runs_here(g, m)))
        {
            for ta in [false, true] {
                for tb in [false, true] {
                    let seed = 1000 + si as u64 * 10 + ta as u64 * 2 + tb as u64;
                    let a = uniform(m * k, -1.0, 1.0, seed);
                    let b = uniform(k * n, -1.0, 1.0, seed + 100);
                    let bias = uniform(n, -1.0, 1.0, seed + 200);
                    let at = tensor(g, &if ta { [k, m] } else { [m, k] }, &a, "a")?;
                    let bt = tensor(g, &if tb { [n, k] } else { [k, n] }, &b, "b")?;
                    let biast = tensor(g, &[n], &bias, "bias")?;
                    for with_bias in [false, true] {
                        let c = poisoned(g, &[m, n], "c")?;
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
                        )?;
                        run(g, &[&s])?;
                        let want =
                            gemm_cpu(&a, ta, &b, tb, with_bias.then_some(&bias[..]), m, n, k);
                        worst.close(
                            &format!(
                                "gemm m={m} n={n} k={k} ta={ta} tb={tb} bias={with_bias} \
                                 main={main:?}"
                            ),
                            &read(g, &c).await?,
                            &want,
                            atol(k),
                            1e-4,
                        )?;
                    }
                }
            }
        }
    }
    worst.done_on(g)
}

/// Every tile the template offers, with and without forced split-K, on a
/// shape that is a multiple of none of them.
pub async fn gemm_every_tile_and_split(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (m, n, k) = (131, 70, 77);
    let a = uniform(m * k, -1.0, 1.0, 7);
    let b = uniform(k * n, -1.0, 1.0, 8);
    let at = tensor(g, &[m, k], &a, "a")?;
    let bt = tensor(g, &[k, n], &b, "b")?;
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
        .filter(|c| runs_here(g, c.0));
    for (main, tile) in all {
        for splits in [Some(1), Some(3), None] {
            let c = poisoned(g, &[m, n], "c")?;
            let mut s = Step::new("gemm");
            let cfg = GemmConfig {
                main: Some(main),
                tile: Some(tile),
                col2im: None,
                splits,
            };
            let _scratch = gemm(g, &mut s, &at, false, &bt, false, None, &c, &cfg)?;
            run(g, &[&s])?;
            worst.close(
                &format!("gemm {main:?} tile={tile:?} splits={splits:?}"),
                &read(g, &c).await?,
                &want,
                atol(k),
                1e-4,
            )?;
        }
    }
    worst.done_on(g)
}

/// Dense forward, backward data, backward weights and the bias gradient at
/// batch 3 and batch 67 (the backward-weights reduction is over the batch).
pub async fn forward_and_backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (i, &(batch, fin, fout)) in [(3, 5, 7), (67, 130, 33), (2, 300, 1)].iter().enumerate() {
        let seed = 2000 + 10 * i as u64;
        let x = uniform(batch * fin, -1.0, 1.0, seed);
        let w = uniform(fin * fout, -1.0, 1.0, seed + 1);
        let b = uniform(fout, -1.0, 1.0, seed + 2);
        let dy = uniform(batch * fout, -1.0, 1.0, seed + 3);
        let (xt, wt, bt, dyt) = (
            tensor(g, &[batch, fin], &x, "x")?,
            tensor(g, &[fin, fout], &w, "w")?,
            tensor(g, &[fout], &b, "b")?,
            tensor(g, &[batch, fout], &dy, "dy")?,
        );
        let y = poisoned(g, &[batch, fout], "y")?;
        let dx = poisoned(g, &[batch, fin], "dx")?;
        let dw = poisoned(g, &[fin, fout], "dw")?;
        let db = poisoned(g, &[fout], "db")?;
        let mut s = Step::new("dense");
        let _s1 = dense_forward(g, &mut s, &xt, &wt, Some(&bt), &y)?;
        let _s2 = dense_backward_data(g, &mut s, &dyt, &wt, &dx)?;
        let _s3 = dense_backward_weights(g, &mut s, &xt, &dyt, &dw)?;
        let _s4 = bias_grad(g, &mut s, &dyt, &db)?;
        run(g, &[&s])?;
        let tag = format!("batch={batch} in={fin} out={fout}");
        worst.close(
            &format!("dense_forward {tag}"),
            &read(g, &y).await?,
            &dense_forward_cpu(&x, &w, Some(&b), batch, fin, fout),
            atol(fin),
            1e-4,
        )?;
        worst.close(
            &format!("dense_backward_data {tag}"),
            &read(g, &dx).await?,
            &dense_backward_data_cpu(&dy, &w, batch, fin, fout),
            atol(fout),
            1e-4,
        )?;
        worst.close(
            &format!("dense_backward_weights {tag}"),
            &read(g, &dw).await?,
            &dense_backward_weights_cpu(&x, &dy, batch, fin, fout),
            atol(batch),
            1e-4,
        )?;
        worst.close(
            &format!("dense_bias_grad {tag}"),
            &read(g, &db).await?,
            &bias_grad_cpu(&dy, fout),
            atol(batch),
            1e-4,
        )?;
    }
    worst.done_on(g)
}

/// The bias gradient over many rows (the conv case: N*H*W rows), chunked.
pub async fn bias_grad_long_reduction(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for &(rows, c) in &[(3 * 13 * 13, 5), (10_007, 1), (1, 3)] {
        let dy = uniform(rows * c, -1.0, 1.0, rows as u64);
        let dyt = tensor(g, &[rows, c], &dy, "dy")?;
        let db = poisoned(g, &[c], "db")?;
        let mut s = Step::new("bias");
        let _scratch = bias_grad(g, &mut s, &dyt, &db)?;
        run(g, &[&s])?;
        worst.close(
            &format!("bias_grad rows={rows} c={c}"),
            &read(g, &db).await?,
            &bias_grad_cpu(&dy, c),
            atol(rows),
            1e-4,
        )?;
    }
    worst.done_on(g)
}
