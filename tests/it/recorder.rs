//! The step recorder and per-step GPU state: several steps in one submit see
//! distinct step counters, the loss ring names each step, and bad input is
//! refused with an error that says what and where.

use crate::common::*;
use vae_vs_gan::gpu::{DType, StepState};
use vae_vs_gan::ops::activation::Activation;
use vae_vs_gan::{Error, Step, Tensor};

/// A step whose loss depends on the step counter only through the ring slot:
/// loss_k = sigmoid(x) with x rewritten between runs, so each ring row holds
/// the value of the step that wrote it.
fn record_step(state: &StepState, x: &Tensor, loss: &Tensor) -> Step {
    let g = gpu();
    let mut s = Step::new("toy");
    Activation::Sigmoid.forward(g, &mut s, x, loss).unwrap();
    state.record_loss(g, &mut s, loss, 0).unwrap();
    Activation::Tanh.forward(g, &mut s, x, loss).unwrap();
    state.record_loss(g, &mut s, loss, 1).unwrap();
    state.record_advance(g, &mut s).unwrap();
    s
}

#[test]
fn recorder_three_steps_in_one_submit_equal_three_submits() {
    let g = gpu();
    let x = Tensor::from_f32(g, &[1], &[0.5], "x").unwrap();
    let loss = Tensor::zeros(g, &[1], "loss").unwrap();

    let one = StepState::new(g, 2, 8, 0).unwrap();
    one.ring.poison(g);
    let step = record_step(&one, &x, &loss);
    g.run(&[&step, &step, &step]).unwrap();

    let many = StepState::new(g, 2, 8, 0).unwrap();
    many.ring.poison(g);
    let step2 = record_step(&many, &x, &loss);
    for _ in 0..3 {
        g.run(&[&step2]).unwrap();
    }

    let a = one.read_losses(g, 0).unwrap();
    let b = many.read_losses(g, 0).unwrap();
    assert_eq!(a.len(), 3, "three steps counted in one submit");
    assert_eq!(a, b);
    let want = [
        Activation::Sigmoid.apply(0.5) as f32,
        Activation::Tanh.apply(0.5) as f32,
    ];
    for (k, l) in a.iter().enumerate() {
        assert_eq!(l.step, k as u64);
        assert_close("ring row", &l.values, &want, 1e-6, 1e-5);
    }
    // Rows past the third were never written: still poisoned.
    let ring = one.ring.read_f32(g).unwrap();
    assert!(ring[6..].iter().all(|v| v.is_nan()));
}

#[test]
fn recorder_ring_refuses_reads_after_overwrite() {
    let g = gpu();
    let x = Tensor::from_f32(g, &[1], &[0.5], "x").unwrap();
    let loss = Tensor::zeros(g, &[1], "loss").unwrap();
    let st = StepState::new(g, 2, 2, 0).unwrap();
    let step = record_step(&st, &x, &loss);
    g.run(&[&step, &step, &step]).unwrap();
    let err = st.read_losses(g, 0).unwrap_err().to_string();
    assert!(err.contains("ring holds 2"), "{err}");
    assert_eq!(st.read_losses(g, 1).unwrap().len(), 2);
}

#[test]
fn recorder_tensor_over_binding_limit_names_limit_and_size() {
    let g = gpu();
    let limit = g.limits.max_storage_buffer_binding_size;
    let n = (limit / 4 + 1) as usize;
    match Tensor::new(g, &[n], DType::F32, "huge") {
        Err(Error::TooLarge { size, limit: l, .. }) => {
            assert_eq!(l, limit);
            assert!(size > limit);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let msg = Tensor::new(g, &[n], DType::F32, "huge")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("max_storage_buffer_binding_size") && msg.contains(&limit.to_string()));
}

#[test]
fn recorder_reshape_shares_buffer_and_checks_count() {
    let g = gpu();
    let t = Tensor::from_f32(g, &[2, 3], &[1., 2., 3., 4., 5., 6.], "t").unwrap();
    let flat = t.reshape(&[6]).unwrap();
    assert_eq!(flat.read_f32(g).unwrap(), vec![1., 2., 3., 4., 5., 6.]);
    assert!(t.reshape(&[7]).is_err());
}

/// Its own device: the shared one's counter moves with the other tests of
/// the crate, which may free more than 4000 bytes meanwhile.
#[test]
fn recorder_counts_allocated_bytes() {
    let own = vae_vs_gan::Gpu::with_options(vae_vs_gan::GpuOptions::default()).unwrap();
    let g = &own;
    let before = g.allocated_bytes();
    let t = Tensor::zeros(g, &[1000], "acct").unwrap();
    assert!(g.allocated_bytes() >= before + 4000);
    assert!(g.peak_bytes() >= before + 4000);
    drop(t);
}

#[test]
fn recorder_profile_times_every_dispatch() {
    let g = gpu();
    let x = Tensor::from_f32(g, &[1000], &uniform(1000, -1., 1., 7), "x").unwrap();
    let y = Tensor::zeros(g, &[1000], "y").unwrap();
    let mut s = Step::new("prof");
    Activation::Relu.forward(g, &mut s, &x, &y).unwrap();
    Activation::Tanh.forward(g, &mut s, &x, &y).unwrap();
    let t = g.profile(&s).unwrap();
    assert_eq!(t.iter().map(|d| d.op).collect::<Vec<_>>(), ["relu", "tanh"]);
    assert!(t.iter().all(|d| d.seconds >= 0.0 && d.seconds < 10.0));
}

/// A lost device (here destroyed; on a user's machine a driver reset or a
/// GPU timeout) ends the next GPU call with one error saying so and what
/// was running: not a hang, not a bare map failure. Its own device, so the
/// shared test device lives on.
#[test]
fn a_lost_device_is_one_clear_error() {
    let g = vae_vs_gan::Gpu::with_options(vae_vs_gan::GpuOptions::default()).unwrap();
    let x = Tensor::from_f32(&g, &[4], &[1.0, 2.0, 3.0, 4.0], "x").unwrap();
    let y = Tensor::zeros(&g, &[4], "y").unwrap();
    let mut s = Step::new("after the loss");
    Activation::Relu.forward(&g, &mut s, &x, &y).unwrap();
    assert_eq!(x.read_f32(&g).unwrap(), [1.0, 2.0, 3.0, 4.0]);
    g.device.destroy();
    let e = x.read_f32(&g).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::DeviceLost { .. }), "{msg}");
    assert!(
        msg.contains("reading back x") && msg.contains("restart"),
        "{msg}"
    );
    let e = g.run(&[&s]).unwrap_err().to_string();
    assert!(
        e.contains("device was lost") && e.contains("after the loss"),
        "{e}"
    );
}

/// A step the device rejects (here one reading a buffer destroyed after
/// recording, as no op does: the test breaks it on purpose) ends the run
/// with one error naming the step and wgpu's reason; the device, and the
/// next step, go on.
#[test]
fn a_rejected_step_is_one_error_naming_the_step() {
    let g = vae_vs_gan::Gpu::with_options(vae_vs_gan::GpuOptions::default()).unwrap();
    let x = Tensor::from_f32(&g, &[4], &[1.0, -2.0, 3.0, -4.0], "x").unwrap();
    let y = Tensor::zeros(&g, &[4], "y").unwrap();
    let dead = Tensor::zeros(&g, &[4], "destroyed input").unwrap();
    let mut bad = Step::new("reads a destroyed buffer");
    Activation::Relu.forward(&g, &mut bad, &dead, &y).unwrap();
    dead.buffer().destroy();
    let e = g.run(&[&bad]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Gpu { .. }), "{msg}");
    assert!(
        msg.contains("reads a destroyed buffer") && msg.contains("destroyed"),
        "{msg}"
    );
    let mut ok = Step::new("fine");
    Activation::Relu.forward(&g, &mut ok, &x, &y).unwrap();
    g.run(&[&ok]).unwrap();
    assert_eq!(y.read_f32(&g).unwrap(), [1.0, 0.0, 3.0, 0.0]);
}

/// A kernel that does not compile is recorded (its pipeline is built on the
/// pool, off the recording thread) and refused when the step is made
/// ready: one error naming the kernel, from `Step::ready` and from the
/// submit alike, and nothing submitted.
#[test]
fn a_kernel_that_does_not_compile_is_one_error_naming_it() {
    use vae_vs_gan::gpu::{Access, Kernel};
    let g = gpu();
    let broken = Kernel {
        key: "deliberately-broken".into(),
        source: std::borrow::Cow::Borrowed(
            "@group(0) @binding(0) var<uniform> p: vec4<u32>;\n\
             @group(0) @binding(1) var<storage, read_write> y: array<f32>;\n\
             @compute @workgroup_size(1) fn main() { y[0] = undefined_name; }",
        ),
        entry: "main",
        access: vec![Access::ReadWrite],
        trusted: false,
        subgroups: false,
    };
    let y = Tensor::zeros(g, &[4], "y").unwrap();
    let mut s = Step::new("has a broken kernel");
    s.dispatch(g, "broken", &broken, &[0], &[&y], [1, 1, 1])
        .expect("recording only asks for the pipeline");
    let e = s.ready().unwrap_err().to_string();
    assert!(e.contains("compiling deliberately-broken::main"), "{e}");
    let e = g.run(&[&s]).unwrap_err().to_string();
    assert!(e.contains("compiling deliberately-broken::main"), "{e}");
    g.check_errors("after the refused step")
        .expect("no error left behind for the next step");
}

/// `Step::stats` counts what was recorded: per dispatch one bind group, its
/// parameter block (a multiple of 16 bytes) and every storage binding;
/// `extend` adds the counts.
#[test]
fn recorder_counts_dispatches_bind_groups_and_bytes_bound() {
    let g = gpu();
    let x = Tensor::from_f32(g, &[1000], &uniform(1000, -1., 1., 3), "x").unwrap();
    let y = Tensor::zeros(g, &[1000], "y").unwrap();
    let mut s = Step::new("counted");
    assert_eq!(s.stats(), Default::default());
    Activation::Relu.forward(g, &mut s, &x, &y).unwrap();
    Activation::Tanh.forward(g, &mut s, &x, &y).unwrap();
    let st = s.stats();
    assert_eq!((st.dispatches, st.bind_groups), (2, 2));
    assert_eq!(st.dispatches, s.len());
    let storage = 2 * (vae_vs_gan::gpu::binding_bytes(&x) + vae_vs_gan::gpu::binding_bytes(&y));
    assert_eq!(storage, 16_000);
    let params = st.bytes_bound - storage;
    assert!(
        params >= 32 && params.is_multiple_of(16) && params <= 2 * 256,
        "{st:?}: parameter blocks {params} bytes"
    );
    let mut more = Step::new("more");
    Activation::Sigmoid.forward(g, &mut more, &x, &y).unwrap();
    let one = more.stats();
    s.extend(more);
    assert_eq!(s.stats().dispatches, 3);
    assert_eq!(s.stats().bind_groups, 3);
    assert_eq!(s.stats().bytes_bound, st.bytes_bound + one.bytes_bound);
    let line = s.stats().to_string();
    assert!(line.starts_with("3 dispatches, 3 bind groups"), "{line}");
}

/// A step keeps every tensor it binds: a scratch tensor whose last handle
/// the recorder dropped is still counted in the engine's memory while the
/// step lives (the step can still run and write it), and is freed with
/// the step. Its own device: the shared one's counter moves with other
/// tests.
#[test]
fn a_step_keeps_what_it_binds_and_frees_it_with_itself() {
    let g = vae_vs_gan::Gpu::with_options(vae_vs_gan::GpuOptions::default()).unwrap();
    let n = 1 << 16;
    let base = g.allocated_bytes();
    let x = Tensor::from_f32(&g, &[n], &uniform(n, -1., 1., 5), "x").unwrap();
    let with_x = g.allocated_bytes();
    assert_eq!(with_x, base + 4 * n as u64);
    let step = {
        let scratch = Tensor::zeros(&g, &[n], "scratch").unwrap();
        let mut s = Step::new("with scratch");
        Activation::Relu.forward(&g, &mut s, &x, &scratch).unwrap();
        s
    }; // the recorder's last handle on the scratch is gone here
    assert_eq!(
        g.allocated_bytes(),
        with_x + 4 * n as u64,
        "the dropped scratch still counts while the step lives"
    );
    g.run(&[&step]).unwrap();
    drop(step);
    assert_eq!(g.allocated_bytes(), with_x, "freed with the step");
    drop(x);
    assert_eq!(g.allocated_bytes(), base);
}

/// Two submits can be in flight on one step state (one readback buffer
/// each); a third is refused until one is read, and each read sees the
/// counter as its own submit left it.
#[test]
fn step_state_keeps_two_submits_in_flight_and_refuses_a_third() {
    let g = gpu();
    let x = Tensor::from_f32(g, &[1], &[0.5], "x").unwrap();
    let loss = Tensor::zeros(g, &[1], "loss").unwrap();
    let st = StepState::new(g, 2, 8, 5).unwrap();
    let step = record_step(&st, &x, &loss);
    let a = st.submit(g, &[&step, &step]).unwrap();
    let b = st.submit(g, &[&step]).unwrap();
    let e = st.submit(g, &[&step]).err().expect("a third is refused");
    assert!(e.to_string().contains("in flight"), "{e}");
    let sa = a.wait(g, "first").unwrap();
    assert_eq!(sa.steps_done, 7, "the counter as the first submit left it");
    assert_eq!(sa.losses(5).unwrap().len(), 2);
    let c = st.submit(g, &[&step]).unwrap();
    assert_eq!(b.wait(g, "second").unwrap().steps_done, 8);
    drop(c); // given up: its steps still run, its readback is free again
    assert_eq!(st.steps_done(g).unwrap(), 9);
    let rows = st.read_losses(g, 5).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.step).collect::<Vec<_>>(),
        [5, 6, 7, 8]
    );
}
