"""Metrics computed in torch, on whatever device the predictions live, and their one registry.

``macro_auc`` equals scikit-learn's ``roc_auc_score(y[:, k], s[:, k])`` averaged
over the species that have both classes (ties get average ranks, the
Mann-Whitney form of the AUC), so it can run on the GPU inside the explain
engine's performance game.

:data:`METRICS` is the registry every caller goes through (the performance game, the reports,
subset evaluation, training's validation): each :class:`Metric` has a plain form (one value of
the logits of ``N`` sites) and a site-weighted form (one value per row of ``float[R, N]``
weights, e.g. bootstrap multiplicities). :func:`resolve_metric` picks one for a task.

Example:
    >>> import torch
    >>> metric = resolve_metric("auto", "multilabel")
    >>> metric.name, metric.label
    ('auc', 'AUC')
    >>> logits = torch.tensor([[0.1, 2.0], [0.9, -1.0], [0.5, 0.3]])
    >>> labels = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> metric.value(logits, labels)
    1.0
    >>> metric.weighted(logits, labels, torch.ones(1, 3)).tolist()
    [1.0]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from miam_explain.errors import ConfigError

__all__ = [
    "Metric",
    "METRICS",
    "resolve_metric",
    "per_class_auc",
    "macro_auc",
    "top_k_accuracy",
    "weighted_macro_auc",
    "weighted_per_class_auc",
    "weighted_accuracy",
    "neg_loss",
    "weighted_neg_loss",
    "per_species_neg_loss",
    "weighted_per_species_neg_loss",
]


def _average_ranks(scores: torch.Tensor) -> torch.Tensor:
    """1-based ranks along dim 0, ties sharing their average rank: ``float[N, K] -> float64[N, K]``."""
    n, k = scores.shape
    sorted_scores, order = torch.sort(scores, dim=0)
    new_group = torch.ones_like(sorted_scores, dtype=torch.bool)
    new_group[1:] = sorted_scores[1:] != sorted_scores[:-1]
    group = torch.cumsum(new_group.to(torch.int64), dim=0) - 1  # (N, K) group index within column
    flat = group + torch.arange(k, device=scores.device)[None, :] * n  # unique across columns
    position = torch.arange(n, device=scores.device, dtype=torch.float64)[:, None].expand(n, k)
    first = torch.full((n * k,), float(n), dtype=torch.float64, device=scores.device)
    last = torch.zeros(n * k, dtype=torch.float64, device=scores.device)
    first.scatter_reduce_(0, flat.reshape(-1), position.reshape(-1), reduce="amin")
    last.scatter_reduce_(0, flat.reshape(-1), position.reshape(-1), reduce="amax")
    avg_sorted = (first[flat] + last[flat]) / 2 + 1
    ranks = torch.empty_like(avg_sorted)
    ranks.scatter_(0, order, avg_sorted)
    return ranks


def per_class_auc(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ROC AUC of every column.

    Args:
        scores: ``float[N, K]`` scores (probabilities or logits: AUC only needs the order).
        labels: ``{0,1}[N, K]`` targets.

    Returns:
        ``(auc float64[K], valid bool[K])``: ``valid`` is False for columns with one class only
        (their AUC is NaN).
    """
    if scores.ndim == 1:
        scores, labels = scores[:, None], labels[:, None]
    labels = labels.to(torch.float64)
    n_pos = labels.sum(dim=0)
    n_neg = labels.shape[0] - n_pos
    ranks = _average_ranks(scores)
    auc = ((ranks * labels).sum(dim=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    valid = (n_pos > 0) & (n_neg > 0)
    return torch.where(valid, auc, torch.full_like(auc, float("nan"))), valid


def macro_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean AUC over the columns with both classes present (NaN if there are none)."""
    auc, valid = per_class_auc(scores, labels)
    return float(auc[valid].mean()) if bool(valid.any()) else float("nan")


def top_k_accuracy(logits: torch.Tensor, label: torch.Tensor, k: int = 1) -> float:
    """Fraction of rows whose true class is among the ``k`` highest scores."""
    k = min(k, logits.shape[1])
    top = torch.topk(logits, k, dim=1).indices
    return float((top == label[:, None]).any(dim=1).double().mean())


def weighted_per_class_auc(scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ROC AUC of every column under many site weightings at once (e.g. bootstrap multiplicities).

    With integer weights, entry ``[b, k]`` equals the AUC of column ``k`` on the data in which site
    ``i`` appears ``weights[b, i]`` times, ties counting one half. Each column is sorted once,
    whatever ``B``.

    Args:
        scores: ``float[N, K]`` scores.
        labels: ``{0,1}[N, K]`` targets.
        weights: ``float[B, N]`` non-negative site weights.

    Returns:
        ``(auc float64[B, K], valid bool[B, K])``: ``valid`` is False where a column has no positive
        weight on one of its classes (its AUC is NaN there).
    """
    weights = weights.to(torch.float64)
    n, k = scores.shape
    b = weights.shape[0]
    sorted_scores, order = torch.sort(scores, dim=0)  # (N, K)
    y = labels.to(torch.float64).gather(0, order)  # (N, K) labels in sorted order
    w = weights[:, order]  # (B, N, K) weights in each column's sorted order
    w_pos, w_neg = w * y, w * (1 - y)
    # tie groups: first and last sorted position of the group each position belongs to
    position = torch.arange(n, device=scores.device)[:, None].expand(n, k)
    starts = torch.ones_like(sorted_scores, dtype=torch.bool)
    starts[1:] = sorted_scores[1:] != sorted_scores[:-1]
    ends = torch.ones_like(starts)
    ends[:-1] = starts[1:]
    first = torch.cummax(torch.where(starts, position, torch.zeros_like(position)), dim=0).values
    last = torch.flip(torch.cummin(torch.flip(torch.where(ends, position, torch.full_like(position, n - 1)), [0]), dim=0).values, [0])
    cum = torch.cat([torch.zeros(b, 1, k, dtype=torch.float64, device=w.device), torch.cumsum(w_neg, dim=1)], dim=1)
    below = cum.gather(1, first[None].expand(b, n, k))  # negative weight strictly below the tie group
    tied = cum.gather(1, (last + 1)[None].expand(b, n, k)) - below  # negative weight inside the tie group
    wins = ((below + 0.5 * tied) * w_pos).sum(dim=1)  # (B, K)
    pairs = w_pos.sum(dim=1) * w_neg.sum(dim=1)
    valid = pairs > 0
    auc = torch.where(valid, wins / torch.where(valid, pairs, torch.ones_like(pairs)), torch.full_like(pairs, float("nan")))
    return auc, valid


def weighted_macro_auc(scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Macro AUC under many site weightings at once (e.g. bootstrap multiplicities).

    Row ``b`` is the mean of :func:`weighted_per_class_auc` over the species with positive weight
    on both classes; with integer weights it equals :func:`macro_auc` of the data in which site
    ``i`` appears ``weights[b, i]`` times.

    Args:
        scores: ``float[N, K]`` scores.
        labels: ``{0,1}[N, K]`` targets.
        weights: ``float[B, N]`` non-negative site weights.

    Returns:
        ``float64[B]`` (NaN where no species has both classes).
    """
    auc, valid = weighted_per_class_auc(scores, labels, weights)
    count = valid.sum(dim=1).to(torch.float64)
    total = torch.where(valid, auc, torch.zeros_like(auc)).sum(dim=1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(count, float("nan")))


def weighted_accuracy(logits: torch.Tensor, label: torch.Tensor, weights: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Top-``k`` accuracy under many site weightings: ``float[B, N]`` weights -> ``float64[B]``."""
    k = min(k, logits.shape[1])
    hit = (torch.topk(logits, k, dim=1).indices == label[:, None]).any(dim=1).to(torch.float64)
    weights = weights.to(torch.float64)
    return (weights @ hit) / weights.sum(dim=1)


def neg_loss(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Minus the mean binary (multi-label, float targets) or categorical (class targets) cross-entropy."""
    if target.is_floating_point():
        return -float(F.binary_cross_entropy_with_logits(logits, target))
    return -float(F.cross_entropy(logits, target))


def weighted_neg_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """:func:`neg_loss` under many site weightings: ``float[B, N]`` weights -> ``float64[B]``."""
    if target.is_floating_point():
        per_site = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=1)
    else:
        per_site = F.cross_entropy(logits, target, reduction="none")
    weights = weights.to(torch.float64)
    return -(weights @ per_site.to(torch.float64)) / weights.sum(dim=1)


#: Float64 elements of the ``(rows, N, K)`` temporaries of one :func:`weighted_per_class_auc` call (128 MiB).
_WEIGHTED_AUC_ELEMENTS = 1 << 24


def _weight_row_groups(scores: torch.Tensor, weights: torch.Tensor) -> range:
    """Starts of the groups of weight rows whose weighted-AUC temporaries stay near 128 MiB."""
    return range(0, weights.shape[0], max(1, _WEIGHTED_AUC_ELEMENTS // max(scores.numel(), 1)))


def _weighted_auc_rows(scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """:func:`weighted_macro_auc` over groups of weight rows: ``float64[R]``."""
    groups = _weight_row_groups(scores, weights)
    return torch.cat([weighted_macro_auc(scores, labels, weights[i : i + groups.step]) for i in groups])


def _weighted_species_auc_rows(scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """:func:`weighted_per_class_auc` over groups of weight rows: ``float64[R, K]`` (NaN where undefined)."""
    groups = _weight_row_groups(scores, weights)
    return torch.cat([weighted_per_class_auc(scores, labels, weights[i : i + groups.step])[0] for i in groups])


def _macro_auc_value(scores: torch.Tensor, labels: torch.Tensor) -> float:
    auc, valid = per_class_auc(scores, labels)
    return float(auc[valid].mean())


def per_species_neg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Minus the binary cross-entropy of each species (column), averaged over the sites: ``float64[K]``."""
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=0).to(torch.float64)


def weighted_per_species_neg_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """:func:`per_species_neg_loss` under many site weightings: ``float[B, N]`` weights -> ``float64[B, K]``."""
    per_site = F.binary_cross_entropy_with_logits(logits, target, reduction="none").to(torch.float64)  # (N, K)
    weights = weights.to(torch.float64)
    return -(weights @ per_site) / weights.sum(dim=1, keepdim=True)


@dataclass(frozen=True)
class Metric:
    """One performance metric of a model's logits on ``N`` sites.

    Attributes:
        name: Registry key (``auc``, ``accuracy``, ``top5``, ``neg_loss``).
        label: As printed (``AUC``, ``accuracy`` …).
        tasks: The tasks it fits (``multilabel``, ``multiclass``).
        value: ``(logits float[N, K], target) -> float``.
        weighted: ``(logits float[N, K], target, weights float[R, N]) -> float64[R]``.
        per_target: ``(logits float[N, K], labels {0,1}[N, K]) -> float64[K]``, the metric of each
            species (multi-label data), or ``None`` where the metric has no per-species form.
        weighted_per_target: ``(logits, labels, weights float[R, N]) -> float64[R, K]``, or ``None``.
    """

    name: str
    label: str
    tasks: tuple[str, ...]
    value: Callable[[torch.Tensor, torch.Tensor], float]
    weighted: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    per_target: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    weighted_per_target: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None


#: Every metric, by name.
METRICS: dict[str, Metric] = {
    "auc": Metric("auc", "AUC", ("multilabel",), _macro_auc_value, _weighted_auc_rows,
                  lambda s, y: per_class_auc(s, y)[0], _weighted_species_auc_rows),
    "accuracy": Metric(
        "accuracy", "accuracy", ("multiclass",), lambda s, y: top_k_accuracy(s, y, 1), lambda s, y, w: weighted_accuracy(s, y, w, 1)
    ),
    "top5": Metric(
        "top5", "top-5 accuracy", ("multiclass",), lambda s, y: top_k_accuracy(s, y, 5), lambda s, y, w: weighted_accuracy(s, y, w, 5)
    ),
    "neg_loss": Metric("neg_loss", "negative loss", ("multilabel", "multiclass"), neg_loss, weighted_neg_loss,
                       per_species_neg_loss, weighted_per_species_neg_loss),
}
#: The metric ``auto`` means for each task.
DEFAULT_METRIC = {"multilabel": "auc", "multiclass": "accuracy"}


def resolve_metric(name: str, task: str) -> Metric:
    """The metric ``name`` means for a task (``auto``: ``auc`` for multi-label, else ``accuracy``).

    Raises:
        ConfigError: an unknown metric, or one that does not fit the task.
    """
    if name == "auto":
        name = DEFAULT_METRIC[task]
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; use one of auto, {', '.join(METRICS)}")
    metric = METRICS[name]
    if task not in metric.tasks:
        fits = [m for m, spec in METRICS.items() if task in spec.tasks]
        data = "multi-label" if task == "multiclass" else "multi-class"
        raise ConfigError(f"metric {name!r} needs {data} data; use {' or '.join(fits)}")
    return metric

