//! Improved precision and recall by k-nearest-neighbour manifolds
//! (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for
//! Assessing Generative Models"), with `k = 3` by default.
//!
//! A set's manifold is the union of balls centred on its points, each of
//! radius the distance to that point's k-th nearest neighbour in the same set
//! (itself excluded). A sample lies "in" the manifold when it is within the
//! radius (inclusive) of at least one point.
//! - precision: fraction of generated samples inside the real manifold
//!   (are the samples realistic?);
//! - recall: fraction of real samples inside the generated manifold
//!   (does the generator cover the data?).
//!
//! Both are unitless fractions in `[0, 1]`. Distances are Euclidean, computed
//! brute force in f64 over all cores: `O((n_r^2 + n_g^2 + 2 n_r n_g) dim)`
//! time and `O(n_r + n_g)` memory per core, fine for sets of ten thousand.

use crate::{Error, Result};

const OP: &str = "prdc";

/// The neighbourhood size of the paper.
pub const DEFAULT_K: usize = 3;

/// Precision and recall of a generated set against a real set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrecisionRecall {
    /// Fraction of generated samples inside the real k-NN manifold.
    pub precision: f64,
    /// Fraction of real samples inside the generated k-NN manifold.
    pub recall: f64,
}

fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum()
}

/// Squared distance from each row of `x` to its k-th nearest other row
/// (itself excluded; duplicates count as neighbours at distance 0).
pub fn knn_sq_radii(x: &[f32], dim: usize, k: usize) -> Result<Vec<f64>> {
    if k == 0 {
        return Err(Error::invalid(OP, "k must be positive"));
    }
    let n = super::rows(OP, "points", x, dim, k + 1)?;
    let radii = super::par_map(n, |i| {
        let a = &x[i * dim..(i + 1) * dim];
        let mut d: Vec<f64> = x
            .chunks_exact(dim)
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, b)| sq_dist(a, b))
            .collect();
        let (_, kth, _) = d.select_nth_unstable_by(k - 1, f64::total_cmp);
        *kth
    });
    Ok(radii)
}

/// Fraction of the rows of `query` that lie within the k-NN ball of at least
/// one row of `manifold` (whose squared radii are `sq_radii`).
fn fraction_inside(query: &[f32], manifold: &[f32], sq_radii: &[f64], dim: usize) -> f64 {
    let n = query.len() / dim;
    let inside = super::par_map(n, |i| {
        let q = &query[i * dim..(i + 1) * dim];
        manifold
            .chunks_exact(dim)
            .zip(sq_radii)
            .any(|(m, &r)| sq_dist(q, m) <= r)
    })
    .into_iter()
    .filter(|&b| b)
    .count();
    inside as f64 / n as f64
}

/// Precision and recall of `generated` (`n_g x dim`) against `real`
/// (`n_r x dim`) with k-NN manifolds of size `k`; each set needs more than
/// `k` rows.
pub fn precision_recall(
    real: &[f32],
    generated: &[f32],
    dim: usize,
    k: usize,
) -> Result<PrecisionRecall> {
    let r_real = knn_sq_radii(real, dim, k)?;
    let r_gen = knn_sq_radii(generated, dim, k)?;
    Ok(PrecisionRecall {
        precision: fraction_inside(generated, real, &r_real, dim),
        recall: fraction_inside(real, generated, &r_gen, dim),
    })
}
