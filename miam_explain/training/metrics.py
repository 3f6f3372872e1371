"""Metrics computed in torch, on whatever device the predictions live.

``macro_auc`` equals scikit-learn's ``roc_auc_score(y[:, k], s[:, k])`` averaged
over the species that have both classes (ties get average ranks, the
Mann-Whitney form of the AUC), so it can run on the GPU inside the explain
engine's performance game.
"""

from __future__ import annotations

import torch

__all__ = ["per_class_auc", "macro_auc", "top_k_accuracy"]


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
