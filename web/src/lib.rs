//! The browser crate: the lab (web/lab.html, [`lab`]: both models trained
//! side by side on the page's WebGPU), and the engine's tests in a browser: the portable core on the page's WebGPU,
//! the shared checks of tests/checks (each kernel against its CPU reference,
//! the whole steps against their f64 references, tiny training runs), reported
//! line by line to the page (`scripts/web/test.sh` builds, serves and runs
//! it in headless Chromium).
//!
//! Only the `_async` GPU calls are used: a browser cannot block on its GPU.

use std::path::Path;

use vae_vs_gan::data::mnist::images_from_bytes;
use vae_vs_gan::{Gpu, GpuOptions};
use wasm_bindgen::prelude::*;

thread_local! {
    /// The page's `report(line)` function.
    static REPORT: std::cell::RefCell<Option<js_sys::Function>> = const { std::cell::RefCell::new(None) };
}

/// One line to the page.
fn report_line(line: &str) {
    REPORT.with(|r| {
        if let Some(f) = r.borrow().as_ref() {
            let _ = f.call1(&JsValue::NULL, &JsValue::from_str(line));
        }
    });
}

#[path = "../../tests/checks/mod.rs"]
mod checks;
pub mod lab;

use checks::training::{images_per_second, Tiny, TIMED_STEPS};
use checks::Report;

/// Run every test, calling `report(line)` for each line of output; returns
/// the number of failures. The last line is `N passed, M failed`.
/// `images` and `labels` are the bytes of MNIST's training files
/// (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`): the whole
/// steps run on their first 64 images, as natively. `same_driver` and
/// `other_driver` are the tiny runs' losses natively (the JSON of
/// examples/tiny_losses.rs) on the driver under this browser's WebGPU
/// (SwiftShader) and on another (lavapipe), which the browser's own runs
/// are compared with.
#[wasm_bindgen]
pub async fn run_tests(
    report: js_sys::Function,
    images: Vec<u8>,
    labels: Vec<u8>,
    same_driver: String,
    other_driver: String,
) -> u32 {
    REPORT.with(|r| *r.borrow_mut() = Some(report.clone()));
    // A panic aborts the module (panic = "abort"): say why first.
    std::panic::set_hook(Box::new(|info| {
        report_line(&format!("FAILED panic: {info}"))
    }));
    let mut line = |l: &str| report_line(l);
    let mut r = Report::new(&mut line);
    let gpu = match Gpu::open_async(GpuOptions::default()).await {
        Ok(g) => g,
        Err(e) => {
            r.record("open a device", Err(e.into()));
            return finish(r);
        }
    };
    r.say(&format!(
        "adapter: {}; {}",
        gpu.describe(),
        gpu.describe_kernels()
    ));
    let mnist = images_from_bytes(
        &images,
        Path::new("train-images-idx3-ubyte.gz"),
        &labels,
        Path::new("train-labels-idx1-ubyte.gz"),
        Some(64),
    );
    checks::all(&gpu, &mut r).await;
    match mnist {
        Ok(mnist) => {
            checks::gather::all_on(&gpu, &mnist, &mut r).await;
            checks::vae_step::all(&gpu, &mnist, &mut r).await;
            checks::gan_step::all(&gpu, &mnist, &mut r).await;
        }
        Err(e) => r.record("read MNIST for the checks on real images", Err(e.into())),
    }
    let natives = [
        ("on the same driver", same_driver, true),
        ("on another driver", other_driver, false),
    ];
    checks::training::all(&gpu, &natives, &mut r).await;
    finish(r)
}

/// How long a visitor waits for training: from page load (`now()`, the
/// page's `performance.now()`, counts from navigation start) through the
/// device, then each tiny model's first step (its pipelines built, its
/// data uploaded, one step run and its losses read back), on a fresh
/// device of this page; then each model's warm training speed. Lines to
/// `report`; an error is a FAILED line, and `false`.
#[wasm_bindgen]
pub async fn first_steps(report: js_sys::Function, now: js_sys::Function) -> bool {
    let now = || {
        now.call0(&JsValue::NULL)
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN)
    };
    let say = |l: String| {
        let _ = report.call1(&JsValue::NULL, &JsValue::from_str(&l));
    };
    let t_module = now();
    let gpu = match Gpu::open_async(GpuOptions::default()).await {
        Ok(g) => g,
        Err(e) => {
            say(format!("FAILED first step: no device: {e}"));
            return false;
        }
    };
    let t_device = now();
    let mut line = format!(
        "first steps (ms since page load): module ready {t_module:.0}, device {t_device:.0}"
    );
    for model in [Tiny::Vae, Tiny::Gan] {
        if let Err(e) = checks::training::losses(&gpu, model, 1).await {
            say(format!("FAILED first step of the {}: {e}", model.name()));
            return false;
        }
        line += &format!(", {} step done {:.0}", model.name(), now());
    }
    say(line);
    // Then warm: each model's training speed.
    let seconds = || now() / 1e3;
    for model in [Tiny::Vae, Tiny::Gan] {
        match images_per_second(&gpu, model, &seconds).await {
            Ok(speed) => say(format!(
                "{}: tiny {} {speed:.1} images/s (batch 8, {TIMED_STEPS} warm steps)",
                gpu.describe(),
                model.name()
            )),
            Err(e) => {
                say(format!("FAILED timing the tiny {}: {e}", model.name()));
                return false;
            }
        }
    }
    true
}

/// The last line, `N passed, M failed`; the number of failures.
fn finish(mut r: Report<'_>) -> u32 {
    let (passed, failed) = (r.passed, r.failed);
    r.say(&format!("{passed} passed, {failed} failed"));
    failed
}
