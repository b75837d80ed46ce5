#!/usr/bin/env python3
"""PyTorch twins of the engine's three training steps, timed on one device:
the figures every engine step figure of the GPU kit is divided by.

Usage (any Python with PyTorch; the GPU kit runs it, see scripts/gpu-kit):

    python tools/torch_speed.py --out torch_speed.json [--batches 32,128,512]
        [--device cuda|cpu] [--steps 30] [--modes eager,graph]

The twins are the layers of tools/check_with_pytorch.py (VaeTwin, GanTwin,
with Keras `same` padding alignment) and the LeNet of
tools/check_classifier_with_pytorch.py, trained as the engine trains them
(src/models): Adam with the Keras epsilon 1e-7 at lr 1e-3;

  - vae: encoder, reparameterisation with fresh N(0, 1) noise, decoder,
    loss = mean over the batch of (BCE-with-logits summed over pixels + KL);
  - gan (heads global_max_pool and flatten): z ~ N(0, I), G(z) with batch
    norm in training mode; D updated on [real; fake] (targets 1 and 0);
    then G updated through the updated D on the same fakes (non-saturating
    BCE, dropout on);
  - classifier: LeNet, softmax cross-entropy.

Inputs are random tensors of MNIST's shape (the speed does not depend on
the pixel values). float32, TF32 off (the engine computes in f32), cuDNN
benchmark on. Modes: `eager` (plain PyTorch) and `graph` (the whole step,
optimizer included, captured once in a CUDA graph and replayed; CUDA
only). Each figure: the median over 7 blocks of `--steps` steps after a
warm-up, ms per step and images per second, and the peak of
`torch.cuda.max_memory_allocated` over the timed steps (CUDA only).

Writes one JSON object: {"torch", "device", "device_name", "results":
[{"model", "batch", "mode", "ms_per_step", "images_per_s", "peak_bytes"}],
"skipped": [reasons]}; a figure that fails (e.g. graph capture) is listed
in "skipped" with its error, never silently left out.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_with_pytorch import GanTwin, VaeTwin  # noqa: E402

ADAM = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
BLOCKS = 7


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def adam(params, capturable):
    return torch.optim.Adam(params, capturable=capturable, **ADAM)


def vae_step(batch, dev, capturable):
    """(step function, static inputs to refresh) of one VAE training step."""
    model = VaeTwin(2).to(dev).train()
    opt = adam(model.parameters(), capturable)
    x = torch.rand(batch, 1, 28, 28, device=dev)

    def step():
        opt.zero_grad(set_to_none=False)
        eps = torch.randn(batch, 2, device=dev)
        recon, kl, _, _ = model.loss(x, eps)
        (recon + kl).backward()
        opt.step()

    return step


def gan_step(head):
    def make(batch, dev, capturable):
        model = GanTwin(2, head).to(dev).train()
        g, d = model.generator, model.discriminator
        opt_g = adam(g.parameters(), capturable)
        opt_d = adam(d.parameters(), capturable)
        real = torch.rand(batch, 784, device=dev) * 2 - 1
        ones = torch.ones(batch, device=dev)
        zeros = torch.zeros(batch, device=dev)

        def step():
            z = torch.randn(batch, 2, device=dev)
            fake = model.generate(z)
            opt_d.zero_grad(set_to_none=False)
            logits = model.discriminate(torch.cat([real, fake.detach()]))
            d_loss = F.binary_cross_entropy_with_logits(
                logits[:batch], ones
            ) + F.binary_cross_entropy_with_logits(logits[batch:], zeros)
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=False)
            for p in d.parameters():
                p.requires_grad_(False)
            g_loss = F.binary_cross_entropy_with_logits(model.discriminate(fake), ones)
            g_loss.backward()
            for p in d.parameters():
                p.requires_grad_(True)
            opt_g.step()

        return step

    return make


def classifier_step(batch, dev, capturable):
    model = lenet().to(dev).train()
    opt = adam(model.parameters(), capturable)
    x = torch.rand(batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


MODELS = {
    "vae": vae_step,
    "gan_global_max_pool": gan_step("global_max_pool"),
    "gan_flatten": gan_step("flatten"),
    "classifier": classifier_step,
}


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def median_ms(run, steps, dev):
    """Median over BLOCKS blocks of `steps` calls of `run`, ms per call."""
    times = []
    for _ in range(BLOCKS):
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            run()
        sync(dev)
        times.append((time.perf_counter() - t0) * 1e3 / steps)
    return statistics.median(times)


def measure(name, batch, mode, dev, steps):
    make = MODELS[name]
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if mode == "eager":
        step = make(batch, dev, capturable=False)
        for _ in range(3):
            step()
        run = step
    else:
        # the whole step in one CUDA graph: warm up on a side stream (as
        # the PyTorch docs ask), capture once, replay
        step = make(batch, dev, capturable=True)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        run = graph.replay
        for _ in range(3):
            run()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    ms = median_ms(run, steps, dev)
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else None
    return {
        "model": name,
        "batch": batch,
        "mode": mode,
        "ms_per_step": ms,
        "images_per_s": batch * 1e3 / ms,
        "peak_bytes": peak,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--batches", default="32,128,512")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=30, help="steps per timed block")
    ap.add_argument("--modes", default="eager,graph")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    out = {
        "torch": torch.__version__,
        "device": dev.type,
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "results": [],
        "skipped": [],
    }
    for name in a.models.split(","):
        if name not in MODELS:
            sys.exit(f"unknown model {name!r}: use {', '.join(MODELS)}")
        for batch in [int(b) for b in a.batches.split(",")]:
            for mode in a.modes.split(","):
                if mode == "graph" and dev.type != "cuda":
                    out["skipped"].append(f"{name} b{batch} graph: CUDA graphs need a CUDA device")
                    continue
                try:
                    r = measure(name, batch, mode, dev, a.steps)
                except Exception as e:  # recorded, not hidden
                    out["skipped"].append(f"{name} b{batch} {mode}: {type(e).__name__}: {e}")
                    continue
                out["results"].append(r)
                print(
                    f"torch {name} b{batch} {mode}: {r['ms_per_step']:.3f} ms/step, "
                    f"{r['images_per_s']:.0f} images/s",
                    flush=True,
                )
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
