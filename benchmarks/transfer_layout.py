"""Why a transfer's channel permutation stays ``index_select(1, perm)`` in channels_last training.

    python benchmarks/transfer_layout.py

``index_select`` on dim 1 returns an NCHW tensor even from a channels_last input, so the
grouped 1x1 conv and BN after a transfer run in NCHW. Keeping channels_last costs more than
it saves: this times a transfer's training sequence (gather, grouped 1x1 conv, BN, an add
with a tensor of the same format, ReLU; forward + backward) at shapes of the ResNet34 and
fashion-mnist MG networks, each gather variant against ``index_select(1)`` alternated over
rounds in one process, and prints the median time ratios (above 1: slower than ``index_select``).
"""

from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F

VARIANTS = {
    "index_select(1)": lambda x, i: x.index_select(1, i),
    "+ to channels_last": lambda x, i: x.index_select(1, i).contiguous(memory_format=torch.channels_last),
    "NHWC index_select(3)": lambda x, i: x.permute(0, 2, 3, 1).index_select(3, i).permute(0, 3, 1, 2),
    "NHWC gather": lambda x, i: torch.gather(x.permute(0, 2, 3, 1), 3, i.expand(x.shape[0], x.shape[2], x.shape[3],
                                                                                   -1)).permute(0, 3, 1, 2),
}
SHAPES = [(16, 64, 56, 2), (16, 128, 28, 4), (128, 16, 28, 2), (128, 64, 7, 8)]  # batch, channels, H=W, groups


def main(rounds: int = 3, repeat: int = 5) -> None:
    torch.set_num_threads(1)
    print(f"load {os.getloadavg()[0]:.2f}; time ratio vs index_select(1), median of {rounds} rounds")
    for n, c, hw, g in SHAPES:
        index = torch.randperm(c)
        weight = torch.randn(c // 2, c // g, 1, 1, requires_grad=True)
        bn = torch.nn.BatchNorm2d(c // 2)
        x0 = torch.randn(n, c, hw, hw).contiguous(memory_format=torch.channels_last)

        def step(gather) -> None:
            x = x0.clone().requires_grad_()
            y = bn(F.conv2d(gather(x, index), weight, groups=g))
            (y + torch.randn_like(y)).relu().sum().backward()

        def median_s(gather) -> float:
            step(gather)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                step(gather)
                times.append(time.perf_counter() - start)
            return statistics.median(times)

        ratios: dict[str, list[float]] = {k: [] for k in VARIANTS}
        for _ in range(rounds):
            base = median_s(VARIANTS["index_select(1)"])
            for name, gather in VARIANTS.items():
                ratios[name].append(median_s(gather) / base)
        print(f"batch {n}, {c} channels, {hw}x{hw}, {g} groups: "
              + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in ratios.items() if k != "index_select(1)"))


if __name__ == "__main__":
    main()
