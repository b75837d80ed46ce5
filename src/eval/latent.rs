//! How structured a 2-D latent space is, read through the classifier.
//!
//! - [`neighbour_purity`]: decode a `side x side` grid over the prior,
//!   classify every cell; the fraction of horizontally or vertically
//!   adjacent cell pairs that get the same digit. A smooth, organised
//!   latent scores near 1 (regions of one digit with few borders); a
//!   latent that maps neighbours to unrelated digits scores near the
//!   chance level `sum p_c^2` (0.1 for ten equally common digits).
//! - [`distinct_classes`]: how many digits appear on that grid (0..=10).
//! - [`knn_accuracy`]: leave-one-out k-NN digit accuracy of latent points
//!   (the test set's posterior means): how well position in the latent
//!   predicts the digit.

use crate::eval::coverage::{class_histogram, CLASSES};
use crate::{Error, Result};

const OP: &str = "latent";

/// The neighbourhood size of the k-NN accuracy.
pub const KNN_K: usize = 5;

/// Fraction of the `2 side (side - 1)` adjacent pairs of a row-major
/// `side x side` grid of labels that share a label.
pub fn neighbour_purity(labels: &[u32], side: usize) -> Result<f64> {
    if side < 2 || labels.len() != side * side {
        return Err(Error::invalid(
            OP,
            format!(
                "{} labels are not a {side}x{side} grid of side >= 2",
                labels.len()
            ),
        ));
    }
    let at = |r: usize, c: usize| labels[r * side + c];
    let mut same = 0usize;
    for r in 0..side {
        for c in 0..side {
            if c + 1 < side && at(r, c) == at(r, c + 1) {
                same += 1;
            }
            if r + 1 < side && at(r, c) == at(r + 1, c) {
                same += 1;
            }
        }
    }
    Ok(same as f64 / (2 * side * (side - 1)) as f64)
}

/// How many of the ten digits occur among `labels`.
pub fn distinct_classes(labels: &[u32]) -> Result<usize> {
    Ok(class_histogram(labels)?.iter().filter(|&&c| c > 0).count())
}

/// Leave-one-out k-NN accuracy of `points` (`n x dim`) with `labels`: each
/// point is given the majority label of its `k` nearest other points
/// (Euclidean; a tied vote goes to the label whose nearest member is
/// closest). Brute force over all cores, `O(n^2 dim)`.
pub fn knn_accuracy(points: &[f32], dim: usize, labels: &[u32], k: usize) -> Result<f64> {
    let n = crate::eval::rows(OP, "points", points, dim, k + 1)?;
    if labels.len() != n || k == 0 {
        return Err(Error::invalid(
            OP,
            format!("{} labels for {n} points (k = {k})", labels.len()),
        ));
    }
    if let Some(&bad) = labels.iter().find(|&&c| c as usize >= CLASSES) {
        return Err(Error::invalid(OP, format!("label {bad} is not a digit")));
    }
    let row = |i: usize| &points[i * dim..(i + 1) * dim];
    let correct = crate::eval::par_map(n, |i| {
        let mut d: Vec<(f64, usize)> = (0..n)
            .filter(|&j| j != i)
            .map(|j| {
                let s: f64 = row(i)
                    .iter()
                    .zip(row(j))
                    .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                    .sum();
                (s, j)
            })
            .collect();
        d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        let near = &mut d[..k];
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut votes = [0usize; CLASSES];
        for &(_, j) in near.iter() {
            votes[labels[j] as usize] += 1;
        }
        let top = *votes.iter().max().expect("ten classes");
        // Nearest first: the first neighbour whose label has the top vote.
        let pick = near
            .iter()
            .map(|&(_, j)| labels[j])
            .find(|&c| votes[c as usize] == top)
            .expect("some neighbour has the top vote");
        pick == labels[i]
    })
    .into_iter()
    .filter(|&b| b)
    .count();
    Ok(correct as f64 / n as f64)
}
