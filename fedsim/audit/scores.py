"""Per-example membership scores: losses, LiRA confidences and the two attacks' scores.

Every score follows one convention: **higher means more likely a member** (a
training example of the model under audit). The two attacks are

* the loss-threshold attack of Yeom et al. 2018, "Privacy Risk in Machine
  Learning: Analyzing the Connection to Overfitting",
  https://arxiv.org/abs/1709.01604, Sec. 3: a member has a lower loss, so the
  score is ``-loss``;
* the online likelihood-ratio attack (LiRA) of Carlini et al. 2022,
  "Membership Inference Attacks From First Principles",
  https://arxiv.org/abs/2112.03570, Sec. 4: the target model's rescaled
  confidence is compared with Gaussians fitted to shadow models trained with
  (IN) and without (OUT) each example (see :mod:`fedsim.audit.shadow`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedsim.data import ArrayDataset


@torch.no_grad()
def _logits(model: nn.Module, data: ArrayDataset, *, device: torch.device, batch_size: int) -> torch.Tensor:
    """Logits ``(N, K)`` of ``model`` on every example of ``data``, in float64 on the CPU."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    was_training = model.training
    model.to(device).eval()
    chunks = []
    for start in range(0, len(data), batch_size):
        x = torch.tensor(data.x[start : start + batch_size], device=device)  # (B, *input)
        chunks.append(model(x).to("cpu", torch.float64))  # (B, K)
    model.train(was_training)
    if not chunks:
        return torch.empty(0, data.num_classes, dtype=torch.float64)
    return torch.cat(chunks)  # (N, K)


def example_losses(
    model: nn.Module, data: ArrayDataset, *, device: torch.device, batch_size: int = 1024
) -> np.ndarray:
    """Cross-entropy of ``model`` on each example of ``data``, in eval mode and without gradients.

    Args:
        model: maps ``(B, *input)`` to logits ``(B, K)``.
        data: the ``N`` examples (labels in ``[0, K)``).
        device: where the model runs.
        batch_size: examples per forward pass (≥ 1; memory only, the result is the
            same up to float32 rounding).

    Returns:
        float64 array of shape ``(N,)``: ``-log p_y`` in nats (≥ 0), computed in
        float64 from the logits so that the tiny losses of memorised examples
        keep their order instead of rounding to 0 in float32.

    Raises:
        ValueError: if ``batch_size < 1``.
    """
    logits = _logits(model, data, device=device, batch_size=batch_size)  # (N, K)
    labels = torch.as_tensor(np.array(data.y), dtype=torch.int64)  # (N,)
    return nn.functional.cross_entropy(logits, labels, reduction="none").numpy()  # (N,)


def logit_confidence(
    model: nn.Module, data: ArrayDataset, *, device: torch.device, batch_size: int = 1024
) -> np.ndarray:
    """LiRA's rescaled confidence ``φ = log(p_y / (1 - p_y))`` of each example.

    Carlini et al. 2022, https://arxiv.org/abs/2112.03570, Sec. 4 (Eq. 4):
    the logit of the softmax probability ``p_y`` of the true label, which is
    close to Gaussian across models. It is computed stably from the logits
    ``z`` as ``z_y - logsumexp_{k ≠ y} z_k`` (equal to ``log p_y - log(1 - p_y)``
    because both share the softmax normaliser), in float64, so it stays finite
    when ``p_y`` rounds to 1.

    Args:
        model: maps ``(B, *input)`` to logits ``(B, K)`` with ``K ≥ 2``.
        data: the ``N`` examples (labels in ``[0, K)``).
        device: where the model runs.
        batch_size: examples per forward pass (≥ 1; memory only).

    Returns:
        float64 array of shape ``(N,)``; higher means the model is more confident
        in the true label (0 when ``p_y = 1/2``).

    Raises:
        ValueError: if ``batch_size < 1`` or the model has fewer than 2 outputs.
    """
    logits = _logits(model, data, device=device, batch_size=batch_size)  # (N, K)
    if logits.shape[1] < 2:
        raise ValueError(f"logit_confidence needs at least 2 classes, the model has {logits.shape[1]}")
    labels = torch.as_tensor(np.array(data.y), dtype=torch.int64)  # (N,)
    true_logit = logits.gather(1, labels[:, None])[:, 0]  # (N,)
    others = logits.scatter(1, labels[:, None], float("-inf"))  # (N, K), the true class masked out
    return (true_logit - torch.logsumexp(others, dim=1)).numpy()  # (N,)


def loss_threshold_scores(losses: np.ndarray) -> np.ndarray:
    """Scores of the loss-threshold attack: ``-loss`` (higher = more likely a member).

    Yeom et al. 2018, https://arxiv.org/abs/1709.01604, Sec. 3: a model fits
    its training examples better, so thresholding the loss separates members
    from non-members as far as the model overfits.

    Args:
        losses: per-example losses in nats, any shape (e.g. ``(N,)`` from
            :func:`example_losses`).

    Returns:
        float64 array of the same shape.

    Example:
        >>> loss_threshold_scores(np.array([0.5, 2.0])).tolist()
        [-0.5, -2.0]
    """
    return -np.asarray(losses, dtype=np.float64)


def lira_scores(target_conf: np.ndarray, shadow_conf: np.ndarray, shadow_in: np.ndarray) -> np.ndarray:
    """Online LiRA with a global variance: the log-likelihood ratio of IN against OUT.

    Carlini et al. 2022, https://arxiv.org/abs/2112.03570, Sec. 4 (Algorithm 1)
    and Sec. 4.2/5: for each example ``n``, the target model's confidence
    ``φ_n`` is scored as ``log N(φ_n; μ_in[n], σ_in²) - log N(φ_n; μ_out[n], σ_out²)``.
    ``μ_in[n]`` (``μ_out[n]``) is the mean confidence of the shadow models
    trained with (without) example ``n``. With few shadow models, per-example
    variances are too noisy, so, as the paper recommends, one global variance
    is used for each side: here the pooled within-example variance, i.e. the
    squared deviations of the IN (OUT) confidences from their example's mean,
    summed over all examples and divided by the degrees of freedom
    (IN entries minus examples with an IN entry). (The authors' code instead
    takes the variance of all IN confidences, which also counts the spread of
    the means across examples.)

    Args:
        target_conf: ``φ`` of the target model, shape ``(N,)``, from
            :func:`logit_confidence`.
        shadow_conf: ``φ`` of each shadow model on each example, shape ``(K, N)``.
        shadow_in: whether shadow model ``k`` trained on example ``n``, bool,
            shape ``(K, N)``.

    Returns:
        float64 array of shape ``(N,)``: log-likelihood ratios in nats (higher =
        more likely a member).

    Raises:
        ValueError: if the shapes disagree, ``shadow_in`` is not boolean, a value
            is not finite, some example has no IN or no OUT shadow model, no
            example has two IN (or two OUT) shadow models to estimate a
            variance from, or a pooled variance is zero.

    Example:
        >>> shadow_conf = np.array([[2.0, 0.0], [3.0, 1.0], [0.0, 2.0], [1.0, 3.0]])
        >>> shadow_in = np.array([[True, False], [True, False], [False, True], [False, True]])
        >>> lira_scores(np.array([2.5, 0.5]), shadow_conf, shadow_in).round(3).tolist()
        [4.0, -4.0]
    """
    target_conf = np.asarray(target_conf, dtype=np.float64)
    shadow_conf = np.asarray(shadow_conf, dtype=np.float64)
    shadow_in = np.asarray(shadow_in)
    if target_conf.ndim != 1:
        raise ValueError(f"target_conf must have shape (N,), got {target_conf.shape}")
    n = target_conf.shape[0]
    if shadow_conf.ndim != 2 or shadow_conf.shape[1] != n:
        raise ValueError(
            f"shadow_conf must have shape (K, {n}) to match target_conf, got {shadow_conf.shape}"
        )
    if shadow_in.shape != shadow_conf.shape:
        raise ValueError(f"shadow_in has shape {shadow_in.shape} but shadow_conf has {shadow_conf.shape}")
    if shadow_in.dtype != np.bool_:
        raise ValueError(f"shadow_in must be boolean, got dtype {shadow_in.dtype}")
    if not (np.isfinite(target_conf).all() and np.isfinite(shadow_conf).all()):
        raise ValueError("target_conf and shadow_conf must be finite")
    mean_in, var_in = _mean_and_pooled_variance(shadow_conf, shadow_in, side="IN")  # (N,), scalar
    mean_out, var_out = _mean_and_pooled_variance(shadow_conf, ~shadow_in, side="OUT")  # (N,), scalar
    log_in = -0.5 * (target_conf - mean_in) ** 2 / var_in - 0.5 * np.log(var_in)  # (N,)
    log_out = -0.5 * (target_conf - mean_out) ** 2 / var_out - 0.5 * np.log(var_out)  # (N,)
    return log_in - log_out


def _mean_and_pooled_variance(conf: np.ndarray, mask: np.ndarray, *, side: str) -> tuple[np.ndarray, float]:
    """Per-example means ``(N,)`` of ``conf[mask]`` and their pooled within-example variance."""
    counts = mask.sum(axis=0)  # (N,)
    if (counts == 0).any():
        missing = np.flatnonzero(counts == 0)
        raise ValueError(
            f"{len(missing)} example(s) have no {side} shadow model (first: index {missing[0]}); "
            "every example needs at least one IN and one OUT shadow model"
        )
    means = np.where(mask, conf, 0.0).sum(axis=0) / counts  # (N,)
    dof = int(counts.sum() - len(counts))
    if dof == 0:
        raise ValueError(
            f"no example has two {side} shadow models, so the {side} variance cannot be estimated; "
            "use at least 4 shadow models"
        )
    variance = float((np.where(mask, conf - means, 0.0) ** 2).sum() / dof)
    if variance == 0.0:
        raise ValueError(f"the {side} shadow confidences have zero variance around their means")
    return means, variance


def finite_scores(scores: np.ndarray) -> np.ndarray:
    """Scores with ±inf as ±1e300 and NaN as -1e300 (finite, and midpoints of two stay finite).

    A model that is sure of a wrong label has an infinite loss (the surest
    "non-member"); a diverged model's NaN outputs say nothing, and rank lowest.

    Args:
        scores: attack scores, any shape.

    Returns:
        float64 array of the same shape.

    Example:
        >>> finite_scores(np.array([1.0, np.inf, -np.inf, np.nan])).tolist()
        [1.0, 1e+300, -1e+300, -1e+300]
    """
    big = 1e300
    return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-big, posinf=big, neginf=-big)
