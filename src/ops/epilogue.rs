//! What happens to an output element between the sum that produced it and
//! its store: the pointwise tail of a layer fused into the kernel that
//! writes the layer's output, so it costs no dispatch and no round trip
//! through memory.
//!
//! Forward (in this order): `+ bias[n]`, the activation, training dropout
//! (draw, save the mask, scale). Backward data: times the saved dropout
//! mask, then times the activation's derivative, taken from the saved
//! forward OUTPUT of the activation (ReLU/LeakyReLU: its sign, which the
//! output keeps, dropout included since a kept element's scale is
//! positive and a dropped one has zero gradient anyway; sigmoid `y(1-y)`,
//! tanh `1-y^2`). Every expression is the one the standalone kernel
//! (`shaders/elementwise.wgsl`, `shaders/dropout.wgsl`) evaluates, in the
//! same order, so fusing changes no bit.
//!
//! Three kernels end in an epilogue: the GEMM's store (one split), the
//! split-K reduction and col2im. Each declares the same eight parameter
//! words `e_*` at the end of its uniform block and calls
//! `epilogue(i, n, v)` with `i` the output element and `n` its column.

use crate::error::{Error, Result};
use crate::gpu::Kernel;
use crate::gpu::{f32_param, Access, DType, Tensor};
use crate::ops::activation::Activation;
use crate::ops::dropout::keep_scale;
use crate::ops::rng::Philox;
use crate::shaders::{self, Shader};
use std::borrow::Cow;

/// Training dropout after the activation: draws of `rng` at the step
/// `counters[0]`, rate `rate`, the mask saved in `mask` (f32, like the output).
#[derive(Clone, Copy, Debug)]
pub struct Dropout<'a> {
    pub rng: Philox,
    pub rate: f32,
    pub counters: &'a Tensor,
    pub mask: &'a Tensor,
}

/// The fused tail of one output (see the module doc). `Default`: none.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// Forward activation.
    pub act: Option<Activation>,
    /// Forward training dropout, after the activation.
    pub dropout: Option<Dropout<'a>>,
    /// Backward: the dropout mask the forward saved, applied first.
    pub dmask: Option<&'a Tensor>,
    /// Backward: the derivative of this activation at its saved output.
    pub dact: Option<(Activation, &'a Tensor)>,
}

/// What the epilogue's code depends on (the kernel's shape, without the
/// tensors): part of the kernel key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct EpiKind {
    pub bias: bool,
    pub act: Option<ActKind>,
    pub dropout: bool,
    pub dmask: bool,
    pub dact: Option<ActKind>,
}

/// An activation without its parameter (LeakyReLU's slope is a uniform).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActKind {
    Relu,
    LeakyRelu,
    Sigmoid,
    Tanh,
}

impl ActKind {
    fn of(a: Activation) -> ActKind {
        match a {
            Activation::Relu => ActKind::Relu,
            Activation::LeakyRelu(_) => ActKind::LeakyRelu,
            Activation::Sigmoid => ActKind::Sigmoid,
            Activation::Tanh => ActKind::Tanh,
        }
    }
}

/// Epilogue shapes the naga test builds every epilogue kernel with: each
/// forward activation with a bias, the dropout, and each derivative.
pub fn test_kinds() -> Vec<EpiKind> {
    let acts = [
        ActKind::Relu,
        ActKind::LeakyRelu,
        ActKind::Sigmoid,
        ActKind::Tanh,
    ];
    let mut v = vec![EpiKind::default()];
    for a in acts {
        v.push(EpiKind {
            bias: true,
            act: Some(a),
            ..EpiKind::default()
        });
        v.push(EpiKind {
            dact: Some(a),
            ..EpiKind::default()
        });
    }
    v.push(EpiKind {
        bias: true,
        act: Some(ActKind::LeakyRelu),
        dropout: true,
        ..EpiKind::default()
    });
    v.push(EpiKind {
        dmask: true,
        dact: Some(ActKind::LeakyRelu),
        ..EpiKind::default()
    });
    v
}

/// Words of the `e_*` parameter block.
pub const EPI_WORDS: usize = 8;

/// The WGSL declaration of the `e_*` words, for a kernel's Params struct.
pub const EPI_PARAMS: &str = "e_bias_off: u32, e_alpha: f32, e_seed_lo: u32, e_seed_hi: u32,\n    \
                              e_stream: u32, e_rate: f32, e_scale: f32, e_pad: u32,";

impl<'a> Epilogue<'a> {
    /// No epilogue: the value is stored as it is.
    pub const NONE: Epilogue<'static> = Epilogue {
        act: None,
        dropout: None,
        dmask: None,
        dact: None,
    };

    /// Just a forward activation.
    pub fn act(a: Activation) -> Epilogue<'static> {
        Epilogue {
            act: Some(a),
            ..Epilogue::NONE
        }
    }

    /// Just the derivative of `a` at its saved output `y`.
    pub fn dact(a: Activation, y: &'a Tensor) -> Epilogue<'a> {
        Epilogue {
            dact: Some((a, y)),
            ..Epilogue::NONE
        }
    }

    pub fn is_none(&self) -> bool {
        self.act.is_none() && self.dropout.is_none() && self.dmask.is_none() && self.dact.is_none()
    }

    /// The kernel shape of this epilogue, with or without a bias.
    pub fn kind(&self, bias: bool) -> EpiKind {
        EpiKind {
            bias,
            act: self.act.map(ActKind::of),
            dropout: self.dropout.is_some(),
            dmask: self.dmask.is_some(),
            dact: self.dact.map(|(a, _)| ActKind::of(a)),
        }
    }

    /// Refuse saved tensors that do not match an output of `numel` f32.
    pub fn check(&self, op: &'static str, out: &Tensor) -> Result<()> {
        if self.act.is_some() && self.dact.is_some() {
            return Err(Error::invalid(op, "an epilogue is forward or backward"));
        }
        let saved = [
            self.dropout.map(|d| d.mask),
            self.dmask,
            self.dact.map(|(_, y)| y),
        ];
        for t in saved.into_iter().flatten() {
            t.expect_dtype(op, DType::F32)?;
            if t.numel() != out.numel() {
                return Err(Error::shape(
                    op,
                    t.label().to_string(),
                    out.shape(),
                    t.shape(),
                ));
            }
        }
        if let Some(d) = self.dropout {
            if !(0.0..1.0).contains(&d.rate) {
                return Err(Error::invalid(
                    op,
                    format!("dropout rate {} must be in [0, 1)", d.rate),
                ));
            }
            d.counters.expect_dtype(op, DType::U32)?;
        }
        Ok(())
    }

    /// The `e_*` words, the bias at element `bias_off` of its binding.
    pub fn words(&self, bias_off: usize) -> Result<[u32; EPI_WORDS]> {
        let off = u32::try_from(bias_off)
            .map_err(|_| Error::invalid("epilogue", "bias offset exceeds u32"))?;
        let alpha = match self.act.or(self.dact.map(|(a, _)| a)) {
            Some(Activation::LeakyRelu(a)) => a,
            _ => 0.0,
        };
        let (key, stream, rate) = match self.dropout {
            Some(d) => (d.rng.key(), d.rng.stream, d.rate),
            None => ([0, 0], 0, 0.0),
        };
        Ok([
            off,
            f32_param(alpha),
            key[0],
            key[1],
            stream,
            f32_param(rate),
            f32_param(if self.dropout.is_some() {
                keep_scale(rate)
            } else {
                1.0
            }),
            0,
        ])
    }

    /// The tensors the epilogue binds after the kernel's own, in the order
    /// of [`EpiKind::wgsl`]'s bindings (the bias is the caller's).
    pub fn tensors(&self) -> Vec<&'a Tensor> {
        let mut v = Vec::new();
        v.extend(self.dmask);
        v.extend(self.dact.map(|(_, y)| y));
        if let Some(d) = self.dropout {
            v.push(d.counters);
            v.push(d.mask);
        }
        v
    }
}

impl EpiKind {
    /// A short key naming the epilogue in kernel keys ("" when none).
    pub fn key(&self) -> String {
        let mut k = String::new();
        if self.bias {
            k.push_str("+bias");
        }
        if let Some(a) = self.act {
            k.push_str(&format!("+{a:?}"));
        }
        if self.dropout {
            k.push_str("+dropout");
        }
        if self.dmask {
            k.push_str("+dmask");
        }
        if let Some(a) = self.dact {
            k.push_str(&format!("+d{a:?}"));
        }
        k
    }

    /// Accesses of the bindings the epilogue declares (bias first).
    pub fn access(&self) -> Vec<Access> {
        let mut v = Vec::new();
        if self.bias {
            v.push(Access::Read);
        }
        if self.dmask {
            v.push(Access::Read);
        }
        if self.dact.is_some() {
            v.push(Access::Read);
        }
        if self.dropout {
            v.push(Access::Read);
            v.push(Access::ReadWrite);
        }
        v
    }

    /// WGSL: the epilogue's bindings from `first`, the Philox snippet when
    /// it draws, and `fn epilogue(i, n, v) -> f32`. The kernel's uniform
    /// block must be `p` and end with [`EPI_PARAMS`].
    pub fn wgsl(&self, first: u32) -> String {
        let mut b = first;
        let mut decl = String::new();
        let mut bind = |name: &str, ty: &str, rw: bool| {
            let access = if rw { "read_write" } else { "read" };
            decl.push_str(&format!(
                "@group(0) @binding({b}) var<storage, {access}> {name}: array<{ty}>;\n"
            ));
            b += 1;
        };
        if self.bias {
            bind("ep_bias", "f32", false);
        }
        if self.dmask {
            bind("ep_dmask", "f32", false);
        }
        if self.dact.is_some() {
            bind("ep_saved", "f32", false);
        }
        if self.dropout {
            bind("ep_counters", "u32", false);
            bind("ep_mask", "f32", true);
        }
        let mut body = String::new();
        if self.bias {
            body.push_str("    v = v + ep_bias[p.e_bias_off + n];\n");
        }
        match self.act {
            Some(ActKind::Relu) => body.push_str("    v = max(v, 0.0);\n"),
            Some(ActKind::LeakyRelu) => {
                body.push_str("    v = select(p.e_alpha * v, v, v > 0.0);\n")
            }
            Some(ActKind::Sigmoid) => body.push_str("    v = act_sigmoid(v);\n"),
            Some(ActKind::Tanh) => body.push_str("    v = act_tanh(v);\n"),
            None => {}
        }
        if self.dropout {
            body.push_str(
                "    let w = philox_draw(i, ep_counters[0], p.e_stream, vec2<u32>(p.e_seed_lo, p.e_seed_hi));\n    \
                 let m = select(0.0, p.e_scale, philox_unit(w.x) >= p.e_rate);\n    \
                 ep_mask[i] = m;\n    v = v * m;\n",
            );
        }
        if self.dmask {
            body.push_str("    v = v * ep_dmask[i];\n");
        }
        match self.dact {
            Some(ActKind::Relu) => body.push_str("    v = select(0.0, v, ep_saved[i] > 0.0);\n"),
            Some(ActKind::LeakyRelu) => {
                body.push_str("    v = select(p.e_alpha * v, v, ep_saved[i] > 0.0);\n")
            }
            Some(ActKind::Sigmoid) => {
                body.push_str("    let y = ep_saved[i];\n    v = v * y * (1.0 - y);\n")
            }
            Some(ActKind::Tanh) => {
                body.push_str("    let y = ep_saved[i];\n    v = v * (1.0 - y * y);\n")
            }
            None => {}
        }
        let mut s = String::new();
        if self.dropout {
            s.push_str(shaders::PHILOX.source);
            s.push('\n');
        }
        if matches!(self.act, Some(ActKind::Sigmoid | ActKind::Tanh)) {
            s.push_str(shaders::ACTIVATIONS.source);
            s.push('\n');
        }
        s.push_str(&decl);
        s.push_str(&format!(
            "fn epilogue(i: u32, n: u32, v0: f32) -> f32 {{\n    var v = v0;\n{body}    return v;\n}}\n"
        ));
        s
    }
}

/// What a layer's GEMM does beyond the product: the forms [`crate::nn::Layer`]
/// records. `Default`: nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fused<'a> {
    /// Forward: `+ bias[off + n]` from this tensor (the bias itself at 0,
    /// or a layer's weight|bias range of the parameter arena).
    pub bias: Option<(&'a Tensor, usize)>,
    /// The epilogue.
    pub epi: Epilogue<'a>,
    /// Backward weights: the output tensor holds the weight gradient, then
    /// the bias gradient from this element on, both written by one dispatch.
    pub bias_grad: Option<usize>,
}

impl<'a> Fused<'a> {
    /// Only a bias (or nothing).
    pub fn bias(b: Option<&'a Tensor>) -> Fused<'a> {
        Fused {
            bias: b.map(|b| (b, 0)),
            ..Fused::default()
        }
    }

    /// Only an epilogue.
    pub fn epi(epi: Epilogue<'a>) -> Fused<'a> {
        Fused {
            epi,
            ..Fused::default()
        }
    }

    /// Refuse a bias range that does not hold `n` values from its offset.
    pub fn check_bias(&self, op: &'static str, n: usize) -> Result<()> {
        if let Some((b, off)) = self.bias {
            if off == 0 {
                b.expect_shape(op, &[n])?;
            } else if off + n > b.numel() {
                return Err(Error::invalid(
                    op,
                    format!(
                        "bias range {off}..{} is past {} ({} values)",
                        off + n,
                        b.label(),
                        b.numel()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Entry `entry` of `shader` (whose uniform block ends with `{{EPI_PARAMS}}`
/// and whose `own` bindings come first) with the epilogue `epi` generated
/// in front: the split-K reduction and col2im.
pub fn epilogue_kernel(
    shader: Shader,
    entry: &'static str,
    own: &[Access],
    epi: EpiKind,
) -> Kernel {
    let mut source = epi.wgsl(1 + own.len() as u32);
    source.push_str(&shader.source.replace("{{EPI_PARAMS}}", EPI_PARAMS));
    let mut access = own.to_vec();
    access.extend(epi.access());
    Kernel {
        key: format!("{}{}", shader.name, epi.key()),
        source: Cow::Owned(source),
        entry,
        access,
        trusted: false,
        subgroups: false,
    }
}
