"""Base vs MG, side by side: parameters, MACs, inference latency (ONNX Runtime CPU, PyTorch eager,
torch.compile) and training throughput, every figure a ratio measured in the same run.

    python benchmarks/bench.py [--quick] [--rounds 3] [--out benchmarks/results/bench]

Pairs (base, its MG versions at the paper's g32/θ64):

* resnet34 vs MG-ResNet34 with the sparse and the grouped transfer (224x224);
* resnet50 vs MG-ResNet50; mobilenet_v2 vs MG-MobileNetV2 (224x224);
* the paper's widest CIFAR pair, channels 256-512-1024-2048, blocks 3-5-7-4, 100 classes (32x32);
* MobileNetV2 1.4 vs the paper's MG-MobileNetV2 2.0 (its iso-accuracy pair; latency only), and
  vs its latency-aware variant for ORT CPU ("MG 2.0 fast": ``mgcompile convert --latency-aware
  ort-cpu``, the cycles measured on this machine as no faster than their base step left base
  steps: a different network, the paper's spec unchanged);
* the narrow fashion-mnist pair 16-32-64-128, blocks 2-3-3-3 (28x28, 1 channel; training only).

Metrics per model: median latency at batch 1 and 8 in ONNX Runtime (CPU provider, level
``all``, the model exported by ``mgcompile export --target ort-cpu``), in PyTorch eager and
under ``torch.compile`` (both channels_last, BN folded: ``--target torch``), and training
images/s (forward + backward + SGD step, channels_last; 224x224 pairs at batch 16, 32x32
pairs at batch 128, the wide pair at ``--wide-train-batch``); ``--metrics train_compile``
adds the training step under ``torch.compile`` (asked for only: compiling the backward
takes minutes on 2 cores). Every measurement runs in its
own process; models are alternated within each of ``--rounds`` rounds, the MG/base ratio
is taken per round and the median of those ratios reported, with "ratio / MAC ratio"
(1.00: MG runs at the base's efficiency per MAC). The machine's load is recorded before
and after; a run on a loaded machine says so. Results: a table on stdout and
``results.json`` (machine, load, versions, every raw number), rewritten after every pair; a
run of some ``--pairs`` / ``--metrics`` replaces those in an existing ``results.json`` and keeps
the rest (each pair records when each metric was measured and the load). ``--quick``: one narrow pair,
one round, small batches (a smoke run for `make test`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDE = dict(channels=(256, 512, 1024, 2048), blocks=(3, 5, 7, 4), num_classes=100, input_size=(32, 32))
NARROW = dict(channels=(16, 32, 64, 128), blocks=(2, 3, 3, 3), in_channels=1, num_classes=10, input_size=(28, 28))
G32 = dict(group_size=32, coarsest=64)

# pair name -> (base spec kwargs, {MG label: spec kwargs}, metrics, train batch)
PAIRS: dict[str, tuple[dict, dict[str, dict], tuple[str, ...], int]] = {
    "resnet34": ({"name": "resnet34"}, {"MG sparse": {"name": "mg_resnet34_g32c64"},
                                         "MG grouped": {"name": "mg_resnet34_g32c64_grouped"}},
                 ("ort", "eager", "compile", "train"), 16),
    "resnet50": ({"name": "resnet50"}, {"MG": {"name": "mg_resnet50_g32c64"}}, ("ort", "eager", "compile", "train"), 16),
    "mobilenet_v2": ({"name": "mobilenet_v2"}, {"MG": {"name": "mg_mobilenet_v2_g32c64"}},
                     ("ort", "eager", "compile", "train"), 16),
    "cifar_wide": ({"name": "cifar_resnet", **WIDE}, {"MG": {"name": "cifar_resnet", **WIDE, **G32}},
                   ("ort", "eager", "compile", "train"), 128),
    "mobilenet_v2_iso": ({"name": "mobilenet_v2_140"}, {"MG 2.0": {"name": "mobilenet_v2_200", **G32},
                                                        "MG 2.0 fast": {"name": "mobilenet_v2_200", **G32,
                                                                        "latency_aware": "ort-cpu"}},
                         ("ort", "eager"), 16),
    "fashion_narrow": ({"name": "cifar_resnet", **NARROW}, {"MG g8c16": {"name": "cifar_resnet", **NARROW,
                                                                         "group_size": 8, "coarsest": 16}},
                       ("train",), 128),
}
QUICK = {"narrow": ({"name": "cifar_resnet", "channels": (16, 32), "blocks": (1, 1), "input_size": (16, 16)},
                    {"MG": {"name": "cifar_resnet", "channels": (16, 32), "blocks": (1, 1), "input_size": (16, 16),
                            "group_size": 8, "coarsest": 16},
                     "MG fast": {"name": "cifar_resnet", "channels": (16, 32), "blocks": (1, 1), "input_size": (16, 16),
                                 "group_size": 8, "coarsest": 16, "latency_aware": "ort-cpu"}},
                    ("ort", "eager", "compile", "train"), 32)}
BATCHES = (1, 8)

CHILD = r'''
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
torch.set_flush_denormal(True)
import mgcompile
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
kw = dict(args["spec"]); name = kw.pop("name")
spec = mgcompile.model_spec(name, **kw)
shape = tuple(mgcompile.expand(spec).input_shape())
what, out = args["what"], {}
def median_ms(fn, x, warmup, repeat):
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(x); times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)
if what == "ort":
    import numpy as np
    from mgcompile.exporters.ort_run import session
    sess = session(args["onnx"], level="all", cuda=False, threads=args["threads"])
    for b in args["batches"]:
        x = np.random.default_rng(0).standard_normal((b, *shape)).astype(np.float32)
        out[b] = median_ms(lambda v: sess.run(None, {"input": v}), x, 3, args["repeat"])
elif what in ("eager", "compile"):
    model = mgcompile.build(spec, fold_bn=True).to(memory_format=torch.channels_last)
    fn = torch.compile(model) if what == "compile" else model
    with torch.inference_mode():
        for b in args["batches"]:
            x = torch.randn(b, *shape).contiguous(memory_format=torch.channels_last)
            out[b] = median_ms(fn, x, 3 if what == "eager" else 2, args["repeat"])
else:
    model = mgcompile.build(spec).train().to(memory_format=torch.channels_last)
    fn = torch.compile(model) if what == "train_compile" else model
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    b = args["train_batch"]
    x = torch.randn(b, *shape).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, spec.num_classes, (b,))
    def step(v):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(fn(v), y).backward()
        opt.step()
    ms = median_ms(step, x, 2 if what == "train_compile" else 1, args["train_steps"])
    out["img_per_s"] = 1000 * b / ms
print(json.dumps(out))
'''


def child(args: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args["threads"])}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"measurement {args['what']} of {args['spec']} failed:\n{done.stderr[-3000:]}")
    return {str(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def counts(spec_kw: dict) -> tuple[int, int]:
    import mgcompile
    from mgcompile.passes import count

    kw = dict(spec_kw)
    c = count(mgcompile.expand(mgcompile.model_spec(kw.pop("name"), **kw)))
    return c.params, c.macs


def export_onnx(spec_kw: dict, path: Path) -> None:
    """`mgcompile export --target ort-cpu` of a fresh model (over 1.5 GiB of weights: external data beside it)."""
    import mgcompile
    from mgcompile.exporters.export import export_model

    kw = dict(spec_kw)
    spec = mgcompile.model_spec(kw.pop("name"), **kw)
    graph = mgcompile.expand(spec)
    export_model(mgcompile.build(graph), graph.input_shape(), path, target="ort-cpu", verify=False)


def latency_aware(spec_kw: dict) -> tuple[dict | None, dict]:
    """A ``latency_aware: TARGET`` entry -> the spec kwargs of the variant `convert --latency-aware` builds
    (``None``: no cycle was faster, the variant would be the base network) and the step timings."""
    import mgcompile
    from mgcompile.latency import latency_aware as tune, timings_json

    kw = dict(spec_kw)
    target = kw.pop("latency_aware")
    spec, timings = tune(mgcompile.model_spec(kw.pop("name"), **kw), target)
    if spec is None:
        return None, timings_json(timings, target)
    variant = {k: v for k, v in spec_kw.items() if k != "latency_aware"}
    return {**variant, "ignored_layers": list(spec.ignored_layers)}, timings_json(timings, target)


def merged(path: Path, info: dict) -> dict:
    """``info`` with what an earlier results.json in ``path`` holds and this run did not measure: other pairs,
    and other metrics of a pair whose models and training batch are the same (``--metrics eager`` refreshes
    only eager; compared as JSON, where this run's tuples are the file's lists)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return info
    if not isinstance(old, dict) or not {"machine", "pairs"} <= set(old):  # not a bench results file: replace it
        return info
    pairs = dict(old["pairs"])
    for name, new in info["pairs"].items():
        before = pairs.get(name)
        setup = lambda pair: json.loads(json.dumps([pair.get("models"), pair.get("train_batch")]))  # noqa: E731
        if not isinstance(before, dict) or before.get("models") is None or setup(before) != setup(new):
            pairs[name] = new
            continue
        pair = {**before, **new}
        for key in ("raw", "ratios"):
            pair[key] = {label: {**before.get(key, {}).get(label, {}), **values}
                         for label, values in new.get(key, {}).items()}
        pair["measured_metrics"] = {**before.get("measured_metrics", {}), **new.get("measured_metrics", {})}
        pairs[name] = pair
    return {**info, "pairs": pairs}


def machine() -> dict:
    import onnxruntime
    import torch

    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=10, help="timed runs per latency measurement (median)")
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--wide-train-batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--pairs", help="comma-separated subset of: " + ", ".join(PAIRS))
    ap.add_argument("--metrics", help="comma-separated subset of: ort, eager, compile, train, train_compile "
                                      "(train_compile: the training step under torch.compile; only when asked)")
    ap.add_argument("--out", default="benchmarks/results/bench")
    ap.add_argument("--table", action="store_true", help="print the README table of OUT/results.json and exit")
    args = ap.parse_args()
    if args.table:
        print(readme_table(json.loads((Path(args.out) / "results.json").read_text())))
        return
    pairs = QUICK if args.quick else {k: v for k, v in PAIRS.items() if not args.pairs or k in args.pairs.split(",")}
    if args.quick:
        args.rounds, args.repeat, args.train_steps = 1, 3, 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started, load_start = time.time(), os.getloadavg()[0]
    info: dict = {"machine": machine(), "load_1min_start": load_start, "rounds": args.rounds, "repeat": args.repeat,
                  "threads": args.threads, "pairs": {}}
    with tempfile.TemporaryDirectory(prefix="mgcompile-bench-") as tmp:
        for pair, (base, mgs, metrics, train_batch) in pairs.items():
            if pair == "cifar_wide":
                train_batch = args.wide_train_batch
            if args.metrics:
                asked = args.metrics.split(",")
                metrics = tuple(m for m in metrics if m in asked)
                if "train_compile" in asked and "train" in data_metrics(pair):
                    metrics += ("train_compile",)
            models = {"base": base, **mgs}
            tuned = {}
            for label, kw in models.items():
                if kw.get("latency_aware"):
                    print(f"[{pair}] timing {label}'s steps (convert --latency-aware {kw['latency_aware']}) ...",
                          file=sys.stderr, flush=True)
                    models[label], tuned[label] = latency_aware(kw)
                    if models[label] is None:
                        print(f"[{pair}] {label}: no cycle is faster than its base step here; not measured",
                              file=sys.stderr, flush=True)
            models = {label: kw for label, kw in models.items() if kw is not None}
            rows = {label: dict(zip(("params", "macs"), counts(kw))) for label, kw in models.items()}
            onnx_paths = {}
            if "ort" in metrics:
                for label, kw in models.items():
                    path = Path(tmp) / f"{pair}_{label.replace(' ', '_')}.onnx"
                    print(f"[{pair}] exporting {label} for ort-cpu ...", file=sys.stderr, flush=True)
                    export_onnx(kw, path)
                    onnx_paths[label] = str(path)
            raw: dict = {label: {m: [] for m in metrics} for label in models}
            for r in range(args.rounds):
                for metric in metrics:
                    for label, kw in models.items():  # alternate models within a round
                        print(f"[{pair}] round {r + 1}/{args.rounds} {metric} {label}", file=sys.stderr, flush=True)
                        raw[label][metric].append(child({
                            "what": metric, "spec": kw, "batches": list(BATCHES), "repeat": args.repeat,
                            "threads": args.threads, "onnx": onnx_paths.get(label), "train_batch": train_batch,
                            "train_steps": args.train_steps}))
            info["pairs"][pair] = {"models": models, "counts": rows, "raw": raw, "train_batch": train_batch,
                                   "ratios": ratios(raw, rows, metrics), "latency_aware": tuned,
                                   "measured": time.strftime("%Y-%m-%d %H:%M"), "load_1min_end": os.getloadavg()[0],
                                   "rounds": args.rounds,
                                   "measured_metrics": {m: {"at": time.strftime("%Y-%m-%d %H:%M"), "rounds": args.rounds,
                                                            "load_1min": os.getloadavg()[0]} for m in metrics}}
            print(format_pair(pair, info["pairs"][pair], metrics), flush=True)
            write_atomic(out / "results.json", json.dumps(merged(out / "results.json", info), indent=1))
    info["load_1min_end"] = os.getloadavg()[0]
    info["wall_seconds"] = time.time() - started
    loaded = max(load_start, info["load_1min_end"]) > 0.5 * (os.cpu_count() or 1) + 0.5
    info["loaded"] = loaded
    write_atomic(out / "results.json", json.dumps(merged(out / "results.json", info), indent=1))
    print(f"wall {info['wall_seconds'] / 60:.1f} min; load {load_start:.2f} at start, {info['load_1min_end']:.2f} at "
          f"the end{' (a LOADED machine: absolute times are inflated; compare the ratios)' if loaded else ''}; "
          f"wrote {out / 'results.json'}")


def data_metrics(pair: str) -> tuple[str, ...]:
    return (QUICK if pair in QUICK else PAIRS)[pair][2]


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def ratios(raw: dict, rows: dict, metrics: tuple[str, ...]) -> dict:
    """MG/base per round, then the median over rounds (latency: lower is better; training: img/s ratio)."""
    out: dict = {}
    for label in raw:
        if label == "base":
            continue
        mac_ratio = rows[label]["macs"] / rows["base"]["macs"]
        entry: dict = {"params": rows[label]["params"] / rows["base"]["params"], "macs": mac_ratio}
        for metric in metrics:
            keys = ["img_per_s"] if metric.startswith("train") else [str(b) for b in BATCHES]
            for key in keys:
                per_round = [m[key] / b[key] for m, b in zip(raw[label][metric], raw["base"][metric])]
                ratio = statistics.median(per_round)
                name = metric if metric.startswith("train") else f"{metric}_b{key}"
                entry[name] = ratio
                if not metric.startswith("train"):
                    entry[name + "_per_mac"] = ratio / mac_ratio
        out[label] = entry
    return out


COLUMNS = (("ORT b1", "ort_b1"), ("ORT b8", "ort_b8"), ("÷MAC b1", "ort_b1_per_mac"), ("÷MAC b8", "ort_b8_per_mac"),
           ("eager b1", "eager_b1"), ("eager b8", "eager_b8"), ("compile b1", "compile_b1"),
           ("compile b8", "compile_b8"), ("train", "train"), ("train compiled", "train_compile"))


def readme_table(info: dict) -> str:
    """Every MG/base ratio of a results.json as one markdown table (``--table``: what the README shows)."""
    head = ["pair / MG model", "params", "MACs", *(c for c, _ in COLUMNS), "measured"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for pair, data in info["pairs"].items():
        for label, r in data["ratios"].items():
            cells = [f"{pair} / {label}", f"{r['params']:.3f}", f"{r['macs']:.3f}"]
            for _, key in COLUMNS:
                value = r.get(key)
                cells.append("" if value is None else f"{value:.2f}x" if key.startswith("train") else f"{value:.2f}")
            when = sorted({m["at"] if isinstance(m, dict) else m for m in data.get("measured_metrics", {}).values()})
            cells.append(", ".join(when) or data.get("measured", ""))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_pair(pair: str, data: dict, metrics: tuple[str, ...]) -> str:
    rows, raw, ratio = data["counts"], data["raw"], data["ratios"]
    lines = [f"== {pair} (training batch {data['train_batch']})"]
    head = f"{'model':<12} {'params':>12} {'GMACs':>8}"
    for metric in metrics:
        head += (f" {metric + ' b1 ms':>15} {metric + ' b8 ms':>15}" if not metric.startswith("train")
                 else f" {metric + ' img/s':>19}")
    lines.append(head)
    for label in raw:
        line = f"{label:<12} {rows[label]['params']:>12,} {rows[label]['macs'] / 1e9:>8.3f}"
        for metric in metrics:
            if metric.startswith("train"):
                line += f" {statistics.median(r['img_per_s'] for r in raw[label][metric]):>19.1f}"
            else:
                for b in BATCHES:
                    line += f" {statistics.median(r[str(b)] for r in raw[label][metric]):>15.2f}"
        lines.append(line)
    for label, e in ratio.items():
        parts = [f"params {e['params']:.3f}", f"MACs {e['macs']:.3f}"]
        for metric in metrics:
            if metric.startswith("train"):
                parts.append(f"{metric} img/s {e[metric]:.2f}x")
            else:
                parts += [f"{metric} b{b} {e[f'{metric}_b{b}']:.2f} ({e[f'{metric}_b{b}_per_mac']:.2f}/MAC)"
                          for b in BATCHES]
        lines.append(f"{label} / base: " + ", ".join(parts))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
