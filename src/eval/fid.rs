//! Frechet distance between two sets of feature vectors (the "FID" when the
//! features come from an Inception-like network; here any feature extractor).
//!
//! Each set is summarised by a Gaussian: its mean `mu` and covariance `S`
//! (computed in f64 with the unbiased `n - 1` normaliser). The squared
//! 2-Wasserstein (Frechet) distance between `N(mu1, S1)` and `N(mu2, S2)` is
//!
//! `d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`
//!
//! in squared feature units (it is a *squared* distance; 0 means the two
//! Gaussian fits coincide). The trace of `(S1 S2)^(1/2)` is computed without
//! a non-symmetric square root: with `R = S1^(1/2)` (symmetric eigendecomposition),
//! `R S2 R` is symmetric PSD and similar to `S1 S2`, so
//! `Tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(R S2 R))`. Tiny negative
//! eigenvalues (round-off of PSD matrices) are clamped to 0.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::{Error, Result};

const OP: &str = "fid";

/// Mean and unbiased covariance (`n - 1` normaliser) of `n` rows of `dim`
/// features, in f64. Returns `(mu [dim], cov [dim * dim] row-major)`.
/// Needs at least 2 rows.
pub fn mean_cov(x: &[f32], dim: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = super::rows(OP, "features", x, dim, 2)?;
    let mut mu = vec![0.0f64; dim];
    for row in x.chunks_exact(dim) {
        for (m, &v) in mu.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    for m in &mut mu {
        *m /= n as f64;
    }
    let mut cov = vec![0.0f64; dim * dim];
    let mut c = vec![0.0f64; dim];
    for row in x.chunks_exact(dim) {
        for ((ci, &v), m) in c.iter_mut().zip(row).zip(&mu) {
            *ci = v as f64 - m;
        }
        for i in 0..dim {
            let ci = c[i];
            for j in i..dim {
                cov[i * dim + j] += ci * c[j];
            }
        }
    }
    let norm = (n - 1) as f64;
    for i in 0..dim {
        for j in i..dim {
            let v = cov[i * dim + j] / norm;
            cov[i * dim + j] = v;
            cov[j * dim + i] = v;
        }
    }
    Ok((mu, cov))
}

/// Symmetric PSD square root through an eigendecomposition, negative
/// eigenvalues clamped to 0.
fn sqrt_psd(s: &DMatrix<f64>) -> DMatrix<f64> {
    let eig = SymmetricEigen::new(s.clone());
    let d = DVector::from_iterator(
        eig.eigenvalues.len(),
        eig.eigenvalues.iter().map(|&l| l.max(0.0).sqrt()),
    );
    &eig.eigenvectors * DMatrix::from_diagonal(&d) * eig.eigenvectors.transpose()
}

fn check_gaussian(what: &str, mu: &[f64], s: &[f64], dim: usize) -> Result<DMatrix<f64>> {
    if mu.len() != dim {
        return Err(Error::shape(
            OP,
            format!("{what} mean"),
            &[dim],
            &[mu.len()],
        ));
    }
    if s.len() != dim * dim {
        return Err(Error::shape(
            OP,
            format!("{what} covariance"),
            &[dim, dim],
            &[s.len()],
        ));
    }
    if mu.iter().chain(s).any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            OP,
            format!("{what}: non-finite mean or covariance"),
        ));
    }
    let m = DMatrix::from_row_slice(dim, dim, s);
    // Symmetrise: covariances are symmetric up to round-off.
    Ok((&m + m.transpose()) * 0.5)
}

/// Closed-form squared Frechet distance between `N(mu1, s1)` and `N(mu2, s2)`
/// (covariances row-major `dim x dim`, symmetric PSD), in squared units of the
/// means. `dim` is `mu1.len()`.
pub fn frechet_gaussians(mu1: &[f64], s1: &[f64], mu2: &[f64], s2: &[f64]) -> Result<f64> {
    let dim = mu1.len();
    if dim == 0 {
        return Err(Error::invalid(OP, "dimension must be positive"));
    }
    let a = check_gaussian("first", mu1, s1, dim)?;
    let b = check_gaussian("second", mu2, s2, dim)?;
    let mean_term: f64 = mu1.iter().zip(mu2).map(|(x, y)| (x - y) * (x - y)).sum();
    let r = sqrt_psd(&a);
    let m = &r * &b * &r;
    let m = (&m + m.transpose()) * 0.5;
    let cross: f64 = SymmetricEigen::new(m)
        .eigenvalues
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    let d = mean_term + a.trace() + b.trace() - 2.0 * cross;
    // Round-off can leave a tiny negative value for identical Gaussians.
    Ok(d.max(0.0))
}

/// Squared Frechet distance between the Gaussian fits of two feature sets
/// (`a`: `n_a x dim`, `b`: `n_b x dim`, row-major, each at least 2 rows).
/// Units: squared feature units. Cost `O((n_a + n_b) dim^2 + dim^3)`.
pub fn fid(a: &[f32], b: &[f32], dim: usize) -> Result<f64> {
    let (mu1, s1) = mean_cov(a, dim)?;
    let (mu2, s2) = mean_cov(b, dim)?;
    frechet_gaussians(&mu1, &s1, &mu2, &s2)
}
