//! Kernel benchmarks: the register-tiled GEMM, dense, and conv2d /
//! transposed conv2d in every direction at the DCGAN's real shapes
//! (batch 128), reported as GFLOP/s.
//!
//! `cargo bench --bench kernels` (a few minutes on lavapipe).
//! Env: `KERNEL_BENCH_BATCH` (default 128) shrinks the conv batch;
//! `KERNEL_BENCH_TILE=bm,bn,bk,tm,tn` forces one tile for every kernel;
//! `KERNEL_BENCH_MAIN=direct|tiled` forces the main loop;
//! `KERNEL_BENCH_SPLITS=n` forces the split-K count;
//! `KERNEL_BENCH_COL2IM=0|1` forces conv backward data by phases / col2im;
//! `KERNEL_BENCH_FILTER=substring` runs only matching benches.
//!
//! Each iteration is one submit-and-wait of a step holding `reps` copies of
//! the op (enough that one submit does >= ~0.3 GFLOP, so the submit round
//! trip is noise). FLOPs are the nominal 2 * M * N * K of the GEMM the op
//! is (for a conv: 2 * N*OH*OW * Cout * KH*KW*Cin, padding taps included).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use vae_vs_gan::ops::conv2d::{self, Conv2d, ConvDims, Padding};
use vae_vs_gan::ops::dense;
use vae_vs_gan::ops::gemm::{Fused, GemmConfig, Main, Scratch, Tile};
use vae_vs_gan::{Gpu, Step, Tensor};

fn cfg() -> GemmConfig {
    let tile = std::env::var("KERNEL_BENCH_TILE").ok().map(|s| {
        let v: Vec<u32> = s
            .split(',')
            .map(|x| x.trim().parse().expect("tile"))
            .collect();
        Tile::new(v[0], v[1], v[2], v[3], v[4])
    });
    let main = std::env::var("KERNEL_BENCH_MAIN").ok().map(|s| match &*s {
        "direct" => Main::Direct,
        "tiled" => Main::Tiled,
        "subgroup" => Main::Subgroup,
        _ => panic!("KERNEL_BENCH_MAIN: direct, tiled or subgroup"),
    });
    let splits = std::env::var("KERNEL_BENCH_SPLITS")
        .ok()
        .map(|s| s.parse().expect("splits"));
    let col2im = std::env::var("KERNEL_BENCH_COL2IM")
        .ok()
        .map(|s| s == "1" || s == "true");
    GemmConfig {
        main,
        tile,
        col2im,
        splits,
    }
}

fn filled(gpu: &Gpu, shape: &[usize], label: &str) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    Tensor::from_f32(gpu, shape, &data, label).expect("upload")
}

/// CPU seconds (user + system, all threads: lavapipe's workers run in this
/// process) from /proc/self/stat; None off Linux.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised command name; utime, stime are 14, 15
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ, 100 on Linux
}

/// Time one recorded op: `record` adds one copy of it to a step.
fn bench_op(
    c: &mut Criterion,
    gpu: &Gpu,
    name: &str,
    flops: f64,
    mut record: impl FnMut(&mut Step) -> Scratch,
) {
    if let Ok(f) = std::env::var("KERNEL_BENCH_FILTER") {
        if !name.contains(&f) {
            return;
        }
    }
    let reps = ((0.3e9 / flops).ceil() as usize).clamp(1, 64);
    let mut step = Step::new(name);
    let mut scratch = Vec::new();
    for _ in 0..reps {
        scratch.push(record(&mut step));
    }
    gpu.run(&[&step]).expect("warm-up run"); // compiles, first touch
    let times = RefCell::new(Vec::new());
    let ops = RefCell::new(0u64);
    let cpu0 = cpu_seconds();
    let mut group = c.benchmark_group("kernels");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements((flops * reps as f64) as u64));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                gpu.run(&[&step]).expect("run");
            }
            let dt = t0.elapsed();
            *ops.borrow_mut() += iters * reps as u64;
            times
                .borrow_mut()
                .push(dt.as_secs_f64() / (iters as f64 * reps as f64));
            dt
        })
    });
    group.finish();
    let mut t = times.into_inner();
    t.sort_by(|a, b| a.total_cmp(b));
    let median = t[t.len() / 2];
    // GFLOP per CPU-second: on a shared machine the wall clock counts other
    // work, the process's CPU time much less so (a 2-core idle run would
    // reach at most 2x this)
    let per_cpu = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) if b > a => flops * ops.into_inner() as f64 / (b - a) * 1e-9,
        _ => f64::NAN,
    };
    // the fastest sample too: on a shared machine other work only slows a
    // sample down, so the best one is the closer estimate of an idle run
    println!(
        "GFLOP/s {name}: {:.2} best {:.2} per-CPU-s {per_cpu:.2} (median {:.2} ms per op, {:.3} GFLOP, {reps} per submit)",
        flops / median * 1e-9,
        flops / t[0] * 1e-9,
        median * 1e3,
        flops * 1e-9
    );
    drop(scratch);
}

fn gemm_benches(c: &mut Criterion, gpu: &Gpu) {
    let cfg = cfg();
    for &(m, n, k, name) in &[
        (512, 512, 512, "gemm 512x512x512"),
        (
            128,
            12544,
            100,
            "dense_forward 128x100->12544 (generator input)",
        ),
        (128, 100, 12544, "dense_backward_data 128x12544->100"),
        (
            100,
            12544,
            128,
            "dense_backward_weights 100x12544 over batch 128",
        ),
        (
            128,
            1,
            6272,
            "dense_forward 128x6272->1 (discriminator output)",
        ),
    ] {
        // every case as C[m, n] = A[m, k] B[k, n]; backward weights reads A transposed
        let ta = name.starts_with("dense_backward_weights");
        let a = filled(gpu, &if ta { [k, m] } else { [m, k] }, "a");
        let b = filled(gpu, &[k, n], "b");
        let out = Tensor::zeros(gpu, &[m, n], "c").expect("alloc");
        let flops = 2.0 * (m * n * k) as f64;
        bench_op(c, gpu, name, flops, |s| {
            dense::gemm(gpu, s, &a, ta, &b, false, None, &out, &cfg).expect("record")
        });
    }
}

/// The conv directions of one layer shape `d`, named `what`.
fn conv_benches(c: &mut Criterion, gpu: &Gpu, d: &ConvDims, what: &str, directions: &[&str]) {
    let cfg = cfg();
    let x = filled(gpu, &d.x_shape(), "x");
    let w = filled(gpu, &d.w_shape(), "w");
    let y = filled(gpu, &d.y_shape(), "y");
    let b = filled(gpu, &[d.cout], "b");
    let flops = d.flops();
    for &dir in directions {
        let name = format!("{dir} {what}");
        bench_op(c, gpu, &name, flops, |s| {
            let r = match dir {
                "conv2d_forward" => {
                    conv2d::record_forward(gpu, s, "f", d, &x, &w, &Fused::bias(Some(&b)), &y, &cfg)
                }
                // convT forward = conv backward data: same recording
                "conv2d_backward_data" | "conv_transpose2d_forward" => {
                    conv2d::record_backward_data(
                        gpu,
                        s,
                        "d",
                        d,
                        &y,
                        &w,
                        &Fused::default(),
                        &x,
                        &cfg,
                    )
                }
                "conv2d_backward_weights" | "conv_transpose2d_backward_weights" => {
                    conv2d::record_backward_weights(gpu, s, "w", d, &x, &y, &w, None, &cfg)
                }
                // convT backward data = conv forward
                "conv_transpose2d_backward_data" => {
                    conv2d::record_forward(gpu, s, "f", d, &x, &w, &Fused::default(), &y, &cfg)
                }
                _ => unreachable!("{dir}"),
            };
            r.expect("record")
        });
    }
}

fn kernels(c: &mut Criterion) {
    let gpu = Gpu::new().expect("adapter");
    println!("adapter: {}", gpu.describe());
    let batch: usize = std::env::var("KERNEL_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128);
    gemm_benches(c, &gpu);
    let all = [
        "conv2d_forward",
        "conv2d_backward_data",
        "conv2d_backward_weights",
    ];
    // 7x7, 256 -> 128 channels, 5x5 stride 1 same (generator layer 2 is the
    // transposed conv 256 -> 128 of this shape: same three kernels)
    let l1 = Conv2d::new(5, 5, 1, Padding::same(7, 5, 1))
        .dims("bench", batch, 7, 7, 256, 128)
        .expect("dims");
    conv_benches(c, &gpu, &l1, &format!("7x7 256->128 5x5 s1 b{batch}"), &all);
    // discriminator conv 14 -> 7, 64 -> 128, 5x5 stride 2 same; the
    // generator's transposed conv 7 -> 14, 128 -> 64 is its adjoint
    let l2 = Conv2d::new(5, 5, 2, Padding::same(14, 5, 2))
        .dims("bench", batch, 14, 14, 64, 128)
        .expect("dims");
    conv_benches(
        c,
        &gpu,
        &l2,
        &format!("14x14 64->128 5x5 s2 b{batch}"),
        &all,
    );
    // the generator's last layer: transposed conv 14 -> 28, 64 -> 1 (its
    // adjoint is the discriminator's first conv 28 -> 14, 1 -> 64)
    let l3 = Conv2d::new(5, 5, 2, Padding::same(28, 5, 2))
        .dims("bench", batch, 28, 28, 1, 64)
        .expect("dims");
    conv_benches(
        c,
        &gpu,
        &l3,
        &format!("convT 14->28 64->1 5x5 s2 b{batch}"),
        &[
            "conv_transpose2d_forward",
            "conv_transpose2d_backward_data",
            "conv_transpose2d_backward_weights",
        ],
    );
}

criterion_group!(benches, kernels);
criterion_main!(benches);
