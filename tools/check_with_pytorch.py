#!/usr/bin/env python3
"""Load an engine VAE checkpoint into its PyTorch twin and print PyTorch's
negative ELBO on a fixed batch beside the engine's; with `--model gan`, the
same for the GAN's eval-mode images, logits and losses.

Usage (from the repository root; see tools/README.md):

    cargo run --release --example pytorch_check_bundle      # writes target/pytorch_check/
    /path/to/venv/bin/python tools/check_with_pytorch.py target/pytorch_check
    /path/to/venv/bin/python tools/check_with_pytorch.py target/pytorch_check --model gan

    # and, to refresh the committed test fixtures (tests/it/pytorch_check.rs):
    /path/to/venv/bin/python tools/check_with_pytorch.py target/pytorch_check \
        [--model gan | --model gan-step] --write-fixture tests/fixtures

Needs only PyTorch (the safetensors file is parsed by hand: 8-byte
little-endian header length, JSON header, raw little-endian data).

The bundle folder holds `bundle.json` (checkpoint file name, the MNIST split
and image indices of the batch, latent size, the noise `eps` [N, L], and the
engine's reconstruction and KL terms) and the checkpoint it names, written by
`Vae::checkpoint(..).save(..)`: PyTorch names and layouts, f32.

The twin (module indices are the checkpoint names; see src/models/vae/mod.rs):

    encoder = Sequential(Conv2d(1, 32, 3, 2), ReLU, Conv2d(32, 64, 3, 2), ReLU,
                         Flatten, Linear(2304, 2L))             # convs `valid`
    decoder = Sequential(Linear(L, 1568), ReLU, Unflatten(1, (32, 7, 7)),
                         ConvT(32, 64, 3, 2 -> 14), ReLU,
                         ConvT(64, 32, 3, 2 -> 28), ReLU,
                         ConvT(32, 1, 3, 1 -> 28))               # logits

where ConvT is Keras's `same` Conv2DTranspose: a ConvTranspose2d with
padding 0, then rows/columns [pad_before, pad_before + out) of the full
result, pad_before being Keras `same` padding of the adjoint conv on the
OUTPUT size (the engine's `Padding::same(out, k, stride)`): 0 for 3x3
stride 2 (7 -> 14, 14 -> 28), 1 for 3x3 stride 1 on 28.

GAN (`--model gan`, bundle `gan_bundle.json`): the twin of
src/models/gan/mod.rs (its module doc gives the layout), `GanTwin` below, in
eval mode (batch norm from the checkpoint's running statistics, dropout
off), float64. For a fixed z [N, L] and the real batch (MNIST test images,
byte / 255 * 2 - 1 in float32): images = G(z) [N, 784], logits D(real) and
D(G(z)) [N], d_loss = BCE(real, 1) + BCE(fake, 0), g_loss = BCE(fake, 1)
(BCE with logits, batch means), for both discriminator heads; each value
is compared with the engine's as |diff| <= atol + rtol |torch|.

One GAN training step (`--model gan-step`, the same bundle's checkpoints):
`StepTwin` below runs, in float64 with torch autograd, one step of
`Gan::train_step` for each GAN loss (minimax, non-saturating, least squares,
hinge, wasserstein) and both heads, from the checkpoint's weights: the
dataset is the MNIST training images 0 .. 8 n_critic in a fixed shuffled
order, the step index `--step` (default 2); z and the dropout masks come
from a numpy port of the engine's Philox4x32-10 (`philox_blocks`: counter
(i, step, stream, 0), key = the seed's words; uniform (w0 >> 8) 2^-24;
Box-Muller in float64 as `Philox::normal_cpu`; the dropout mask 1/(1-p)
where u >= p, drawn over the NHWC activation), the streams of
src/models/gan_cpu/mod.rs. Batch norm in training mode (batch statistics,
biased variance, running averages at momentum 0.99 from the biased
variance), D on [real; fake] (streams 2, 3), d_loss, Keras Adam by hand
(t = step + 1), the updated D on the same fake batch (streams 4, 5), g_loss,
Adam on G; the Wasserstein GAN: n_critic iterations j (batch (s mod S) n + j,
z from stream 1 or 16 + 3j, masks from 2, 3 or 17 + 3j, 18 + 3j), the
linear loss, PyTorch RMSprop (alpha 0.99, eps 1e-8, lr 5e-5) and clipping
to [-0.01, 0.01], then G through the last critic on the last fake batch.
Every hyperparameter is the engine's float32 value (LeakyReLU 0.2, eps,
momentum, lr, betas). `--write-fixture DIR` writes
DIR/gan_step_pytorch_check.json: per loss and head the losses and digests
(exactly rounded sum, sum |x|, sum x^2, max |x|, 16 values at fixed indices,
PyTorch layout) of each parameter's change, gradient and running
statistic's change. `--mistake` plants one deliberate error and
`--compare FIXTURE` prints how far it moves the digests (tools/README.md).

VAE loss, per image, then the batch mean, in nats (as the engine's training step):
    recon = sum over the 784 pixels of BCE-with-logits(logits, x)
    kl    = 0.5 * sum_j (exp(c) - 1 - c + mu^2),  c = clamp(logvar, -30, 30)
with z = mu + exp(c / 2) * eps. The clamp is the engine's (src/ops/reparam.rs);
it is inactive for any sane logvar. Everything runs in float64 on the CPU
from the exact float32 weights, pixels (byte / 255 rounded to float32, as the
engine computes them) and eps.
"""

import argparse
import gzip
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DT = torch.float64
LOGVAR_CLAMP = 30.0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------- safetensors


def read_safetensors(path):
    """(tensors name -> float32 tensor, metadata dict) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n :]
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        count = math.prod(info["shape"])
        if b - a != 4 * count:
            raise ValueError(f"{path}: tensor {name}: {b - a} bytes for shape {info['shape']}")
        vals = struct.unpack(f"<{count}f", data[a:b])
        tensors[name] = torch.tensor(vals, dtype=torch.float32).reshape(info["shape"])
    return tensors, meta


def write_safetensors(path, tensors, metadata):
    """Write float32 tensors (sorted by name) and string metadata."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].to(torch.float32).contiguous()
        b = struct.pack(f"<{t.numel()}f", *t.flatten().tolist())
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)  # align the data to 8 bytes, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- the twin


def keras_same(size, k, s):
    """Keras/TF `same` padding of one axis of size `size`: (before, after)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class KerasSameConvTranspose2d(nn.ConvTranspose2d):
    """Keras Conv2DTranspose(padding='same') of a square `out` x `out`
    output: the exact adjoint of the `same` conv out -> ceil(out / stride).
    Parameters are ConvTranspose2d's (so the checkpoint names are too)."""

    def __init__(self, cin, cout, k, stride, out, bias=True):
        super().__init__(cin, cout, k, stride=stride, padding=0, bias=bias)
        self.out = out
        self.pad = keras_same(out, k, stride)

    def forward(self, x):
        full = F.conv_transpose2d(x, self.weight, None, stride=self.stride)
        # `full` covers the adjoint conv's padded input rows [0, (h-1)s + k);
        # that padded input has out + before + after rows.
        before, after = self.pad
        need = self.out + before + after
        fh, fw = full.shape[2], full.shape[3]
        full = F.pad(full, (0, max(need - fw, 0), 0, max(need - fh, 0)))
        y = full[:, :, before : before + self.out, before : before + self.out]
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class VaeTwin(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.latent = latent
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2304, 2 * latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 1568),
            nn.ReLU(),
            nn.Unflatten(1, (32, 7, 7)),
            KerasSameConvTranspose2d(32, 64, 3, 2, 14),
            nn.ReLU(),
            KerasSameConvTranspose2d(64, 32, 3, 2, 28),
            nn.ReLU(),
            KerasSameConvTranspose2d(32, 1, 3, 1, 28),
        )

    def loss(self, x, eps):
        """(recon, kl, per-image recon, per-image kl) for x [N, 1, 28, 28]
        in [0, 1] and eps [N, L]."""
        h = self.encoder(x)
        mu, logvar = h[:, : self.latent], h[:, self.latent :]
        c = logvar.clamp(-LOGVAR_CLAMP, LOGVAR_CLAMP)
        z = mu + torch.exp(0.5 * c) * eps
        logits = self.decoder(z)
        recon_rows = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl_rows = 0.5 * (torch.exp(c) - 1.0 - c + mu * mu).sum(1)
        return recon_rows.mean(), kl_rows.mean(), recon_rows, kl_rows


class KerasSameConv2d(nn.Conv2d):
    """Keras Conv2D(padding='same') on a square `size` x `size` input: a
    Conv2d with padding 0 on the input padded by F.pad with Keras's uneven
    (before, after) split (no extra modules, so the names stay the twin's)."""

    def __init__(self, cin, cout, k, stride, size):
        super().__init__(cin, cout, k, stride=stride, padding=0)
        self.pad = keras_same(size, k, stride)

    def forward(self, x):
        b, a = self.pad
        return super().forward(F.pad(x, (b, a, b, a)))


class Permute(nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


GAN_HEADS = ("global_max_pool", "flatten")


class GanTwin(nn.Module):
    """The DCGAN of src/models/gan/mod.rs (module indices are the checkpoint
    names). The 12544 dense features are in the engine's NHWC order, so the
    generator unflattens as (7, 7, 256) and permutes to NCHW after the
    BatchNorm1d; the flatten head flattens NCHW (PyTorch's order, as saved)."""

    def __init__(self, latent, head):
        super().__init__()
        bn = dict(eps=1e-3, momentum=0.01)
        self.generator = nn.Sequential(
            nn.Linear(latent, 12544, bias=False),
            nn.BatchNorm1d(12544, **bn),
            nn.LeakyReLU(0.2),
            nn.Unflatten(1, (7, 7, 256)),
            Permute(0, 3, 1, 2),
            KerasSameConvTranspose2d(256, 128, 5, 1, 7, bias=False),
            nn.BatchNorm2d(128, **bn),
            nn.LeakyReLU(0.2),
            KerasSameConvTranspose2d(128, 64, 5, 2, 14, bias=False),
            nn.BatchNorm2d(64, **bn),
            nn.LeakyReLU(0.2),
            KerasSameConvTranspose2d(64, 1, 5, 2, 28, bias=False),
            nn.Tanh(),
        )
        body = [
            KerasSameConv2d(1, 64, 5, 2, 28),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.3),
            KerasSameConv2d(64, 128, 5, 2, 14),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.3),
        ]
        if head == "global_max_pool":
            body += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, 1)]
        elif head == "flatten":
            body += [nn.Flatten(), nn.Linear(6272, 1)]
        else:
            raise ValueError(f"unknown discriminator head {head!r}")
        self.discriminator = nn.Sequential(*body)

    def generate(self, z):
        """Images [N, 784] in [-1, 1] (NCHW with one channel = the engine's NHWC)."""
        return self.generator(z).flatten(1)

    def discriminate(self, images):
        """Logits [N] of images [N, 784]."""
        return self.discriminator(images.reshape(-1, 1, 28, 28)).flatten()


def bce_logits_mean(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def gan_losses(real, fake):
    """(d_loss, g_loss) of every GAN loss (src/models/gan_loss.rs) from D's
    logits on the real and the fake batch, batch means, in PyTorch's own
    terms."""
    ones, zeros = torch.ones_like(fake), torch.zeros_like(fake)
    d_bce = bce_logits_mean(real, 1.0) + bce_logits_mean(fake, 0.0)
    return {
        "minimax": (d_bce, -bce_logits_mean(fake, 0.0)),
        "non-saturating": (d_bce, bce_logits_mean(fake, 1.0)),
        "least-squares": (0.5 * F.mse_loss(real, torch.ones_like(real)) + 0.5 * F.mse_loss(fake, zeros),
                          0.5 * F.mse_loss(fake, ones)),
        "hinge": (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean(), -fake.mean()),
        "wasserstein": (-real.mean() + fake.mean(), -fake.mean()),
    }


# ---------------------------------------------------------------- one GAN training step (--model gan-step)
#
# Everything below reimplements, from the engine's documented rules and not
# from its code paths, what `Gan::train_step` does in one step (see
# src/models/gan/mod.rs, src/models/gan_cpu/mod.rs for where every random
# number comes from): Philox 4x32-10 (src/ops/rng.rs), the dropout mask rule
# (src/ops/dropout.rs), Keras batch norm in training mode
# (src/ops/batch_norm.rs), Keras Adam (src/optim/adam.rs), PyTorch RMSprop,
# the losses (src/models/gan_loss.rs); gradients come from torch autograd.


def f32(v):
    """The float32 value nearest v, as a Python float: the engine holds every
    hyperparameter as f32, and its f64 reference uses those values."""
    return float(np.float32(v))


PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
U32 = 0xFFFFFFFF


def philox_blocks(seed, stream, step, n):
    """Philox4x32-10 blocks (4 uint64 arrays of u32 words) of elements
    0..n at step `step` on `stream`: counter (i, step, stream, 0), key
    (seed low word, seed high word); Random123's rounds."""
    c0 = np.arange(n, dtype=np.uint64)
    c1 = np.full(n, step, dtype=np.uint64)
    c2 = np.full(n, stream, dtype=np.uint64)
    c3 = np.zeros(n, dtype=np.uint64)
    k0, k1 = seed & U32, (seed >> 32) & U32
    m0, m1, mask = np.uint64(PHILOX_M[0]), np.uint64(PHILOX_M[1]), np.uint64(U32)
    for r in range(10):
        if r > 0:
            k0, k1 = (k0 + PHILOX_W[0]) & U32, (k1 + PHILOX_W[1]) & U32
        p0, p1 = m0 * c0, m1 * c2  # < 2^64: exact in uint64
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & mask,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & mask)
    return c0, c1, c2, c3


def philox_uniform(seed, stream, step, n):
    """Uniform draws in [0, 1): (w0 >> 8) 2^-24, exact in float32."""
    w0 = philox_blocks(seed, stream, step, n)[0]
    return (w0 >> np.uint64(8)).astype(np.float64) * 2.0**-24


def philox_normal(seed, stream, step, n):
    """Standard normals, Box-Muller in float64 (the engine's CPU reference,
    `Philox::normal_cpu`): u1 = ((w0 >> 8) + 1) 2^-24, u2 = (w1 >> 8) 2^-24,
    z = -sqrt(-2 ln u1) cos(2 pi u2 - pi); libm's log and cos, as Rust's."""
    w0, w1, _, _ = philox_blocks(seed, stream, step, n)
    out = []
    for a, b in zip(w0.tolist(), w1.tolist()):
        u1 = ((a >> 8) + 1.0) * 2.0**-24
        u2 = (b >> 8) * 2.0**-24
        out.append(-math.sqrt(-2.0 * math.log(u1)) * math.cos(math.tau * u2 - math.pi))
    return out


def dropout_mask(seed, stream, step, nhwc, rate, nchw_mask=True):
    """The engine's dropout mask of an NHWC activation `nhwc` = (n, h, w, c)
    at `step` on `stream` (element i of the NHWC flat order draws the uniform
    of element i): 1/(1-p) (in float32) where u >= p (float32), else 0; as an
    NCHW float64 tensor for the twin."""
    n = math.prod(nhwc)
    u = philox_uniform(seed, stream, step, n).astype(np.float32)
    p = np.float32(rate)
    scale = np.float32(1.0) / (np.float32(1.0) - p)
    m = np.where(u >= p, scale, np.float32(0.0)).astype(np.float64)
    t = torch.tensor(m, dtype=DT).reshape(nhwc)
    return t.permute(0, 3, 1, 2) if nchw_mask else t.reshape(nhwc[0], nhwc[3], nhwc[1], nhwc[2])


# The engine's LeakyReLU slope is the f32 0.2 (`Activation::LeakyRelu(0.2)`):
# 1.5e-8 above 0.2, which the tight comparison of the step sees.
LEAKY = f32(0.2)
GAN_LOSSES = ("minimax", "non-saturating", "least-squares", "hinge", "wasserstein")
STEP_MISTAKES = ("adam-pytorch-eps", "adam-t-from-0", "bn-momentum-pytorch", "running-var-unbiased",
                 "swap-d-targets", "dropout-mask-nchw", "g-update-old-masks")
STREAM_Z, STREAM_D, STREAM_G = 1, (2, 3), (4, 5)
DROPOUT = 0.3


def critic_streams(j):
    """Latent stream and dropout streams of critic iteration j (Wasserstein)."""
    return (STREAM_Z, STREAM_D) if j == 0 else (16 + 3 * j, (17 + 3 * j, 18 + 3 * j))


class StepTwin:
    """One training step of the GanTwin in float64, as `Gan::train_step`.
    `mistake` (None in the real check) plants one deliberate error, to
    measure what the Rust test's comparison catches (tools/README.md)."""

    def __init__(self, model, weights, hp, mistake=None):
        self.m, self.hp, self.mistake = model, hp, mistake
        self.g_params = [(k, p) for k, p in model.named_parameters() if k.startswith("generator.")]
        self.d_params = [(k, p) for k, p in model.named_parameters() if k.startswith("discriminator.")]
        # Adam's moments as the checkpoint stores them (the check model's: zeros).
        self.state = {}
        for k, _ in self.g_params + self.d_params:
            m = weights.get(f"optimizer.{k}.exp_avg")
            v = weights.get(f"optimizer.{k}.exp_avg_sq")
            self.state[k] = [m.to(DT).clone(), v.to(DT).clone()]
        self.bn_batch_stats = []

    # -- the networks in training mode
    def bn_train(self, x, bn, dims):
        mean = x.mean(dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dims, keepdim=True)  # biased, as Keras
        shape = mean.shape
        y = bn.weight.view(shape) * (x - mean) / torch.sqrt(var + self.hp["bn_eps"]) + bn.bias.view(shape)
        mom = self.hp["bn_momentum"]
        if self.mistake == "bn-momentum-pytorch":
            mom = 1.0 - mom
        with torch.no_grad():
            mv = mean.flatten().detach()
            vv = var.flatten().detach()
            if self.mistake == "running-var-unbiased":
                n = x.numel() // mv.numel()
                vv = vv * n / (n - 1)
            self.bn_batch_stats.append((mv, vv))
            bn.running_mean.copy_(mom * bn.running_mean + (1.0 - mom) * mv)
            bn.running_var.copy_(mom * bn.running_var + (1.0 - mom) * vv)
        return y

    def generate(self, z):
        g = self.m.generator
        x = F.leaky_relu(self.bn_train(g[0](z), g[1], (0,)), LEAKY)
        x = g[4](g[3](x))
        x = F.leaky_relu(self.bn_train(g[5](x), g[6], (0, 2, 3)), LEAKY)
        x = F.leaky_relu(self.bn_train(g[8](x), g[9], (0, 2, 3)), LEAKY)
        return torch.tanh(g[11](x)).flatten(1)

    def discriminate(self, images, step, streams):
        n = images.shape[0]
        seed, d = self.hp["seed"], self.m.discriminator
        nchw = self.mistake != "dropout-mask-nchw"
        m1 = dropout_mask(seed, streams[0], step, (n, 14, 14, 64), DROPOUT, nchw)
        m2 = dropout_mask(seed, streams[1], step, (n, 7, 7, 128), DROPOUT, nchw)
        x = F.leaky_relu(d[0](images.reshape(n, 1, 28, 28)), LEAKY) * m1
        x = F.leaky_relu(d[3](x), LEAKY) * m2
        for layer in d[6:]:
            x = layer(x)
        return x.flatten()

    # -- losses (src/models/gan_loss.rs), batch means
    def d_loss(self, loss, real, fake):
        if loss == "wasserstein":
            return -real.mean() + fake.mean()
        if self.mistake == "swap-d-targets" and loss != "hinge":
            real, fake = fake, real
        return gan_losses(real, fake)[loss][0]

    def g_loss(self, loss, fake):
        if loss == "wasserstein":
            return -fake.mean()
        return gan_losses(fake, fake)[loss][1]

    # -- optimizers, in place, in float64 from the f32 hyperparameters
    def adam(self, params, grads, t):
        lr, b1, b2, eps = (self.hp[k] for k in ("adam_lr", "adam_beta1", "adam_beta2", "adam_eps"))
        if self.mistake == "adam-t-from-0":
            t = t - 1 if t > 1 else t
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        with torch.no_grad():
            for (k, p), g in zip(params, grads):
                m, v = self.state[k]
                m.copy_(b1 * m + (1.0 - b1) * g)
                v.copy_(b2 * v + (1.0 - b2) * g * g)
                if self.mistake == "adam-pytorch-eps":
                    p.sub_(lr * (m / c1) / (torch.sqrt(v / c2) + 1e-8))
                else:
                    p.sub_(lr * math.sqrt(c2) / c1 * m / (torch.sqrt(v) + eps))

    def rmsprop(self, params, grads):
        lr, alpha, eps = self.hp["rms_lr"], self.hp["rms_alpha"], self.hp["rms_eps"]
        with torch.no_grad():
            for (k, p), g in zip(params, grads):
                v = self.state[k][1]
                v.copy_(alpha * v + (1.0 - alpha) * g * g)
                p.sub_(lr * g / (torch.sqrt(v) + eps))

    def step(self, loss, step, real_batches, zs):
        """One step at step index `step`: `real_batches[j]` [B, 784] and
        `zs[j]` [B, L] of each critic iteration (one but for Wasserstein).
        Returns (d_losses, g_loss, d_grads of the last iteration, g_grads)."""
        b = zs[0].shape[0]
        d_losses = []
        for j, (real, z) in enumerate(zip(real_batches, zs)):
            fake = self.generate(z)
            streams = STREAM_D if loss != "wasserstein" else critic_streams(j)[1]
            logits = self.discriminate(torch.cat([real, fake.detach()]), step, streams)
            d = self.d_loss(loss, logits[:b], logits[b:])
            d_grads = torch.autograd.grad(d, [p for _, p in self.d_params])
            d_losses.append(d.item())
            if loss == "wasserstein":
                self.rmsprop(self.d_params, d_grads)
                c = self.hp["clip"]
                with torch.no_grad():
                    for _, p in self.d_params:
                        p.clamp_(-c, c)
            else:
                self.adam(self.d_params, d_grads, step + 1)
        g_streams = STREAM_G if self.mistake != "g-update-old-masks" else STREAM_D
        fl = self.discriminate(fake, step, g_streams)
        gl = self.g_loss(loss, fl)
        g_grads = torch.autograd.grad(gl, [p for _, p in self.g_params])
        if loss == "wasserstein":
            self.rmsprop(self.g_params, g_grads)
        else:
            self.adam(self.g_params, g_grads, step + 1)
        names = lambda ps: [k for k, _ in ps]
        return (d_losses, gl.item(), dict(zip(names(self.d_params), d_grads)),
                dict(zip(names(self.g_params), g_grads)))


def digest(t, idx):
    """What the fixture keeps of a float64 tensor (PyTorch layout, flat):
    exactly rounded sum, sum of |x| and sum of squares, max |x|, and the
    values at `idx`."""
    v = t.detach().flatten().tolist()
    return {
        "sum": math.fsum(v),
        "sum_abs": math.fsum(abs(x) for x in v),
        "sum_sq": math.fsum(x * x for x in v),
        "max_abs": max(abs(x) for x in v),
        "at": [v[i] for i in idx],
    }


def digest_indices(name, n, k=16):
    """k distinct fixed pseudo-random flat indices of a tensor of n values
    (all of them when n <= k), from a generator seeded by the name."""
    if n <= k:
        return list(range(n))
    rng = np.random.default_rng(int.from_bytes(name.encode(), "little") % (1 << 63))
    return sorted(int(i) for i in rng.choice(n, size=k, replace=False))


def main_gan_step(args):
    """One training step of each GAN loss, both heads, in float64: the
    fixture tests/it/pytorch_check.rs's `gan_step_matches_pytorch` checks."""
    with open(os.path.join(args.bundle, "gan_bundle.json")) as f:
        bundle = json.load(f)
    latent, seed = int(bundle["latent"]), int(bundle["seed"])
    b, step, n_critic = args.batch, args.step, args.n_critic
    n_images = b * n_critic
    indices = list(range(n_images))  # MNIST training images 0 .. B n
    order = [int(i) for i in np.random.default_rng(seed).permutation(n_images)]
    raw = mnist_bytes("train", indices)
    pixels = torch.tensor(raw, dtype=DT) / 255.0 * 2.0 - 1.0  # f64, as PixelMap::apply

    def batch(k):
        return pixels[order[k * b:(k + 1) * b]]

    hp = dict(seed=seed, bn_eps=f32(1e-3), bn_momentum=f32(0.99), adam_lr=f32(1e-4),
              adam_beta1=f32(0.9), adam_beta2=f32(0.999), adam_eps=f32(1e-7), rms_lr=f32(5e-5),
              rms_alpha=f32(0.99), rms_eps=f32(1e-8), clip=f32(0.01))
    zs = {j: philox_normal(seed, critic_streams(j)[0], step, b * latent) for j in range(n_critic)}
    mistake = args.mistake
    print(f"pytorch {torch.__version__} float64; step {step} of the check GAN (latent {latent}, batch {b}, "
          f"seed {seed}) on MNIST training images {indices[0]}..{indices[-1]} in the order {order}"
          + (f"; DELIBERATE MISTAKE {mistake}" if mistake else ""))
    out, digest_index = {}, {}
    for head in GAN_HEADS:
        entry = bundle["heads"][head]
        path = os.path.join(args.bundle, entry["checkpoint"])
        tensors, _ = read_safetensors(path)
        out[head] = {"weights_hash": None, "losses": {}}
        for loss in args.gan_loss:
            model = GanTwin(latent, head)
            weights, _ = load_twin(path, model, {"model": "gan", "latent_dim": latent, "d_head": head})
            model = model.to(DT).train()
            h = fnv1a_weights(weights)
            if h != int(entry["weights_hash"]):
                sys.exit(f"{path}: weights hash {h} != the engine's {entry['weights_hash']}")
            out[head]["weights_hash"] = h
            before = {k: v.detach().clone() for k, v in model.state_dict().items()}
            twin = StepTwin(model, tensors, hp, mistake)
            nc = n_critic if loss == "wasserstein" else 1
            batches = n_images // (b * nc)
            first = (step % batches) * nc
            reals = [batch(first + j) for j in range(nc)]
            z = [torch.tensor(zs[j], dtype=DT).reshape(b, latent) for j in range(nc)]
            d_losses, g_loss, d_grads, g_grads = twin.step(loss, step, reals, z)
            after = model.state_dict()
            grads = {**g_grads, **d_grads}
            rec = {"d_loss": d_losses[-1], "d_losses": d_losses, "g_loss": g_loss,
                   "update": {}, "grad": {}, "running": {}}
            for k, v in after.items():
                if k.endswith("num_batches_tracked"):
                    continue
                idx = digest_index.setdefault(k, digest_indices(k, v.numel()))
                delta = v - before[k]
                if "running_" in k:
                    rec["running"][k] = digest(delta, idx)
                else:
                    rec["update"][k] = digest(delta, idx)
                    rec["grad"][k] = digest(grads[k], idx)
            out[head]["losses"][loss] = rec
            gmax = max(d["max_abs"] for d in rec["grad"].values())
            print(f"{head:>15} {loss:<15} d_loss {d_losses[-1]: .9f} g_loss {g_loss: .9f}"
                  + (f" (critic d_losses {' '.join(f'{x:.6f}' for x in d_losses)})" if nc > 1 else "")
                  + f"; largest |gradient| {gmax:.3e}")
    if args.compare:
        with open(args.compare) as f:
            ref = json.load(f)
        worst = []
        for head in GAN_HEADS:
            for loss, rec in out[head]["losses"].items():
                r = ref["steps"][head].get(loss)
                if r is None:
                    continue
                for kind in ("update", "grad", "running"):
                    for k, dg in rec[kind].items():
                        rd = r[kind][k]
                        scale = max(rd["max_abs"], 1e-300)
                        dv = max(abs(a - c) for a, c in zip(dg["at"], rd["at"])) / scale
                        ds = abs(dg["sum_sq"] - rd["sum_sq"]) / max(rd["sum_sq"], 1e-300)
                        worst.append((max(dv, ds), dv, ds, head, loss, kind, k))
                for key in ("d_loss", "g_loss"):
                    worst.append((abs(rec[key] - r[key]), 0, 0, head, loss, key, ""))
        worst.sort(reverse=True)
        print("largest moves against the fixture (values: max |diff| / max|x| of the tensor; "
              "sum_sq: relative):")
        for w in worst[:12]:
            print(f"  {w[3]} {w[4]} {w[5]} {w[6]}: values {w[1]:.3e}, sum_sq {w[2]:.3e}, total {w[0]:.3e}")

    if args.write_fixture:
        fixture = {
            "description": (
                "One training step of the check GAN (tests/it/gan_check_model.rs, pinned by "
                "<head>_weights_hash) per GAN loss and discriminator head, by the float64 PyTorch twin "
                "(tools/check_with_pytorch.py --model gan-step): the dataset is the MNIST training images "
                "`indices` in the epoch order `order`, byte / 255 * 2 - 1; the step index is `step`; z, "
                "dropout masks from Philox (seed, streams as src/models/gan_cpu/mod.rs); Keras batch norm "
                "and Adam (t = step + 1), the Wasserstein GAN's critic iterations with RMSprop and "
                "clipping. Per loss: d_loss (the last critic iteration's), g_loss, and digests (exactly "
                "rounded sum, sum_abs, sum_sq, max_abs, and the values at digest_index, PyTorch layout) "
                "of every parameter's change over the step (update), of its gradient (grad: the last "
                "critic iteration's for the discriminator) and of every running statistic's change."),
            "latent": latent, "batch": b, "seed": seed, "step": step, "split": "train",
            "n_critic": n_critic, "indices": indices, "order": order,
            "hyperparameters": hp,
            "z": {str(critic_streams(j)[0]): zs[j] for j in range(n_critic)},
            "digest_index": digest_index,
            "weights_hash": {h: out[h]["weights_hash"] for h in GAN_HEADS},
            "steps": {h: out[h]["losses"] for h in GAN_HEADS},
        }
        path = os.path.join(args.write_fixture, "gan_step_pytorch_check.json")
        with open(path, "w") as f:
            json.dump(fixture, f, indent=None, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    return 0


# ---------------------------------------------------------------- data


def mnist_bytes(split, indices):
    """The bytes of images `indices` of an MNIST split, one list of 784 per image."""
    prefix = {"train": "train", "test": "t10k"}[split]
    base = os.path.join(ROOT, "data", "mnist", f"{prefix}-images-idx3-ubyte")
    if os.path.exists(base + ".gz"):
        with gzip.open(base + ".gz", "rb") as f:
            raw = f.read()
    else:
        with open(base, "rb") as f:
            raw = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 0x803 and (rows, cols) == (28, 28), (magic, rows, cols)
    out = []
    for i in indices:
        if not 0 <= i < n:
            raise IndexError(f"image {i} of {n}")
        out.append(list(raw[16 + i * 784 : 16 + (i + 1) * 784]))
    return out


def mnist_images(split, indices):
    """float32 images [N, 1, 28, 28] of `indices` of an MNIST split, byte / 255
    (the GAN maps them on to [-1, 1] as 2 x - 1 in float32, as the engine)."""
    out = mnist_bytes(split, indices)
    # The engine computes f32(byte) / 255 in f32 (correctly rounded); so does this.
    return (torch.tensor(out, dtype=torch.float32) / 255.0).reshape(-1, 1, 28, 28)


# ---------------------------------------------------------------- main


def fmt_f32_exact(v):
    """Shortest decimal that parses (via float64) back to the float32 `v`."""
    want = struct.pack("<f", v)
    for p in range(1, 10):
        s = f"{v:.{p}g}"
        if struct.pack("<f", float(s)) == want:
            return s
    raise AssertionError(v)


def fnv1a_weights(weights):
    """FNV-1a 64 of the weights as tests/it/gan_check_model.rs's
    `weights_hash`: per tensor in name order, the name's bytes, a zero byte,
    the float32 little-endian bytes; folded to 52 bits."""
    h = 0xCBF29CE484222325
    mask = (1 << 64) - 1
    for name in sorted(weights):
        t = weights[name].to(torch.float32).contiguous().flatten()
        for b in name.encode("utf-8") + b"\0" + struct.pack(f"<{t.numel()}f", *t.tolist()):
            h = ((h ^ b) * 0x100000001B3) & mask
    return (h ^ (h >> 52)) & ((1 << 52) - 1)


def load_twin(path, model, meta_want):
    """Load the weights of the checkpoint at `path` into `model` (float64),
    refusing other metadata; returns (weights, metadata)."""
    tensors, meta = read_safetensors(path)
    for k, v in meta_want.items():
        if str(meta.get(k)) != str(v):
            sys.exit(f"{path}: metadata {meta} does not have {k} = {v}")
    weights = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    missing, unexpected = model.load_state_dict({k: v.to(DT) for k, v in weights.items()}, strict=False)
    # BatchNorm's num_batches_tracked only counts training steps; the engine has none.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"{path}: missing {missing}, unexpected {unexpected}")
    return weights, meta


def main_gan(args):
    """The GAN's eval-mode images, logits and losses against the engine's."""
    with open(os.path.join(args.bundle, "gan_bundle.json")) as f:
        bundle = json.load(f)
    latent = int(bundle["latent"])
    indices = [int(i) for i in bundle["indices"]]
    n = len(indices)
    z32 = torch.tensor(bundle["z"], dtype=torch.float32).reshape(n, latent)
    real32 = mnist_images(bundle["split"], indices).reshape(n, 784) * 2.0 - 1.0
    print(f"batch: MNIST {bundle['split']} images {indices} (byte / 255 * 2 - 1), latent {latent}, "
          f"z [{n}, {latent}]; engine on {bundle.get('adapter', '?')}, {bundle.get('train_steps', '?')} training steps")
    worst = 0.0  # largest |diff| / (atol + rtol |torch|) over every compared value
    atol = args.atol

    def compare(what, engine, torch_vals):
        nonlocal worst
        e = torch.tensor(engine, dtype=DT).reshape(torch_vals.shape)
        d = (e - torch_vals).abs()
        ratio = (d / (atol + args.rtol * torch_vals.abs())).max().item()
        worst = max(worst, ratio)
        print(f"  {what:<22} max |engine - torch| {d.max().item():.3e}  "
              f"(max |torch| {torch_vals.abs().max().item():.3f}, {ratio:.3f} of tol)")

    results = {}
    for head in GAN_HEADS:
        entry = bundle["heads"][head]
        path = os.path.join(args.bundle, entry["checkpoint"])
        model = GanTwin(latent, head)
        weights, _ = load_twin(path, model, {"model": "gan", "latent_dim": latent, "d_head": head})
        model = model.to(DT).eval()  # batch norm from running statistics, dropout off
        h = fnv1a_weights(weights)
        if h != int(entry["weights_hash"]):
            sys.exit(f"{path}: weights hash {h} != the engine's {entry['weights_hash']}")
        with torch.no_grad():
            images = model.generate(z32.to(DT))
            real_logits = model.discriminate(real32.to(DT))
            fake_logits = model.discriminate(images)
            d_loss = (bce_logits_mean(real_logits, 1.0) + bce_logits_mean(fake_logits, 0.0)).item()
            g_loss = bce_logits_mean(fake_logits, 1.0).item()
        print(f"{head} head: {path} ({len(weights)} weight tensors, "
              f"{sum(v.numel() for v in weights.values())} values with the running statistics, weights hash {h:#x})")
        print(f"  pytorch {torch.__version__} float64 real logits: " + " ".join(f"{v:.6f}" for v in real_logits.tolist()))
        print(f"  pytorch float64 fake logits: " + " ".join(f"{v:.6f}" for v in fake_logits.tolist()))
        print(f"  images: mean {images.mean().item():.4f}, std {images.std().item():.4f}, "
              f"min {images.min().item():.4f}, max {images.max().item():.4f}")
        compare("images [8, 784]", entry["engine_images"], images)
        compare("real logits [8]", entry["engine_real_logits"], real_logits)
        compare("fake logits [8]", entry["engine_fake_logits"], fake_logits)
        for name, tv in (("d_loss", d_loss), ("g_loss", g_loss)):
            ev = float(entry[f"engine_{name}"])
            compare(name, [ev], torch.tensor([tv], dtype=DT))
            print(f"    pytorch {tv:.9f} engine {ev:.9f}")
        with torch.no_grad():
            losses = {k: (d.item(), g.item()) for k, (d, g) in gan_losses(real_logits, fake_logits).items()}
        for loss, (td, tg) in losses.items():
            if loss not in entry["engine_losses"]:
                print(f"  {loss}: not in the bundle (an engine without it): PyTorch's only")
                continue
            ed, eg = (float(v) for v in entry["engine_losses"][loss])
            compare(f"{loss} d, g", [ed, eg], torch.tensor([td, tg], dtype=DT))
        results[head] = dict(hash=h, images=images, real=real_logits, fake=fake_logits, losses=losses,
                             d_loss=d_loss, g_loss=g_loss,
                             engine_d_loss=float(entry["engine_d_loss"]),
                             engine_g_loss=float(entry["engine_g_loss"]))
    gdiff = (results["global_max_pool"]["images"] - results["flatten"]["images"]).abs().max().item()
    if gdiff != 0.0:
        sys.exit(f"the two heads' generators differ ({gdiff}): the seeded init is not head-independent")
    ok = worst <= 1.0
    print(f"largest difference: {worst:.3f} of the tolerance atol {atol:g} + rtol {args.rtol:g} |torch| "
          f"({'within' if ok else 'OUTSIDE'})")

    if args.write_fixture:
        def tensor(t):
            t = torch.as_tensor(t).to(torch.float32)
            return '{"shape": %s, "data": [%s]}' % (json.dumps(list(t.shape)),
                                                     ", ".join(fmt_f32_exact(v) for v in t.flatten().tolist()))
        lines = [
            ("description", json.dumps(
                "The engine GAN of tests/it/gan_check_model.rs (latent 2, seed 7, untrained: seeded init with "
                "hash-derived batch norms and biases), rebuilt by the test and pinned by "
                "<head>_weights_hash; PyTorch's float64 eval-mode outputs (tools/check_with_pytorch.py "
                "--model gan): torch_images = G(z) [N, 784] (same for both heads), and per discriminator "
                "head the logits on the real batch (MNIST test images at `indices`, byte / 255 * 2 - 1) "
                "and on G(z), d_loss = BCE(real, 1) + BCE(fake, 0) and g_loss = BCE(fake, 1) (means); "
                "<head>_torch_<loss>_d_loss and _g_loss: every GAN loss of those logits (gan_losses). "
                "engine_* are the engine's values when the fixture was written.")),
            ("latent", str(latent)),
            ("seed", str(int(bundle["seed"]))),
            ("train_steps", str(int(bundle.get("train_steps", 0)))),
            ("indices", tensor(indices)),
            ("z", tensor(z32)),
            ("torch_images", tensor(results["global_max_pool"]["images"])),
        ]
        for head in GAN_HEADS:
            r = results[head]
            lines += [
                (f"{head}_weights_hash", str(r["hash"])),
                (f"{head}_torch_real_logits", tensor(r["real"])),
                (f"{head}_torch_fake_logits", tensor(r["fake"])),
                (f"{head}_torch_d_loss", repr(r["d_loss"])),
                (f"{head}_torch_g_loss", repr(r["g_loss"])),
                (f"{head}_engine_d_loss", repr(r["engine_d_loss"])),
                (f"{head}_engine_g_loss", repr(r["engine_g_loss"])),
            ]
            for loss, (td, tg) in r["losses"].items():
                lines += [(f"{head}_torch_{loss}_d_loss", repr(td)),
                          (f"{head}_torch_{loss}_g_loss", repr(tg))]
        body = "{\n" + ",\n".join(f"  {json.dumps(k)}: {v}" for k, v in lines) + "\n}\n"
        json.loads(body)
        out = os.path.join(args.write_fixture, "gan_pytorch_check.json")
        with open(out, "w") as f:
            f.write(body)
        print(f"wrote {out}")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", help="folder with bundle.json (VAE) or gan_bundle.json (GAN) and the checkpoints they name")
    ap.add_argument("--model", choices=("vae", "gan", "gan-step"), default="vae",
                    help="which bundle to check (default vae); gan-step: one GAN training step per loss "
                         "from gan_bundle.json's checkpoints, in float64 (writes the step fixture)")
    ap.add_argument("--rtol", type=float, default=1e-5,
                    help="relative agreement asked (VAE: of the total; GAN: of every value; default 1e-5)")
    ap.add_argument("--atol", type=float, default=1e-5,
                    help="GAN only: absolute agreement asked of every value, added to rtol |torch| (default 1e-5)")
    ap.add_argument("--write-fixture", metavar="DIR",
                    help="also write DIR/vae_pytorch_check.{safetensors,json} (VAE) or DIR/gan_pytorch_check.json (GAN)")
    ap.add_argument("--gan-loss", nargs="+", choices=GAN_LOSSES, default=list(GAN_LOSSES),
                    help="gan-step only: the losses to step (default all)")
    ap.add_argument("--step", type=int, default=2, help="gan-step only: the step index (default 2)")
    ap.add_argument("--batch", type=int, default=8,
                    help="gan-step only: the batch, the check model's (default 8)")
    ap.add_argument("--n-critic", type=int, default=5,
                    help="gan-step only: the Wasserstein GAN's critic iterations (default 5)")
    ap.add_argument("--mistake", choices=STEP_MISTAKES,
                    help="gan-step only: plant one deliberate mistake in the twin (to measure what the "
                         "Rust test catches; never for the fixture)")
    ap.add_argument("--compare", metavar="FIXTURE",
                    help="gan-step only: print how far this run's digests are from FIXTURE's")
    args = ap.parse_args()
    if args.mistake and args.write_fixture:
        sys.exit("--mistake is for measuring the check, not for writing its fixture")

    torch.use_deterministic_algorithms(True)
    if args.model == "gan":
        return main_gan(args)
    if args.model == "gan-step":
        return main_gan_step(args)
    with open(os.path.join(args.bundle, "bundle.json")) as f:
        bundle = json.load(f)
    latent = int(bundle["latent"])
    indices = [int(i) for i in bundle["indices"]]
    n = len(indices)
    tensors, meta = read_safetensors(os.path.join(args.bundle, bundle["checkpoint"]))
    if meta.get("model") != "vae" or int(meta.get("latent_dim", latent)) != latent:
        sys.exit(f"checkpoint metadata {meta} is not a latent-{latent} VAE")
    weights = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}

    model = VaeTwin(latent)
    model.load_state_dict({k: v.to(DT) for k, v in weights.items()}, strict=True)
    model = model.to(DT).eval()

    x32 = mnist_images(bundle["split"], indices)
    eps32 = torch.tensor(bundle["eps"], dtype=torch.float32).reshape(n, latent)
    with torch.no_grad():
        recon, kl, recon_rows, kl_rows = model.loss(x32.to(DT), eps32.to(DT))
    recon, kl = recon.item(), kl.item()
    er, ek = float(bundle["engine_recon"]), float(bundle["engine_kl"])

    print(f"checkpoint: {os.path.join(args.bundle, bundle['checkpoint'])} "
          f"({len(weights)} weight tensors, {sum(v.numel() for v in weights.values())} parameters)")
    print(f"batch: MNIST {bundle['split']} images {indices}, latent {latent}, "
          f"engine trained {bundle.get('train_steps', '?')} steps on {bundle.get('adapter', '?')}")
    print(f"pytorch {torch.__version__} float64 per-image recon: "
          + " ".join(f"{v:.4f}" for v in recon_rows.tolist()))
    print(f"pytorch float64 per-image kl:    " + " ".join(f"{v:.6f}" for v in kl_rows.tolist()))
    print(f"{'':8} {'recon':>16} {'kl':>12} {'total':>16}")
    print(f"{'pytorch':8} {recon:16.9f} {kl:12.9f} {recon + kl:16.9f}")
    print(f"{'engine':8} {er:16.9f} {ek:12.9f} {er + ek:16.9f}")
    dr, dk, dt = er - recon, ek - kl, (er + ek) - (recon + kl)
    print(f"{'diff':8} {dr:16.3e} {dk:12.3e} {dt:16.3e}")
    rel = abs(dt) / abs(recon + kl)
    ok = rel <= args.rtol
    print(f"relative difference of the total: {rel:.3e} ({'within' if ok else 'OUTSIDE'} rtol {args.rtol:g})")

    if args.write_fixture:
        out = args.write_fixture
        name = "vae_pytorch_check"
        # Weights only: the Adam moments do not enter the loss (the test
        # restores them as zeros), and leaving them out keeps the file at a third.
        fmeta = {k: v for k, v in meta.items()}
        fmeta["note"] = "weights of the engine VAE checkpoint, Adam moments left out; see vae_pytorch_check.json"
        write_safetensors(os.path.join(out, name + ".safetensors"), weights, fmeta)
        lines = [
            ("description", json.dumps(
                "Engine VAE (latent 2) checkpoint weights in vae_pytorch_check.safetensors, the batch "
                "(MNIST test images at `indices`, byte / 255), the noise eps [N, L], and the negative ELBO "
                "terms PyTorch (float64, tools/check_with_pytorch.py) computes for them: torch_recon "
                "(per-image BCE-with-logits summed over 784 pixels, batch mean) and torch_kl (analytic KL, "
                "batch mean), in nats. engine_* are the engine's values when the fixture was written.")),
            ("latent", str(latent)),
            ("train_steps", str(int(bundle.get("train_steps", 0)))),
            ("indices", '{"shape": [%d], "data": [%s]}' % (n, ", ".join(str(i) for i in indices))),
            ("eps", '{"shape": [%d, %d], "data": [%s]}'
             % (n, latent, ", ".join(fmt_f32_exact(v) for v in eps32.flatten().tolist()))),
            ("torch_recon", repr(recon)),
            ("torch_kl", repr(kl)),
            ("torch_recon_rows", '{"shape": [%d], "data": [%s]}'
             % (n, ", ".join(fmt_f32_exact(v) for v in recon_rows.to(torch.float32).tolist()))),
            ("engine_recon", repr(er)),
            ("engine_kl", repr(ek)),
        ]
        body = "{\n" + ",\n".join(f"  {json.dumps(k)}: {v}" for k, v in lines) + "\n}\n"
        json.loads(body)
        with open(os.path.join(out, name + ".json"), "w") as f:
            f.write(body)
        print(f"wrote {os.path.join(out, name)}.safetensors and .json")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
