//! conv_transpose2d, every direction: GPU vs the CPU reference on odd
//! shapes (batch 3, 5 channels, 13x13, stride 1 and 2, asymmetric padding,
//! kernels 3 and 5), outputs poisoned.
//!
//! Tolerance as in tests/checks/conv2d.rs: atol = 2e-5 * sqrt(K/100) for a
//! reduction of length K (random-walk growth of f32 rounding vs the f64
//! reference; [`atol`]), rtol 1e-4. Forward: K = taps * Ci_t; backward
//! data: KH*KW*Co_t; backward weights: N*Hi*Wi.

use super::dense::atol;
use super::*;
use vae_vs_gan::ops::conv2d::Padding;
use vae_vs_gan::ops::conv_transpose2d::*;

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("conv_transpose2d all directions", all_directions(g).await);
}

/// (batch, hi, wi, ci_t, co_t, op) cases; the output size is explicit.
pub fn cases() -> Vec<(usize, usize, usize, usize, usize, ConvTranspose2d)> {
    let asym = Padding {
        top: 2,
        bottom: 0,
        left: 1,
        right: 2,
    };
    vec![
        // same, stride 2: 7 -> 13 and 7 -> 14 (two output sizes, one input)
        (
            3,
            7,
            7,
            5,
            6,
            ConvTranspose2d::new(5, 5, 2, Padding::same(13, 5, 2), 13, 13),
        ),
        (
            2,
            7,
            7,
            3,
            5,
            ConvTranspose2d::new(5, 5, 2, Padding::same(14, 5, 2), 14, 14),
        ),
        (
            3,
            13,
            13,
            5,
            4,
            ConvTranspose2d::new(3, 3, 1, Padding::uniform(1), 13, 13),
        ),
        // asymmetric padding, stride 2, non-square
        (2, 6, 5, 4, 5, ConvTranspose2d::new(3, 3, 2, asym, 12, 9)),
        // stride 3 with a 3x3 kernel: every phase has exactly one tap
        (
            2,
            5,
            5,
            3,
            2,
            ConvTranspose2d::new(3, 3, 3, Padding::valid(), 15, 17),
        ),
        // stride 2 with a 1x1 kernel: three of the four phases have no taps
        (
            2,
            4,
            4,
            3,
            2,
            ConvTranspose2d::new(1, 1, 2, Padding::valid(), 8, 8),
        ),
        // the generator's last layer, small batch: 64 -> 1 channels
        (
            2,
            14,
            14,
            64,
            1,
            ConvTranspose2d::new(5, 5, 2, Padding::same(28, 5, 2), 28, 28),
        ),
    ]
}

/// Forward (with bias), backward data and backward weights on every case.
pub async fn all_directions(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (i, (batch, hi, wi, ci_t, co_t, op)) in cases().into_iter().enumerate() {
        let d = op.dims("test", batch, hi, wi, ci_t, co_t)?;
        // d is the adjoint conv: d.x = this op's y, d.y = this op's x
        let (xs, ys, ws) = (d.y_shape(), d.x_shape(), d.w_shape());
        let n = |s: [usize; 4]| s.iter().product::<usize>();
        let seed = 5000 + 10 * i as u64;
        let x = uniform(n(xs), -1.0, 1.0, seed);
        let w = uniform(n(ws), -1.0, 1.0, seed + 1);
        let b = uniform(co_t, -1.0, 1.0, seed + 2);
        let dy = uniform(n(ys), -1.0, 1.0, seed + 3);
        let (xg, wg, bg, dyg) = (
            tensor(g, &xs, &x, "x")?,
            tensor(g, &ws, &w, "w")?,
            tensor(g, &[co_t], &b, "b")?,
            tensor(g, &ys, &dy, "dy")?,
        );
        let y = poisoned(g, &ys, "y")?;
        let dx = poisoned(g, &xs, "dx")?;
        let dw = poisoned(g, &ws, "dw")?;
        let mut s = Step::new("convT");
        let _s1 = op.forward(g, &mut s, &xg, &wg, Some(&bg), &y)?;
        let _s2 = op.backward_data(g, &mut s, &dyg, &wg, &dx)?;
        let _s3 = op.backward_weights(g, &mut s, &xg, &dyg, &dw)?;
        run(g, &[&s])?;
        let tag = format!("{:?} x={xs:?} y={ys:?}", op.conv);
        let (kh, kw, st) = (op.conv.kh, op.conv.kw, op.conv.stride);
        worst.close(
            &format!("conv_transpose2d_forward {tag}"),
            &read(g, &y).await?,
            &forward_cpu(&d, &x, &w, Some(&b)),
            atol(kh.div_ceil(st) * kw.div_ceil(st) * ci_t),
            1e-4,
        )?;
        worst.close(
            &format!("conv_transpose2d_backward_data {tag}"),
            &read(g, &dx).await?,
            &backward_data_cpu(&d, &dy, &w),
            atol(kh * kw * co_t),
            1e-4,
        )?;
        worst.close(
            &format!("conv_transpose2d_backward_weights {tag}"),
            &read(g, &dw).await?,
            &backward_weights_cpu(&d, &x, &dy),
            atol(batch * hi * wi),
            1e-4,
        )?;
    }
    worst.done()
}
