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
        [--model gan] --write-fixture tests/fixtures

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
    }


# ---------------------------------------------------------------- data


def mnist_images(split, indices):
    """float32 images [N, 1, 28, 28] of `indices` of an MNIST split, byte / 255
    (the GAN maps them on to [-1, 1] as 2 x - 1 in float32, as the engine)."""
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
    ap.add_argument("--model", choices=("vae", "gan"), default="vae", help="which bundle to check (default vae)")
    ap.add_argument("--rtol", type=float, default=1e-5,
                    help="relative agreement asked (VAE: of the total; GAN: of every value; default 1e-5)")
    ap.add_argument("--atol", type=float, default=1e-5,
                    help="GAN only: absolute agreement asked of every value, added to rtol |torch| (default 1e-5)")
    ap.add_argument("--write-fixture", metavar="DIR",
                    help="also write DIR/vae_pytorch_check.{safetensors,json} (VAE) or DIR/gan_pytorch_check.json (GAN)")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    if args.model == "gan":
        return main_gan(args)
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
