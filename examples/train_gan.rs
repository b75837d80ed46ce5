//! Train the article's DCGAN on MNIST (or Fashion-MNIST) on the GPU, with a
//! progress bar, a log line per epoch in the article's form, sample grids,
//! metrics.json, loss curves, the 20x20 latent grid for a 2-D latent, and an
//! atomic checkpoint after every epoch.
//!
//! `cargo run --release --example train_gan -- --preset smoke --out target/gan`

use clap::Parser;
use vae_vs_gan::models::gan::DHead;
use vae_vs_gan::train::cli::CommonArgs;
use vae_vs_gan::train::gan_run::{train_gan, GanRun};
use vae_vs_gan::train::session::open_gpu;

#[derive(Parser, Debug)]
#[command(about = "Train the article's DCGAN on the GPU")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// The discriminator's learning rate (overrides --lr for it).
    #[arg(long, allow_negative_numbers = true)]
    lr_d: Option<f32>,
    /// The discriminator's head: the article's global max pool, or flatten.
    #[arg(long, value_enum)]
    d_head: Option<DHead>,
}

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    vae_vs_gan::train::run::mark_process_start();
    vae_vs_gan::train::interrupt::install()?;
    let Args {
        common: a,
        lr_d,
        d_head,
    } = Args::parse();
    let out = a.out_dir("target/gan")?;
    let gpu = open_gpu(&a.device)?;
    let run = GanRun {
        common: a.into_options(&gpu, out.clone()),
        lr_d,
        head: d_head,
    };
    train_gan(&gpu, &run)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
