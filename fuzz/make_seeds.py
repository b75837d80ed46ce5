#!/usr/bin/env python3
"""Write the seed corpora for the fuzz targets: corpus/idx and corpus/checkpoint.

Run from fuzz/: `python3 make_seeds.py`. Deterministic (gzip mtime 0), standard
library only. corpus/ is ignored by git: libFuzzer adds what it finds there.
"""
import gzip
import json
import os
import struct


def idx(dims, data):
    head = bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + bytes(data)


def gz(b):
    return gzip.compress(b, compresslevel=9, mtime=0)


def safetensors(tensors, metadata):
    """tensors: list of (name, shape, list of floats), written as F32."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, shape, values in tensors:
        blob = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # pad the header to 8 bytes, as safetensors does
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write(d, name, b):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(b)


labels = idx([3], [5, 0, 4])
images = idx([2, 28, 28], [(i * 37) % 256 for i in range(2 * 28 * 28)])
small = idx([2, 4, 4], range(32))
for name, b in [
    ("labels", labels),
    ("labels.gz", gz(labels)),
    ("images", images),
    ("images.gz", gz(images)),
    ("small", small),
    ("small.gz", gz(small)),
    ("two-members.gz", gz(small[:10]) + gz(small[10:])),
    ("empty", idx([0], [])),
    # Regression inputs (fuzz/README.md): sizes whose product overflows 64 bits,
    # the fuzzer's own find (minimized) and a product that wraps to 0.
    ("overflow-found.gz", bytes.fromhex("1f8b08000000000002036360e060ff390000")),
    ("overflow-wraps-to-0", idx([1, 2**31, 2**31, 4], [])),
    # An empty array (a size is 0) whose other sizes multiply past 2^64: it
    # loads, holding nothing; the target's own check once overflowed on it.
    ("empty-huge-sizes", idx([0xFFFF0001, 0x8000003A, 0x80000000, 0], [])),
]:
    write("corpus/idx", name, b)

for name, b in [
    ("one", safetensors([("encoder.0.bias", [4], [0.5, -1.0, 2.0, 3.25])], {"model": "vae"})),
    (
        "two",
        safetensors(
            [("a.weight", [2, 3], [float(i) for i in range(6)]), ("a.bias", [2], [1.0, -1.0])],
            {"model": "gan", "latent_dim": "2"},
        ),
    ),
    ("none", safetensors([], {"model": "vae"})),
]:
    write("corpus/checkpoint", name, b)

# Regression input (fuzz/README.md): 8 tensors of 2^61 - 1 bytes chained to an
# end offset of 2^64 - 8, which overflowed inside the safetensors crate.
S = 2**61 - 1
h = {f"t{i}": {"dtype": "U8", "shape": [S], "data_offsets": [i * S, (i + 1) * S]} for i in range(8)}
h = json.dumps(h, separators=(",", ":")).encode()
write("corpus/checkpoint", "offsets-overflow", struct.pack("<Q", len(h)) + h)
