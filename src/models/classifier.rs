//! A LeNet-style MNIST classifier on the engine's ops: its penultimate
//! 128 features are the feature space for sample-quality metrics (FID-like
//! distances, classifier scores).
//!
//! conv 16 5x5 same ReLU (28x28), max pool 2x2 (14), conv 32 5x5 same ReLU,
//! max pool 2x2 (7), flatten 1568, dense 128 ReLU (features), dense 10
//! (logits); loss: softmax cross-entropy with the gathered labels, batch
//! mean, in nats.
//!
//! PyTorch twin (checkpoint names): `Sequential(Conv2d(1,16,5,padding=2),
//! ReLU, MaxPool2d(2), Conv2d(16,32,5,padding=2), ReLU, MaxPool2d(2),
//! Flatten, Linear(1568,128), ReLU, Linear(128,10))`: layers `net.0`,
//! `net.3`, `net.7`, `net.9`.

use std::path::Path;

use rand::SeedableRng;

use crate::data::GpuDataset;
use crate::data::{Images, PIXELS};
use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, Step, StepLoss, StepState, Tensor};
use crate::io::Checkpoint;
use crate::models::{count, expect_model, flat, infer_chunked, record_adam, Stored};
use crate::nn::{Dense, Layer, Param, ParamArena};
use crate::ops::activation::Activation;
use crate::ops::conv2d::{Conv2d, Padding};
use crate::ops::gather::{gather_labels, gather_pixels, PixelMap};
use crate::ops::gemm::Epilogue;
use crate::ops::pool::{max_pool2x2_backward_fused, max_pool2x2_forward};
use crate::ops::softmax_ce::softmax_ce_rows;
use crate::optim::adam::{Adam, AdamConfig};

const RELU: Activation = Activation::Relu;
/// Width of the penultimate (feature) layer.
pub const FEATURES: usize = 128;
/// Number of classes.
pub const CLASSES: usize = 10;
/// Image after the second pool: 7x7x32.
const POOL2_HWC: (usize, usize, usize) = (7, 7, 32);

/// Loss slot in the step's ring row.
pub const SLOT_CE: usize = 0;

/// Hyperparameters; the default trains the committed classifiers
/// (`train_classifier`'s defaults).
#[derive(Clone, Debug)]
pub struct ClassifierConfig {
    pub batch: usize,
    pub adam: AdamConfig,
    pub seed: u64,
}

impl Default for ClassifierConfig {
    fn default() -> ClassifierConfig {
        ClassifierConfig {
            batch: 64,
            adam: AdamConfig::keras(1e-3),
            seed: 0,
        }
    }
}

/// The classifier's layers, their parameters in one [`ParamArena`].
pub struct Classifier {
    pub config: ClassifierConfig,
    pub arena: ParamArena,
    pub conv1: Layer<Conv2d>,
    pub conv2: Layer<Conv2d>,
    pub fc1: Layer<Dense>,
    pub fc2: Layer<Dense>,
}

/// Forward activations for one batch size (each ReLU fused into the layer
/// before it: only its output is kept).
struct Acts {
    x: Tensor,
    a1: Tensor,
    p1: Tensor,
    arg1: Tensor,
    a2: Tensor,
    p2: Tensor,
    arg2: Tensor,
    fa: Tensor,
    logits: Tensor,
}

impl Acts {
    fn new(gpu: &Gpu, b: usize) -> Result<Acts> {
        let u = |shape: &[usize], name: &str| Tensor::new(gpu, shape, DType::U32, name);
        Ok(Acts {
            x: Tensor::zeros(gpu, &[b, 28, 28, 1], "x")?,
            a1: Tensor::zeros(gpu, &[b, 28, 28, 16], "conv1 relu")?,
            p1: Tensor::zeros(gpu, &[b, 14, 14, 16], "pool1")?,
            arg1: u(&[b, 14, 14, 16], "pool1 argmax")?,
            a2: Tensor::zeros(gpu, &[b, 14, 14, 32], "conv2 relu")?,
            p2: Tensor::zeros(gpu, &[b, 7, 7, 32], "pool2")?,
            arg2: u(&[b, 7, 7, 32], "pool2 argmax")?,
            fa: Tensor::zeros(gpu, &[b, FEATURES], "features")?,
            logits: Tensor::zeros(gpu, &[b, CLASSES], "logits")?,
        })
    }
}

/// A recorded training step.
pub struct TrainStep {
    pub step: Step,
    /// Logits of the last batch, `[B, 10]`.
    pub logits: Tensor,
}

impl Classifier {
    /// Build with Keras initialisation (Glorot-uniform, zero bias) from
    /// `config.seed`.
    pub fn new(gpu: &Gpu, config: ClassifierConfig) -> Result<Classifier> {
        if config.batch == 0 {
            return Err(Error::invalid("classifier", "batch size must be positive"));
        }
        config.adam.validate()?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let r = &mut rng;
        let same = Padding::uniform(2);
        let mut conv1 = Layer::conv(gpu, r, "net.0", 5, 1, same, 1, 16, true)?;
        let mut conv2 = Layer::conv(gpu, r, "net.3", 5, 1, same, 16, 32, true)?;
        let mut fc1 = Layer::dense(gpu, r, "net.7", 1568, FEATURES, true, Some(POOL2_HWC), None)?;
        let mut fc2 = Layer::dense(gpu, r, "net.9", FEATURES, CLASSES, true, None, None)?;
        let mut runs = conv1.runs();
        runs.extend(conv2.runs());
        runs.extend(fc1.runs());
        runs.extend(fc2.runs());
        let arena = ParamArena::pack(gpu, "classifier", runs)?;
        Ok(Classifier {
            conv1,
            conv2,
            fc1,
            fc2,
            arena,
            config,
        })
    }

    /// Every parameter, input side first.
    pub fn params(&self) -> Vec<&Param> {
        [&self.conv1, &self.conv2]
            .iter()
            .flat_map(|l| l.params())
            .chain(self.fc1.params())
            .chain(self.fc2.params())
            .collect()
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        count(&self.params())
    }

    fn record_forward(&self, gpu: &Gpu, s: &mut Step, a: &Acts) -> Result<()> {
        let relu = Epilogue::act(RELU);
        self.conv1.forward_fused(gpu, s, &a.x, &a.a1, relu)?;
        max_pool2x2_forward(gpu, s, &a.a1, &a.p1, &a.arg1)?;
        self.conv2.forward_fused(gpu, s, &a.p1, &a.a2, relu)?;
        max_pool2x2_forward(gpu, s, &a.a2, &a.p2, &a.arg2)?;
        self.fc1.forward_fused(gpu, s, &flat(&a.p2)?, &a.fa, relu)?;
        self.fc2.forward(gpu, s, &a.fa, &a.logits)
    }

    /// Record one training step on `data` (gather the batch and labels the
    /// step counter picks, forward, softmax cross-entropy, backward, Adam,
    /// advance): the batch-mean loss goes to ring slot [`SLOT_CE`].
    pub fn train_step(&self, gpu: &Gpu, state: &StepState, data: &GpuDataset) -> Result<TrainStep> {
        let b = self.config.batch;
        if data.batches(b) == 0 {
            return Err(Error::invalid(
                "classifier",
                format!(
                    "batch size {b} is larger than the {} training images",
                    data.len
                ),
            ));
        }
        let a = Acts::new(gpu, b)?;
        let g = |shape: &[usize], n: &str| Tensor::zeros(gpu, shape, n);
        let labels = Tensor::new(gpu, &[b], DType::U32, "labels")?;
        let rows = g(&[b], "ce rows")?;
        // gradients at each layer's pre-activation output (the ReLU's
        // derivative is applied by the kernel that writes them)
        let dlogits = g(&[b, CLASSES], "d logits")?;
        let df = g(&[b, FEATURES], "d fc1")?;
        let dp2 = g(&[b, 7, 7, 32], "d pool2")?;
        let dh2 = g(&[b, 14, 14, 32], "d conv2")?;
        let dp1 = g(&[b, 14, 14, 16], "d pool1")?;
        let dh1 = g(&[b, 28, 28, 16], "d conv1")?;

        let mut s = Step::new("classifier train");
        let st = &mut s;
        gather_pixels(
            gpu,
            st,
            &state.counters,
            &data.perm,
            &data.images,
            &a.x,
            PixelMap::UNIT,
        )?;
        gather_labels(gpu, st, &state.counters, &data.perm, &data.labels, &labels)?;
        self.record_forward(gpu, st, &a)?;
        let ce_scale = softmax_ce_rows(gpu, st, &a.logits, &labels, &rows, Some(&dlogits), 1.0)?;
        let drelu_fa = Epilogue::dact(RELU, &a.fa);
        self.fc2
            .backward(gpu, st, &a.fa, &dlogits, Some((&df, drelu_fa)))?;
        self.fc1.backward(
            gpu,
            st,
            &flat(&a.p2)?,
            &df,
            Some((&flat(&dp2)?, Epilogue::NONE)),
        )?;
        let drelu_a2 = Epilogue::dact(RELU, &a.a2);
        max_pool2x2_backward_fused(gpu, st, &a.arg2, &dp2, &dh2, &drelu_a2)?;
        self.conv2
            .backward(gpu, st, &a.p1, &dh2, Some((&dp1, Epilogue::NONE)))?;
        let drelu_a1 = Epilogue::dact(RELU, &a.a1);
        max_pool2x2_backward_fused(gpu, st, &a.arg1, &dp1, &dh1, &drelu_a1)?;
        self.conv1.backward(gpu, st, &a.x, &dh1, None)?;
        record_adam(gpu, st, state, &Adam::new(self.config.adam)?, &self.arena)?;
        let ce = StepLoss {
            slot: SLOT_CE,
            rows: &rows,
            scale: ce_scale,
        };
        state.record_end(gpu, st, &[ce])?;
        let logits = a.logits.clone();
        Ok(TrainStep { step: s, logits })
    }

    /// Penultimate features `[n, 128]` (after the ReLU) and class
    /// probabilities `[n, 10]` (softmax of the logits, computed on the CPU in
    /// f64) of `pixels` (`n * 784` values in [0, 1]), in chunks of at most
    /// [`CHUNK`](super::CHUNK) images per submit.
    pub fn features_and_probs(&self, gpu: &Gpu, pixels: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        pollster::block_on(self.features_and_probs_async(gpu, pixels))
    }

    /// [`Classifier::features_and_probs`] as a future, which a browser awaits.
    pub async fn features_and_probs_async(
        &self,
        gpu: &Gpu,
        pixels: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let n = pixels.len() / PIXELS;
        let (mut feats, mut probs) = (
            Vec::with_capacity(n * FEATURES),
            Vec::with_capacity(n * CLASSES),
        );
        infer_chunked(
            gpu,
            "classifier features_and_probs",
            pixels,
            PIXELS,
            |m| Acts::new(gpu, m),
            |a, chunk, s| {
                a.x.write_f32(gpu, chunk)?;
                self.record_forward(gpu, s, a)?;
                Ok(vec![a.fa.clone(), a.logits.clone()])
            },
            |read| {
                feats.extend_from_slice(&read[0]);
                for row in read[1].chunks(CLASSES) {
                    let mx = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                    let e: Vec<f64> = row.iter().map(|&v| (v as f64 - mx).exp()).collect();
                    let z: f64 = e.iter().sum();
                    probs.extend(e.iter().map(|&v| (v / z) as f32));
                }
                Ok(())
            },
        )
        .await?;
        Ok((feats, probs))
    }

    /// Fraction of `images` whose most probable class is the label.
    pub fn accuracy(&self, gpu: &Gpu, images: &Images) -> Result<f64> {
        if images.is_empty() {
            return Err(Error::invalid("classifier accuracy", "no images"));
        }
        let pixels = images.unit_pixels(images.len());
        let (_, probs) = self.features_and_probs(gpu, &pixels)?;
        let correct = probs
            .chunks(CLASSES)
            .zip(&images.labels)
            .filter(|(row, &label)| argmax(row) == label as usize)
            .count();
        Ok(correct as f64 / images.len() as f64)
    }

    /// Parameters (and Adam moments when `with_moments`) and metadata,
    /// PyTorch names and layouts.
    pub fn checkpoint(&self, gpu: &Gpu, with_moments: bool) -> Result<Checkpoint> {
        let mut ck = pollster::block_on(self.stored().checkpoint_async(gpu))?;
        if !with_moments {
            ck.tensors.retain(|n, _| !n.starts_with("optimizer."));
        }
        Ok(ck)
    }

    /// The classifier of checkpoint `ck` (read from `path`, which errors
    /// name): its weights, and its Adam moments when it holds them.
    pub fn from_checkpoint(gpu: &Gpu, ck: &Checkpoint, path: &Path) -> Result<Classifier> {
        expect_model(ck, path, "classifier")?;
        let classifier = Classifier::new(
            gpu,
            ClassifierConfig {
                batch: 1,
                ..ClassifierConfig::default()
            },
        )?;
        classifier.restore(gpu, ck, path)?;
        Ok(classifier)
    }

    /// What the checkpoint holds: the weights, and the Adam moments when
    /// it was saved with them.
    fn stored(&self) -> Stored<'_> {
        Stored {
            model: "classifier",
            label: "the classifier",
            params: self.params(),
            batch_norms: Vec::new(),
            weights_only_ok: true,
        }
    }

    /// Names and PyTorch shapes of the weights (the Adam moments, when
    /// present, follow as `optimizer.<name>.exp_avg` / `.exp_avg_sq`).
    pub fn checkpoint_entries(&self) -> Vec<(String, Vec<usize>)> {
        self.stored().entries(false)
    }

    /// Restore parameters, and the Adam moments when the checkpoint holds
    /// them (zeros otherwise); a checkpoint of another model or size is
    /// refused with every mismatched tensor listed.
    pub fn restore(&self, gpu: &Gpu, ck: &Checkpoint, path: &Path) -> Result<()> {
        self.stored().restore(gpu, ck, path)
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
