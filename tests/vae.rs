//! The VAE end to end on the GPU: a few epochs of real MNIST images lower
//! the loss; several steps in one submit equal one submit each; the
//! importance-weighted bound agrees with the training loss's kernels and
//! tightens with k.

mod common;
use common::*;
use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::data::{load, Dataset, Split, PIXELS};
use vae_vs_gan::eval::iwae;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;

fn tiny(seed: u64) -> VaeConfig {
    VaeConfig {
        latent: 2,
        batch: 8,
        adam: AdamConfig::keras(1e-3),
        seed,
        binarize: false,
    }
}

/// The first 64 MNIST training images on the test device.
fn first_64_train_images() -> GpuDataset {
    let imgs = load(
        Dataset::Mnist,
        &Dataset::Mnist.default_dir(),
        Split::Train,
        Some(64),
    )
    .unwrap();
    GpuDataset::upload(gpu(), &imgs, "train").unwrap()
}

#[test]
fn vae_training_lowers_the_loss() {
    let g = gpu();
    let data = first_64_train_images();
    let vae = Vae::new(g, tiny(1)).unwrap();
    let steps = data.batches(8);
    let state = StepState::new(g, 2, steps, 0).unwrap();
    let ts = vae.train_step(g, &state, &data).unwrap();
    let before = vae.test_loss(g, &data, 32).unwrap();
    let mut done = 0;
    for epoch in 0..5 {
        data.shuffle(g, 1, epoch).unwrap();
        let batch: Vec<_> = std::iter::repeat_n(&ts.step, steps).collect();
        g.run(&batch).unwrap();
        let l = state.read_losses(g, done).unwrap();
        done += l.len() as u64;
        let mean: f32 = l.iter().map(|r| r.values[0] + r.values[1]).sum::<f32>() / l.len() as f32;
        eprintln!("epoch {epoch}: train loss {mean}");
    }
    let after = vae.test_loss(g, &data, 32).unwrap();
    eprintln!("loss before {before}, after {after}");
    assert!(after < before - 50.0, "loss {before} -> {after}");
}

fn test_pixels(n: usize) -> Vec<f32> {
    let imgs = load(
        Dataset::Mnist,
        &Dataset::Mnist.default_dir(),
        Split::Test,
        Some(n),
    )
    .unwrap();
    imgs.pixels.iter().map(|&b| b as f32 / 255.0).collect()
}

/// With k = 1 the bound's `log p(x|z)` must be the reconstruction term the
/// training loss computes (GPU BCE kernel, via `loss_on`) at the same noise:
/// `nll + log_ratio = recon`. Tolerance 1e-5 relative: two f32 sums of 784
/// terms of size ~1 (recon is ~550 nats), well above their rounding (~1e-6).
#[test]
fn vae_iwae_k1_matches_the_training_reconstruction() {
    let g = gpu();
    let vae = Vae::new(g, tiny(3)).unwrap();
    let x = test_pixels(3);
    let (mu, lv) = vae.encode(g, &x).unwrap();
    for i in 0..3 {
        let xi = &x[i * PIXELS..(i + 1) * PIXELS];
        let nll = vae.iwae_nll(g, xi, 1, 11, |_| {}).unwrap()[0];
        let d = iwae::draw(&mu[2 * i..2 * i + 2], &lv[2 * i..2 * i + 2], 2, 1, 11).unwrap();
        let eps: Vec<f32> = vae_vs_gan::ops::rng::Philox::new(11, 7).normal_cpu(0, 2);
        let (recon, _) = vae.loss_on(g, xi, &eps).unwrap();
        let got = nll + d.log_ratio[0];
        assert!(
            (got - recon).abs() <= 1e-5 * recon.abs(),
            "image {i}: nll {nll} + ratio {} = {got}, recon {recon}",
            d.log_ratio[0]
        );
    }
}

/// A VAE trained for 10 epochs on 64 training images (80 steps of batch 8),
/// so that the decoder depends on z and the posterior is narrower than the
/// prior (an untrained one has nearly constant weights: no tightening).
fn trained_vae(seed: u64) -> Vae {
    let g = gpu();
    let data = first_64_train_images();
    let vae = Vae::new(g, tiny(seed)).unwrap();
    let state = StepState::new(g, 2, 8, 0).unwrap();
    let ts = vae.train_step(g, &state, &data).unwrap();
    for epoch in 0..10 {
        data.shuffle(g, seed, epoch).unwrap();
        g.run(&std::iter::repeat_n(&ts.step, 8).collect::<Vec<_>>())
            .unwrap();
    }
    vae
}

/// On 4 test images of a briefly trained VAE: the k = 1 bound averaged over 60
/// seeds equals the negative ELBO (analytic KL, `loss_on` averaged over the
/// same number of noise draws) within 4 standard errors, and k = 50 is
/// lower (tighter) than that mean by more than 4 standard errors.
#[test]
fn vae_iwae_is_the_elbo_at_k1_and_tightens_with_k() {
    let g = gpu();
    let vae = trained_vae(4);
    let x = test_pixels(4);
    let (mut k1, mut elbo) = (Vec::new(), Vec::new());
    for seed in 0..60u64 {
        let b = vae.iwae_nll(g, &x, 1, 1000 + seed, |_| {}).unwrap();
        k1.push(b.iter().sum::<f64>() / 4.0);
        let eps: Vec<f32> = vae_vs_gan::ops::rng::Philox::new(seed, 8).normal_cpu(0, 8);
        let (r, kl) = vae.loss_on(g, &x, &eps).unwrap();
        elbo.push(r + kl);
    }
    let stat = |v: &[f64]| {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0);
        (m, (var / n).sqrt())
    };
    let ((m1, se1), (me, see)) = (stat(&k1), stat(&elbo));
    let se = (se1 * se1 + see * see).sqrt();
    assert!(
        (m1 - me).abs() < 4.0 * se,
        "k=1 {m1} +- {se1} vs -ELBO {me} +- {see}"
    );
    let mut done = Vec::new();
    let k50 = vae.iwae_nll(g, &x, 50, 7, |n| done.push(n)).unwrap();
    assert_eq!(done.last(), Some(&4), "progress reports every image");
    let m50 = k50.iter().sum::<f64>() / 4.0;
    eprintln!("k=1 {m1:.3} +- {se1:.3}, -ELBO {me:.3} +- {see:.3}, k=50 {m50:.3}");
    assert!(
        m50 < m1 - 4.0 * se1,
        "k=50 {m50} not below k=1 {m1} +- {se1}"
    );
}
