//! Trainable parameters: value, gradient and Adam moments, and how the
//! engine's layout maps to PyTorch's for checkpoints.

use rand::Rng;

use crate::error::Result;
use crate::gpu::{Gpu, Tensor};
use crate::io::Checkpoint;

/// How a parameter's engine layout relates to its PyTorch layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Same shape and order (biases, batch-norm vectors).
    Same,
    /// Bias of a dense layer whose outputs are an NHWC image `[h, w, c]`
    /// that PyTorch's twin unflattens as `[c, h, w]`.
    BiasNhwc { h: usize, w: usize, c: usize },
    /// Dense weight: engine `[in, out]`, PyTorch `[out, in]`. `in_nhwc` /
    /// `out_nhwc` give the image shape when that side is a flattened NHWC
    /// image (PyTorch flattens NCHW).
    Dense {
        in_nhwc: Option<(usize, usize, usize)>,
        out_nhwc: Option<(usize, usize, usize)>,
    },
    /// Conv weight: engine `[KH, KW, Cin, Cout]`, PyTorch `[Cout, Cin, KH, KW]`.
    Conv,
    /// Transposed conv weight: engine `[KH, KW, Co, Ci]`, PyTorch
    /// `[Ci, Co, KH, KW]` (`ConvTranspose2d(in=Ci, out=Co)`).
    ConvTranspose,
}

/// Index of feature `i` (NHWC flatten order) in NCHW flatten order.
fn nchw_index(i: usize, (h, w, c): (usize, usize, usize)) -> usize {
    let (hw, ch) = (i / c, i % c);
    let (y, x) = (hw / w, hw % w);
    ch * h * w + y * w + x
}

impl Layout {
    /// The PyTorch shape of an engine tensor of shape `s`.
    pub fn torch_shape(self, s: &[usize]) -> Vec<usize> {
        match self {
            Layout::Same | Layout::BiasNhwc { .. } => s.to_vec(),
            Layout::Dense { .. } => vec![s[1], s[0]],
            Layout::Conv => vec![s[3], s[2], s[0], s[1]],
            Layout::ConvTranspose => vec![s[3], s[2], s[0], s[1]],
        }
    }

    /// For each engine element, its flat index in the PyTorch tensor.
    fn torch_index(self, s: &[usize]) -> Vec<usize> {
        let n: usize = s.iter().product();
        match self {
            Layout::Same => (0..n).collect(),
            Layout::BiasNhwc { h, w, c } => (0..n).map(|i| nchw_index(i, (h, w, c))).collect(),
            Layout::Dense { in_nhwc, out_nhwc } => {
                let (din, dout) = (s[0], s[1]);
                (0..n)
                    .map(|e| {
                        let (i, o) = (e / dout, e % dout);
                        let i = in_nhwc.map_or(i, |shape| nchw_index(i, shape));
                        let o = out_nhwc.map_or(o, |shape| nchw_index(o, shape));
                        o * din + i
                    })
                    .collect()
            }
            // Both: engine [KH, KW, A, B] -> torch [B, A, KH, KW].
            Layout::Conv | Layout::ConvTranspose => {
                let (kh, kw, a, b) = (s[0], s[1], s[2], s[3]);
                (0..n)
                    .map(|e| {
                        let (y, rest) = (e / (kw * a * b), e % (kw * a * b));
                        let (x, rest) = (rest / (a * b), rest % (a * b));
                        let (ai, bi) = (rest / b, rest % b);
                        ((bi * a + ai) * kh + y) * kw + x
                    })
                    .collect()
            }
        }
    }

    /// Engine-layout data to PyTorch layout.
    pub fn to_torch(self, s: &[usize], data: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; data.len()];
        for (e, t) in self.torch_index(s).into_iter().enumerate() {
            out[t] = data[e];
        }
        out
    }

    /// PyTorch-layout data to the engine layout.
    pub fn from_torch(self, s: &[usize], data: &[f32]) -> Vec<f32> {
        self.torch_index(s).into_iter().map(|t| data[t]).collect()
    }
}

/// A trainable tensor with its gradient and Adam moments, all allocated
/// once, and its PyTorch name (`encoder.0.weight`).
pub struct Param {
    pub name: String,
    pub value: Tensor,
    pub grad: Tensor,
    pub m: Tensor,
    pub v: Tensor,
    pub layout: Layout,
}

impl Param {
    /// A parameter holding `init`, with zeroed gradient and moments.
    pub fn new(
        gpu: &Gpu,
        name: &str,
        shape: &[usize],
        init: &[f32],
        layout: Layout,
    ) -> Result<Param> {
        Ok(Param {
            name: name.to_string(),
            value: Tensor::from_f32(gpu, shape, init, name)?,
            grad: Tensor::zeros(gpu, shape, &format!("{name}.grad"))?,
            m: Tensor::zeros(gpu, shape, &format!("{name}.adam_m"))?,
            v: Tensor::zeros(gpu, shape, &format!("{name}.adam_v"))?,
            layout,
        })
    }

    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    pub fn numel(&self) -> usize {
        self.value.numel()
    }

    /// The PyTorch shape under this parameter's name.
    pub fn torch_shape(&self) -> Vec<usize> {
        self.layout.torch_shape(self.shape())
    }

    /// Put value and Adam moments into `ck` in PyTorch layout: the value as
    /// `name`, the moments as `optimizer.name.exp_avg` / `.exp_avg_sq`
    /// (PyTorch's Adam state names).
    pub fn save(&self, gpu: &Gpu, ck: &mut Checkpoint) -> Result<()> {
        pollster::block_on(self.save_async(gpu, ck))
    }

    /// [`Param::save`] as a future, which a browser awaits.
    pub async fn save_async(&self, gpu: &Gpu, ck: &mut Checkpoint) -> Result<()> {
        let ts = self.torch_shape();
        for (name, t) in [
            (self.name.clone(), &self.value),
            (format!("optimizer.{}.exp_avg", self.name), &self.m),
            (format!("optimizer.{}.exp_avg_sq", self.name), &self.v),
        ] {
            let torch = self
                .layout
                .to_torch(self.shape(), &t.read_f32_async(gpu).await?);
            ck.insert(&name, &ts, torch)?;
        }
        Ok(())
    }

    /// Names and PyTorch shapes this parameter stores in a checkpoint.
    pub fn checkpoint_entries(&self) -> Vec<(String, Vec<usize>)> {
        let ts = self.torch_shape();
        vec![
            (self.name.clone(), ts.clone()),
            (format!("optimizer.{}.exp_avg", self.name), ts.clone()),
            (format!("optimizer.{}.exp_avg_sq", self.name), ts),
        ]
    }

    /// Restore the value from a weights-only `ck`, the moments to zero
    /// (shapes checked by the caller with [`Checkpoint::expect`]).
    pub fn load_weights(&self, gpu: &Gpu, ck: &Checkpoint, path: &std::path::Path) -> Result<()> {
        let ts = self.torch_shape();
        let v = self
            .layout
            .from_torch(self.shape(), ck.get(path, &self.name, &ts)?);
        self.value.write_f32(gpu, &v)?;
        let z = vec![0.0; self.numel()];
        self.m.write_f32(gpu, &z)?;
        self.v.write_f32(gpu, &z)
    }

    /// Restore value and moments from `ck` (shapes checked by the caller
    /// with [`Checkpoint::expect`]).
    pub fn load(&self, gpu: &Gpu, ck: &Checkpoint, path: &std::path::Path) -> Result<()> {
        let ts = self.torch_shape();
        let get = |name: &str| -> Result<Vec<f32>> {
            Ok(self
                .layout
                .from_torch(self.shape(), ck.get(path, name, &ts)?))
        };
        self.value.write_f32(gpu, &get(&self.name)?)?;
        self.m
            .write_f32(gpu, &get(&format!("optimizer.{}.exp_avg", self.name))?)?;
        self.v
            .write_f32(gpu, &get(&format!("optimizer.{}.exp_avg_sq", self.name))?)?;
        Ok(())
    }
}

/// Keras's Glorot (Xavier) uniform initialiser: U(-l, l) with
/// `l = sqrt(6 / (fan_in + fan_out))`; for conv kernels the fans are the
/// channel counts times the receptive field.
pub fn glorot_uniform(rng: &mut impl Rng, fan_in: usize, fan_out: usize, n: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
    (0..n).map(|_| rng.random_range(-limit..limit)).collect()
}

/// One optimizer's parameters in four buffers: values, gradients and both
/// Adam moments, each parameter a view at the same offset in all four. So
/// one Adam dispatch updates them all (it binds the four arenas, distinct
/// buffers: wgpu refuses a buffer bound read-only and read-write in one
/// dispatch, and Adam reads the gradients while it writes the rest), and a
/// layer's weight and bias, packed back to back, are one range that a
/// backward-weights GEMM writes in one dispatch.
pub struct ParamArena {
    pub value: Tensor,
    pub grad: Tensor,
    pub m: Tensor,
    pub v: Tensor,
}

impl ParamArena {
    /// Move `runs` of parameters into new arenas named `label`: each run's
    /// tensors back to back from an offset aligned to the adapter's
    /// `min_storage_buffer_offset_alignment` (so the first of each run can
    /// be bound), their contents copied on the GPU. Padding between runs
    /// stays zero in all four buffers, so Adam leaves it zero.
    pub fn pack(gpu: &Gpu, label: &str, runs: Vec<Vec<&mut Param>>) -> Result<ParamArena> {
        let align = (gpu.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
        let mut offsets = Vec::new();
        let mut end = 0usize;
        for run in &runs {
            end = end.next_multiple_of(align);
            for p in run {
                offsets.push(end);
                end += p.numel();
            }
        }
        let len = end.max(1);
        let arena = |what: &str| Tensor::zeros(gpu, &[len], &format!("{label} {what} arena"));
        let a = ParamArena {
            value: arena("value")?,
            grad: arena("grad")?,
            m: arena("adam_m")?,
            v: arena("adam_v")?,
        };
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("pack parameters"),
            });
        let params = runs.into_iter().flatten();
        let mut moved = Vec::new();
        for (p, &off) in params.zip(&offsets) {
            let shape = p.shape().to_vec();
            for (old, arena, what) in [
                (&mut p.value, &a.value, ""),
                (&mut p.grad, &a.grad, ".grad"),
                (&mut p.m, &a.m, ".adam_m"),
                (&mut p.v, &a.v, ".adam_v"),
            ] {
                let view = arena.view(off, &shape, &format!("{}{what}", p.name))?;
                enc.copy_buffer_to_buffer(
                    old.buffer(),
                    old.offset(),
                    view.buffer(),
                    view.offset(),
                    view.bytes(),
                );
                moved.push(std::mem::replace(old, view));
            }
        }
        gpu.queue.submit([enc.finish()]);
        // the old buffers are released once the copies have run
        drop(moved);
        Ok(a)
    }

    /// Elements in each arena (parameters and padding).
    pub fn len(&self) -> usize {
        self.value.numel()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
