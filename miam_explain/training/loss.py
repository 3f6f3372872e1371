"""Training losses.

Multi-label presence-absence data uses the *full weighted loss* of Zbinden et
al. 2024 ("On the selection and effectiveness of pseudo-absences for species
distribution modeling with deep learning", Ecological Informatics 81, 102623;
reference code eceo-epfl/SDM-full-weighted-loss), restricted to its data-location
terms since presence-absence surveys have true absences and no random background:

    L = -1/K sum_k [ y_k * w_k * log p_k + (1 - y_k) * w_k / (w_k - 1) * log(1 - p_k) ]

with the species weight ``w_k = N / n_k`` (sites over presences in the train
split, "inversely proportional"). Presences of rare species weigh more, and each
species' positive and negative terms balance in expectation. ``w_k`` is clipped to
``[1 + 1e-3, 1e4]`` so that a species present everywhere or nowhere stays finite.
Multi-class data uses the cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["species_weights", "full_weighted_bce", "cross_entropy"]


def species_weights(labels: torch.Tensor) -> torch.Tensor:
    """``w_k = N / n_k`` from train labels ``{0,1}[N, K]`` -> ``float[K]`` (clipped, see module doc)."""
    n = labels.shape[0]
    presences = labels.to(torch.float64).sum(dim=0)
    return (n / presences.clamp_min(1e-5)).clamp(1 + 1e-3, 1e4).to(torch.float32)


def full_weighted_bce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Full weighted loss (Zbinden et al. 2024) on logits ``float[N, K]`` and labels ``{0,1}[N, K]``."""
    labels = labels.to(logits.dtype)
    positive = -F.logsigmoid(logits) * labels * weights
    negative = -F.logsigmoid(-logits) * (1 - labels) * (weights / (weights - 1))
    return (positive + negative).mean()


def cross_entropy(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of class indices ``int[N]``."""
    return F.cross_entropy(logits, label)
