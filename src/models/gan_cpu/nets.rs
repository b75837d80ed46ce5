//! The reference step's two networks: the generator's forward (training
//! mode) and backward, and the discriminator's forward (with its dropout
//! masks) and backward, with the layer geometry spelled out from the
//! article.

use crate::error::Result;
use crate::models::gan::DHead;
use crate::ops::batch_norm::{self, BnForwardCpu};
use crate::ops::bias::bias_grad_cpu;
use crate::ops::conv2d::{self, Conv2d, ConvDims, Padding};
use crate::ops::conv_transpose2d::{self, ConvTranspose2d};
use crate::ops::dense::{dense_backward_data_cpu, dense_backward_weights_cpu, dense_forward_cpu};
use crate::ops::dropout::{dropout_backward_cpu, dropout_forward_cpu, dropout_mask_cpu};
use crate::ops::pool::{global_max_pool_cpu, max_pool_backward_cpu};
use crate::ops::rng::Philox;
use crate::ops::Real;

use super::*;

/// The generator's transposed convs for a batch of `b`, as the dims of the
/// convs they are the adjoints of.
pub(super) struct Dims {
    pub(super) g1: ConvDims,
    pub(super) g2: ConvDims,
    pub(super) g3: ConvDims,
}

/// Keras `same` transposed conv, 5x5, from `size` to `size * stride`.
pub(super) fn same_t(stride: usize, size: usize) -> ConvTranspose2d {
    let out = size * stride;
    ConvTranspose2d::new(5, 5, stride, Padding::same(out, 5, stride), out, out)
}

/// The discriminator's two convs for a batch of `n`.
pub(super) fn d_dims(n: usize) -> Result<[ConvDims; 2]> {
    let conv = |size: usize| Conv2d::new(5, 5, 2, Padding::same(size, 5, 2));
    Ok([
        conv(28).dims("gan cpu", n, 28, 28, 1, 64)?,
        conv(14).dims("gan cpu", n, 14, 14, 64, 128)?,
    ])
}

impl Dims {
    pub(super) fn new(b: usize) -> Result<Dims> {
        let op = "gan cpu";
        Ok(Dims {
            g1: same_t(1, 7).dims(op, b, 7, 7, 256, 128)?,
            g2: same_t(2, 7).dims(op, b, 7, 7, 128, 64)?,
            g3: same_t(2, 14).dims(op, b, 14, 14, 64, 1)?,
        })
    }
}

/// The discriminator's forward on `n` images, with what its backward needs.
pub(super) struct DForward<T> {
    pub(super) n: usize,
    pub(super) dims: [ConvDims; 2],
    pub(super) x: Vec<T>,
    pub(super) h1: Vec<T>,
    pub(super) m1: Vec<f32>,
    pub(super) o1: Vec<T>,
    pub(super) h2: Vec<T>,
    pub(super) m2: Vec<f32>,
    pub(super) o2: Vec<T>,
    /// Head features `[n, F]`.
    pub(super) feat: Vec<T>,
    /// Global max pool winners (max pool head only).
    pub(super) argmax: Option<Vec<u32>>,
    pub(super) logits: Vec<T>,
}

/// The generator's forward (training mode), with what its backward needs.
pub(super) struct GForward<T> {
    pub(super) dims: Dims,
    pub(super) z: Vec<T>,
    pub(super) g0: Vec<T>,
    pub(super) bn0: BnForwardCpu<T>,
    pub(super) g0a: Vec<T>,
    pub(super) g1: Vec<T>,
    pub(super) bn1: BnForwardCpu<T>,
    pub(super) g1a: Vec<T>,
    pub(super) g2: Vec<T>,
    pub(super) bn2: BnForwardCpu<T>,
    pub(super) g2a: Vec<T>,
    /// tanh output `[B, 28, 28, 1]`.
    pub(super) img: Vec<T>,
}

impl<T: Real> GanCpu<T> {
    /// The value of `name` (a missing name is a bug in this file).
    pub(super) fn w(&self, name: &str) -> &[T] {
        match self.param(name) {
            Some(p) => &p.value,
            None => panic!("gan cpu: no parameter {name}"),
        }
    }

    /// The final dense layer's name and input features.
    pub(super) fn head(&self) -> (&'static str, usize) {
        match self.config.head {
            DHead::GlobalMaxPool => ("discriminator.8", 128),
            DHead::Flatten => ("discriminator.7", 7 * 7 * 128),
        }
    }

    /// Batch norm `name` (training mode) on `x` with `c` channels: batch
    /// statistics, running averages updated Keras-style.
    pub(super) fn bn_train(&mut self, name: &str, x: &[T], c: usize) -> BnForwardCpu<T> {
        let f = batch_norm::forward_train_cpu(
            x,
            c,
            self.w(&format!("{name}.weight")),
            self.w(&format!("{name}.bias")),
            BN_EPS,
        );
        for (stat, batch) in [("running_mean", &f.mean), ("running_var", &f.var)] {
            let key = format!("{name}.{stat}");
            match self.running.iter_mut().find(|(n, _)| *n == key) {
                Some((_, r)) => batch_norm::running_update_cpu(r, batch, BN_MOMENTUM),
                None => panic!("gan cpu: no running statistic {key}"),
            }
        }
        f
    }

    /// The discriminator (training mode) on `x` (`n` images), dropout masks
    /// of step `step` on `streams`.
    pub(super) fn discriminate(
        &self,
        x: Vec<T>,
        n: usize,
        step: u32,
        streams: [u32; 2],
    ) -> Result<DForward<T>> {
        let seed = self.config.seed;
        let dims = d_dims(n)?;
        let h1 = conv2d::forward_cpu(
            &dims[0],
            &x,
            self.w("discriminator.0.weight"),
            Some(self.w("discriminator.0.bias")),
        );
        let m1 = dropout_mask_cpu(Philox::new(seed, streams[0]), step, h1.len(), DROPOUT);
        let o1 = dropout_forward_cpu(&LEAKY.forward_cpu(&h1), &m1);
        let h2 = conv2d::forward_cpu(
            &dims[1],
            &o1,
            self.w("discriminator.3.weight"),
            Some(self.w("discriminator.3.bias")),
        );
        let m2 = dropout_mask_cpu(Philox::new(seed, streams[1]), step, h2.len(), DROPOUT);
        let o2 = dropout_forward_cpu(&LEAKY.forward_cpu(&h2), &m2);
        let (feat, argmax) = match self.config.head {
            DHead::GlobalMaxPool => {
                let (y, a) = global_max_pool_cpu(&o2, [n, 7, 7, 128]);
                (y, Some(a))
            }
            DHead::Flatten => (o2.clone(), None),
        };
        let (fc, f) = self.head();
        let logits = dense_forward_cpu(
            &feat,
            self.w(&format!("{fc}.weight")),
            Some(self.w(&format!("{fc}.bias"))),
            n,
            f,
            1,
        );
        Ok(DForward {
            n,
            dims,
            x,
            h1,
            m1,
            o1,
            h2,
            m2,
            o2,
            feat,
            argmax,
            logits,
        })
    }

    /// The discriminator's backward from `dlogits`: its parameter gradients
    /// into `grads` when `weights`, and the gradient of its input.
    pub(super) fn d_backward(
        &self,
        a: &DForward<T>,
        dlogits: &[T],
        weights: bool,
        grads: &mut Vec<(String, Vec<T>)>,
    ) -> Vec<T> {
        let n = a.n;
        let (fc, f) = self.head();
        let mut push = |name: String, g: Vec<T>| {
            if weights {
                grads.push((name, g));
            }
        };
        push(
            format!("{fc}.weight"),
            dense_backward_weights_cpu(&a.feat, dlogits, n, f, 1),
        );
        push(format!("{fc}.bias"), bias_grad_cpu(dlogits, 1));
        let dfeat = dense_backward_data_cpu(dlogits, self.w(&format!("{fc}.weight")), n, f, 1);
        let do2 = match &a.argmax {
            Some(argmax) => max_pool_backward_cpu(argmax, &dfeat, a.o2.len()),
            None => dfeat,
        };
        let dh2 = LEAKY.backward_cpu(&a.h2, &dropout_backward_cpu(&a.m2, &do2));
        push(
            "discriminator.3.weight".into(),
            conv2d::backward_weights_cpu(&a.dims[1], &a.o1, &dh2),
        );
        push("discriminator.3.bias".into(), bias_grad_cpu(&dh2, 128));
        let do1 = conv2d::backward_data_cpu(&a.dims[1], &dh2, self.w("discriminator.3.weight"));
        let dh1 = LEAKY.backward_cpu(&a.h1, &dropout_backward_cpu(&a.m1, &do1));
        push(
            "discriminator.0.weight".into(),
            conv2d::backward_weights_cpu(&a.dims[0], &a.x, &dh1),
        );
        push("discriminator.0.bias".into(), bias_grad_cpu(&dh1, 64));
        conv2d::backward_data_cpu(&a.dims[0], &dh1, self.w("discriminator.0.weight"))
    }

    /// The generator (batch norm from batch statistics, running averages
    /// updated) on the latents `z` `[B, L]`.
    pub(super) fn generate(&mut self, z: Vec<T>) -> Result<GForward<T>> {
        let (b, l) = (self.config.batch, self.config.latent);
        let dims = Dims::new(b)?;
        let g0 = dense_forward_cpu(&z, self.w("generator.0.weight"), None, b, l, G0);
        let bn0 = self.bn_train("generator.1", &g0, G0);
        let g0a = LEAKY.forward_cpu(&bn0.y);
        let g1 = conv_transpose2d::forward_cpu(&dims.g1, &g0a, self.w("generator.5.weight"), None);
        let bn1 = self.bn_train("generator.6", &g1, 128);
        let g1a = LEAKY.forward_cpu(&bn1.y);
        let g2 = conv_transpose2d::forward_cpu(&dims.g2, &g1a, self.w("generator.8.weight"), None);
        let bn2 = self.bn_train("generator.9", &g2, 64);
        let g2a = LEAKY.forward_cpu(&bn2.y);
        let g3 = conv_transpose2d::forward_cpu(&dims.g3, &g2a, self.w("generator.11.weight"), None);
        let img = TANH.forward_cpu(&g3);
        Ok(GForward {
            dims,
            z,
            g0,
            bn0,
            g0a,
            g1,
            bn1,
            g1a,
            g2,
            bn2,
            g2a,
            img,
        })
    }

    /// The generator's backward from the gradient of its images `dimg`
    /// (through tanh, the transposed convs, LeakyReLUs and batch norms, in
    /// reverse): its parameter gradients.
    pub(super) fn g_backward(&self, f: &GForward<T>, dimg: &[T]) -> Vec<(String, Vec<T>)> {
        let (b, l, d) = (self.config.batch, self.config.latent, &f.dims);
        let mut g: Vec<(String, Vec<T>)> = Vec::new();
        let mut push = |name: &str, v: Vec<T>| g.push((name.to_string(), v));
        let dg3 = TANH.backward_cpu(&f.img, dimg);
        push(
            "generator.11.weight",
            conv_transpose2d::backward_weights_cpu(&d.g3, &f.g2a, &dg3),
        );
        let dg2a = conv_transpose2d::backward_data_cpu(&d.g3, &dg3, self.w("generator.11.weight"));
        let dg2n = LEAKY.backward_cpu(&f.bn2.y, &dg2a);
        let (dg2, dgamma2, dbeta2) = batch_norm::backward_cpu(
            &f.g2,
            &dg2n,
            64,
            self.w("generator.9.weight"),
            &f.bn2.mean,
            &f.bn2.inv_std,
        );
        push("generator.9.weight", dgamma2);
        push("generator.9.bias", dbeta2);
        push(
            "generator.8.weight",
            conv_transpose2d::backward_weights_cpu(&d.g2, &f.g1a, &dg2),
        );
        let dg1a = conv_transpose2d::backward_data_cpu(&d.g2, &dg2, self.w("generator.8.weight"));
        let dg1n = LEAKY.backward_cpu(&f.bn1.y, &dg1a);
        let (dg1, dgamma1, dbeta1) = batch_norm::backward_cpu(
            &f.g1,
            &dg1n,
            128,
            self.w("generator.6.weight"),
            &f.bn1.mean,
            &f.bn1.inv_std,
        );
        push("generator.6.weight", dgamma1);
        push("generator.6.bias", dbeta1);
        push(
            "generator.5.weight",
            conv_transpose2d::backward_weights_cpu(&d.g1, &f.g0a, &dg1),
        );
        let dg0a = conv_transpose2d::backward_data_cpu(&d.g1, &dg1, self.w("generator.5.weight"));
        let dg0n = LEAKY.backward_cpu(&f.bn0.y, &dg0a);
        let (dg0, dgamma0, dbeta0) = batch_norm::backward_cpu(
            &f.g0,
            &dg0n,
            G0,
            self.w("generator.1.weight"),
            &f.bn0.mean,
            &f.bn0.inv_std,
        );
        push("generator.1.weight", dgamma0);
        push("generator.1.bias", dbeta0);
        push(
            "generator.0.weight",
            dense_backward_weights_cpu(&f.z, &dg0, b, l, G0),
        );
        g
    }
}
