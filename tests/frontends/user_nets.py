"""Hand-written user networks in different coding styles (imported by the conversion tests)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FunctionalBlock(nn.Module):
    """Explicit attributes, F.relu and torch.add (a basic block in disguise)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.na = nn.BatchNorm2d(c)
        self.b = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.nb = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.na(self.a(x)))
        return F.relu(torch.add(x, self.nb(self.b(y))))


class FunctionalNet(nn.Module):
    def __init__(self, c: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(c)
        self.blocks = nn.ModuleList([FunctionalBlock(c) for _ in range(2)])
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        for b in self.blocks:
            x = b(x)
        return self.head(x.mean((2, 3)))


class SequentialBody(nn.Module):
    """nn.Sequential branches, nn.ReLU modules and ``+``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


class SequentialNet(nn.Module):
    def __init__(self, c: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                                      SequentialBody(c), SequentialBody(c))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.fc(x.view(x.size(0), -1))


class Scale(nn.Module):
    """A layer the IR does not know: a per-channel scale through a function of its parameter (``abs``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gamma = nn.Parameter(torch.linspace(0.5, 1.5, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1).abs()


class BottleneckNet(nn.Module):
    """Method-call style (x.relu(), torch.flatten) with bottlenecks and an unknown Scale layer."""

    def __init__(self, c: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.scale = Scale(c)
        m = c // 4
        self.c1, self.b1 = nn.Conv2d(c, m, 1, bias=False), nn.BatchNorm2d(m)
        self.c2, self.b2 = nn.Conv2d(m, m, 3, padding=1, bias=False), nn.BatchNorm2d(m)
        self.c3, self.b3 = nn.Conv2d(m, c, 1, bias=False), nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scale(self.bn(self.conv(x)).relu())
        y = self.b1(self.c1(x)).relu()
        y = self.b2(self.c2(y)).relu()
        x = (self.b3(self.c3(y)) + x).relu()
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class PlainNet(nn.Module):
    """No residual step at all."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_plain() -> nn.Module:
    return PlainNet()


def make_sequential() -> nn.Module:
    return SequentialNet()
