//! Max pools (global and 2x2 stride 2): GPU vs CPU reference, forward
//! (values and argmax) and backward, on odd shapes; tie-breaking.
//!
//! Tolerance: none. A max copies one input, the argmax is an integer and
//! the backward copies `dy` or writes 0, with no arithmetic: GPU and CPU
//! must agree bit for bit (atol 0, rtol 0).

use super::*;
use vae_vs_gan::ops::pool::{
    global_max_pool_backward, global_max_pool_cpu, global_max_pool_forward, max_pool2x2_backward,
    max_pool2x2_cpu, max_pool2x2_forward, max_pool2x2_out_shape, max_pool_backward_cpu,
};
use vae_vs_gan::DType;

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("pool global forward", global_forward(g).await);
    r.record("pool 2x2 forward", max2x2_forward(g).await);
    r.record("pool ties pick first", ties_pick_first(g).await);
    r.record("pool global backward", global_backward(g).await);
    r.record("pool 2x2 backward", max2x2_backward(g).await);
}

const SHAPES: [[usize; 4]; 4] = [[3, 13, 13, 5], [2, 14, 14, 33], [1, 2, 3, 1], [2, 7, 5, 3]];

/// A u32 tensor of `shape`, poisoned: an argmax the op must overwrite.
pub fn u32_tensor(g: &Gpu, shape: &[usize], label: &str) -> Result<Tensor, Failure> {
    let t = Tensor::new(g, shape, DType::U32, label)?;
    t.poison(g);
    Ok(t)
}

async fn gmp_forward(g: &Gpu, d: [usize; 4], x: &[f32]) -> Result<(Vec<f32>, Vec<u32>), Failure> {
    let xt = tensor(g, &d, x, "x")?;
    let yt = poisoned(g, &[d[0], d[3]], "y")?;
    let at = u32_tensor(g, &[d[0], d[3]], "argmax")?;
    let mut s = Step::new("gmp");
    global_max_pool_forward(g, &mut s, &xt, &yt, &at)?;
    run(g, &[&s])?;
    Ok((read(g, &yt).await?, at.read_u32_async(g).await?))
}

async fn mp_forward(g: &Gpu, d: [usize; 4], x: &[f32]) -> Result<(Vec<f32>, Vec<u32>), Failure> {
    let out = max_pool2x2_out_shape(&d)?;
    let xt = tensor(g, &d, x, "x")?;
    let yt = poisoned(g, &out, "y")?;
    let at = u32_tensor(g, &out, "argmax")?;
    let mut s = Step::new("mp");
    max_pool2x2_forward(g, &mut s, &xt, &yt, &at)?;
    run(g, &[&s])?;
    Ok((read(g, &yt).await?, at.read_u32_async(g).await?))
}

pub async fn global_forward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, d) in SHAPES.iter().enumerate() {
        let x = uniform(d.iter().product(), -3.0, 3.0, 100 + k as u64);
        let (y, arg) = gmp_forward(g, *d, &x).await?;
        let (wy, warg) = global_max_pool_cpu(&x, *d);
        worst.close(&format!("global_max_pool {d:?} y"), &y, &wy, 0.0, 0.0)?;
        worst.equal(&format!("global_max_pool {d:?} argmax"), &arg, &warg)?;
    }
    worst.done()
}

pub async fn max2x2_forward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, d) in SHAPES.iter().enumerate() {
        let x = uniform(d.iter().product(), -3.0, 3.0, 200 + k as u64);
        let (y, arg) = mp_forward(g, *d, &x).await?;
        let (wy, warg) = max_pool2x2_cpu(&x, *d);
        worst.close(&format!("max_pool2x2 {d:?} y"), &y, &wy, 0.0, 0.0)?;
        worst.equal(&format!("max_pool2x2 {d:?} argmax"), &arg, &warg)?;
    }
    worst.done()
}

/// Ties go to the first element in row-major order, on GPU and CPU.
pub async fn ties_pick_first(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    // Quantised values: many ties inside every window.
    let d = [3, 13, 13, 5];
    let n: usize = d.iter().product();
    let x: Vec<f32> = uniform(n, 0.0, 3.0, 300)
        .iter()
        .map(|v| v.floor())
        .collect();
    let (y, arg) = gmp_forward(g, d, &x).await?;
    let (wy, warg) = global_max_pool_cpu(&x, d);
    worst.equal("global_max_pool ties y", &y, &wy)?;
    worst.equal("global_max_pool ties argmax", &arg, &warg)?;
    let (y, arg) = mp_forward(g, d, &x).await?;
    let (wy, warg2) = max_pool2x2_cpu(&x, d);
    worst.equal("max_pool2x2 ties y", &y, &wy)?;
    worst.equal("max_pool2x2 ties argmax", &arg, &warg2)?;

    // All equal: the argmax is the first element of each window / image.
    let x = vec![1.5f32; n];
    let (_, arg) = gmp_forward(g, d, &x).await?;
    let want: Vec<u32> = (0..3)
        .flat_map(|b| (0..5).map(move |c| (b * 13 * 13 * 5 + c) as u32))
        .collect();
    worst.equal("global_max_pool ties, all equal", &arg, &want)?;
    let (_, arg) = mp_forward(g, d, &x).await?;
    let want: Vec<u32> = (0..arg.len())
        .map(|o| {
            let c = o % 5;
            let ow = (o / 5) % 6;
            let oh = (o / 30) % 6;
            let b = o / 180;
            (((b * 13 + 2 * oh) * 13 + 2 * ow) * 5 + c) as u32
        })
        .collect();
    worst.equal("max_pool2x2 ties, all equal", &arg, &want)?;
    worst.done()
}

pub async fn global_backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, d) in SHAPES.iter().enumerate() {
        let n: usize = d.iter().product();
        let x = uniform(n, -3.0, 3.0, 400 + k as u64);
        let (_, arg) = global_max_pool_cpu(&x, *d);
        let dy = uniform(d[0] * d[3], -1.0, 1.0, 450 + k as u64);
        let at = Tensor::from_u32(g, &[d[0], d[3]], &arg, "argmax")?;
        let dyt = tensor(g, &[d[0], d[3]], &dy, "dy")?;
        let dxt = poisoned(g, d, "dx")?;
        let mut s = Step::new("gmp_bwd");
        global_max_pool_backward(g, &mut s, &at, &dyt, &dxt)?;
        run(g, &[&s])?;
        worst.close(
            &format!("global_max_pool_backward {d:?}"),
            &read(g, &dxt).await?,
            &max_pool_backward_cpu(&arg, &dy, n),
            0.0,
            0.0,
        )?;
    }
    worst.done()
}

pub async fn max2x2_backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, d) in SHAPES.iter().enumerate() {
        let n: usize = d.iter().product();
        let out = max_pool2x2_out_shape(d)?;
        let x = uniform(n, -3.0, 3.0, 500 + k as u64);
        let (_, arg) = max_pool2x2_cpu(&x, *d);
        let dy = uniform(out.iter().product(), -1.0, 1.0, 550 + k as u64);
        let at = Tensor::from_u32(g, &out, &arg, "argmax")?;
        let dyt = tensor(g, &out, &dy, "dy")?;
        let dxt = poisoned(g, d, "dx")?;
        let mut s = Step::new("mp_bwd");
        max_pool2x2_backward(g, &mut s, &at, &dyt, &dxt)?;
        run(g, &[&s])?;
        worst.close(
            &format!("max_pool2x2_backward {d:?}"),
            &read(g, &dxt).await?,
            &max_pool_backward_cpu(&arg, &dy, n),
            0.0,
            0.0,
        )?;
    }
    worst.done()
}
