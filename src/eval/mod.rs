//! Comparison metrics for generated images (pure CPU, f64 accumulation).
//!
//! Every metric takes flat row-major `f32` data: `n` rows of `dim` values
//! (feature vectors of any dimension, or `28 x 28 = 784` pixel images).
//! - [`fid`]: Frechet distance between two feature sets (Gaussian fit).
//! - [`prdc`]: k-NN manifold precision and recall (Kynkaanniemi et al. 2019).
//! - [`coverage`]: class histogram, its entropy, KL to uniform, Inception Score.
//! - [`sharpness`]: mean squared Laplacian of 28x28 images.
//! - [`iwae`]: the importance-weighted log-likelihood bound of a VAE.
//! - [`latent`]: structure of a 2-D latent (grid purity, k-NN accuracy).

pub mod coverage;
pub mod fid;
pub mod iwae;
pub mod latent;
pub mod prdc;
pub mod sharpness;

use crate::{Error, Result};

/// Checks that `data` holds a whole number (at least `min_rows`) of rows of
/// `dim` values and returns the row count.
pub(crate) fn rows(
    op: &'static str,
    what: &str,
    data: &[f32],
    dim: usize,
    min_rows: usize,
) -> Result<usize> {
    if dim == 0 {
        return Err(Error::invalid(
            op,
            format!("{what}: dimension must be positive"),
        ));
    }
    if !data.len().is_multiple_of(dim) {
        return Err(Error::invalid(
            op,
            format!(
                "{what}: {} values is not a whole number of rows of {dim}",
                data.len()
            ),
        ));
    }
    let n = data.len() / dim;
    if n < min_rows {
        return Err(Error::invalid(
            op,
            format!("{what}: {n} rows, need at least {min_rows}"),
        ));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            op,
            format!("{what}: value {i} (row {}) is {}", i / dim, data[i]),
        ));
    }
    Ok(n)
}

/// `(0..n).map(f)` spread over the machine's cores (scoped threads, one
/// contiguous block of indices each); the order of the result is the
/// order of the indices, so the answer does not depend on the core count.
pub(crate) fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(1)
        .min(n.max(1));
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let block = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * block..((t + 1) * block).min(n))
                        .map(f)
                        .collect::<Vec<T>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("metric worker panicked"))
            .collect()
    })
}
