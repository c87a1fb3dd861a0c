"""The zoo table: what `mgcompile convert` does to each residual CNN of torchvision and timm (random weights).

    python benchmarks/zoo.py [--group-size 32] [--coarsest 64] [--json out.json]

One row per model: residual sums found, steps converted / transitions / kept / skipped,
parameters before -> after. Nothing is timed (the conversion is exact and deterministic);
`make test-full` checks the same models forward, train, reload and export.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import torch

MODELS = [
    ("torchvision", n) for n in (
        "resnet18", "resnet34", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2",
        "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet1_0", "efficientnet_b0", "regnet_x_400mf",
        "regnet_y_400mf", "convnext_tiny")
] + [
    ("timm", n) for n in (
        "resnet34", "resnet34d", "resnet50d", "seresnet50", "resnext50_32x4d", "mobilenetv2_100",
        "mobilenetv3_large_100", "efficientnet_b0", "regnetx_002", "regnety_002", "convnext_atto", "resnext26ts")
]


def build(source: str, name: str) -> torch.nn.Module:
    if source == "torchvision":
        import torchvision

        return torchvision.models.get_model(name, weights=None)
    import timm

    return timm.create_model(name, pretrained=False)


def main() -> None:
    import mgcompile

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group-size", type=int, default=32)
    p.add_argument("--coarsest", type=int, default=64)
    p.add_argument("--json", help="also write the rows as JSON")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    print(f"g{args.group_size}/θ{args.coarsest}, input 224x224, random weights")
    print(f"{'model':<30} {'sums':>4} {'conv':>4} {'trans':>5} {'kept':>4} {'skip':>4} {'params before':>14} "
          f"{'after':>12} {'ratio':>6}")
    for source, name in MODELS:
        model = build(source, name).eval()
        base = sum(p.numel() for p in model.parameters())
        try:
            rep = mgcompile.convert(model, group_size=args.group_size, coarsest=args.coarsest, name=name,
                                    example_input=torch.randn(1, 3, 224, 224)).mg_conversion
        except mgcompile.NothingConverted as exc:
            rep = {**exc.report, "params": base, "base_params": base,
                   **{s: sum(r["status"] == s for r in exc.report["blocks"])
                      for s in ("converted", "transition", "kept", "skipped")}}
        row = {"model": f"{source}:{name}", "sums": len(rep["blocks"]),
               **{k: rep[k] for k in ("converted", "transition", "kept", "skipped", "base_params", "params")}}
        rows.append(row)
        print(f"{row['model']:<30} {row['sums']:>4} {row['converted']:>4} {row['transition']:>5} {row['kept']:>4} "
              f"{row['skipped']:>4} {row['base_params']:>14,} {row['params']:>12,} "
              f"{row['params'] / row['base_params']:>6.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"group_size": args.group_size, "coarsest": args.coarsest, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
