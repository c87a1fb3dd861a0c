"""Learning curves of a run as a PNG (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mgcompile.figures import save_figure
from mgcompile.errors import MGCompileError


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Loss and top-1 accuracy per epoch, train vs validation, side by side."""
    if not history:
        raise MGCompileError("the run has no finished epoch yet; nothing to plot")
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise MGCompileError(f"{target} should end in .png; pass -o curves.png")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label, ax in (("train_loss", "train", loss_ax), ("val_loss", "val", loss_ax),
                           ("train_top1", "train", acc_ax), ("val_top1", "val", acc_ax)):
        points = [(e, row[key]) for e, row in zip(epochs, history) if row.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, target, dpi=120)
