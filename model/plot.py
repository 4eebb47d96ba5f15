"""The loss-curve PNG written beside the checkpoints (matplotlib, Agg backend, atomic rename)."""
from __future__ import annotations

from pathlib import Path

from common.files import atomic_path


def plot_losses(path: str | Path, train_hist: list, val_hist: list, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if train_hist:
        ax.plot([p[0] for p in train_hist], [p[1] for p in train_hist], label="train", lw=1, alpha=0.8)
    if val_hist:
        ax.plot([p[0] for p in val_hist], [p[1] for p in val_hist], "o-", label="validation", lw=1.5, ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (nats/char)")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:   # keeps the suffix: savefig picks the format by it
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return path
