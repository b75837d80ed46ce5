//! The comparison's pictures and sample files: sample grids side by side,
//! latent grids and scatter, loss curves, and the samples as IDX files.

use std::path::Path;

use crate::compare::measure::GRID;
use crate::data::{write_idx, Images, PIXELS};
use crate::error::Result;
use crate::report::{save_grid, scatter_by_class};
use crate::train::Metrics;

/// What a model leaves for the pictures (first seed only).
#[derive(Default)]
pub(crate) struct Pictures {
    pub vae_samples: Vec<f32>,
    pub vae_draws: Vec<f32>,
    pub gan_samples: Vec<f32>,
    pub vae_grid: Option<Vec<f32>>,
    pub gan_grid: Option<Vec<f32>>,
    pub vae_means: Option<Vec<f32>>,
    pub vae_metrics: Option<Metrics>,
    pub gan_metrics: Option<Metrics>,
}

/// Rounded to bytes, for the IDX sample files.
fn to_bytes(px: &[f32]) -> Vec<u8> {
    px.iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Sample grids side by side, latent grids and scatter, loss curves, and
/// the samples as IDX files (the first seed's).
pub(crate) fn write_pictures(out: &Path, p: &Pictures, test: &Images) -> Result<()> {
    const SPACER: f32 = 0.25;
    let tile = |set: &[f32], i: usize| -> Vec<f32> {
        set.get(i * PIXELS..(i + 1) * PIXELS)
            .map(|t| t.to_vec())
            .unwrap_or_else(|| vec![SPACER; PIXELS])
    };
    let mut side = Vec::new();
    for r in 0..10 {
        for (k, set) in [&p.vae_samples, &p.vae_draws, &p.gan_samples]
            .iter()
            .enumerate()
        {
            if k > 0 {
                side.extend(vec![SPACER; PIXELS]);
            }
            for c in 0..10 {
                side.extend(tile(set, r * 10 + c));
            }
        }
    }
    save_grid(&out.join("samples.png"), &side, 28, 10, 32, 0.0, 1.0)?;
    for (name, grid) in [("vae", &p.vae_grid), ("gan", &p.gan_grid)] {
        if let Some(g) = grid {
            save_grid(
                &out.join(format!("latent_grid_{name}.png")),
                g,
                28,
                GRID,
                GRID,
                0.0,
                1.0,
            )?;
        }
    }
    if let Some(m) = &p.vae_means {
        let pts: Vec<(f32, f32)> = m.chunks(2).map(|c| (c[0], c[1])).collect();
        scatter_by_class(
            &out.join("latent_scatter_vae.png"),
            "VAE: test images' latent means",
            &pts,
            &test.labels[..pts.len()],
        )?;
    }
    if let Some(m) = &p.vae_metrics {
        crate::train::vae_run::plot_losses(m, &out.join("loss_vae.png"))?;
    }
    if let Some(m) = &p.gan_metrics {
        crate::train::gan_run::plot_losses(m, &out.join("loss_gan.png"))?;
    }
    for (name, set) in [("vae", &p.vae_samples), ("gan", &p.gan_samples)] {
        write_idx(
            &out.join(format!("{name}-samples-idx3-ubyte")),
            &[set.len() / PIXELS, 28, 28],
            &to_bytes(set),
        )?;
    }
    Ok(())
}
