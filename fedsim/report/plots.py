"""PNG plots of a run, drawn with matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fedsim.results import RunResult  # noqa: E402


def plot_accuracy_loss(result: RunResult, path: Path) -> Path:
    """Test accuracy and test loss of the global model per round (two panels)."""
    rounds = [r.round for r in result.rounds]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_acc.plot(rounds, [100 * r.accuracy for r in result.rounds], marker="o")
    ax_acc.set(xlabel="round", ylabel="test accuracy (%)", title="Global model accuracy")
    ax_acc.grid(alpha=0.3)
    ax_loss.plot(rounds, [r.loss for r in result.rounds], marker="o", color="tab:red", label="test")
    train = [(r.round, r.train_loss) for r in result.rounds if r.train_loss is not None]
    if train:
        ax_loss.plot(*zip(*train, strict=True), marker=".", color="tab:gray", label="local training (mean)")
    ax_loss.set(xlabel="round", ylabel="cross-entropy (nats)", title="Loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_epsilon(result: RunResult, path: Path) -> Path:
    """Largest and mean client ε per round, with the target as a dashed line."""
    rows = [r for r in result.rounds if r.epsilon_max is not None]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot([r.round for r in rows], [r.epsilon_max for r in rows], marker="o", label="max over clients")
    ax.plot([r.round for r in rows], [r.epsilon_mean for r in rows], marker=".", label="mean over clients")
    target = result.summary.get("target_epsilon")
    if target is not None:
        ax.axhline(target, linestyle="--", color="black", label=f"target ε = {target:g}")
    delta = result.summary.get("delta")
    ax.set(xlabel="round", ylabel="ε", title=f"Sample-level ε (δ = {delta:g})" if delta else "ε")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_partition(result: RunResult, path: Path) -> Path:
    """Heatmap of examples per (client, class), with each client's size."""
    import numpy as np

    counts = np.asarray(result.label_counts)  # (clients, classes)
    clients, classes = counts.shape
    fig, ax = plt.subplots(figsize=(min(2 + 0.5 * classes, 12), min(1.5 + 0.3 * clients, 14)))
    image = ax.imshow(counts, aspect="auto", cmap="viridis")
    ax.set(xlabel="class", ylabel="client", title="Label distribution per client")
    if clients <= 40:
        ax.set_yticks(range(clients), [f"{c} (n={n})" for c, n in enumerate(counts.sum(axis=1))])
    ax.set_xticks(range(classes))
    fig.colorbar(image, ax=ax, label="examples")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
