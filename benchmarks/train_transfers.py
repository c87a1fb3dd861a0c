"""How a permuted transfer runs in training, by measurement (``TRAINING_DENSE_GROUPS``).

    python benchmarks/train_transfers.py [--rounds 3] [--models narrow,resnet34]

A sparse transfer is a fixed channel permutation and a grouped 1x1 conv. Run as written
(``index_select(1, perm)`` on the activations), every step gathers a whole activation
tensor forward and scatters its gradient back, and in a channels_last network the gather
returns NCHW, so the ops after it change layout. In training, mgcompile instead moves the
permutation into the weight of one dense 1x1 conv (built from the grouped weight each step;
``groups`` times the transfer's MACs) when the transfer has at most ``TRAINING_DENSE_GROUPS`` (1)
groups. This times one training step (forward, backward, SGD; channels_last) of MG networks
both ways, alternated within each round in one process, and prints images/s and the median
of per-round ratios (above 1: the dense-weight form is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import mgcompile
from mgcompile.backends import torch_module

MODELS = {
    "narrow": (dict(name="cifar_resnet", channels=(16, 32, 64, 128), blocks=(2, 3, 3, 3), in_channels=1,
                    num_classes=10, input_size=(28, 28), group_size=8, coarsest=16), 128),
    "resnet34": (dict(name="mg_resnet34_g32c64"), 16),
    "cifar_wide": (dict(name="cifar_resnet", channels=(256, 512, 1024, 2048), blocks=(3, 5, 7, 4), num_classes=100,
                        input_size=(32, 32), group_size=32, coarsest=64), 32),
}


def images_per_s(step, batch: int, repeat: int = 3) -> float:
    step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--limit", type=int, default=torch_module.TRAINING_DENSE_GROUPS,
                    help="dense-weight form for transfers of at most this many groups (default: mgcompile's)")
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    limit = args.limit
    print(f"load {os.getloadavg()[0]:.2f}, {torch.get_num_threads()} threads")
    for name in args.models.split(","):
        kw, batch = MODELS[name]
        kw = dict(kw)
        spec = mgcompile.model_spec(kw.pop("name"), **kw)
        model = mgcompile.build(spec).train().to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        x = torch.randn(batch, *mgcompile.expand(spec).input_shape()).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, spec.num_classes, (batch,))

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        runs: dict[int, list[float]] = {limit: [], 0: []}
        for _ in range(args.rounds):
            for groups in runs:
                torch_module.TRAINING_DENSE_GROUPS = groups
                runs[groups].append(images_per_s(step, batch))
        torch_module.TRAINING_DENSE_GROUPS = args.limit
        ratio = statistics.median(a / b for a, b in zip(runs[limit], runs[0]))
        print(f"{name}: dense weight (<= {limit} groups) {statistics.median(runs[limit]):.1f} img/s, gather "
              f"{statistics.median(runs[0]):.1f} img/s, ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
