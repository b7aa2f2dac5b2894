"""PNG plots of a run, drawn with matplotlib's Agg backend."""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fedsim.results import RunResult  # noqa: E402


def save_figure(fig, path: Path) -> Path:
    """Lay out ``fig``, write it to ``path`` as a PNG (110 dpi), close it and return ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plain_text(plot):
    """Draw ``plot`` with matplotlib's mathtext off: user labels such as ``$x$`` are shown as typed."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context({"text.parse_math": False}):
            return plot(*args, **kwargs)

    return wrapper


@plain_text
def plot_accuracy_loss(result: RunResult, path: Path) -> Path:
    """Test accuracy and test loss of the global model per round (two panels)."""
    rounds = [r.round for r in result.rounds]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_acc.plot(rounds, [100 * r.accuracy for r in result.rounds], marker="o", label="global model")
    baseline = result.summary.baseline_accuracy
    if baseline is not None:
        ax_acc.axhline(100 * baseline, linestyle="--", color="gray", label="most frequent label")
        ax_acc.legend()
    ax_acc.set(xlabel="round", ylabel="test accuracy (%)", title="Global model accuracy")
    ax_acc.grid(alpha=0.3)
    ax_loss.plot(rounds, [r.loss for r in result.rounds], marker="o", color="tab:red", label="test")
    train = [(r.round, r.train_loss) for r in result.rounds if r.train_loss is not None]
    if train:
        ax_loss.plot(*zip(*train, strict=True), marker=".", color="tab:gray", label="local training (mean)")
    ax_loss.set(xlabel="round", ylabel="cross-entropy (nats)", title="Loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return save_figure(fig, path)


@plain_text
def plot_epsilon(result: RunResult, path: Path) -> Path:
    """ε per round: sample-level (max and mean over clients) and user-level, with budgets dashed."""
    privacy = result.summary.privacy
    fig, ax = plt.subplots(figsize=(6, 3.8))
    rows = [r for r in result.rounds if r.epsilon_max is not None]
    if rows:
        ax.plot(
            [r.round for r in rows],
            [r.epsilon_max for r in rows],
            marker="o",
            label="sample ε, max over clients",
        )
        ax.plot([r.round for r in rows], [r.epsilon_mean for r in rows], marker=".", label="sample ε, mean")
    user = [r for r in result.rounds if r.user_epsilon is not None]
    if user:
        ax.plot([r.round for r in user], [r.user_epsilon for r in user], marker="s", label="user-level ε")
    for budget, label, color in (
        (privacy.target_epsilon, "sample budget", "black"),
        (privacy.user_target_epsilon, "user budget", "tab:green"),
    ):
        if budget is not None:
            ax.axhline(budget, linestyle="--", color=color, label=f"{label} ε = {budget:g}")
    colors = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
    for index, tier in enumerate(privacy.tiers or ()):
        color = colors[index % len(colors)]
        ax.axhline(tier.target_epsilon, linestyle=":", color=color, label=f"tier {tier.name} budget")
    delta = privacy.delta
    ax.set(xlabel="round", ylabel="ε", title=f"ε spent (δ = {delta:g})" if delta else "ε")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


@plain_text
def plot_partition(result: RunResult, path: Path) -> Path:
    """Heatmap of each client's label distribution (share per class), beside a bar chart of its size."""
    import numpy as np

    counts = np.asarray(result.label_counts)  # (clients, classes)
    clients, classes = counts.shape
    height = min(2 + 0.28 * clients, 16)
    fig, (ax, ax_size) = plt.subplots(
        1,
        2,
        figsize=(min(4 + 0.3 * classes, 16), height),
        sharey=True,
        gridspec_kw={"width_ratios": [3, 1]},
    )
    sizes = counts.sum(axis=1)
    shares = counts / np.maximum(sizes, 1)[:, None]  # each client's label distribution
    image = ax.imshow(shares, aspect="auto", cmap="viridis", interpolation="nearest", vmin=0)
    ax.set(xlabel="class", ylabel="client", title="Label distribution per client")
    users = result.summary.client_users
    if users and clients <= 80:  # natural users: name each row (book, writer, role)
        ax.set_yticks(range(clients), [f"{c} {u}" for c, u in enumerate(users)], fontsize=7)
    else:
        ax.set_yticks(range(0, clients, max(1, clients // 40)))
    names = result.summary.class_names
    if names and classes <= 100 and max(map(len, names)) == 1:  # text: the characters ("␣" is the space)
        ax.set_xticks(range(classes), [n.replace(" ", "␣") for n in names], fontsize=7)
    elif names and classes <= 100:  # image labels by name (e.g. Fashion-MNIST's "T-shirt/top")
        ax.set_xticks(range(classes), names, fontsize=8, rotation=45, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(range(0, classes, max(1, classes // 20)))
    fig.colorbar(image, ax=ax, label="share of client's examples", pad=0.02, fraction=0.04)
    ax_size.barh(range(clients), sizes, color="tab:blue")
    ax_size.set(xlabel="examples", title="Partition size")
    ax_size.grid(alpha=0.3, axis="x")
    return save_figure(fig, path)
