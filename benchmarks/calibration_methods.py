"""The calibration method's alternatives, measured on the README's digits flow (docs/calibration.md).

    python benchmarks/calibration_methods.py RUN [--presentations 20000] [--variants default,random,...]

RUN is a trained digits run (`mgcompile train cifar_resnet --data digits --epochs 3 --out RUN`). Each variant
converts RUN at g8/θ16, calibrates it on digits' training images (labels never read) and prints its test top-1,
its top-1 agreement with the original on the held-out validation split, and the seconds the fit took, beside the
original's test top-1. Variants: ``default`` (the shipped method), ``random`` (cycles from ``--init random``),
``global`` (no teacher-forced phase), ``local`` (teacher-forced only), ``augment`` (the data set's training
augmentation on the calibration images), ``none`` (no calibration: ``--init base`` alone).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

VARIANTS = ("none", "default", "random", "global", "local", "augment")


def top1(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model.eval()(images).argmax(1) == labels).float().mean())


def main() -> None:
    from mgcompile.api import load
    from mgcompile.cli.calibrate import normalisation_of
    from mgcompile.refs import resolve
    from mgcompile.calibration import CalibrationConfig, calibrate
    from mgcompile.train.calibration_data import calibration_images
    from mgcompile.train.data import load_source, make_splits

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--presentations", type=int, default=20_000)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    original = load(args.run).eval()
    c, h, w = original.mg_graph.input_shape()
    test = make_splits(load_source("digits"), (h, w)).test
    x_test = torch.stack([test[i][0] for i in range(len(test))])
    y_test = torch.tensor([test[i][1] for i in range(len(test))])
    rows = {"original": {"top1": top1(original, x_test, y_test)}}
    print(f"original: test top-1 {rows['original']['top1']:.4f}", flush=True)
    for variant in args.variants.split(","):
        r = resolve(args.run, group_size=8, coarsest=16, init="random" if variant == "random" else "base")
        mg = r.model()
        norm = normalisation_of(r.report["original"], original)
        images = calibration_images("digits", data_dir=None, size=(h, w), channels=c, norm=norm,
                                    augment=variant == "augment")
        fraction = {"global": 0.0, "local": 1.0}.get(variant, CalibrationConfig.local_fraction)
        start = time.perf_counter()
        agreement = None
        if variant != "none":
            report = calibrate(mg, original, images.fit, heldout=images.heldout,
                               config=CalibrationConfig(presentations=args.presentations, local_fraction=fraction))
            agreement = report["heldout"]["agreement"]
        rows[variant] = {"top1": top1(mg, x_test, y_test), "agreement": agreement,
                         "seconds": round(time.perf_counter() - start, 1)}
        print(f"{variant}: {json.dumps(rows[variant])}", flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
