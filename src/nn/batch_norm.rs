//! Batch norm layer (Keras `BatchNormalization`: eps 1e-3, momentum 0.99,
//! biased batch variance in the running average).

use crate::error::Result;
use crate::gpu::{Gpu, Step, Tensor};
use crate::io::Checkpoint;
use crate::nn::param::{Layout, Param};
use crate::ops::activation::Activation;
use crate::ops::batch_norm::{BatchNorm, BatchNormConfig, BnBackward, BnGrads, BnParams, BnSaved};

/// Learned scale and shift, running statistics, and the batch statistics
/// the training forward saves for the backward.
pub struct BatchNormLayer {
    pub name: String,
    pub gamma: Param,
    pub beta: Param,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub config: BatchNormConfig,
    mean: Tensor,
    inv_std: Tensor,
    train: BatchNorm,
}

impl BatchNormLayer {
    /// For training inputs of shape `x_shape` (channels last), followed by
    /// `act` (applied in the same kernel, see [`BatchNormConfig::act`]).
    /// PyTorch names: `name.weight`, `name.bias`, `name.running_mean`,
    /// `name.running_var`.
    pub fn new(gpu: &Gpu, name: &str, x_shape: &[usize], act: Option<Activation>) -> Result<Self> {
        let c = *x_shape.last().unwrap_or(&0);
        let config = BatchNormConfig {
            act,
            ..BatchNormConfig::default()
        };
        Ok(BatchNormLayer {
            name: name.to_string(),
            gamma: Param::new(
                gpu,
                &format!("{name}.weight"),
                &[c],
                &vec![1.0; c],
                Layout::Same,
            )?,
            beta: Param::new(
                gpu,
                &format!("{name}.bias"),
                &[c],
                &vec![0.0; c],
                Layout::Same,
            )?,
            running_mean: Tensor::from_f32(
                gpu,
                &[c],
                &vec![0.0; c],
                &format!("{name}.running_mean"),
            )?,
            running_var: Tensor::from_f32(
                gpu,
                &[c],
                &vec![1.0; c],
                &format!("{name}.running_var"),
            )?,
            config,
            mean: Tensor::zeros(gpu, &[c], &format!("{name}.batch_mean"))?,
            inv_std: Tensor::zeros(gpu, &[c], &format!("{name}.batch_inv_std"))?,
            train: BatchNorm::new(gpu, x_shape, config)?,
        })
    }

    fn params_view(&self) -> BnParams<'_> {
        BnParams {
            gamma: &self.gamma.value,
            beta: &self.beta.value,
            running_mean: &self.running_mean,
            running_var: &self.running_var,
        }
    }

    fn saved(&self) -> BnSaved<'_> {
        BnSaved {
            mean: &self.mean,
            inv_std: &self.inv_std,
        }
    }

    /// Training forward: batch statistics, running averages updated.
    pub fn forward_train(&self, gpu: &Gpu, step: &mut Step, x: &Tensor, y: &Tensor) -> Result<()> {
        self.train
            .forward_train(gpu, step, x, &self.params_view(), &self.saved(), y)
    }

    /// Eval forward from the running statistics, for any batch size.
    pub fn forward_eval(&self, gpu: &Gpu, step: &mut Step, x: &Tensor, y: &Tensor) -> Result<()> {
        let bn = BatchNorm::new(gpu, x.shape(), self.config)?;
        bn.forward_eval(gpu, step, x, &self.params_view(), y)
    }

    /// Backward of the training forward: `dx`, and gamma/beta gradients.
    pub fn backward(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dx: &Tensor,
    ) -> Result<()> {
        let inputs = BnBackward {
            x,
            dy,
            gamma: &self.gamma.value,
            saved: self.saved(),
        };
        let grads = BnGrads {
            dx,
            dgamma: &self.gamma.grad,
            dbeta: &self.beta.grad,
        };
        self.train.backward(gpu, step, &inputs, &grads)
    }

    pub fn params(&self) -> Vec<&Param> {
        vec![&self.gamma, &self.beta]
    }

    /// The parameters packed as runs ([`crate::nn::ParamArena::pack`]):
    /// gamma and beta each bound on its own, so each its own run.
    pub fn runs(&mut self) -> Vec<Vec<&mut Param>> {
        vec![vec![&mut self.gamma], vec![&mut self.beta]]
    }

    /// Running statistics with their checkpoint names.
    pub fn buffers(&self) -> [(String, &Tensor); 2] {
        [
            (format!("{}.running_mean", self.name), &self.running_mean),
            (format!("{}.running_var", self.name), &self.running_var),
        ]
    }

    /// Put the running statistics into `ck`.
    pub fn save_buffers(&self, gpu: &Gpu, ck: &mut Checkpoint) -> Result<()> {
        pollster::block_on(self.save_buffers_async(gpu, ck))
    }

    /// [`BatchNormLayer::save_buffers`] as a future, which a browser awaits.
    pub async fn save_buffers_async(&self, gpu: &Gpu, ck: &mut Checkpoint) -> Result<()> {
        for (name, t) in self.buffers() {
            ck.insert(&name, t.shape(), t.read_f32_async(gpu).await?)?;
        }
        Ok(())
    }

    /// Restore the running statistics from `ck`.
    pub fn load_buffers(&self, gpu: &Gpu, ck: &Checkpoint, path: &std::path::Path) -> Result<()> {
        for (name, t) in self.buffers() {
            t.write_f32(gpu, ck.get(path, &name, t.shape())?)?;
        }
        Ok(())
    }
}
