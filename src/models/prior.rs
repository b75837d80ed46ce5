//! Grids over the prior: the standard normal's quantiles, for the 20x20
//! latent grids the runs, the comparison and the browser's lab decode.

/// Side of the latent grids over the prior.
pub const GRID: usize = 20;

/// Inverse of the standard normal CDF (Acklam's rational approximation,
/// relative error below 1.2e-9), for grids over the prior's quantiles.
#[allow(clippy::excessive_precision)] // the published coefficients, as published
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A `side x side` grid of 2-D latents at the prior's quantiles
/// (probabilities evenly spaced in [0.05, 0.95]), rows top to bottom.
pub fn prior_grid(side: usize) -> Vec<f32> {
    let q: Vec<f64> = (0..side)
        .map(|i| normal_quantile(0.05 + 0.9 * i as f64 / (side - 1).max(1) as f64))
        .collect();
    let mut z = Vec::with_capacity(side * side * 2);
    for row in 0..side {
        for col in 0..side {
            z.push(q[col] as f32);
            z.push(q[side - 1 - row] as f32);
        }
    }
    z
}
