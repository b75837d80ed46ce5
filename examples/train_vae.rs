//! Train the article's convolutional VAE on MNIST (or Fashion-MNIST) on the
//! GPU, with a progress bar, a log line per epoch in the article's form,
//! sample grids, metrics.json, loss curves, reconstructions, latent plots
//! and an atomic checkpoint after every epoch.
//!
//! `cargo run --release --example train_vae -- --preset smoke --out target/vae`
//!
//! `--kl mc` takes the article's KL term, the one-sample estimate
//! `log q(z|x) - log p(z)` at the sampled z, instead of the analytic KL
//! (`--kl analytic`, the default); it is recorded in the checkpoint and
//! `--resume` refuses the other.

use clap::Parser;
use vae_vs_gan::models::vae::VaeOptions;
use vae_vs_gan::train::cli::CommonArgs;
use vae_vs_gan::train::session::open_gpu;
use vae_vs_gan::train::vae_run::{train_vae, VaeRun};

#[derive(Parser, Debug)]
#[command(about = "Train the article's convolutional VAE on the GPU")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    options: VaeOptions,
}

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    vae_vs_gan::train::run::mark_process_start();
    vae_vs_gan::train::interrupt::install()?;
    let Args { common: a, options } = Args::parse();
    let out = a.out_dir("target/vae")?;
    let gpu = open_gpu(&a.device)?;
    let run = VaeRun {
        common: a.into_options(&gpu, out.clone())?,
        options,
    };
    train_vae(&gpu, &run)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
