"""Learning curves of a run as a PNG (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mgcompile.figures import save_figure
from mgcompile.errors import MGCompileError


LOG_SPAN = 20.0  # a loss axis turns logarithmic when its losses span more than this factor


def log_axis(values: Sequence[float]) -> bool:
    """Whether values span more than :data:`LOG_SPAN` (a log axis then shows both ends)."""
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > LOG_SPAN


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Loss and top-1 accuracy per epoch, train vs validation, side by side."""
    return plot_runs({"": history}, path, title)


def plot_runs(runs: dict[str, Sequence[dict[str, Any]]], path: str | Path, title: str = "") -> Path:
    """Several runs overlaid (base vs MG): loss and top-1 per epoch, solid train and dashed val, one colour a run.

    The loss axis is logarithmic when the losses span decades (a diverging start next to a converged end).
    """
    for name, history in runs.items():
        if not history:
            raise MGCompileError(f"the run {name or ''} has no finished epoch yet; nothing to plot".replace("  ", " "))
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise MGCompileError(f"{target} should end in .png; pass -o curves.png")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    losses: list[float] = []
    for i, (name, history) in enumerate(runs.items()):
        color = f"C{i}"
        epochs = [row["epoch"] for row in history]
        for key, split, ax in (("train_loss", "train", loss_ax), ("val_loss", "val", loss_ax),
                               ("train_top1", "train", acc_ax), ("val_top1", "val", acc_ax)):
            points = [(e, row[key]) for e, row in zip(epochs, history) if row.get(key) is not None]
            if points:
                label = f"{name} {split}".strip()
                ax.plot(*zip(*points), marker="o", label=label, color=color,
                        linestyle="-" if split == "train" else "--")
                if ax is loss_ax:
                    losses += [v for _, v in points]
    if log_axis(losses):
        loss_ax.set_yscale("log")
    loss_ax.set(xlabel="epoch", ylabel="training loss (cross-entropy, or the distillation loss)", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, target, dpi=120)
