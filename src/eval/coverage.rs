//! Class coverage of generated samples, judged by a classifier: the histogram
//! of predicted labels (`0..=9`), its entropy, its KL divergence to the
//! uniform distribution, and the classifier-based Inception Score.
//!
//! All logarithms are natural: entropies and divergences are in nats.
//! With 10 classes the entropy lies in `[0, ln 10]` (ln 10 = every class
//! equally often) and `KL(hist || uniform) = ln 10 - entropy` lies in
//! `[0, ln 10]` (0 = perfectly balanced, ln 10 = a single class: mode collapse).
//! The Inception Score `exp(E_x KL(p(y|x) || p(y)))` is unitless, in
//! `[1, 10]`: high when each sample is confidently classified *and* the
//! classes are diverse.

use crate::{Error, Result};

const OP: &str = "coverage";

/// Number of classes (MNIST digits).
pub const CLASSES: usize = 10;

/// Count of each predicted label. Labels must be `< 10`.
pub fn class_histogram(labels: &[u32]) -> Result<[u64; CLASSES]> {
    let mut h = [0u64; CLASSES];
    for (i, &l) in labels.iter().enumerate() {
        let slot = h
            .get_mut(l as usize)
            .ok_or_else(|| Error::invalid(OP, format!("label {i} is {l}, not in 0..=9")))?;
        *slot += 1;
    }
    Ok(h)
}

fn probabilities(hist: &[u64; CLASSES]) -> Result<[f64; CLASSES]> {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return Err(Error::invalid(OP, "empty histogram"));
    }
    Ok(hist.map(|c| c as f64 / total as f64))
}

/// Shannon entropy (nats) of the normalised histogram; `0 ln 0 = 0`.
pub fn histogram_entropy(hist: &[u64; CLASSES]) -> Result<f64> {
    let p = probabilities(hist)?;
    let sum: f64 = p.iter().filter(|&&q| q > 0.0).map(|&q| q * q.ln()).sum();
    // `0.0 - sum`, not `-sum`: a single class gives 0, not -0.
    Ok(0.0 - sum)
}

/// `KL(hist || uniform)` in nats: `sum_c p_c ln(p_c * 10)`.
pub fn kl_to_uniform(hist: &[u64; CLASSES]) -> Result<f64> {
    let p = probabilities(hist)?;
    Ok(p.iter()
        .filter(|&&q| q > 0.0)
        .map(|&q| q * (q * CLASSES as f64).ln())
        .sum())
}

/// Classifier-based Inception Score of `n` class-probability rows
/// (`n x 10` row-major; each row non-negative, summing to 1 within 1e-3;
/// e.g. the softmax of a classifier's logits):
/// `exp(mean_x sum_c p(c|x) ln(p(c|x) / p(c)))` with `p(c)` the mean row.
/// Unitless, in `[1, 10]`.
pub fn inception_score(probs: &[f32]) -> Result<f64> {
    let n = super::rows(OP, "class probabilities", probs, CLASSES, 1)?;
    for (i, row) in probs.chunks_exact(CLASSES).enumerate() {
        let s: f64 = row.iter().map(|&v| v as f64).sum();
        if row.iter().any(|&v| v < 0.0) || (s - 1.0).abs() > 1e-3 {
            return Err(Error::invalid(
                OP,
                format!("row {i} is not a probability distribution (sum {s})"),
            ));
        }
    }
    let mut marginal = [0.0f64; CLASSES];
    for row in probs.chunks_exact(CLASSES) {
        for (m, &v) in marginal.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    for m in &mut marginal {
        *m /= n as f64;
    }
    let mut kl_sum = 0.0f64;
    for row in probs.chunks_exact(CLASSES) {
        kl_sum += row
            .iter()
            .zip(&marginal)
            .filter(|&(&p, _)| p > 0.0)
            .map(|(&p, &m)| p as f64 * (p as f64 / m).ln())
            .sum::<f64>();
    }
    Ok((kl_sum / n as f64).exp())
}
