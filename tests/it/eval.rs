//! Comparison metrics (src/eval): each checked on inputs whose answer is
//! known by hand, with negative controls (inputs that must *not* give the
//! "perfect" answer, and inputs that must be refused). Pure CPU, no GPU.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vae_vs_gan::eval::{coverage, fid, iwae, latent, prdc, sharpness};

/// Standard normal samples by Box-Muller (rand_distr is not a dependency).
fn normals(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect()
}

/// `n` samples of `N(mu, L L^T)` with `l` lower-triangular row-major `dim x dim`.
fn gaussian_set(rng: &mut StdRng, n: usize, mu: &[f64], l: &[f64]) -> Vec<f32> {
    let dim = mu.len();
    let z = normals(rng, n * dim);
    let mut out = Vec::with_capacity(n * dim);
    for zi in z.chunks_exact(dim) {
        for i in 0..dim {
            let v: f64 = (0..dim).map(|j| l[i * dim + j] * zi[j]).sum();
            out.push((mu[i] + v) as f32);
        }
    }
    out
}

fn assert_near(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (tolerance {tol})"
    );
}

fn trace(s: &[f64], dim: usize) -> f64 {
    (0..dim).map(|i| s[i * dim + i]).sum()
}

/// Covariances with the unbiased normaliser, checked on a 3-point set by hand.
#[test]
fn fid_mean_cov_is_unbiased() {
    // Rows (0,0), (1,2), (2,4): mean (1,2); deviations (-1,-2),(0,0),(1,2).
    let x = [0.0, 0.0, 1.0, 2.0, 2.0, 4.0];
    let (mu, s) = fid::mean_cov(&x, 2).unwrap();
    assert_eq!(mu, vec![1.0, 2.0]);
    // sum of outer products = [[2,4],[4,8]], / (n - 1 = 2).
    assert_eq!(s, vec![1.0, 2.0, 2.0, 4.0]);
}

/// A set against itself: 0 to 1e-6 of the covariance trace (the only
/// error is round-off in two eigendecompositions of a 7x7 f64 matrix).
/// Negative control: the same set against a different one is far from 0.
#[test]
fn fid_of_set_with_itself_is_zero() {
    let mut rng = StdRng::seed_from_u64(1);
    let dim = 7;
    let l: Vec<f64> = (0..dim * dim)
        .map(|k| {
            if k % dim <= k / dim {
                0.3 + 0.1 * (k % 5) as f64
            } else {
                0.0
            }
        })
        .collect();
    let a = gaussian_set(&mut rng, 500, &[0.5; 7], &l);
    let (_, s) = fid::mean_cov(&a, dim).unwrap();
    let tr = trace(&s, dim);
    let d = fid::fid(&a, &a, dim).unwrap();
    assert!(d >= 0.0 && d <= 1e-6 * tr, "fid(a, a) = {d}, trace {tr}");

    let b = gaussian_set(
        &mut rng,
        500,
        &[0.5; 7],
        &vec![0.0; dim * dim]
            .iter()
            .enumerate()
            .map(|(k, _)| if k % (dim + 1) == 0 { 2.0 } else { 0.0 })
            .collect::<Vec<_>>(),
    );
    let d_other = fid::fid(&a, &b, dim).unwrap();
    assert!(
        d_other > 1.0,
        "negative control: fid(a, b) = {d_other} should be large"
    );
}

/// A set against itself shifted by `t` has identical covariance, so the
/// distance is `||t||^2`. Tolerance 1e-4 absolute: the shifted set is
/// rounded to f32 (relative 6e-8 of values up to ~10), which perturbs the
/// covariance by ~1e-6 and the trace term by less than 1e-5.
#[test]
fn fid_of_shifted_set_is_squared_shift() {
    let mut rng = StdRng::seed_from_u64(2);
    let dim = 5;
    let mut l = vec![0.0; dim * dim];
    for i in 0..dim {
        for j in 0..=i {
            l[i * dim + j] = if i == j { 1.0 + i as f64 * 0.2 } else { 0.4 };
        }
    }
    let a = gaussian_set(&mut rng, 1000, &[0.0; 5], &l);
    let shift = [1.0f32, -2.0, 0.5, 3.0, 0.0];
    let b: Vec<f32> = a
        .chunks_exact(dim)
        .flat_map(|r| r.iter().zip(&shift).map(|(v, s)| v + s).collect::<Vec<_>>())
        .collect();
    let want: f64 = shift.iter().map(|&s| (s as f64) * (s as f64)).sum();
    assert_near(
        "fid(a, a + shift)",
        fid::fid(&a, &b, dim).unwrap(),
        want,
        1e-4,
    );
    // Symmetric in its arguments.
    assert_near(
        "fid(a + shift, a)",
        fid::fid(&b, &a, dim).unwrap(),
        want,
        1e-4,
    );
}

/// Closed form with diagonal covariances:
/// `d = ||mu1 - mu2||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2`, and the same
/// covariances rotated by one common rotation (they still commute: same
/// answer). Tolerance 1e-10: f64 eigendecompositions of 3x3 matrices.
#[test]
fn fid_frechet_gaussians_diagonal_and_rotated() {
    let mu1 = [1.0, 2.0, 3.0];
    let mu2 = [0.0, 2.5, 1.0];
    let a = [4.0, 1.0, 0.25];
    let b = [1.0, 9.0, 0.25];
    let diag = |v: &[f64; 3]| {
        let mut m = vec![0.0; 9];
        for i in 0..3 {
            m[i * 3 + i] = v[i];
        }
        m
    };
    // 1 + 0.25 + 4 = 5.25; (2-1)^2 + (1-3)^2 + 0 = 5.
    let want = 5.25 + 5.0;
    let d = fid::frechet_gaussians(&mu1, &diag(&a), &mu2, &diag(&b)).unwrap();
    assert_near("diagonal", d, want, 1e-10);

    // Rotation about z by 30 degrees then about x by 45 degrees.
    let (c1, s1) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
    let (c2, s2) = (45f64.to_radians().cos(), 45f64.to_radians().sin());
    let rz = [c1, -s1, 0.0, s1, c1, 0.0, 0.0, 0.0, 1.0];
    let rx = [1.0, 0.0, 0.0, 0.0, c2, -s2, 0.0, s2, c2];
    let mul = |p: &[f64], q: &[f64]| {
        let mut m = vec![0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                m[i * 3 + j] = (0..3).map(|k| p[i * 3 + k] * q[k * 3 + j]).sum();
            }
        }
        m
    };
    let tr = |p: &[f64]| {
        let mut m = vec![0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                m[i * 3 + j] = p[j * 3 + i];
            }
        }
        m
    };
    let r = mul(&rx, &rz);
    let rot = |d: &[f64]| mul(&mul(&r, d), &tr(&r));
    let d = fid::frechet_gaussians(&mu1, &rot(&diag(&a)), &mu2, &rot(&diag(&b))).unwrap();
    assert_near("rotated (commuting)", d, want, 1e-10);
}

/// Non-commuting 2x2 covariances: for 2x2 `M` with positive eigenvalues,
/// `Tr(M^(1/2)) = sqrt(Tr M + 2 sqrt(det M))`. With `S1 = diag(4, 1)`,
/// `S2 = [[2, 1], [1, 2]]`: `Tr(S1 S2) = 10`, `det = 4 * 3 = 12`, so
/// `d = ||dmu||^2 + 5 + 4 - 2 sqrt(10 + 2 sqrt 12)`. Tolerance 1e-10.
#[test]
fn fid_frechet_gaussians_non_commuting() {
    let want = 1.0 + 9.0 - 2.0 * (10.0 + 2.0 * 12f64.sqrt()).sqrt();
    let d = fid::frechet_gaussians(
        &[0.0, 0.0],
        &[4.0, 0.0, 0.0, 1.0],
        &[1.0, 0.0],
        &[2.0, 1.0, 1.0, 2.0],
    )
    .unwrap();
    assert_near("non-commuting 2x2", d, want, 1e-10);
    // Identical Gaussians (singular covariance: an eigenvalue 0): distance 0.
    let s = [1.0, 1.0, 1.0, 1.0];
    let d0 = fid::frechet_gaussians(&[3.0, 1.0], &s, &[3.0, 1.0], &s).unwrap();
    assert!(d0.abs() < 1e-7, "identical singular Gaussians: {d0}");
}

/// Large samples from two known Gaussians: the sample FID approaches the
/// closed form (7.67 here). With n = 20000 per set in 3-D the error is
/// dominated by the mean term: `2 |dmu| sd(mu_hat1 - mu_hat2)` with
/// `sd ~ sqrt(2 tr S / n) ~ 0.02`, i.e. ~0.08 at one sigma (covariance
/// entries add ~1% relative, sqrt(2/n)). Tolerance 0.15 (~2 sigma; the seed
/// is fixed; observed error 0.073). Negative control: two samples of the same
/// Gaussian give ~5e-4.
#[test]
fn fid_of_sampled_gaussians_matches_closed_form() {
    let mut rng = StdRng::seed_from_u64(3);
    let mu1 = [0.0, 1.0, -1.0];
    let mu2 = [2.0, 0.0, -1.0];
    let l1 = [1.0, 0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.3, 0.7];
    let l2 = [2.0, 0.0, 0.0, -0.5, 0.6, 0.0, 0.4, 0.2, 1.5];
    let llt = |l: &[f64]| {
        let mut m = vec![0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                m[i * 3 + j] = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
            }
        }
        m
    };
    let want = fid::frechet_gaussians(&mu1, &llt(&l1), &mu2, &llt(&l2)).unwrap();
    let a = gaussian_set(&mut rng, 20000, &mu1, &l1);
    let b = gaussian_set(&mut rng, 20000, &mu2, &l2);
    let got = fid::fid(&a, &b, 3).unwrap();
    assert_near("sampled vs closed form", got, want, 0.15);
    // Negative control: two samples of the *same* Gaussian are near 0, far below `want`.
    let a2 = gaussian_set(&mut rng, 20000, &mu1, &l1);
    let same = fid::fid(&a, &a2, 3).unwrap();
    assert!(
        same < 0.05 && want > 5.0,
        "same-distribution fid {same}, different {want}"
    );
}

#[test]
fn fid_refuses_bad_input() {
    assert!(fid::fid(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0], 2).is_err());
    assert!(
        fid::fid(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2).is_err(),
        "one row"
    );
    assert!(fid::fid(&[1.0, f32::NAN, 0.0, 0.0], &[1.0, 2.0, 3.0, 4.0], 2).is_err());
    assert!(fid::frechet_gaussians(
        &[0.0, 0.0],
        &[1.0, 0.0, 0.0],
        &[0.0, 0.0],
        &[1.0, 0.0, 0.0, 1.0]
    )
    .is_err());
}

fn cluster(rng: &mut StdRng, n: usize, dim: usize, centre: f64, spread: f64) -> Vec<f32> {
    normals(rng, n * dim)
        .into_iter()
        .map(|z| (centre + spread * z) as f32)
        .collect()
}

/// Identical sets: every sample is a point of the other manifold (distance
/// 0 to its own ball centre): precision = recall = 1 exactly.
#[test]
fn prdc_identical_sets_give_one_one() {
    let mut rng = StdRng::seed_from_u64(4);
    let a = cluster(&mut rng, 200, 5, 0.0, 1.0);
    let pr = prdc::precision_recall(&a, &a, 5, prdc::DEFAULT_K).unwrap();
    assert_eq!((pr.precision, pr.recall), (1.0, 1.0));
}

/// Far-apart clusters (centres 100 apart, spread 1): no ball reaches the
/// other set: precision = recall = 0 exactly.
#[test]
fn prdc_disjoint_clusters_give_zero_zero() {
    let mut rng = StdRng::seed_from_u64(5);
    let real = cluster(&mut rng, 150, 4, 0.0, 1.0);
    let gen = cluster(&mut rng, 120, 4, 100.0, 1.0);
    let pr = prdc::precision_recall(&real, &gen, 4, 3).unwrap();
    assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
}

/// Mode dropping: real = two equal far-apart clusters, generated covers one.
/// (a) generated = exactly the points of one real cluster: precision 1 and
/// recall 0.5 exactly. (b) generated = fresh samples of one cluster's
/// distribution: precision near 1 (k-NN balls of 200 points in 2-D cover all
/// but the tails: >= 0.9) and recall near 0.5 (the covered cluster is
/// mostly inside, the other never: in [0.4, 0.5]).
#[test]
fn prdc_subset_cluster_gives_full_precision_half_recall() {
    let mut rng = StdRng::seed_from_u64(6);
    let dim = 2;
    let a = cluster(&mut rng, 200, dim, 0.0, 1.0);
    let b = cluster(&mut rng, 200, dim, 50.0, 1.0);
    let real: Vec<f32> = a.iter().chain(&b).copied().collect();
    let pr = prdc::precision_recall(&real, &a, dim, 3).unwrap();
    assert_eq!((pr.precision, pr.recall), (1.0, 0.5));

    let fresh = cluster(&mut rng, 200, dim, 0.0, 1.0);
    let pr = prdc::precision_recall(&real, &fresh, dim, 3).unwrap();
    assert!(pr.precision >= 0.9, "precision {}", pr.precision);
    assert!((0.4..=0.5).contains(&pr.recall), "recall {}", pr.recall);
}

/// k-NN radii by hand on a line: points 0, 1, 3, 7 with k = 2: the 2nd
/// nearest other point is at 3, 2, 3, 6 (squared 9, 4, 9, 36).
#[test]
fn prdc_knn_radii_by_hand() {
    let r = prdc::knn_sq_radii(&[0.0, 1.0, 3.0, 7.0], 1, 2).unwrap();
    assert_eq!(r, vec![9.0, 4.0, 9.0, 36.0]);
    assert!(
        prdc::knn_sq_radii(&[0.0, 1.0, 3.0], 1, 3).is_err(),
        "needs k + 1 points"
    );
    assert!(prdc::knn_sq_radii(&[0.0, 1.0], 1, 0).is_err(), "k = 0");
}

#[test]
fn coverage_uniform_histogram_has_entropy_ln10_and_kl_zero() {
    let labels: Vec<u32> = (0..50).map(|i| i % 10).collect();
    let h = coverage::class_histogram(&labels).unwrap();
    assert_eq!(h, [5; 10]);
    assert_near(
        "entropy",
        coverage::histogram_entropy(&h).unwrap(),
        10f64.ln(),
        1e-12,
    );
    assert_near("kl", coverage::kl_to_uniform(&h).unwrap(), 0.0, 1e-12);
}

#[test]
fn coverage_single_class_has_entropy_zero_and_kl_ln10() {
    let h = coverage::class_histogram(&[7; 23]).unwrap();
    assert_near(
        "entropy",
        coverage::histogram_entropy(&h).unwrap(),
        0.0,
        1e-12,
    );
    assert_near(
        "kl",
        coverage::kl_to_uniform(&h).unwrap(),
        10f64.ln(),
        1e-12,
    );
    // Two classes equally: entropy ln 2, KL ln 5.
    let h2 = coverage::class_histogram(&[1, 4, 1, 4]).unwrap();
    assert_near(
        "entropy 2",
        coverage::histogram_entropy(&h2).unwrap(),
        2f64.ln(),
        1e-12,
    );
    assert_near(
        "kl 2",
        coverage::kl_to_uniform(&h2).unwrap(),
        5f64.ln(),
        1e-12,
    );
}

#[test]
fn coverage_refuses_bad_labels() {
    assert!(coverage::class_histogram(&[0, 10]).is_err());
    assert!(coverage::histogram_entropy(&[0; 10]).is_err(), "empty");
}

/// One-hot rows spread evenly over 10 classes: each row's KL to the uniform
/// marginal is ln 10: IS = 10 (tolerance 1e-9). Over 5 classes: 5.
#[test]
fn coverage_inception_score_of_even_one_hot_is_class_count() {
    let one_hot = |classes: &[usize]| -> Vec<f32> {
        classes
            .iter()
            .flat_map(|&c| (0..10).map(move |j| if j == c { 1.0 } else { 0.0 }))
            .collect()
    };
    let all: Vec<usize> = (0..30).map(|i| i % 10).collect();
    assert_near(
        "IS 10",
        coverage::inception_score(&one_hot(&all)).unwrap(),
        10.0,
        1e-9,
    );
    let five: Vec<usize> = (0..20).map(|i| 2 * (i % 5)).collect();
    assert_near(
        "IS 5",
        coverage::inception_score(&one_hot(&five)).unwrap(),
        5.0,
        1e-9,
    );
}

/// Identical rows: every conditional equals the marginal: IS = 1, however
/// confident the rows (negative control: a confident classifier alone does
/// not raise the score without diversity).
#[test]
fn coverage_inception_score_of_identical_rows_is_one() {
    let row = [
        0.91f32, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01,
    ];
    let probs: Vec<f32> = row.iter().cycle().take(10 * 17).copied().collect();
    assert_near(
        "IS identical",
        coverage::inception_score(&probs).unwrap(),
        1.0,
        1e-6,
    );
    assert!(
        coverage::inception_score(&[0.5; 10]).is_err(),
        "row sums to 5"
    );
    assert!(
        coverage::inception_score(&[0.1; 9]).is_err(),
        "not a whole row"
    );
}

const PIX: usize = 784;

#[test]
fn sharpness_of_constant_image_is_zero() {
    let imgs = vec![0.37f32; 3 * PIX];
    assert_eq!(sharpness::mean_squared_laplacian(&imgs).unwrap(), 0.0);
}

/// Checkerboard `(x + y) % 2`: at every interior pixel of value v the four
/// neighbours are 1 - v, so the Laplacian is 4 - 8v = +-4 and its square 16.
/// A single bright pixel at (14, 14): Laplacian -4 there, 1 at its four
/// neighbours: (16 + 4) / 676 over the 26x26 interior. The mean over the two
/// images is the average of the two.
#[test]
fn sharpness_checkerboard_and_impulse_by_hand() {
    let board: Vec<f32> = (0..PIX).map(|i| ((i / 28 + i % 28) % 2) as f32).collect();
    assert_near(
        "checkerboard",
        sharpness::mean_squared_laplacian(&board).unwrap(),
        16.0,
        1e-12,
    );
    let mut imp = vec![0.0f32; PIX];
    imp[14 * 28 + 14] = 1.0;
    let want_imp = 20.0 / 676.0;
    assert_near(
        "impulse",
        sharpness::mean_squared_laplacian(&imp).unwrap(),
        want_imp,
        1e-12,
    );
    let both: Vec<f32> = board.iter().chain(&imp).copied().collect();
    assert_near(
        "mean of two",
        sharpness::mean_squared_laplacian(&both).unwrap(),
        (16.0 + want_imp) / 2.0,
        1e-12,
    );
    assert!(sharpness::mean_squared_laplacian(&[0.0; 783]).is_err());
}

/// A 3x3 box blur (edge-clamped) of a random image lowers the mean squared
/// Laplacian (it damps high frequencies; for white noise by a large factor).
#[test]
fn sharpness_blurring_lowers_it() {
    let mut rng = StdRng::seed_from_u64(7);
    let img: Vec<f32> = (0..PIX).map(|_| rng.random::<f32>()).collect();
    let blur = |src: &[f32]| -> Vec<f32> {
        let mut out = vec![0.0f32; PIX];
        for y in 0..28i32 {
            for x in 0..28i32 {
                let mut s = 0.0;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let yy = (y + dy).clamp(0, 27) as usize;
                        let xx = (x + dx).clamp(0, 27) as usize;
                        s += src[yy * 28 + xx];
                    }
                }
                out[y as usize * 28 + x as usize] = s / 9.0;
            }
        }
        out
    };
    let sharp = sharpness::mean_squared_laplacian(&img).unwrap();
    let once = sharpness::mean_squared_laplacian(&blur(&img)).unwrap();
    let twice = sharpness::mean_squared_laplacian(&blur(&blur(&img))).unwrap();
    assert!(
        once < 0.5 * sharp && twice < once,
        "sharp {sharp}, blurred {once}, twice {twice}"
    );
}

/// A toy VAE with a 1-D latent and a 3-pixel "image" whose decoder is
/// linear in z: `logits_d = a_d z + b_d`. Its `log p(x)` and the ELBO of a
/// Gaussian `q` are 1-D integrals, done here by the trapezoid rule on
/// [-12, 12] with 48,001 points (error far below the tolerances).
struct Toy {
    a: [f64; 3],
    b: [f64; 3],
    x: [f32; 3],
}

impl Toy {
    fn log_px_z(&self, z: f64) -> f64 {
        let logits: Vec<f32> = (0..3).map(|d| (self.a[d] * z + self.b[d]) as f32).collect();
        iwae::bernoulli_log_likelihood(&logits, &self.x)
    }
    fn integrate(f: impl Fn(f64) -> f64) -> f64 {
        let n = 48_000;
        let h = 24.0 / n as f64;
        (0..=n)
            .map(|i| {
                let z = -12.0 + i as f64 * h;
                let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                w * f(z)
            })
            .sum::<f64>()
            * h
    }
    fn log_normal(z: f64, mu: f64, lv: f64) -> f64 {
        -0.5 * ((z - mu).powi(2) / lv.exp() + lv + std::f64::consts::TAU.ln())
    }
    fn log_px(&self) -> f64 {
        Toy::integrate(|z| (self.log_px_z(z) + Toy::log_normal(z, 0.0, 0.0)).exp()).ln()
    }
    fn elbo(&self, mu: f64, lv: f64) -> f64 {
        Toy::integrate(|z| {
            let lq = Toy::log_normal(z, mu, lv);
            lq.exp() * (self.log_px_z(z) + Toy::log_normal(z, 0.0, 0.0) - lq)
        })
    }
    /// The bound for `rows` independent copies of one image, `k` draws each.
    fn bounds(&self, mu: f32, lv: f32, rows: usize, k: usize, seed: u64) -> Vec<f64> {
        let d = iwae::draw(&vec![mu; rows], &vec![lv; rows], 1, k, seed).expect("draw");
        let lp: Vec<f64> = d.z.iter().map(|&z| self.log_px_z(z as f64)).collect();
        iwae::bound(&lp, &d.log_ratio, k).expect("bound")
    }
}

fn mean_and_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// k = 1 is the ELBO in expectation; k = 1000 reaches log p(x); both lie
/// below log p(x), and the bound tightens with k. Tolerances: 4 standard
/// errors of the Monte Carlo mean for k = 1; for k = 1000 the bias of the
/// bound (about var(w) / 2k w^2, under 1e-3 nats here) plus 4 standard
/// errors.
#[test]
fn iwae_bound_reaches_log_likelihood_of_toy_model() {
    let toy = Toy {
        a: [1.5, -2.0, 0.7],
        b: [0.2, 0.5, -1.0],
        x: [1.0, 0.0, 0.6],
    };
    let (mu, lv) = (0.4f32, -0.7f32);
    let log_px = toy.log_px();
    let elbo = toy.elbo(mu as f64, lv as f64);
    assert!(
        elbo < log_px - 0.01,
        "the chosen q must not be the posterior: {elbo} vs {log_px}"
    );

    let (m1, se1) = mean_and_se(&toy.bounds(mu, lv, 20_000, 1, 1));
    assert!(
        (m1 - elbo).abs() < 4.0 * se1,
        "k=1: {m1} +- {se1}, ELBO {elbo}"
    );

    let (m10, _) = mean_and_se(&toy.bounds(mu, lv, 2_000, 10, 2));
    let (m1000, se1000) = mean_and_se(&toy.bounds(mu, lv, 200, 1000, 3));
    assert!(
        (m1000 - log_px).abs() < 1e-3 + 4.0 * se1000,
        "k=1000: {m1000} +- {se1000}, log p(x) {log_px}"
    );
    assert!(
        m1 < m10 && m10 < m1000 + 4.0 * se1000,
        "tightening: {m1} {m10} {m1000}"
    );
}

/// A decoder that ignores z with q equal to the prior: every weight is
/// `p(x|z)`, so the bound is exact for any k.
#[test]
fn iwae_bound_is_exact_when_weights_are_constant() {
    let toy = Toy {
        a: [0.0; 3],
        b: [0.3, -1.2, 2.0],
        x: [1.0, 0.25, 0.0],
    };
    let want = toy.log_px_z(0.0);
    for k in [1, 7, 100] {
        for b in toy.bounds(0.0, 0.0, 3, k, 9) {
            assert!((b - want).abs() < 1e-9, "k={k}: {b} vs {want}");
        }
    }
}

#[test]
fn iwae_pieces_by_hand() {
    // Softplus form agrees with the naive log-sigmoid form where both are exact.
    let (l, x) = (0.8f32, 0.3f32);
    let s = 1.0 / (1.0 + (-(l as f64)).exp());
    let naive = x as f64 * s.ln() + (1.0 - x as f64) * (1.0 - s).ln();
    assert!((iwae::bernoulli_log_likelihood(&[l], &[x]) - naive).abs() < 1e-12);
    // Saturated logits stay finite (the naive form gives -inf / NaN).
    assert!((iwae::bernoulli_log_likelihood(&[-200.0], &[1.0]) + 200.0).abs() < 1e-9);
    assert_eq!(iwae::bernoulli_log_likelihood(&[200.0], &[1.0]), 0.0);
    // log-mean-exp of huge and tiny values.
    assert!((iwae::log_mean_exp(&[1000.0, 1000.0]) - 1000.0).abs() < 1e-9);
    let v = iwae::log_mean_exp(&[-1000.0, -1000.0 + 3f64.ln()]);
    assert!((v - (-1000.0 + 2f64.ln())).abs() < 1e-9, "{v}");
    // Refusals.
    assert!(iwae::draw(&[0.0; 3], &[0.0; 2], 1, 1, 0).is_err());
    assert!(iwae::draw(&[0.0; 3], &[0.0; 3], 2, 1, 0).is_err());
    assert!(iwae::draw(&[0.0; 2], &[0.0; 2], 1, 0, 0).is_err());
    assert!(iwae::bound(&[0.0; 5], &[0.0; 5], 2).is_err());
}

#[test]
fn latent_neighbour_purity_by_hand() {
    assert_eq!(latent::neighbour_purity(&[3; 16], 4).unwrap(), 1.0);
    // Checkerboard: no neighbours agree.
    let checker: Vec<u32> = (0..16).map(|i| ((i / 4 + i % 4) % 2) as u32).collect();
    assert_eq!(latent::neighbour_purity(&checker, 4).unwrap(), 0.0);
    // Left half 0, right half 1: 4 of 24 pairs cross the border.
    let halves: Vec<u32> = (0..16).map(|i| u32::from(i % 4 >= 2)).collect();
    assert!((latent::neighbour_purity(&halves, 4).unwrap() - 20.0 / 24.0).abs() < 1e-12);
    assert!(latent::neighbour_purity(&[0; 15], 4).is_err());
    assert!(latent::neighbour_purity(&[0; 1], 1).is_err());
}

/// Random labels on a 20x20 grid: purity near chance (0.1), far below an
/// organised grid (negative control).
#[test]
fn latent_neighbour_purity_of_random_grid_is_chance() {
    let mut rng = StdRng::seed_from_u64(5);
    let labels: Vec<u32> = (0..400).map(|_| rng.random_range(0..10)).collect();
    let p = latent::neighbour_purity(&labels, 20).unwrap();
    assert!((p - 0.1).abs() < 0.05, "{p}");
    assert_eq!(latent::distinct_classes(&labels).unwrap(), 10);
    assert_eq!(latent::distinct_classes(&[4, 4, 7]).unwrap(), 2);
}

#[test]
fn latent_knn_accuracy_clusters_random_labels_and_ties() {
    let mut rng = StdRng::seed_from_u64(6);
    // Ten well-separated clusters, labelled by cluster: perfect.
    let mut pts = Vec::new();
    let mut labels = Vec::new();
    for c in 0..10u32 {
        pts.extend(cluster(&mut rng, 30, 2, 100.0 * c as f64, 1.0));
        labels.extend(std::iter::repeat_n(c, 30));
    }
    assert_eq!(latent::knn_accuracy(&pts, 2, &labels, 5).unwrap(), 1.0);
    // The same points with shuffled labels: near chance (negative control).
    let random: Vec<u32> = labels.iter().map(|_| rng.random_range(0..10)).collect();
    let acc = latent::knn_accuracy(&pts, 2, &random, 5).unwrap();
    assert!(acc < 0.3, "{acc}");
    // Ties go to the nearest neighbour's label. Points on a line at
    // 0, 1, 2.1, 3.3, 4.6 (all gaps distinct) with labels 1 1 2 2 1, k = 4
    // (every other point votes). P0: votes 1,2,2,1 tie, nearest P1 -> 1, right.
    // P1: tie, nearest P0 (1.0 < 1.1) -> 1, right. P2, P3: 1 wins, wrong.
    // P4: votes 1,1,2,2 tie, nearest P3 -> 2, wrong. So 2/5; breaking ties
    // by smaller label would give 3/5, by larger label 0.
    let line = [0.0f32, 1.0, 2.1, 3.3, 4.6];
    let l = [1u32, 1, 2, 2, 1];
    assert!((latent::knn_accuracy(&line, 1, &l, 4).unwrap() - 0.4).abs() < 1e-12);
    assert!(latent::knn_accuracy(&line, 1, &l[..4], 4).is_err());
    assert!(latent::knn_accuracy(&line, 1, &[0, 1, 2, 3, 10], 2).is_err());
    assert!(latent::knn_accuracy(&line[..3], 1, &l[..3], 4).is_err());
}
