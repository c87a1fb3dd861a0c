"""Train a base and an MG CIFAR-style ResNet on fashion-mnist with the same recipe; print them side by side.

The paper's Table 1 shape (16-32-64-128, MG with s_g=8, θ=16), narrowed in depth
(one residual step per stage by default) and run on a fixed training subset so it
fits a 2-core CPU in minutes. Needs `apt-get install -y dataset-fashion-mnist`.

    .venv/bin/python benchmarks/train_fashion_mnist.py --epochs 2 --limit-train 10000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mgcompile.train.run import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", default="16,32,64,128")
    ap.add_argument("--blocks", default="1,1,1,1")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--coarsest", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--limit-train", type=int, default=10000, help="training images (0 = all 54,000)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", help="keep the two run folders here (default: a temporary folder)")
    args = ap.parse_args()

    shape = {"channels": tuple(int(c) for c in args.channels.split(",")),
             "blocks": tuple(int(b) for b in args.blocks.split(","))}
    recipe = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "schedule": "cosine",
              "limit_train": args.limit_train or None}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        for label, mg in (("base", {}), (f"MG g{args.group_size}c{args.coarsest}",
                                         {"group_size": args.group_size, "coarsest": args.coarsest})):
            r = train("cifar_resnet", "fashion-mnist", recipe_overrides=recipe, overrides={**shape, **mg},
                      out=str(root / label.replace(" ", "_")), device=args.device, log=print)
            rows.append((label, r))
    print()
    print(f"fashion-mnist, channels {args.channels}, blocks {args.blocks}, {args.epochs} epoch(s) on "
          f"{args.limit_train or 'all'} training images, batch {args.batch_size}, cosine lr {args.lr}, device {rows[0][1]['device']}")
    print(f"{'model':<14}{'params':>10}{'test top-1':>12}{'test top-5':>12}{'train img/s':>13}")
    for label, r in rows:
        print(f"{label:<14}{r['params']:>10,}{r['test_top1']:>12.4f}{r['test_top5']:>12.4f}{r['images_per_s']:>13.0f}")
    base, mg = rows[0][1], rows[1][1]
    print(f"MG / base: params {mg['params'] / base['params']:.3f}, train throughput {mg['images_per_s'] / base['images_per_s']:.2f}x")


if __name__ == "__main__":
    main()
