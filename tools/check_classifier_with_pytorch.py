#!/usr/bin/env python3
"""Load the committed classifier (data/classifier/classifier.safetensors)
into its PyTorch twin, print its MNIST test accuracy, and write the test
fixture tests/fixtures/classifier_pytorch_check.json: the penultimate
features and class probabilities of the first 16 test images, float64, for
tests/it/classifier.rs to compare with the engine's.

Usage (from the repository root; see tools/README.md):

    /path/to/venv/bin/python tools/check_classifier_with_pytorch.py [--write-fixture tests/fixtures]

The twin (module indices are the checkpoint names; src/models/classifier.rs):

    net = Sequential(Conv2d(1, 16, 5, padding=2), ReLU, MaxPool2d(2),
                     Conv2d(16, 32, 5, padding=2), ReLU, MaxPool2d(2),
                     Flatten, Linear(1568, 128), ReLU,       # features: after this ReLU
                     Linear(128, 10))                        # logits -> softmax

in float64 on the CPU from the exact float32 weights and pixels (byte / 255
in float32, as the engine).
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_with_pytorch import ROOT, mnist_images, read_safetensors  # noqa: E402

DT = torch.float64
N_FIXTURE = 16


def twin():
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10),
    ).to(DT)


def mnist_labels(split):
    import gzip
    prefix = {"train": "train", "test": "t10k"}[split]
    base = os.path.join(ROOT, "data", "mnist", f"{prefix}-labels-idx1-ubyte")
    opener = (lambda p: gzip.open(p + ".gz", "rb")) if os.path.exists(base + ".gz") else (lambda p: open(p, "rb"))
    with opener(base) as f:
        raw = f.read()
    return list(raw[8:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "data", "classifier", "classifier.safetensors"))
    ap.add_argument("--write-fixture", metavar="DIR", help="write classifier_pytorch_check.json into DIR")
    args = ap.parse_args()

    tensors, meta = read_safetensors(args.checkpoint)
    net = twin()
    weights = {k.removeprefix("net."): v.to(DT) for k, v in tensors.items() if k.startswith("net.")}
    missing, unexpected = net.load_state_dict(weights, strict=False)
    if missing or unexpected:
        sys.exit(f"{args.checkpoint}: missing {missing}, unexpected {unexpected}")
    print(f"checkpoint: {args.checkpoint} ({sum(v.numel() for v in weights.values())} parameters)")

    labels = torch.tensor(mnist_labels("test"))
    images = mnist_images("test", range(len(labels))).to(DT)
    with torch.no_grad():
        logits = torch.cat([net(images[i : i + 1000]) for i in range(0, len(images), 1000)])
    acc = (logits.argmax(1) == labels).double().mean().item()
    print(f"pytorch {torch.__version__} float64 test accuracy: {acc:.4f} on {len(labels)} images")

    x = images[:N_FIXTURE]
    with torch.no_grad():
        feats = net[:9](x)
        probs = torch.softmax(net[9](feats), dim=1)
    if args.write_fixture:
        out = os.path.join(args.write_fixture, "classifier_pytorch_check.json")
        def tensor(t):
            return {"shape": list(t.shape), "data": t.flatten().tolist()}

        doc = {
            "description": f"tools/check_classifier_with_pytorch.py: the PyTorch {torch.__version__} "
                           "float64 twin of data/classifier/classifier.safetensors on MNIST test "
                           f"images [0, {N_FIXTURE}): penultimate features (after the ReLU) and "
                           "softmax probabilities; test_accuracy over all 10,000 test images",
            "count": N_FIXTURE,
            "test_accuracy": acc,
            "features": tensor(feats),
            "probs": tensor(probs),
        }
        with open(out, "w") as f:
            json.dump(doc, f)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
