#!/usr/bin/env python3
"""Load an engine VAE checkpoint into its PyTorch twin and print PyTorch's
negative ELBO on a fixed batch beside the engine's.

Usage (from the repository root; see tools/README.md):

    cargo run --release --example pytorch_check_bundle      # writes target/pytorch_check/
    /path/to/venv/bin/python tools/check_with_pytorch.py target/pytorch_check

    # and, to refresh the committed test fixture (tests/pytorch_check.rs):
    /path/to/venv/bin/python tools/check_with_pytorch.py target/pytorch_check \
        --write-fixture tests/fixtures

Needs only PyTorch (the safetensors file is parsed by hand: 8-byte
little-endian header length, JSON header, raw little-endian data).

The bundle folder holds `bundle.json` (checkpoint file name, the MNIST split
and image indices of the batch, latent size, the noise `eps` [N, L], and the
engine's reconstruction and KL terms) and the checkpoint it names, written by
`Vae::checkpoint(..).save(..)`: PyTorch names and layouts, f32.

The twin (module indices are the checkpoint names; see src/models/vae.rs):

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

Loss, per image, then the batch mean, in nats (as the engine's training step):
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

    def __init__(self, cin, cout, k, stride, out):
        super().__init__(cin, cout, k, stride=stride, padding=0)
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
        return y + self.bias.view(1, -1, 1, 1)


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


# ---------------------------------------------------------------- data


def mnist_images(split, indices):
    """float32 images [N, 1, 28, 28] of `indices` of an MNIST split, byte / 255."""
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle", help="folder with bundle.json and the checkpoint it names")
    ap.add_argument("--rtol", type=float, default=1e-5, help="agreement asked of the total (default 1e-5)")
    ap.add_argument("--write-fixture", metavar="DIR", help="also write DIR/vae_pytorch_check.{safetensors,json}")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
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
