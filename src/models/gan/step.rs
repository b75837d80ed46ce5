//! The GAN's recorded training step and the activations it runs on: the
//! generator and discriminator forwards, the discriminator's backward, and
//! [`Gan::train_step`], which records them in the order they run (see the
//! module above for the step itself).

use crate::data::GpuDataset;
use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, Step, StepLoss, StepState, Tensor};
use crate::models::flat;
use crate::nn::{BatchNormLayer, Layer, WeightOp};
use crate::ops::activation::Activation;
use crate::ops::bce::LabelNoise;
use crate::ops::clamp::clamp_in_place;
use crate::ops::copy::copy_rows;
use crate::ops::gather::{gather_pixels_and_normals, BatchPick, PixelMap};
use crate::ops::gemm::{Dropout, Epilogue};
use crate::ops::pool::{global_max_pool_backward_fused, global_max_pool_forward};
use crate::ops::rng::{fill_normal, Philox};

use super::*;

/// Generator activations for one batch size: each layer's output, then its
/// batch norm's with the LeakyReLU fused in (`g0a` `[B, 7, 7, 256]`).
pub(super) struct GActs {
    pub(super) z: Tensor,
    /// `[B, 12544]` dense output.
    g0: Tensor,
    g0a: Tensor,
    g1: Tensor,
    g1a: Tensor,
    g2: Tensor,
    g2a: Tensor,
    /// tanh output `[B, 28, 28, 1]` (fused into the last layer's store).
    pub(super) img: Tensor,
}

impl GActs {
    pub(super) fn new(gpu: &Gpu, b: usize, l: usize) -> Result<GActs> {
        let (h, w, c) = G_HWC;
        Ok(GActs {
            z: Tensor::zeros(gpu, &[b, l], "z")?,
            g0: Tensor::zeros(gpu, &[b, G0], "gen fc")?,
            g0a: Tensor::zeros(gpu, &[b, h, w, c], "gen fc bn leaky")?,
            g1: Tensor::zeros(gpu, &[b, 7, 7, 128], "gen1")?,
            g1a: Tensor::zeros(gpu, &[b, 7, 7, 128], "gen1 bn leaky")?,
            g2: Tensor::zeros(gpu, &[b, 14, 14, 64], "gen2")?,
            g2a: Tensor::zeros(gpu, &[b, 14, 14, 64], "gen2 bn leaky")?,
            img: Tensor::zeros(gpu, &[b, 28, 28, 1], "fake images")?,
        })
    }
}

/// Discriminator activations for one batch size: each conv's output with
/// its LeakyReLU and (training) dropout fused in, and the dropout masks.
pub(super) struct DActs {
    x: Tensor,
    m1: Tensor,
    o1: Tensor,
    m2: Tensor,
    o2: Tensor,
    /// Head features `[B, F]` (the flatten head: a view of `o2`).
    feat: Tensor,
    /// Global max pool winners (max pool head only).
    argmax: Option<Tensor>,
    /// `[B, 1]`.
    pub(super) logits: Tensor,
}

impl DActs {
    /// Activations for the input `x` `[B, 28, 28, 1]`.
    pub(super) fn new(gpu: &Gpu, x: Tensor, head: DHead) -> Result<DActs> {
        let b = x.shape()[0];
        let s1 = [b, 14, 14, 64];
        let s2 = [b, D_HWC.0, D_HWC.1, D_HWC.2];
        let o2 = Tensor::zeros(gpu, &s2, "disc2 leaky dropout")?;
        let (feat, argmax) = match head {
            DHead::GlobalMaxPool => (
                Tensor::zeros(gpu, &[b, D_HWC.2], "disc pooled")?,
                Some(Tensor::new(gpu, &[b, D_HWC.2], DType::U32, "disc argmax")?),
            ),
            DHead::Flatten => (flat(&o2)?, None),
        };
        Ok(DActs {
            x,
            m1: Tensor::zeros(gpu, &s1, "disc1 mask")?,
            o1: Tensor::zeros(gpu, &s1, "disc1 leaky dropout")?,
            m2: Tensor::zeros(gpu, &s2, "disc2 mask")?,
            o2,
            feat,
            argmax,
            logits: Tensor::zeros(gpu, &[b, 1], "disc logits")?,
        })
    }
}

/// Gradients through the discriminator for one batch size, at each conv's
/// output before its LeakyReLU (the kernel writing them applies the
/// dropout mask and the LeakyReLU's derivative).
struct DGrads {
    dlogits: Tensor,
    /// The head's input gradient (the flatten head: a view of `dh2`).
    dfeat: Tensor,
    dh2: Tensor,
    dh1: Tensor,
}

impl DGrads {
    fn new(gpu: &Gpu, b: usize, head: DHead) -> Result<DGrads> {
        let s1 = [b, 14, 14, 64];
        let s2 = [b, D_HWC.0, D_HWC.1, D_HWC.2];
        let dh2 = Tensor::zeros(gpu, &s2, "d disc2")?;
        let dfeat = match head {
            DHead::GlobalMaxPool => Tensor::zeros(gpu, &[b, D_HWC.2], "d disc pooled")?,
            DHead::Flatten => flat(&dh2)?,
        };
        Ok(DGrads {
            dlogits: Tensor::zeros(gpu, &[b, 1], "d disc logits")?,
            dfeat,
            dh2,
            dh1: Tensor::zeros(gpu, &s1, "d disc1")?,
        })
    }
}

/// Backward of one weight layer: parameter gradients and (when given) the
/// input gradient ending in its epilogue, or the input gradient alone.
fn layer_backward<Op: WeightOp>(
    l: &Layer<Op>,
    weights: bool,
    gpu: &Gpu,
    s: &mut Step,
    x: &Tensor,
    dy: &Tensor,
    dx: Option<(&Tensor, Epilogue)>,
) -> Result<()> {
    match (weights, dx) {
        (true, dx) => l.backward(gpu, s, x, dy, dx),
        (false, Some((dx, epi))) => l.backward_input(gpu, s, dy, dx, epi),
        (false, None) => Ok(()),
    }
}

/// The backward epilogue through a fused LeakyReLU + dropout: the saved
/// mask, then the derivative from the saved output `o` (its sign is the
/// LeakyReLU input's wherever the mask keeps the unit).
fn d_leaky_dropout<'a>(mask: &'a Tensor, o: &'a Tensor) -> Epilogue<'a> {
    Epilogue {
        dmask: Some(mask),
        dact: Some((LEAKY, o)),
        ..Epilogue::NONE
    }
}

/// A recorded training step, with the tensors it writes.
pub struct TrainStep {
    pub step: Step,
    /// The step's generated batch `[B, 28, 28, 1]`, in [-1, 1] (the one the
    /// discriminator's update saw).
    pub fake: Tensor,
    /// The batch the generator's update ran on: `fake` itself, or with
    /// [`GanOptions::fresh_noise_for_g`] the one generated from its own
    /// latents.
    pub g_fake: Tensor,
    /// The discriminator's logits on [real; fake], `[2B, 1]`.
    pub d_logits: Tensor,
    /// Every LeakyReLU output of the step by name (the generator's three
    /// batch norms', then the discriminator's two convs' after dropout, in
    /// the D update on [real; fake] and in the G update on fake, then with
    /// [`GanOptions::fresh_noise_for_g`] the generator's three again from
    /// the G update's own forward), for tests
    /// that check which side of the kink each unit took: the output has the
    /// input's sign (a dropped unit is 0, and has no gradient).
    pub leaky_outputs: Vec<(&'static str, Tensor)>,
    /// The global max pool winners (max pool head only): D update, G update.
    pub pool_argmax: Vec<(&'static str, Tensor)>,
}

impl Gan {
    /// Record the generator from `a.z` to `a.img`: batch norm from batch
    /// statistics (running averages updated) when `train`, else from the
    /// running statistics.
    pub(super) fn record_generate(
        &self,
        gpu: &Gpu,
        s: &mut Step,
        a: &GActs,
        train: bool,
    ) -> Result<()> {
        let bn = |layer: &BatchNormLayer, s: &mut Step, x: &Tensor, y: &Tensor| {
            if train {
                layer.forward_train(gpu, s, x, y)
            } else {
                layer.forward_eval(gpu, s, x, y)
            }
        };
        self.g_fc.forward(gpu, s, &a.z, &a.g0)?;
        bn(&self.g_bn0, s, &a.g0, &flat(&a.g0a)?)?;
        self.g1.forward(gpu, s, &a.g0a, &a.g1)?;
        bn(&self.g_bn1, s, &a.g1, &a.g1a)?;
        self.g2.forward(gpu, s, &a.g1a, &a.g2)?;
        bn(&self.g_bn2, s, &a.g2, &a.g2a)?;
        let tanh = Epilogue::act(Activation::Tanh);
        self.g3.forward_fused(gpu, s, &a.g2a, &a.img, tanh)
    }

    /// Record the discriminator from `a.x` to `a.logits`. `dropout`: the
    /// step counter and the two layers' streams (training), or `None`
    /// (eval: dropout is the identity).
    pub(super) fn record_discriminate<'a>(
        &self,
        gpu: &Gpu,
        s: &mut Step,
        a: &'a DActs,
        dropout: Option<(&'a Tensor, [u32; 2])>,
    ) -> Result<()> {
        // LeakyReLU, then (training) dropout, in each conv's store
        let epi = |k: usize, mask: &'a Tensor| -> Epilogue<'a> {
            Epilogue {
                act: Some(LEAKY),
                dropout: dropout.map(|(counters, streams)| Dropout {
                    rng: Philox::new(self.config.seed, streams[k]),
                    rate: DROPOUT,
                    counters,
                    mask,
                }),
                ..Epilogue::NONE
            }
        };
        self.d1.forward_fused(gpu, s, &a.x, &a.o1, epi(0, &a.m1))?;
        self.d2.forward_fused(gpu, s, &a.o1, &a.o2, epi(1, &a.m2))?;
        if let Some(argmax) = &a.argmax {
            global_max_pool_forward(gpu, s, &a.o2, &a.feat, argmax)?;
        }
        self.d_fc.forward(gpu, s, &a.feat, &a.logits)
    }

    /// Record the discriminator's backward from `g.dlogits`: parameter
    /// gradients when `weights`, the input gradient into `dx` when given.
    fn record_d_backward(
        &self,
        gpu: &Gpu,
        s: &mut Step,
        a: &DActs,
        g: &DGrads,
        weights: bool,
        dx: Option<(&Tensor, Epilogue)>,
    ) -> Result<()> {
        let d2_out = d_leaky_dropout(&a.m2, &a.o2);
        match &a.argmax {
            Some(argmax) => {
                layer_backward(
                    &self.d_fc,
                    weights,
                    gpu,
                    s,
                    &a.feat,
                    &g.dlogits,
                    Some((&g.dfeat, Epilogue::NONE)),
                )?;
                global_max_pool_backward_fused(gpu, s, argmax, &g.dfeat, &g.dh2, &d2_out)?;
            }
            // dfeat is dh2 flattened: the head's backward data ends in d2's
            // dropout and LeakyReLU derivative
            None => {
                let (m2, o2) = (flat(&a.m2)?, flat(&a.o2)?);
                let epi = d_leaky_dropout(&m2, &o2);
                layer_backward(
                    &self.d_fc,
                    weights,
                    gpu,
                    s,
                    &a.feat,
                    &g.dlogits,
                    Some((&g.dfeat, epi)),
                )?;
            }
        }
        let d1_out = d_leaky_dropout(&a.m1, &a.o1);
        layer_backward(
            &self.d2,
            weights,
            gpu,
            s,
            &a.o1,
            &g.dh2,
            Some((&g.dh1, d1_out)),
        )?;
        layer_backward(&self.d1, weights, gpu, s, &a.x, &g.dh1, dx)
    }

    /// Record one training step on `data` (gather the batch the step
    /// counter picks, draw z, generate, update D on [real; fake] (targets
    /// with [`GanOptions::label_noise`] when it is above 0), update G through
    /// the updated D (on fresh latents, generated again, with
    /// [`GanOptions::fresh_noise_for_g`]), advance): losses go to ring slots
    /// [`SLOT_G`] and [`SLOT_D`]. The Wasserstein GAN repeats the first three
    /// n_critic times, each on its own batch and latents and followed by the
    /// critic's clipping, and reports the last critic loss.
    pub fn train_step(&self, gpu: &Gpu, state: &StepState, data: &GpuDataset) -> Result<TrainStep> {
        let (b, l, head) = (self.config.batch, self.config.latent, self.config.head);
        let n_critic = self.config.critic_iterations();
        if data.batches(b) < n_critic {
            let per_step = match n_critic {
                1 => format!("batch size {b}"),
                n => format!("batch size {b} x {n} critic iterations"),
            };
            return Err(Error::invalid(
                "gan",
                format!("{per_step} is larger than the {} training images", data.len),
            ));
        }
        let seed = self.config.seed;
        let (opt_g, opt_d) = self.config.optimizers();
        let clip = self.config.options.wasserstein().map(|w| w.clip);
        // The real batch is gathered, and the fake one generated, straight
        // into the halves of the discriminator's [real; fake] input (views:
        // no copies), unless the fake half's offset cannot be bound on this
        // adapter (then it is generated on its own and copied).
        let both_x = Tensor::zeros(gpu, &[2 * b, 28, 28, 1], "real|fake")?;
        let real = both_x.view(0, &[b, 28, 28, 1], "real images")?;
        let mut ga = GActs::new(gpu, b, l)?;
        let fake_half = both_x.view(b * PIXELS, &[b, 28, 28, 1], "fake images")?;
        let copy_fake = !fake_half.bindable(gpu);
        if !copy_fake {
            ga.img = fake_half;
        }
        let both = DActs::new(gpu, both_x, head)?;
        let both_g = DGrads::new(gpu, 2 * b, head)?;
        // The generator's update: on the same fake batch, or on its own
        // (fresh latents, generated again).
        let ga_own = match self.config.options.fresh_noise_for_g {
            true => Some(GActs::new(gpu, b, l)?),
            false => None,
        };
        let gg = ga_own.as_ref().unwrap_or(&ga);
        let fake = DActs::new(gpu, gg.img.clone(), head)?;
        let fake_g = DGrads::new(gpu, b, head)?;
        let mut t = vec![1.0f32; b];
        t.resize(2 * b, 0.0);
        let d_targets = Tensor::from_f32(gpu, &[2 * b, 1], &t, "real|fake targets")?;
        let loss = self.config.options.loss;
        let g_t = vec![loss.g_target(); b];
        let g_targets = Tensor::from_f32(gpu, &[b, 1], &g_t, "generator targets")?;
        let d_rows = Tensor::zeros(gpu, &[2 * b], "d loss rows")?;
        let g_rows = Tensor::zeros(gpu, &[b], "g loss rows")?;
        // gradients at each batch norm's output before its LeakyReLU and at
        // each layer's output (the derivatives are applied by the kernels
        // that write them)
        let dg3 = Tensor::zeros(gpu, &[b, 28, 28, 1], "d gen3")?;
        let dg2n = Tensor::zeros(gpu, &[b, 14, 14, 64], "d gen2 bn")?;
        let dg2 = Tensor::zeros(gpu, &[b, 14, 14, 64], "d gen2")?;
        let dg1n = Tensor::zeros(gpu, &[b, 7, 7, 128], "d gen1 bn")?;
        let dg1 = Tensor::zeros(gpu, &[b, 7, 7, 128], "d gen1")?;
        let dg0n = Tensor::zeros(gpu, &[b, G_HWC.0, G_HWC.1, G_HWC.2], "d gen fc bn")?;
        let dg0 = Tensor::zeros(gpu, &[b, G0], "d gen fc")?;

        let mut s = Step::new("gan train");
        let st = &mut s;
        let mut d_scale = 0.0;
        for j in 0..n_critic {
            let (stream_z, stream_d) = critic_streams(j);
            // (1) Real batch (the j-th of the step's n_critic), latents,
            // fake batch.
            let pick = BatchPick {
                stride: n_critic as u32,
                offset: j as u32,
            };
            gather_pixels_and_normals(
                gpu,
                st,
                &state.counters,
                &data.perm,
                &data.images,
                &real,
                PixelMap::SIGNED,
                pick,
                Philox::new(seed, stream_z),
                &ga.z,
            )?;
            self.record_generate(gpu, st, &ga, true)?;
            // (2) Discriminator update on [real; fake]: the mean loss over
            // the 2B rows times 2, e.g. BCE(real, 1) + BCE(fake, 0).
            if copy_fake {
                copy_rows(gpu, st, &ga.img, &both.x, b)?;
            }
            self.record_discriminate(gpu, st, &both, Some((&state.counters, stream_d)))?;
            // Targets 1 and 0, or with label noise 1 + F u and F u drawn in
            // the loss kernel (no noise: the plain kernel, today's step).
            let noise = (self.config.options.label_noise > 0.0).then(|| LabelNoise {
                amount: self.config.options.label_noise,
                rng: Philox::new(seed, STREAM_LABEL_NOISE),
                counters: &state.counters,
            });
            let (logits, dlogits) = (&both.logits, &both_g.dlogits);
            d_scale = loss.record_d(gpu, st, logits, &d_targets, noise, &d_rows, dlogits)?;
            self.record_d_backward(gpu, st, &both, &both_g, true, None)?;
            opt_d.record(gpu, st, state, &self.d_arena)?;
            if let Some(c) = clip {
                clamp_in_place(gpu, st, &self.d_arena.value, c)?;
            }
        }
        // (3) Generator update through the updated discriminator (with
        // fresh noise: on its own latents, generated again first).
        if let Some(own) = &ga_own {
            fill_normal(
                gpu,
                st,
                Philox::new(seed, STREAM_Z_FOR_G),
                &state.counters,
                &own.z,
            )?;
            self.record_generate(gpu, st, own, true)?;
        }
        self.record_discriminate(gpu, st, &fake, Some((&state.counters, STREAM_G_UPDATE)))?;
        let (logits, dlogits) = (&fake.logits, &fake_g.dlogits);
        let g_scale = loss.record_g(gpu, st, logits, &g_targets, &g_rows, dlogits)?;
        // D's input gradient ends in tanh's derivative: d gen3 directly
        let dtanh = Epilogue::dact(Activation::Tanh, &gg.img);
        self.record_d_backward(gpu, st, &fake, &fake_g, false, Some((&dg3, dtanh)))?;
        self.g3.backward(
            gpu,
            st,
            &gg.g2a,
            &dg3,
            Some((&dg2n, Epilogue::dact(LEAKY, &gg.g2a))),
        )?;
        self.g_bn2.backward(gpu, st, &gg.g2, &dg2n, &dg2)?;
        self.g2.backward(
            gpu,
            st,
            &gg.g1a,
            &dg2,
            Some((&dg1n, Epilogue::dact(LEAKY, &gg.g1a))),
        )?;
        self.g_bn1.backward(gpu, st, &gg.g1, &dg1n, &dg1)?;
        self.g1.backward(
            gpu,
            st,
            &gg.g0a,
            &dg1,
            Some((&dg0n, Epilogue::dact(LEAKY, &gg.g0a))),
        )?;
        self.g_bn0.backward(gpu, st, &gg.g0, &flat(&dg0n)?, &dg0)?;
        self.g_fc.backward(gpu, st, &gg.z, &dg0, None)?;
        opt_g.record(gpu, st, state, &self.g_arena)?;
        // both losses to the ring, then the counter
        let losses = [
            StepLoss {
                slot: SLOT_D,
                rows: &d_rows,
                scale: d_scale,
            },
            StepLoss {
                slot: SLOT_G,
                rows: &g_rows,
                scale: g_scale,
            },
        ];
        state.record_end(gpu, st, &losses)?;

        let d_logits = both.logits.clone();
        let fake_img = ga.img.clone();
        let g_fake = gg.img.clone();
        let mut leaky_outputs = vec![
            ("gen fc bn", flat(&ga.g0a)?),
            ("gen1 bn", ga.g1a.clone()),
            ("gen2 bn", ga.g2a.clone()),
            ("d update disc1", both.o1.clone()),
            ("d update disc2", both.o2.clone()),
            ("g update disc1", fake.o1.clone()),
            ("g update disc2", fake.o2.clone()),
        ];
        if let Some(own) = &ga_own {
            leaky_outputs.extend([
                ("g update gen fc bn", flat(&own.g0a)?),
                ("g update gen1 bn", own.g1a.clone()),
                ("g update gen2 bn", own.g2a.clone()),
            ]);
        }
        let pool_argmax = [("d update", &both.argmax), ("g update", &fake.argmax)]
            .into_iter()
            .filter_map(|(n, a)| a.clone().map(|a| (n, a)))
            .collect();
        Ok(TrainStep {
            step: s,
            fake: fake_img,
            g_fake,
            d_logits,
            leaky_outputs,
            pool_argmax,
        })
    }
}
