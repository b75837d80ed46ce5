//! The VAE's recorded training and eval steps and the activations they run
//! on: encoder, reparameterisation, decoder, both loss terms and the
//! backward in reverse, in the order [`Vae::train_step`] records them.

use crate::data::GpuDataset;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, StepLoss, StepState, Tensor};
use crate::models::{flat, record_adam};
use crate::ops::bce::{bce_rows, BceReduction};
use crate::ops::gather::{gather_pixels, PixelMap};
use crate::ops::gemm::Epilogue;
use crate::ops::kl::kl_rows;
use crate::ops::kl_mc::kl_mc_rows;
use crate::ops::reparam::{reparam_backward, reparam_forward};
use crate::ops::rng::Philox;
use crate::optim::adam::Adam;

use super::*;

/// Encoder activations for one batch size (each conv's ReLU is fused into
/// it: only the ReLU outputs are kept).
pub(super) struct EncActs {
    pub(super) x: Tensor,
    pub(super) a1: Tensor,
    pub(super) a2: Tensor,
    /// `[B, 2L]`: mean | log-variance.
    pub(super) h: Tensor,
}

/// Decoder activations for one batch size.
pub(super) struct DecActs {
    pub(super) z: Tensor,
    pub(super) d0a: Tensor,
    pub(super) d1a: Tensor,
    pub(super) d2a: Tensor,
    pub(super) logits: Tensor,
}

impl EncActs {
    pub(super) fn new(gpu: &Gpu, b: usize, l: usize) -> Result<EncActs> {
        Ok(EncActs {
            x: Tensor::zeros(gpu, &[b, 28, 28, 1], "x")?,
            a1: Tensor::zeros(gpu, &[b, 13, 13, 32], "enc1 relu")?,
            a2: Tensor::zeros(gpu, &[b, 6, 6, 64], "enc2 relu")?,
            h: Tensor::zeros(gpu, &[b, 2 * l], "mean|logvar")?,
        })
    }
}

impl DecActs {
    pub(super) fn new(gpu: &Gpu, b: usize, l: usize) -> Result<DecActs> {
        Ok(DecActs {
            z: Tensor::zeros(gpu, &[b, l], "z")?,
            d0a: Tensor::zeros(gpu, &[b, 7, 7, 32], "dec_fc relu")?,
            d1a: Tensor::zeros(gpu, &[b, 14, 14, 64], "dec1 relu")?,
            d2a: Tensor::zeros(gpu, &[b, 28, 28, 32], "dec2 relu")?,
            logits: Tensor::zeros(gpu, &[b, 28, 28, 1], "logits")?,
        })
    }
}

/// Everything the ELBO's forward needs for one batch size.
pub(super) struct Elbo {
    pub(super) enc: EncActs,
    pub(super) dec: DecActs,
    pub(super) eps: Tensor,
    pub(super) recon_rows: Tensor,
    pub(super) kl_rows: Tensor,
}

impl Elbo {
    pub(super) fn new(gpu: &Gpu, b: usize, l: usize) -> Result<Elbo> {
        Ok(Elbo {
            enc: EncActs::new(gpu, b, l)?,
            dec: DecActs::new(gpu, b, l)?,
            eps: Tensor::zeros(gpu, &[b, l], "eps")?,
            recon_rows: Tensor::zeros(gpu, &[b], "recon rows")?,
            kl_rows: Tensor::zeros(gpu, &[b], "kl rows")?,
        })
    }
}

/// A recorded training step, with the tensors it reads and writes.
pub struct TrainStep {
    pub step: Step,
    /// Mean | log-variance of the last batch, `[B, 2L]`.
    pub h: Tensor,
    /// The ReLU outputs of the last batch in forward order (encoder conv
    /// 1, 2, decoder dense, transposed conv 1, 2): where each unit's
    /// derivative is 1 (output > 0), which a whole-step test hands its
    /// reference for the units f32 cannot place (`vae_cpu::ReluSides`).
    pub relu_outputs: Vec<(&'static str, Tensor)>,
}

/// A recorded evaluation step (test-set ELBO), one batch per run.
pub struct EvalStep {
    pub step: Step,
    pub batch: usize,
}

impl Vae {
    pub(super) fn pixel_map(&self) -> PixelMap {
        PixelMap {
            binarize: self.config.options.binarize,
            ..PixelMap::UNIT
        }
    }

    pub(super) fn record_encode(&self, gpu: &Gpu, s: &mut Step, a: &EncActs) -> Result<()> {
        self.enc1.forward_fused(gpu, s, &a.x, &a.a1, RELU_EPI)?;
        self.enc2.forward_fused(gpu, s, &a.a1, &a.a2, RELU_EPI)?;
        self.enc_fc.forward(gpu, s, &flat(&a.a2)?, &a.h)
    }

    pub(super) fn record_decode(&self, gpu: &Gpu, s: &mut Step, d: &DecActs) -> Result<()> {
        self.dec_fc
            .forward_fused(gpu, s, &d.z, &flat(&d.d0a)?, RELU_EPI)?;
        self.dec1.forward_fused(gpu, s, &d.d0a, &d.d1a, RELU_EPI)?;
        self.dec2.forward_fused(gpu, s, &d.d1a, &d.d2a, RELU_EPI)?;
        self.dec3.forward(gpu, s, &d.d2a, &d.logits)
    }

    /// Record the forward half shared by training and evaluation: gather
    /// the batch the counter picks, encode, sample z (RNG `stream`), decode,
    /// and the reconstruction loss's rows (with its gradient into `dlogits`
    /// when given), returned for the step's end kernel (ring slot
    /// [`SLOT_RECON`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_forward<'e>(
        &self,
        gpu: &Gpu,
        st: &mut Step,
        state: &StepState,
        data: &GpuDataset,
        e: &'e Elbo,
        stream: u32,
        dlogits: Option<&Tensor>,
    ) -> Result<StepLoss<'e>> {
        let (enc, dec) = (&e.enc, &e.dec);
        gather_pixels(
            gpu,
            st,
            &state.counters,
            &data.perm,
            &data.images,
            &enc.x,
            self.pixel_map(),
        )?;
        self.record_encode(gpu, st, enc)?;
        let rng = Philox::new(self.config.seed, stream);
        reparam_forward(gpu, st, rng, &state.counters, &enc.h, &e.eps, &dec.z)?;
        self.record_decode(gpu, st, dec)?;
        let dlogits = dlogits.map(flat).transpose()?;
        let (logits, x) = (flat(&dec.logits)?, flat(&enc.x)?);
        let scale = bce_rows(
            gpu,
            st,
            &logits,
            &x,
            &e.recon_rows,
            dlogits.as_ref(),
            BceReduction::SumPerSampleMean,
            1.0,
        )?;
        Ok(StepLoss {
            slot: SLOT_RECON,
            rows: &e.recon_rows,
            scale,
        })
    }

    /// Record the KL term of the configured estimator: its rows into
    /// `e.kl_rows` and, when `dh` is given, its gradient added into `dh`
    /// (where `reparam_backward` wrote the decoder's), one dispatch either
    /// way; returns its loss row sums for the step's end kernel (ring slot
    /// [`SLOT_KL`]).
    pub(super) fn record_kl<'e>(
        &self,
        gpu: &Gpu,
        st: &mut Step,
        e: &'e Elbo,
        dh: Option<&Tensor>,
    ) -> Result<StepLoss<'e>> {
        let acc = dh.is_some();
        let scale = match self.config.options.kl {
            KlEstimator::Analytic => kl_rows(gpu, st, &e.enc.h, &e.kl_rows, dh, acc, 1.0)?,
            KlEstimator::Mc => {
                let (h, z) = (&e.enc.h, &e.dec.z);
                kl_mc_rows(gpu, st, h, &e.eps, z, &e.kl_rows, dh, acc, 1.0)?
            }
        };
        Ok(StepLoss {
            slot: SLOT_KL,
            rows: &e.kl_rows,
            scale,
        })
    }

    /// Record one training step on `data` (gather the batch the step counter
    /// picks, forward, ELBO, backward, Adam, advance): losses go to ring
    /// slots [`SLOT_RECON`] and [`SLOT_KL`].
    pub fn train_step(&self, gpu: &Gpu, state: &StepState, data: &GpuDataset) -> Result<TrainStep> {
        let (b, l) = (self.config.batch, self.config.latent);
        if data.batches(b) == 0 {
            return Err(Error::invalid(
                "vae",
                format!(
                    "batch size {b} is larger than the {} training images",
                    data.len
                ),
            ));
        }
        let e = Elbo::new(gpu, b, l)?;
        let (enc, dec) = (&e.enc, &e.dec);
        let g = |shape: &[usize], n: &str| Tensor::zeros(gpu, shape, n);
        // gradients at each layer's pre-activation output (the ReLU's
        // derivative is applied by the kernel that writes them)
        let dlogits = g(&[b, 28, 28, 1], "d logits")?;
        let dd2 = g(&[b, 28, 28, 32], "d dec2")?;
        let dd1 = g(&[b, 14, 14, 64], "d dec1")?;
        let dd0 = g(&[b, 7, 7, 32], "d dec_fc")?;
        let dz = g(&[b, l], "d z")?;
        let dh = g(&[b, 2 * l], "d mean|logvar")?;
        let dh2 = g(&[b, 6, 6, 64], "d enc2")?;
        let dh1 = g(&[b, 13, 13, 32], "d enc1")?;

        let mut s = Step::new("vae train");
        let st = &mut s;
        let recon = self.record_forward(gpu, st, state, data, &e, 1, Some(&dlogits))?;
        // Backward through the decoder.
        self.dec3.backward(
            gpu,
            st,
            &dec.d2a,
            &dlogits,
            Some((&dd2, Epilogue::dact(RELU, &dec.d2a))),
        )?;
        self.dec2.backward(
            gpu,
            st,
            &dec.d1a,
            &dd2,
            Some((&dd1, Epilogue::dact(RELU, &dec.d1a))),
        )?;
        self.dec1.backward(
            gpu,
            st,
            &dec.d0a,
            &dd1,
            Some((&dd0, Epilogue::dact(RELU, &dec.d0a))),
        )?;
        self.dec_fc
            .backward(gpu, st, &dec.z, &flat(&dd0)?, Some((&dz, Epilogue::NONE)))?;
        // Through the sampling, plus the KL term's own gradient.
        reparam_backward(gpu, st, &enc.h, &e.eps, &dz, &dh)?;
        let kl = self.record_kl(gpu, st, &e, Some(&dh))?;
        // Backward through the encoder.
        let a2 = flat(&enc.a2)?;
        self.enc_fc.backward(
            gpu,
            st,
            &a2,
            &dh,
            Some((&flat(&dh2)?, Epilogue::dact(RELU, &a2))),
        )?;
        self.enc2.backward(
            gpu,
            st,
            &enc.a1,
            &dh2,
            Some((&dh1, Epilogue::dact(RELU, &enc.a1))),
        )?;
        self.enc1.backward(gpu, st, &enc.x, &dh1, None)?;
        // Optimizer (one dispatch over the arena), then the step counter.
        record_adam(gpu, st, state, &Adam::new(self.config.adam)?, &self.arena)?;
        state.record_end(gpu, st, &[recon, kl])?;
        let relu_outputs = vec![
            ("enc1", e.enc.a1.clone()),
            ("enc2", e.enc.a2.clone()),
            ("dec_fc", e.dec.d0a.clone()),
            ("dec1", e.dec.d1a.clone()),
            ("dec2", e.dec.d2a.clone()),
        ];
        let h = e.enc.h.clone();
        Ok(TrainStep {
            step: s,
            h,
            relu_outputs,
        })
    }

    /// Record one evaluation step: the negative ELBO (single-sample, as in
    /// training) of the batch the counter picks from `data` (in order), into
    /// ring slots [`SLOT_RECON`] and [`SLOT_KL`]. Run it once per batch.
    pub fn eval_step(
        &self,
        gpu: &Gpu,
        state: &StepState,
        data: &GpuDataset,
        batch: usize,
    ) -> Result<EvalStep> {
        let e = Elbo::new(gpu, batch, self.config.latent)?;
        let mut s = Step::new("vae eval");
        let st = &mut s;
        let recon = self.record_forward(gpu, st, state, data, &e, 2, None)?;
        let kl = self.record_kl(gpu, st, &e, None)?;
        state.record_end(gpu, st, &[recon, kl])?;
        Ok(EvalStep { step: s, batch })
    }

    /// Mean negative ELBO (nats per image) over the full batches of `data`,
    /// in one submit. The order of `data` is left as it is.
    pub fn test_loss(&self, gpu: &Gpu, data: &GpuDataset, batch: usize) -> Result<f64> {
        pollster::block_on(self.test_loss_async(gpu, data, batch))
    }

    /// [`Vae::test_loss`] as a future, which a browser awaits.
    pub async fn test_loss_async(&self, gpu: &Gpu, data: &GpuDataset, batch: usize) -> Result<f64> {
        let batch = batch.min(data.len);
        let n = data.batches(batch);
        let state = StepState::new(gpu, 2, n, 0)?;
        data.perm
            .write_u32(gpu, &(0..data.len as u32).collect::<Vec<_>>())?;
        let e = self.eval_step(gpu, &state, data, batch)?;
        let steps: Vec<&Step> = std::iter::repeat_n(&e.step, n).collect();
        let rows = state
            .submit(gpu, &steps)?
            .wait_async(gpu, "the VAE's test loss")
            .await?
            .losses(0)?;
        Ok(rows
            .iter()
            .map(|r| r.values.iter().map(|&v| v as f64).sum::<f64>())
            .sum::<f64>()
            / n as f64)
    }
}
