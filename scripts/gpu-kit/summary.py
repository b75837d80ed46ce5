#!/usr/bin/env python3
"""The GPU kit's summary: read every step's log (run.sh's logs folder), the
step table and the comparison's folder, and write OUT/summary.md and
OUT/summary.json (each to a temporary name, then renamed).

One table: figure, engine, PyTorch, ratio (engine / PyTorch, so above 1
means the engine is faster or, for memory, larger), unit. Engine figures
come from the bench lines (`images/s NAME: X ... | ... peak_bytes P`,
`GFLOP/s NAME: X ...`) and the training runs' "ready in X s"; PyTorch's
from tools/torch_speed.py's JSON. A figure a step did not produce is
absent, and the step's status (skipped, failed, timeout) says why.
"""

import argparse
import glob
import json
import os
import re

STEP_LINE = re.compile(
    r"^images/s (\S+): ([\d.]+) best ([\d.]+) \(median ([\d.]+) ms per step of (\d+), "
    r"(\d+) per submit, (.*)\) \| (.*)$"
)
KERNEL_LINE = re.compile(r"^GFLOP/s (.+?): ([\d.]+) best ([\d.]+) ")
READY = re.compile(r"^ready in ([\d.]+) s")
TESTS = re.compile(r"^test result: (\w+)\. (\d+) passed; (\d+) failed; (\d+) ignored")
TORCH_NAME = {
    "vae_train_step": "vae",
    "gan_train_step": "gan_global_max_pool",
    "gan_flatten_train_step": "gan_flatten",
    "classifier_train_step": "classifier",
}


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def step_lines(text):
    out = []
    for line in text.splitlines():
        m = STEP_LINE.match(line.strip())
        if not m:
            continue
        kv = m.group(8).split()
        counts = {kv[i]: int(kv[i + 1]) for i in range(0, len(kv) - 1, 2)}
        out.append(
            {
                "name": m.group(1),
                "images_per_s": float(m.group(2)),
                "best_images_per_s": float(m.group(3)),
                "ms_per_step": float(m.group(4)),
                "batch": int(m.group(5)),
                "adapter": m.group(7),
                **counts,
            }
        )
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", required=True)
    ap.add_argument("--steps", required=True)
    ap.add_argument("--compare", required=True)
    ap.add_argument("--minutes", type=int, required=True)
    ap.add_argument("--dry-run", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    status = []
    with open(a.steps) as f:
        next(f)
        for line in f:
            name, st, secs, note = (line.rstrip("\n").split("\t") + [""])[:4]
            status.append({"step": name, "status": st, "seconds": int(secs), "note": note})

    engine = []
    for path in sorted(glob.glob(os.path.join(a.logs, "steps-*.log"))):
        tag = os.path.basename(path)[len("steps-") : -len(".log")]
        for r in step_lines(read(path)):
            r["autotune"] = "off" if tag.endswith("autotune-off") else "default"
            engine.append(r)
    torch = {}
    tj = os.path.join(a.logs, "torch_speed.json")
    torch_meta = None
    if os.path.exists(tj):
        with open(tj) as f:
            t = json.load(f)
        torch_meta = {k: t[k] for k in ("torch", "device_name", "skipped") if k in t}
        for r in t["results"]:
            torch[(r["model"], r["batch"], r["mode"])] = r

    figures = []

    def fig(name, eng, pt, unit):
        ratio = eng / pt if eng is not None and pt else None
        figures.append({"figure": name, "engine": eng, "pytorch": pt, "ratio": ratio, "unit": unit})

    for r in engine:
        if r["autotune"] != "default":
            continue
        tn = TORCH_NAME.get(r["name"], r["name"])
        b = r["batch"]
        for mode in ("eager", "graph"):
            t = torch.get((tn, b, mode))
            fig(f"{r['name']} b{b} vs torch {mode}", r["images_per_s"],
                t and t["images_per_s"], "images/s")
        t = torch.get((tn, b, "eager"))
        fig(f"{r['name']} b{b} peak memory", r.get("peak_bytes", 0) / 2**20 or None,
            t and t["peak_bytes"] and t["peak_bytes"] / 2**20, "MiB")
        fig(f"{r['name']} b{b} dispatches per step", r.get("dispatches"), None, "dispatches")
    for r in engine:
        if r["autotune"] == "off":
            tuned = next((e for e in engine if e["name"] == r["name"] and e["batch"] == r["batch"]
                          and e["autotune"] == "default"), None)
            fig(f"{r['name']} b{r['batch']} autotuned vs autotune off",
                tuned and tuned["images_per_s"], r["images_per_s"], "images/s (ratio: tuned / off)")
    for phase in ("cold", "warm"):
        ready = READY.findall("\n".join(l.strip() for l in read(os.path.join(a.logs, f"{phase}.log")).splitlines()))
        for model, s in zip(("train_vae", "train_gan"), ready):
            fig(f"{model} --preset tiny: ready in ({phase})", float(s), None, "s")
    kernels = []
    for line in read(os.path.join(a.logs, "kernels.log")).splitlines():
        m = KERNEL_LINE.match(line.strip())
        if m:
            kernels.append({"kernel": m.group(1), "gflops": float(m.group(2)), "best": float(m.group(3))})
    tests = {}
    for policy in ("gpu", "cpu"):
        runs = TESTS.findall(read(os.path.join(a.logs, f"tests-{policy}.log")))
        if runs:
            tests[policy] = {
                "binaries": len(runs),
                "passed": sum(int(r[1]) for r in runs),
                "failed": sum(int(r[2]) for r in runs),
                "ignored": sum(int(r[3]) for r in runs),
            }
    report = os.path.join(a.compare, "report.json")
    compare = None
    if os.path.exists(report):
        with open(report) as f:
            rep = json.load(f)
        compare = {"finished": True, "preset": rep.get("preset"), "seeds": rep.get("seeds"),
                   "verdicts": rep.get("verdicts")}
    elif os.path.isdir(a.compare):
        runs = {}
        for m in sorted(glob.glob(os.path.join(a.compare, "seed-*", "*", "metrics.json"))):
            with open(m) as f:
                runs[os.path.relpath(os.path.dirname(m), a.compare)] = len(json.load(f)["epochs"])
        compare = {"finished": False, "epochs_done": runs}

    adapter = engine[0]["adapter"] if engine else None
    summary = {
        "adapter": adapter,
        "dry_run": bool(a.dry_run),
        "minutes": a.minutes,
        "steps": status,
        "figures": figures,
        "kernels": kernels,
        "tests": tests,
        "torch": torch_meta,
        "compare": compare,
    }

    def num(v, unit=""):
        if v is None:
            return "-"
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    md = ["# GPU kit summary", ""]
    md.append(f"Adapter: {adapter or 'no bench ran'}; budget {a.minutes} min"
              + (" (dry run: tiny sizes)" if a.dry_run else "") + ".")
    if torch_meta:
        md.append(f"PyTorch {torch_meta.get('torch')} on {torch_meta.get('device_name')}.")
    md += ["", "| figure | engine | PyTorch | ratio | unit |", "|---|---:|---:|---:|---|"]
    for f_ in figures:
        md.append(f"| {f_['figure']} | {num(f_['engine'])} | {num(f_['pytorch'])} | "
                  f"{num(f_['ratio'])} | {f_['unit']} |")
    md += ["", "## Steps", "", "| step | status | seconds | note |", "|---|---|---:|---|"]
    for s in status:
        md.append(f"| {s['step']} | {s['status']} | {s['seconds']} | {s['note']} |")
    if tests:
        md += ["", "## Tests", ""]
        for p, t in tests.items():
            md.append(f"- policy {p}: {t['passed']} passed, {t['failed']} failed, "
                      f"{t['ignored']} ignored ({t['binaries']} binaries)")
    if kernels:
        md += ["", "## Kernels", "", "| kernel | GFLOP/s | best |", "|---|---:|---:|"]
        md += [f"| {k['kernel']} | {k['gflops']:.3g} | {k['best']:.3g} |" for k in kernels]
    md += ["", "## Comparison", "", "```", json.dumps(compare, indent=1), "```", ""]

    for name, text in (("summary.json", json.dumps(summary, indent=1)), ("summary.md", "\n".join(md))):
        tmp = os.path.join(a.out, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, os.path.join(a.out, name))


if __name__ == "__main__":
    main()
