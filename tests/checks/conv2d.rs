//! conv2d, every direction: GPU vs the CPU reference on odd shapes (batch
//! 3, 5 channels, 13x13, stride 1 and 2, asymmetric padding, kernels 3 and
//! 5; no size a multiple of a tile), outputs poisoned before the dispatch,
//! with every GEMM main, split-K and col2im.
//!
//! Tolerance: an output sums K = KH*KW*C products of inputs in [-1, 1]
//! (forward: C = Cin; backward data: taps * Cout; backward weights: K =
//! N*OH*OW). The GPU accumulates in f32 in tile order, the reference in
//! f64: the error grows like sqrt(K) eps (random walk), so atol =
//! 2e-5 * sqrt(K/100) (outputs near 0 after cancellation; [`atol`], as
//! for GEMM) and rtol 1e-4.

use super::dense::atol;
use super::*;
use vae_vs_gan::ops::bias::{bias_grad, bias_grad_cpu};
use vae_vs_gan::ops::conv2d::*;
use vae_vs_gan::ops::gemm::{Fused, GemmConfig, Main};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("conv2d all directions", all_directions(g).await);
    r.record("conv2d every GEMM main", every_gemm_main(g).await);
    r.record(
        "conv2d backward weights long reduction",
        backward_weights_long_reduction(g).await,
    );
}

/// (batch, h, w, cin, cout, conv) cases.
fn cases() -> Vec<(usize, usize, usize, usize, usize, Conv2d)> {
    let asym = Padding {
        top: 2,
        bottom: 0,
        left: 1,
        right: 2,
    };
    vec![
        (3, 13, 13, 5, 7, Conv2d::new(3, 3, 1, Padding::uniform(1))),
        (
            3,
            13,
            11,
            5,
            6,
            Conv2d::new(5, 5, 2, Padding::same(13, 5, 2)),
        ),
        (2, 13, 13, 3, 5, Conv2d::new(5, 5, 1, asym)),
        (3, 12, 9, 4, 3, Conv2d::new(3, 3, 2, asym)),
        (
            2,
            14,
            14,
            5,
            1,
            Conv2d::new(5, 5, 2, Padding::same(14, 5, 2)),
        ),
        (3, 9, 9, 1, 67, Conv2d::new(3, 5, 2, Padding::valid())),
        (
            1,
            7,
            7,
            130,
            3,
            Conv2d::new(3, 3, 1, Padding::same(7, 3, 1)),
        ),
    ]
}

/// Forward with and without bias, backward data, backward weights and the
/// bias gradient, each direction on the op's default GEMM configuration.
pub async fn all_directions(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (i, (batch, h, w, cin, cout, conv)) in cases().into_iter().enumerate() {
        let d = conv.dims("test", batch, h, w, cin, cout)?;
        let seed = 3000 + 10 * i as u64;
        let x = uniform(batch * h * w * cin, -1.0, 1.0, seed);
        let wt = uniform(conv.kh * conv.kw * cin * cout, -1.0, 1.0, seed + 1);
        let b = uniform(cout, -1.0, 1.0, seed + 2);
        let dy = uniform(d.y_shape().iter().product(), -1.0, 1.0, seed + 3);
        let (xg, wg, bg, dyg) = (
            tensor(g, &d.x_shape(), &x, "x")?,
            tensor(g, &d.w_shape(), &wt, "w")?,
            tensor(g, &[cout], &b, "b")?,
            tensor(g, &d.y_shape(), &dy, "dy")?,
        );
        let y = poisoned(g, &d.y_shape(), "y")?;
        let y0 = poisoned(g, &d.y_shape(), "y (no bias)")?;
        let dx = poisoned(g, &d.x_shape(), "dx")?;
        let dw = poisoned(g, &d.w_shape(), "dw")?;
        let db = poisoned(g, &[cout], "db")?;
        let mut s = Step::new("conv");
        let _s1 = conv.forward(g, &mut s, &xg, &wg, Some(&bg), &y)?;
        let _s2 = conv.forward(g, &mut s, &xg, &wg, None, &y0)?;
        let _s3 = conv.backward_data(g, &mut s, &dyg, &wg, &dx)?;
        let _s4 = conv.backward_weights(g, &mut s, &xg, &dyg, &dw)?;
        let _s5 = bias_grad(g, &mut s, &dyg, &db)?;
        run(g, &[&s])?;
        let tag = format!("{:?} x={:?} cout={cout}", conv, d.x_shape());
        let kf = conv.kh * conv.kw * cin;
        worst.close(
            &format!("conv2d_forward {tag}"),
            &read(g, &y).await?,
            &forward_cpu(&d, &x, &wt, Some(&b)),
            atol(kf),
            1e-4,
        )?;
        worst.close(
            &format!("conv2d_forward no bias {tag}"),
            &read(g, &y0).await?,
            &forward_cpu(&d, &x, &wt, None),
            atol(kf),
            1e-4,
        )?;
        worst.close(
            &format!("conv2d_backward_data {tag}"),
            &read(g, &dx).await?,
            &backward_data_cpu(&d, &dy, &wt),
            atol(conv.kh * conv.kw * cout),
            1e-4,
        )?;
        worst.close(
            &format!("conv2d_backward_weights {tag}"),
            &read(g, &dw).await?,
            &backward_weights_cpu(&d, &x, &dy),
            atol(batch * d.oh * d.ow),
            1e-4,
        )?;
        worst.close(
            &format!("conv2d_bias_grad {tag}"),
            &read(g, &db).await?,
            &bias_grad_cpu(&dy, cout),
            atol(batch * d.oh * d.ow),
            1e-4,
        )?;
    }
    worst.done_on(g)
}

/// Both GEMM mains forced (the default on lavapipe is the direct one), each
/// with its default tile and with forced split-K, every direction, backward
/// data both by stride phases and by GEMM + col2im, on the cases above plus
/// Cin = 2 (backward data N = 2, backward weights M = 18): together N = 1,
/// 2, 3 and M <= 64 outputs. Tolerances as above (split-K and col2im only
/// reorder the sums).
pub async fn every_gemm_main(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let mut all = cases();
    all.push((
        3,
        11,
        10,
        2,
        9,
        Conv2d::new(3, 3, 2, Padding::same(11, 3, 2)),
    ));
    for (i, (batch, h, w, cin, cout, conv)) in all.into_iter().enumerate() {
        let d = conv.dims("test", batch, h, w, cin, cout)?;
        let seed = 5000 + 10 * i as u64;
        let x = uniform(batch * h * w * cin, -1.0, 1.0, seed);
        let wt = uniform(conv.kh * conv.kw * cin * cout, -1.0, 1.0, seed + 1);
        let b = uniform(cout, -1.0, 1.0, seed + 2);
        let dy = uniform(d.y_shape().iter().product(), -1.0, 1.0, seed + 3);
        let (xg, wg, bg, dyg) = (
            tensor(g, &d.x_shape(), &x, "x")?,
            tensor(g, &d.w_shape(), &wt, "w")?,
            tensor(g, &[cout], &b, "b")?,
            tensor(g, &d.y_shape(), &dy, "dy")?,
        );
        let want_y = forward_cpu(&d, &x, &wt, Some(&b));
        let want_dx = backward_data_cpu(&d, &dy, &wt);
        let want_dw = backward_weights_cpu(&d, &x, &dy);
        for (main, splits, col2im) in [
            (Main::Tiled, None, false),
            (Main::Tiled, Some(3), true),
            (Main::Direct, None, false),
            (Main::Direct, Some(3), false),
            (Main::Direct, None, true),
            (Main::Tiled, None, true),
            (Main::Subgroup, None, false),
            (Main::Subgroup, Some(3), false),
            (Main::Subgroup, None, true),
        ]
        .into_iter()
        .filter(|c| runs_here(g, c.0))
        {
            {
                let cfg = GemmConfig {
                    main: Some(main),
                    tile: None,
                    col2im: Some(col2im),
                    splits,
                };
                let y = poisoned(g, &d.y_shape(), "y")?;
                let dx = poisoned(g, &d.x_shape(), "dx")?;
                let dw = poisoned(g, &d.w_shape(), "dw")?;
                let mut s = Step::new("conv");
                let op = "conv2d_test";
                let fb = Fused::bias(Some(&bg));
                let _s1 = record_forward(g, &mut s, op, &d, &xg, &wg, &fb, &y, &cfg)?;
                let _s2 = record_backward_data(
                    g,
                    &mut s,
                    op,
                    &d,
                    &dyg,
                    &wg,
                    &Fused::default(),
                    &dx,
                    &cfg,
                )?;
                let _s3 = record_backward_weights(g, &mut s, op, &d, &xg, &dyg, &dw, None, &cfg)?;
                run(g, &[&s])?;
                let tag = format!(
                    "{main:?} splits={splits:?} {conv:?} x={:?} cout={cout}",
                    d.x_shape()
                );
                worst.close(
                    &format!("conv2d_forward {tag}"),
                    &read(g, &y).await?,
                    &want_y,
                    atol(conv.kh * conv.kw * cin),
                    1e-4,
                )?;
                worst.close(
                    &format!("conv2d_backward_data {tag}"),
                    &read(g, &dx).await?,
                    &want_dx,
                    atol(conv.kh * conv.kw * cout),
                    1e-4,
                )?;
                worst.close(
                    &format!("conv2d_backward_weights {tag}"),
                    &read(g, &dw).await?,
                    &want_dw,
                    atol(batch * d.oh * d.ow),
                    1e-4,
                )?;
            }
        }
    }
    worst.done_on(g)
}

/// Backward weights with a long reduction (K = N*OH*OW = 416,120, the
/// output 3x3x1x2): the kernels split k into (n, oy, ox) with an f32
/// division plus one correction step, exact below 2^24; this walks k over
/// a wide range with divisors 10,403 and 103 that are not powers of two.
/// Tolerance as above with that K (atol 1.3e-3; the sums are ~200).
pub async fn backward_weights_long_reduction(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let conv = Conv2d::new(3, 3, 1, Padding::uniform(1));
    let d = conv.dims("test", 40, 101, 103, 1, 2)?;
    let x = uniform(d.x_shape().iter().product(), -1.0, 1.0, 77);
    let dy = uniform(d.y_shape().iter().product(), -1.0, 1.0, 78);
    let dw = poisoned(g, &d.w_shape(), "dw")?;
    let mut s = Step::new("conv");
    let _s = conv.backward_weights(
        g,
        &mut s,
        &tensor(g, &d.x_shape(), &x, "x")?,
        &tensor(g, &d.y_shape(), &dy, "dy")?,
        &dw,
    )?;
    run(g, &[&s])?;
    worst.close(
        "conv2d_backward_weights long K",
        &read(g, &dw).await?,
        &backward_weights_cpu(&d, &x, &dy),
        atol(40 * 101 * 103),
        1e-4,
    )?;
    worst.done_on(g)
}
