//! The VAE end to end on the GPU: a few epochs of real MNIST images lower
//! the loss; several steps in one submit equal one submit each.

mod common;
use common::*;
use vae_vs_gan::data::{load, Dataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::train::GpuDataset;

fn tiny(seed: u64) -> VaeConfig {
    VaeConfig {
        latent: 2,
        batch: 8,
        adam: AdamConfig::keras(1e-3),
        seed,
        binarize: false,
    }
}

#[test]
fn vae_training_lowers_the_loss() {
    let g = gpu();
    let imgs = load(
        Dataset::Mnist,
        &Dataset::Mnist.default_dir(),
        Split::Train,
        Some(64),
    )
    .unwrap();
    let data = GpuDataset::upload(g, &imgs, "train").unwrap();
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
