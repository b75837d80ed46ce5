//! The PyTorch golden fixtures (`tests/fixtures/*.json`, see its README.md)
//! parse, and each is internally consistent: shapes agree with the recorded
//! sizes, paddings are Keras `same`, and the stored results agree with a
//! direct f64 recomputation in the engine's layouts (NHWC, HWIO,
//! `[KH, KW, Co_t, Ci_t]`) from the stored f32 inputs. This checks the
//! fixtures and their layout conventions, not the engine's ops (those tests
//! compare the ops against these files).
//!
//! Tolerance: the fixtures are f64 results rounded to f32 (half an ulp,
//! 6e-8 relative), recomputed here in f64 from the same f32 inputs, so
//! rtol 1e-6 with a small atol (1e-6 for O(1) values; inner-product
//! identities scale atol by the sum of absolute terms) has ample margin.

use crate::fixture_loader::{self, load, names, Fixture};

const CONV: [&str; 5] = [
    "conv2d_same_s1_3x3",
    "conv2d_same_s1_4x4",
    "conv2d_same_s2_5x5",
    "conv2d_same_s2_3x3",
    "conv2d_valid_s2_3x3",
];
const CONV_T: [&str; 3] = [
    "conv_transpose_same_s1_5x5",
    "conv_transpose_same_s2_5x5",
    "conv_transpose_same_s2_3x3",
];
const BN: [&str; 2] = ["batchnorm_nhwc", "batchnorm_dense"];

fn assert_close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= atol + rtol * w.abs(),
            "{what}[{i}]: fixture {g}, recomputed {w}, |diff| {err:e}"
        );
    }
}

fn assert_scalar(what: &str, got: f64, want: f64, atol: f64, rtol: f64) {
    let err = (got - want).abs();
    assert!(
        err <= atol + rtol * want.abs(),
        "{what}: fixture {got}, recomputed {want}, |diff| {err:e}"
    );
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Sum of `a * b` and the sum of `|a * b|` (the scale of its rounding error).
fn dot(a: &[f32], b: &[f64]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| x as f64 * y)
        .fold((0.0, 0.0), |(s, m), p| (s + p, m + p.abs()))
}

/// Keras/TF `same` padding for one axis: (before, after).
fn keras_same(size: usize, k: usize, s: usize) -> (usize, usize) {
    let out = size.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// Geometry of a conv or transposed conv fixture.
struct Geo {
    n: usize,
    h: usize,
    w: usize,
    ci: usize,
    oh: usize,
    ow: usize,
    co: usize,
    kh: usize,
    kw: usize,
    s: usize,
    pt: usize,
    pb: usize,
    pl: usize,
    pr: usize,
}

impl Geo {
    fn of(f: &Fixture) -> Geo {
        Geo {
            n: f.int("batch"),
            h: f.int("in_h"),
            w: f.int("in_w"),
            ci: f.int("in_channels"),
            oh: f.int("out_h"),
            ow: f.int("out_w"),
            co: f.int("out_channels"),
            kh: f.int("kernel_h"),
            kw: f.int("kernel_w"),
            s: f.int("stride"),
            pt: f.int("pad_top"),
            pb: f.int("pad_bottom"),
            pl: f.int("pad_left"),
            pr: f.int("pad_right"),
        }
    }
}

/// Direct conv in f64: `x` NHWC `[n, h, w, cin]`, `w` HWIO `[kh, kw, cin, cout]`,
/// explicit paddings, output `[n, oh, ow, cout]`.
#[allow(clippy::too_many_arguments)]
fn conv_direct(
    x: &[f32],
    (n, h, w, cin): (usize, usize, usize, usize),
    wt: &[f32],
    (kh, kw, cout): (usize, usize, usize),
    s: usize,
    (pt, pl): (usize, usize),
    (oh, ow): (usize, usize),
) -> Vec<f64> {
    let mut y = vec![0.0; n * oh * ow * cout];
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for ki in 0..kh {
                    let r = (i * s + ki) as isize - pt as isize;
                    if r < 0 || r >= h as isize {
                        continue;
                    }
                    for kj in 0..kw {
                        let c = (j * s + kj) as isize - pl as isize;
                        if c < 0 || c >= w as isize {
                            continue;
                        }
                        let xo = ((b * h + r as usize) * w + c as usize) * cin;
                        for ci in 0..cin {
                            let xv = x[xo + ci] as f64;
                            let wo = ((ki * kw + kj) * cin + ci) * cout;
                            let yo = ((b * oh + i) * ow + j) * cout;
                            for co in 0..cout {
                                y[yo + co] += xv * wt[wo + co] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// Sum of `dy` over every axis but the last (the bias gradient).
fn channel_sums(dy: &[f32], c: usize) -> Vec<f64> {
    let mut s = vec![0.0; c];
    for (i, &v) in dy.iter().enumerate() {
        s[i % c] += v as f64;
    }
    s
}

/// `<y - b, dy> == <x, dx> == <w, dw>`: the map is linear in x and in w.
fn check_inner_products(f: &Fixture, c_out: usize) {
    let name = f.name();
    let (_, x) = f.tensor("x");
    let (_, w) = f.tensor("w");
    let (_, b) = f.tensor("b");
    let (_, y) = f.tensor("y");
    let (_, dy) = f.tensor("dy");
    let (_, dx) = f.tensor("dx");
    let (_, dw) = f.tensor("dw");
    let y_nb: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f64 - b[i % c_out] as f64)
        .collect();
    let (l, ls) = dot(&dy, &y_nb);
    let (lx, lxs) = dot(&x, &f64s(&dx));
    let (lw, lws) = dot(&w, &f64s(&dw));
    assert_scalar(&format!("{name} <x,dx>"), lx, l, 1e-6 * (ls + lxs), 0.0);
    assert_scalar(&format!("{name} <w,dw>"), lw, l, 1e-6 * (ls + lws), 0.0);
}

/// Every number in `v` is finite; strings are names, not values.
fn all_finite(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        Value::Array(a) => !a.is_empty() && a.iter().all(all_finite),
        Value::Object(o) => !o.is_empty() && o.values().all(all_finite),
        Value::String(_) => true,
        Value::Bool(_) | Value::Null => false,
    }
}

#[test]
fn fixtures_all_files_parse() {
    let mut expected: Vec<&str> = CONV.iter().chain(&CONV_T).chain(&BN).copied().collect();
    expected.extend(["bce_logits", "gaussian_kl", "adam"]);
    let found = names();
    for e in &expected {
        assert!(found.iter().any(|n| n == e), "missing fixture {e}.json");
    }
    let mut total = 0;
    for name in &found {
        let bytes = std::fs::metadata(fixture_loader::dir().join(format!("{name}.json")))
            .unwrap()
            .len();
        assert!(bytes < 200_000, "{name}.json is {bytes} bytes");
        total += bytes;
        let f = load(name);
        assert!(!f.text("description").is_empty());
        for key in f.keys() {
            if f.is_tensor(key) {
                let (shape, data) = f.tensor(key);
                assert!(!shape.is_empty(), "{name}.{key}: empty shape");
                assert!(
                    data.iter().all(|v| v.is_finite()),
                    "{name}.{key}: non-finite"
                );
            } else if key != "description" && key != "padding" {
                // a number, or (the PyTorch step check's inputs and
                // digests) nested lists and maps of names and numbers
                assert!(all_finite(f.value(key)), "{name}.{key}: not finite");
            }
        }
    }
    assert!(total < 1_000_000, "fixtures total {total} bytes");
}

#[test]
fn fixtures_conv2d_consistent() {
    for name in CONV {
        let f = load(name);
        let g = Geo::of(&f);
        assert_eq!(g.kh, g.kw);
        match f.text("padding") {
            "same" => {
                assert_eq!((g.pt, g.pb), keras_same(g.h, g.kh, g.s), "{name} H pads");
                assert_eq!((g.pl, g.pr), keras_same(g.w, g.kw, g.s), "{name} W pads");
                assert_eq!((g.oh, g.ow), (g.h.div_ceil(g.s), g.w.div_ceil(g.s)));
            }
            "valid" => assert_eq!((g.pt, g.pb, g.pl, g.pr), (0, 0, 0, 0), "{name}"),
            p => panic!("{name}: padding {p:?}"),
        }
        assert_eq!(g.oh, (g.h + g.pt + g.pb - g.kh) / g.s + 1, "{name} out_h");
        assert_eq!(g.ow, (g.w + g.pl + g.pr - g.kw) / g.s + 1, "{name} out_w");
        for (key, shape) in [
            ("x", vec![g.n, g.h, g.w, g.ci]),
            ("dx", vec![g.n, g.h, g.w, g.ci]),
            ("w", vec![g.kh, g.kw, g.ci, g.co]),
            ("dw", vec![g.kh, g.kw, g.ci, g.co]),
            ("b", vec![g.co]),
            ("db", vec![g.co]),
            ("y", vec![g.n, g.oh, g.ow, g.co]),
            ("dy", vec![g.n, g.oh, g.ow, g.co]),
        ] {
            assert_eq!(f.tensor(key).0, shape, "{name}.{key} shape");
        }
        let (_, x) = f.tensor("x");
        let (_, w) = f.tensor("w");
        let (_, b) = f.tensor("b");
        let mut want = conv_direct(
            &x,
            (g.n, g.h, g.w, g.ci),
            &w,
            (g.kh, g.kw, g.co),
            g.s,
            (g.pt, g.pl),
            (g.oh, g.ow),
        );
        for (i, v) in want.iter_mut().enumerate() {
            *v += b[i % g.co] as f64;
        }
        assert_close(&format!("{name}.y"), &f.tensor("y").1, &want, 1e-6, 1e-6);
        let (_, dy) = f.tensor("dy");
        assert_close(
            &format!("{name}.db"),
            &f.tensor("db").1,
            &channel_sums(&dy, g.co),
            1e-6,
            1e-6,
        );
        check_inner_products(&f, g.co);
    }
}

#[test]
fn fixtures_conv_transpose_consistent() {
    for name in CONV_T {
        let f = load(name);
        let g = Geo::of(&f);
        assert_eq!(f.text("padding"), "same");
        assert_eq!((g.oh, g.ow), (g.h * g.s, g.w * g.s), "{name} out size");
        // The paddings are those of the adjoint `same` conv out -> in.
        assert_eq!((g.pt, g.pb), keras_same(g.oh, g.kh, g.s), "{name} H pads");
        assert_eq!((g.pl, g.pr), keras_same(g.ow, g.kw, g.s), "{name} W pads");
        assert_eq!(g.h, (g.oh + g.pt + g.pb - g.kh) / g.s + 1, "{name} in_h");
        assert_eq!(g.w, (g.ow + g.pl + g.pr - g.kw) / g.s + 1, "{name} in_w");
        for (key, shape) in [
            ("x", vec![g.n, g.h, g.w, g.ci]),
            ("dx", vec![g.n, g.h, g.w, g.ci]),
            ("w", vec![g.kh, g.kw, g.co, g.ci]),
            ("dw", vec![g.kh, g.kw, g.co, g.ci]),
            ("b", vec![g.co]),
            ("db", vec![g.co]),
            ("y", vec![g.n, g.oh, g.ow, g.co]),
            ("dy", vec![g.n, g.oh, g.ow, g.co]),
        ] {
            assert_eq!(f.tensor(key).0, shape, "{name}.{key} shape");
        }
        let (_, x) = f.tensor("x");
        let (_, w) = f.tensor("w");
        let (_, b) = f.tensor("b");
        let (_, dy) = f.tensor("dy");
        // Forward by scatter: x[n, i, j, ci] * w[ki, kj, co, ci] lands on
        // output row i*s + ki - pad_top, column j*s + kj - pad_left.
        let mut want = vec![0.0; g.n * g.oh * g.ow * g.co];
        for (i, v) in want.iter_mut().enumerate() {
            *v = b[i % g.co] as f64;
        }
        for n in 0..g.n {
            for i in 0..g.h {
                for j in 0..g.w {
                    for ki in 0..g.kh {
                        let r = (i * g.s + ki) as isize - g.pt as isize;
                        if r < 0 || r >= g.oh as isize {
                            continue;
                        }
                        for kj in 0..g.kw {
                            let c = (j * g.s + kj) as isize - g.pl as isize;
                            if c < 0 || c >= g.ow as isize {
                                continue;
                            }
                            let yo = ((n * g.oh + r as usize) * g.ow + c as usize) * g.co;
                            for co in 0..g.co {
                                for ci in 0..g.ci {
                                    want[yo + co] += x[((n * g.h + i) * g.w + j) * g.ci + ci]
                                        as f64
                                        * w[((ki * g.kw + kj) * g.co + co) * g.ci + ci] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_close(&format!("{name}.y"), &f.tensor("y").1, &want, 1e-6, 1e-6);
        // dx is the `same` conv of dy with the same (HWIO Co_t -> Ci_t) weight.
        let dx_want = conv_direct(
            &dy,
            (g.n, g.oh, g.ow, g.co),
            &w,
            (g.kh, g.kw, g.ci),
            g.s,
            (g.pt, g.pl),
            (g.h, g.w),
        );
        assert_close(
            &format!("{name}.dx"),
            &f.tensor("dx").1,
            &dx_want,
            1e-6,
            1e-6,
        );
        assert_close(
            &format!("{name}.db"),
            &f.tensor("db").1,
            &channel_sums(&dy, g.co),
            1e-6,
            1e-6,
        );
        check_inner_products(&f, g.co);
    }
}

#[test]
fn fixtures_batchnorm_consistent() {
    for name in BN {
        let f = load(name);
        let (shape, x) = f.tensor("x");
        let c = *shape.last().unwrap();
        if name.ends_with("nhwc") {
            let want = [
                f.int("batch"),
                f.int("height"),
                f.int("width"),
                f.int("channels"),
            ];
            assert_eq!(shape, want, "{name}.x shape");
        } else {
            assert_eq!(shape, [f.int("batch"), f.int("features")], "{name}.x shape");
        }
        for key in ["y", "dy", "dx"] {
            assert_eq!(f.tensor(key).0, shape, "{name}.{key} shape");
        }
        for key in [
            "gamma",
            "beta",
            "dgamma",
            "dbeta",
            "batch_mean",
            "batch_var",
            "running_mean_in",
            "running_var_in",
            "running_mean_out",
            "running_var_out",
        ] {
            assert_eq!(f.tensor(key).0, [c], "{name}.{key} shape");
        }
        let eps = f.scalar("eps");
        let mom = f.scalar("momentum");
        assert_eq!((eps, mom), (1e-3, 0.99), "{name} eps, momentum");
        let m = (x.len() / c) as f64;
        let mut mean = vec![0.0; c];
        for (i, &v) in x.iter().enumerate() {
            mean[i % c] += v as f64 / m;
        }
        let mut var = vec![0.0; c];
        for (i, &v) in x.iter().enumerate() {
            var[i % c] += (v as f64 - mean[i % c]).powi(2) / m;
        }
        assert_close(
            &format!("{name}.batch_mean"),
            &f.tensor("batch_mean").1,
            &mean,
            1e-6,
            1e-6,
        );
        assert_close(
            &format!("{name}.batch_var"),
            &f.tensor("batch_var").1,
            &var,
            1e-6,
            1e-6,
        );
        let (_, gamma) = f.tensor("gamma");
        let (_, beta) = f.tensor("beta");
        let (_, dy) = f.tensor("dy");
        let xhat: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| (v as f64 - mean[i % c]) / (var[i % c] + eps).sqrt())
            .collect();
        let y: Vec<f64> = xhat
            .iter()
            .enumerate()
            .map(|(i, &v)| gamma[i % c] as f64 * v + beta[i % c] as f64)
            .collect();
        assert_close(&format!("{name}.y"), &f.tensor("y").1, &y, 1e-6, 1e-6);
        let mut dgamma = vec![0.0; c];
        let mut dbeta = vec![0.0; c];
        for (i, &g) in dy.iter().enumerate() {
            dgamma[i % c] += g as f64 * xhat[i];
            dbeta[i % c] += g as f64;
        }
        assert_close(
            &format!("{name}.dgamma"),
            &f.tensor("dgamma").1,
            &dgamma,
            1e-6,
            1e-6,
        );
        assert_close(
            &format!("{name}.dbeta"),
            &f.tensor("dbeta").1,
            &dbeta,
            1e-6,
            1e-6,
        );
        // dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat)).
        let dx: Vec<f64> = dy
            .iter()
            .enumerate()
            .map(|(i, &g)| {
                let k = i % c;
                gamma[k] as f64 / (var[k] + eps).sqrt()
                    * (g as f64 - dbeta[k] / m - xhat[i] * dgamma[k] / m)
            })
            .collect();
        assert_close(&format!("{name}.dx"), &f.tensor("dx").1, &dx, 1e-6, 1e-6);
        for (stat, batch) in [("mean", &mean), ("var", &var)] {
            let (_, r0) = f.tensor(&format!("running_{stat}_in"));
            let want: Vec<f64> = r0
                .iter()
                .zip(batch.iter())
                .map(|(&r, &b)| mom * r as f64 + (1.0 - mom) * b)
                .collect();
            assert_close(
                &format!("{name}.running_{stat}_out"),
                &f.tensor(&format!("running_{stat}_out")).1,
                &want,
                1e-6,
                1e-6,
            );
        }
    }
}

#[test]
fn fixtures_bce_logits_consistent() {
    let f = load("bce_logits");
    let (n, d) = (f.int("batch"), f.int("features"));
    let (shape, x) = f.tensor("logits");
    assert_eq!(shape, [n, d]);
    let (_, t) = f.tensor("targets");
    assert!(x.iter().any(|v| v.abs() == 100.0), "no |logit| = 100");
    assert!(t.iter().all(|v| (0.0..=1.0).contains(v)));
    let elem: Vec<f64> = x
        .iter()
        .zip(&t)
        .map(|(&x, &t)| {
            let (x, t) = (x as f64, t as f64);
            x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
        })
        .collect();
    assert_close("bce.loss_elem", &f.tensor("loss_elem").1, &elem, 1e-6, 1e-6);
    let total: f64 = elem.iter().sum();
    assert_scalar(
        "bce.loss_mean",
        f.scalar("loss_mean"),
        total / (n * d) as f64,
        1e-6,
        1e-6,
    );
    let per: Vec<f64> = elem.chunks(d).map(|r| r.iter().sum()).collect();
    assert_close(
        "bce.loss_per_sample",
        &f.tensor("loss_per_sample").1,
        &per,
        1e-6,
        1e-6,
    );
    assert_scalar(
        "bce.loss_sum_mean",
        f.scalar("loss_sum_mean"),
        total / n as f64,
        1e-6,
        1e-6,
    );
    let sig_minus_t: Vec<f64> = x
        .iter()
        .zip(&t)
        .map(|(&x, &t)| 1.0 / (1.0 + (-(x as f64)).exp()) - t as f64)
        .collect();
    let scale = |k: f64| sig_minus_t.iter().map(|v| v / k).collect::<Vec<_>>();
    assert_close(
        "bce.dlogits_mean",
        &f.tensor("dlogits_mean").1,
        &scale((n * d) as f64),
        1e-9,
        1e-6,
    );
    assert_close(
        "bce.dlogits_sum_mean",
        &f.tensor("dlogits_sum_mean").1,
        &scale(n as f64),
        1e-9,
        1e-6,
    );
}

#[test]
fn fixtures_gaussian_kl_consistent() {
    let f = load("gaussian_kl");
    let (n, z) = (f.int("batch"), f.int("latent"));
    let (shape, mu) = f.tensor("mu");
    assert_eq!(shape, [n, z]);
    let (_, lv) = f.tensor("logvar");
    let per: Vec<f64> = mu
        .chunks(z)
        .zip(lv.chunks(z))
        .map(|(m, l)| {
            -0.5 * m
                .iter()
                .zip(l)
                .map(|(&m, &l)| 1.0 + l as f64 - (m as f64).powi(2) - (l as f64).exp())
                .sum::<f64>()
        })
        .collect();
    assert_close(
        "kl.kl_per_sample",
        &f.tensor("kl_per_sample").1,
        &per,
        1e-6,
        1e-6,
    );
    let mean = per.iter().sum::<f64>() / n as f64;
    assert_scalar("kl.kl_mean", f.scalar("kl_mean"), mean, 1e-6, 1e-6);
    let dmu: Vec<f64> = mu.iter().map(|&m| m as f64 / n as f64).collect();
    let dlv: Vec<f64> = lv
        .iter()
        .map(|&l| 0.5 * ((l as f64).exp() - 1.0) / n as f64)
        .collect();
    assert_close("kl.dmu", &f.tensor("dmu").1, &dmu, 1e-9, 1e-6);
    assert_close("kl.dlogvar", &f.tensor("dlogvar").1, &dlv, 1e-9, 1e-6);
}

#[test]
fn fixtures_adam_consistent() {
    let f = load("adam");
    let steps = f.int("steps");
    let (lr, b1, b2, eps) = (
        f.scalar("lr"),
        f.scalar("beta1"),
        f.scalar("beta2"),
        f.scalar("eps"),
    );
    assert_eq!((lr, b1, b2, eps), (1e-3, 0.9, 0.999, 1e-7));
    let (pshape, p0) = f.tensor("param_init");
    let mut stacked = vec![steps];
    stacked.extend(&pshape);
    let (gshape, grads) = f.tensor("grads");
    assert_eq!(gshape, stacked);
    let len = p0.len();
    let (mut m, mut v) = (vec![0.0f64; len], vec![0.0f64; len]);
    let mut pt = f64s(&p0);
    let mut pk = f64s(&p0);
    for t in 1..=steps {
        let g = &grads[(t - 1) * len..t * len];
        let bc1 = 1.0 - b1.powi(t as i32);
        let bc2 = 1.0 - b2.powi(t as i32);
        for i in 0..len {
            let gi = g[i] as f64;
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
            pt[i] -= lr / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + eps);
            pk[i] -= lr * bc2.sqrt() / bc1 * m[i] / (v[i].sqrt() + eps);
        }
        for (key, want) in [
            ("m", &m),
            ("v", &v),
            ("torch_params", &pt),
            ("keras_params", &pk),
        ] {
            let (shape, data) = f.tensor(key);
            assert_eq!(shape, stacked, "adam.{key} shape");
            assert_close(
                &format!("adam.{key} step {t}"),
                &data[(t - 1) * len..t * len],
                want,
                1e-30,
                1e-6,
            );
        }
    }
    // The two conventions differ where sqrt(v) is comparable to eps.
    let (_, tp) = f.tensor("torch_params");
    let (_, kp) = f.tensor("keras_params");
    assert!(tp.iter().zip(&kp).any(|(a, b)| (a - b).abs() > 1e-5));
}
