//! The GEMM autotuner and the GPU tile policy.
//!
//! - The candidate lists: few, valid, the policy's default first, and drawn
//!   only from the tiles this file forces (every GPU policy tile; the CPU
//!   policy varies only split-K of its default tile, which tests/it/dense.rs
//!   and tests/it/conv2d.rs already force).
//! - Numerics: every (main, tile) the GPU policy or the tuner can pick, with
//!   split-K off and on, forced on lavapipe for every GEMM variant (dense
//!   forward, backward data, backward weights with the fused bias gradient;
//!   conv2d forward, backward data by stride phases, backward weights;
//!   conv_transpose2d forward, backward data, backward weights) on odd
//!   shapes, against the CPU reference.
//! - The tuning cache (one test: it sets `VAE_VS_GAN_CACHE_DIR`, which is
//!   process-wide, so this file is in the `global` test crate and that
//!   test runs alone there, [`crate::alone`]): a choice is a candidate and
//!   is written; a second device on the same folder takes it without
//!   timing and computes the same bits; a corrupt file, an unparsable
//!   value and a value that is no candidate are ignored and replaced; an
//!   unwritable folder is not a failure.
//!
//! Tolerance (as tests/it/dense.rs and tests/it/conv2d.rs): an output sums K
//! products of inputs in [-1, 1], accumulated in f32 in tile (and split)
//! order on the GPU vs f64 on the CPU; the f32 error grows like sqrt(K) eps
//! (random walk), so atol = 2e-5 * sqrt(K/100) covers outputs near zero
//! after cancellation and rtol = 1e-4 the rest. A tile or split choice only
//! reorders the sum.

use crate::common::*;
use vae_vs_gan::gpu::{AutotunePolicy, LimitsPolicy};
use vae_vs_gan::ops::conv2d::{self, Conv2d, ConvDims, Padding};
use vae_vs_gan::ops::conv_transpose2d::{self, ConvTranspose2d};
use vae_vs_gan::ops::dense::{gemm, gemm_cpu};
use vae_vs_gan::ops::gemm::tune::{self, candidates, MAX_CANDIDATES};
use vae_vs_gan::ops::gemm::{
    gpu_tiles, BiasGrad, Choice, DySide, Fused, GemmConfig, GemmShape, Main, Policy, Tile,
};
use vae_vs_gan::{Gpu, GpuOptions, Step, Tensor};

fn atol(k: usize) -> f64 {
    2e-5 * (k as f64 / 100.0).sqrt().max(1.0)
}

fn t(g: &Gpu, shape: &[usize], data: &[f32], label: &str) -> Tensor {
    Tensor::from_f32(g, shape, data, label).unwrap()
}

fn poisoned(g: &Gpu, shape: &[usize], label: &str) -> Tensor {
    let x = Tensor::zeros(g, shape, label).unwrap();
    x.poison(g);
    x
}

/// Every forced (main, tile) with split-K off and 3 splits.
fn forced_configs() -> Vec<GemmConfig> {
    let mut v = Vec::new();
    for (main, tile) in gpu_tiles() {
        for splits in [1, 3] {
            v.push(GemmConfig {
                main: Some(main),
                tile: Some(tile),
                col2im: Some(false),
                splits: Some(splits),
            });
        }
    }
    v
}

#[test]
fn candidates_are_few_valid_and_forced_by_the_numerics_tests() {
    let _process = crate::beside_others();
    let tested = gpu_tiles();
    assert!(tested.len() >= 10, "the GPU tile table: {tested:?}");
    for (main, tile) in &tested {
        tile.check(*main).unwrap();
        assert!(
            tile.tm * tile.tn <= 64,
            "{tile:?}: over 64 accumulators per invocation"
        );
    }
    let ms = [1, 3, 16, 17, 64, 65, 100, 1000, 6272, 25088, 100_000];
    let ns = [1, 2, 3, 5, 8, 9, 25, 32, 33, 64, 65, 128, 1000];
    let ks = [1, 9, 100, 300, 600, 1568, 25088];
    let mut max_seen = 0;
    for policy in [Policy::CPU_SUBGROUPS, Policy::CPU, Policy::GPU] {
        let cpu = policy.cpu;
        for &m in &ms {
            for &n in &ns {
                for &k in &ks {
                    for slices in [1, 4] {
                        let shape = GemmShape { m, n, k, slices };
                        let c = candidates(policy, shape);
                        let d = Choice::of(policy, shape, &GemmConfig::default());
                        let tag = format!("{policy:?} {shape:?}: {c:?}");
                        assert_eq!(c[0], d, "{tag}: the default comes first");
                        assert!(c.len() <= MAX_CANDIDATES, "{tag}");
                        max_seen = max_seen.max(c.len());
                        for (i, x) in c.iter().enumerate() {
                            assert!(!c[..i].contains(x), "{tag}: duplicate {x:?}");
                            x.tile.check(x.main).unwrap();
                            assert_eq!(
                                shape.effective_splits(x.tile, x.splits),
                                x.splits,
                                "{tag}: splits not effective"
                            );
                            assert_eq!(Choice::decode(&x.encode()).unwrap(), *x, "{tag}");
                            if cpu {
                                assert_eq!((x.main, x.tile), (d.main, d.tile), "{tag}");
                            } else {
                                assert!(tested.contains(&(x.main, x.tile)), "{tag}: {x:?}");
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(max_seen >= 4, "the tuner should have real alternatives");
    // a stored value is never trusted blindly
    for bad in [
        "",
        "Tiled",
        "Fast 1x1x1 1x1 s1",
        "Tiled 128x128x16 8x8 s0",
        "Tiled 128x128x16 8x8",
        "Tiled 128x128 8x8 s1",
        "Tiled 100x128x16 8x8 s1",
        "Direct 16x16x64 4x4 s1",
    ] {
        assert!(Choice::decode(bad).is_err(), "{bad:?} decoded");
    }
}

/// The GPU policy fills a big GPU where the shape allows: a wide GEMM
/// gets hundreds of workgroups from its tiles, a small-output long-K one
/// from split-K.
#[test]
fn gpu_policy_targets_hundreds_of_workgroups() {
    let _process = crate::beside_others();
    let wg = |s: GemmShape| {
        let c = Choice::of(Policy::GPU, s, &GemmConfig::default());
        (c, s.tiles(c.tile) * c.splits as usize)
    };
    let big = GemmShape {
        m: 3136,
        n: 128,
        k: 1600,
        slices: 1,
    };
    let (c, n) = wg(big);
    assert!(n >= 400, "{c:?}: {n} workgroups");
    let wgrad = GemmShape {
        m: 25,
        n: 64,
        k: 12544,
        slices: 1,
    };
    let (c, n) = wg(wgrad);
    assert!(n >= 100 && c.splits > 1, "{c:?}: {n} workgroups");
    // the CPU policy keeps its few big blocks, shared by subgroups where
    // the device has subgroups of 8
    let c = Choice::of(Policy::CPU, big, &GemmConfig::default());
    assert_eq!(c.main, Main::Direct);
    assert_eq!(c.tile, Tile::direct_auto(3136, 128));
    let c = Choice::of(Policy::CPU_SUBGROUPS, big, &GemmConfig::default());
    assert_eq!(c.main, Main::Subgroup);
    assert_eq!(c.tile, Tile::subgroup_auto(3136, 128));
}

#[test]
fn every_tuner_tile_dense_matches_cpu() {
    let _process = crate::beside_others();
    let g = gpu();
    let (m, n, k) = (67, 19, 53);
    let a = uniform(m * k, -1.0, 1.0, 11);
    let b = uniform(k * n, -1.0, 1.0, 12);
    let (at, bt, btt) = (
        t(g, &[m, k], &a, "a"),
        t(g, &[k, n], &b, "b"),
        t(g, &[n, k], &b, "b^T"),
    );
    let want_nn = gemm_cpu(&a, false, &b, false, None, m, n, k);
    let want_nt = gemm_cpu(&a, false, &b, true, None, m, n, k);
    // dense backward weights: a 1x1 conv's weight gradient (as the layer
    // records it) with the bias gradient fused
    let (batch, fin, fout) = (53, 19, 11);
    let x = uniform(batch * fin, -1.0, 1.0, 13);
    let dy = uniform(batch * fout, -1.0, 1.0, 14);
    let d = Conv2d::new(1, 1, 1, Padding::valid())
        .dims("test", batch, 1, 1, fin, fout)
        .unwrap();
    let (xt, dyt) = (
        t(g, &[batch, 1, 1, fin], &x, "x"),
        t(g, &[batch, 1, 1, fout], &dy, "dy"),
    );
    let mut want_dwb = gemm_cpu(&x, true, &dy, false, None, fin, fout, batch);
    want_dwb.extend(vae_vs_gan::ops::bias::bias_grad_cpu(&dy, fout));
    let bg = BiasGrad {
        side: DySide::B,
        rows: batch,
        cols: fout,
        off: fin * fout,
    };
    for cfg in forced_configs() {
        let c_nn = poisoned(g, &[m, n], "c");
        let c_nt = poisoned(g, &[m, n], "c");
        let dwb = poisoned(g, &[fin * fout + fout], "dwb");
        let mut s = Step::new("tune dense");
        let _s1 = gemm(g, &mut s, &at, false, &bt, false, None, &c_nn, &cfg).unwrap();
        let _s2 = gemm(g, &mut s, &at, false, &btt, true, None, &c_nt, &cfg).unwrap();
        let op = "dense_backward_weights";
        let _s3 =
            conv2d::record_backward_weights(g, &mut s, op, &d, &xt, &dyt, &dwb, Some(bg), &cfg)
                .unwrap();
        run(&s);
        let tag = format!("{:?} {:?} s{:?}", cfg.main, cfg.tile, cfg.splits);
        let nn = c_nn.read_f32(g).unwrap();
        assert_close(
            &format!("dense forward {tag}"),
            &nn,
            &want_nn,
            atol(k),
            1e-4,
        );
        let nt = c_nt.read_f32(g).unwrap();
        assert_close(
            &format!("dense backward data {tag}"),
            &nt,
            &want_nt,
            atol(k),
            1e-4,
        );
        let w = dwb.read_f32(g).unwrap();
        let what = format!("dense backward weights+bias {tag}");
        assert_close(&what, &w, &want_dwb, atol(batch), 1e-4);
    }
}

/// Input, weight and output-gradient data for conv dims `d`.
fn conv_data(d: &ConvDims, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = |s: [usize; 4]| s.iter().product::<usize>();
    (
        uniform(n(d.x_shape()), -1.0, 1.0, seed),
        uniform(n(d.w_shape()), -1.0, 1.0, seed + 1),
        uniform(n(d.y_shape()), -1.0, 1.0, seed + 2),
    )
}

#[test]
fn every_tuner_tile_conv2d_matches_cpu() {
    let _process = crate::beside_others();
    let g = gpu();
    // stride 2, asymmetric padding, 9 input channels (> 8: backward data
    // by stride phases)
    let pad = Padding {
        top: 2,
        bottom: 0,
        left: 1,
        right: 2,
    };
    let conv = Conv2d::new(3, 3, 2, pad);
    let d = conv.dims("test", 2, 11, 9, 9, 7).unwrap();
    let (x, w, dy) = conv_data(&d, 21);
    let (xg, wg, dyg) = (
        t(g, &d.x_shape(), &x, "x"),
        t(g, &d.w_shape(), &w, "w"),
        t(g, &d.y_shape(), &dy, "dy"),
    );
    let want_y = conv2d::forward_cpu(&d, &x, &w, None);
    let want_dx = conv2d::backward_data_cpu(&d, &dy, &w);
    let nw = w.len();
    let mut want_dwb = conv2d::backward_weights_cpu(&d, &x, &dy);
    want_dwb.extend(vae_vs_gan::ops::bias::bias_grad_cpu(&dy, d.cout));
    let bg = BiasGrad {
        side: DySide::B,
        rows: d.batch * d.oh * d.ow,
        cols: d.cout,
        off: nw,
    };
    let none = Fused::default();
    for cfg in forced_configs() {
        let y = poisoned(g, &d.y_shape(), "y");
        let dx = poisoned(g, &d.x_shape(), "dx");
        let dwb = poisoned(g, &[nw + d.cout], "dwb");
        let mut s = Step::new("tune conv2d");
        let op = "conv2d_test";
        let _s1 = conv2d::record_forward(g, &mut s, op, &d, &xg, &wg, &none, &y, &cfg).unwrap();
        let _s2 =
            conv2d::record_backward_data(g, &mut s, op, &d, &dyg, &wg, &none, &dx, &cfg).unwrap();
        let _s3 =
            conv2d::record_backward_weights(g, &mut s, op, &d, &xg, &dyg, &dwb, Some(bg), &cfg)
                .unwrap();
        run(&s);
        let tag = format!("{:?} {:?} s{:?}", cfg.main, cfg.tile, cfg.splits);
        let kf = conv.kh * conv.kw * d.cin;
        let kd = conv.kh * conv.kw * d.cout;
        let kw = d.batch * d.oh * d.ow;
        let got = y.read_f32(g).unwrap();
        assert_close(
            &format!("conv2d forward {tag}"),
            &got,
            &want_y,
            atol(kf),
            1e-4,
        );
        let got = dx.read_f32(g).unwrap();
        let what = format!("conv2d backward data {tag}");
        assert_close(&what, &got, &want_dx, atol(kd), 1e-4);
        let got = dwb.read_f32(g).unwrap();
        let what = format!("conv2d backward weights+bias {tag}");
        assert_close(&what, &got, &want_dwb, atol(kw), 1e-4);
    }
}

#[test]
fn every_tuner_tile_conv_transpose2d_matches_cpu() {
    let _process = crate::beside_others();
    let g = gpu();
    // 5x5 stride 2 `same` from 7x6 to 13x11, 10 -> 9 channels; recorded as
    // conv_transpose2d records it: forward = the adjoint conv's backward
    // data, backward data = its forward, backward weights = its backward
    // weights with x and dy swapped (bias gradient from the A operand)
    let ct = ConvTranspose2d::new(5, 5, 2, Padding::same(13, 5, 2), 13, 11);
    let (hi, wi) = ct.conv.out_size("test", 13, 11).unwrap();
    let d = ct.dims("test", 2, hi, wi, 10, 9).unwrap();
    // for the adjoint conv d: its y is this op's input x, its x this op's y
    let (y_t, w, x_t) = conv_data(&d, 31);
    let (outg, wg, xg) = (
        t(g, &d.x_shape(), &y_t, "dy_t"),
        t(g, &d.w_shape(), &w, "w"),
        t(g, &d.y_shape(), &x_t, "x_t"),
    );
    let want_y = conv_transpose2d::forward_cpu(&d, &x_t, &w, None);
    let want_dx = conv_transpose2d::backward_data_cpu(&d, &y_t, &w);
    let nw = w.len();
    let mut want_dwb = conv_transpose2d::backward_weights_cpu(&d, &x_t, &y_t);
    want_dwb.extend(vae_vs_gan::ops::bias::bias_grad_cpu(&y_t, d.cin));
    let bg = BiasGrad {
        side: DySide::A,
        rows: d.batch * d.h * d.w,
        cols: d.cin,
        off: nw,
    };
    let none = Fused::default();
    for cfg in forced_configs() {
        let y = poisoned(g, &d.x_shape(), "y_t");
        let dx = poisoned(g, &d.y_shape(), "dx_t");
        let dwb = poisoned(g, &[nw + d.cin], "dwb");
        let mut s = Step::new("tune convT");
        let op = "conv_transpose2d_test";
        let _s1 =
            conv2d::record_backward_data(g, &mut s, op, &d, &xg, &wg, &none, &y, &cfg).unwrap();
        let _s2 = conv2d::record_forward(g, &mut s, op, &d, &outg, &wg, &none, &dx, &cfg).unwrap();
        let _s3 =
            conv2d::record_backward_weights(g, &mut s, op, &d, &outg, &xg, &dwb, Some(bg), &cfg)
                .unwrap();
        run(&s);
        let tag = format!("{:?} {:?} s{:?}", cfg.main, cfg.tile, cfg.splits);
        let kf = ct.conv.kh * ct.conv.kw * d.cout;
        let kd = ct.conv.kh * ct.conv.kw * d.cin;
        let kw = d.batch * d.oh * d.ow;
        let got = y.read_f32(g).unwrap();
        let what = format!("conv_transpose2d forward {tag}");
        assert_close(&what, &got, &want_y, atol(kf), 1e-4);
        let got = dx.read_f32(g).unwrap();
        let what = format!("conv_transpose2d backward data {tag}");
        assert_close(&what, &got, &want_dx, atol(kd), 1e-4);
        let got = dwb.read_f32(g).unwrap();
        let what = format!("conv_transpose2d backward weights+bias {tag}");
        assert_close(&what, &got, &want_dwb, atol(kw), 1e-4);
    }
}

/// A device with the tuner forced on, on the current cache folder.
fn tuned_gpu() -> Gpu {
    Gpu::with_options(GpuOptions {
        limits: LimitsPolicy::WebGpuDefaults,
        autotune: Some(AutotunePolicy::On),
        ..GpuOptions::default()
    })
    .expect("an adapter")
}

/// The tuned GEMM of the cache test: 70 x 33 x 600, long enough in K that
/// both policies have split-K alternatives.
const M: usize = 70;
const N: usize = 33;
const K: usize = 600;

/// Record (with the open config: the tuner decides) and run the test GEMM
/// on `g`; its output.
fn tuned_gemm(g: &Gpu, cfg: &GemmConfig) -> Vec<f32> {
    let a = t(g, &[M, K], &uniform(M * K, -1.0, 1.0, 41), "a");
    let b = t(g, &[K, N], &uniform(K * N, -1.0, 1.0, 42), "b");
    let c = poisoned(g, &[M, N], "c");
    let mut s = Step::new("tuned gemm");
    let _scratch = gemm(g, &mut s, &a, false, &b, false, None, &c, cfg).unwrap();
    g.run(&[&s]).unwrap();
    c.read_f32(g).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The tuning files in `dir`.
fn tune_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("gemm-tune"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Everything that depends on `VAE_VS_GAN_CACHE_DIR`, in one test.
#[test]
fn tuned_choices_are_cached_reproduced_and_never_trusted_blindly() {
    let _process = crate::alone();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    std::env::set_var("VAE_VS_GAN_CACHE_DIR", &dir);
    let shape = GemmShape {
        m: M,
        n: N,
        k: K,
        slices: 1,
    };
    let open = GemmConfig::default();
    let want = gemm_cpu(
        &uniform(M * K, -1.0, 1.0, 41),
        false,
        &uniform(K * N, -1.0, 1.0, 42),
        false,
        None,
        M,
        N,
        K,
    );

    // first device: times the candidates, keeps one, writes the file
    let g1 = tuned_gpu();
    assert!(g1.autotune(), "{}", g1.describe_autotune());
    let out1 = tuned_gemm(&g1, &open);
    assert_close("tuned gemm", &out1, &want, atol(K), 1e-4);
    let st = tune::stats(&g1);
    assert_eq!((st.timed, st.cached), (1, 0), "{st:?}");
    let (key, choice) = st.choices[0].clone();
    let cands = candidates(Policy::of(&g1), shape);
    assert!(cands.len() >= 3, "{cands:?}");
    assert!(cands.contains(&choice), "{choice:?} not in {cands:?}");
    assert_eq!(g1.tuned(&key), Some(choice.encode()));
    let files = tune_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].clone();
    assert!(std::fs::read(&file).unwrap().starts_with(b"VVGCACHE"));
    // the choice is what ran: forcing it gives the same bits
    let forced = GemmConfig {
        main: Some(choice.main),
        tile: Some(choice.tile),
        col2im: None,
        splits: Some(choice.splits),
    };
    assert_eq!(bits(&tuned_gemm(&g1, &forced)), bits(&out1));
    // the same shape again on this device: from the table
    let _ = tuned_gemm(&g1, &open);
    assert_eq!(tune::stats(&g1).timed, 1);

    // second device on the same folder: no timing, the same choice and bits
    let g2 = tuned_gpu();
    let out2 = tuned_gemm(&g2, &open);
    let st2 = tune::stats(&g2);
    assert_eq!((st2.timed, st2.cached), (0, 1), "{st2:?}");
    assert_eq!(st2.choices[0], (key.clone(), choice));
    assert_eq!(bits(&out2), bits(&out1), "a cached choice reproduces bits");
    drop((g1, g2));

    // a corrupt file: ignored, the shape tuned again, the file rewritten
    std::fs::write(&file, b"VVGCACHE not a table at all").unwrap();
    let g3 = tuned_gpu();
    assert_close(
        "after corrupt",
        &tuned_gemm(&g3, &open),
        &want,
        atol(K),
        1e-4,
    );
    assert_eq!(tune::stats(&g3).timed, 1, "corrupt cache trusted");
    drop(g3);
    let g4 = tuned_gpu();
    let _ = tuned_gemm(&g4, &open);
    assert_eq!(tune::stats(&g4).cached, 1, "the rewritten file is valid");

    // stored values that do not parse or are no candidate: tuned again
    g4.set_tuned(&key, "Tiled 128x128 eight s1");
    let _ = tuned_gemm(&g4, &open);
    g4.set_tuned(&key, "Direct 13x7x1 13x7 s1"); // a valid tile, no candidate
    let _ = tuned_gemm(&g4, &open);
    let st4 = tune::stats(&g4);
    assert_eq!((st4.timed, st4.cached), (2, 1), "{st4:?}");
    let kept = Choice::decode(&g4.tuned(&key).unwrap()).unwrap();
    assert!(cands.contains(&kept), "{kept:?}");
    drop(g4);

    // an unwritable cache folder (below a plain file: refused even to
    // root) is a warning, not a failure
    let blocker = tmp.path().join("plain-file");
    std::fs::write(&blocker, b"x").unwrap();
    std::env::set_var("VAE_VS_GAN_CACHE_DIR", blocker.join("cache"));
    let g5 = tuned_gpu();
    let out5 = tuned_gemm(&g5, &open);
    assert_close("unwritable cache", &out5, &want, atol(K), 1e-4);
    assert_eq!(tune::stats(&g5).timed, 1);
    std::env::remove_var("VAE_VS_GAN_CACHE_DIR");
}
