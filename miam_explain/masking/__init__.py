"""Masking strategies: distributions over per-modality masking probabilities **p**.

A strategy maps ``(n, generator)`` to ``float[n, M]`` probabilities **p**;
:func:`keep_mask` turns **p** into a ``bool[n, T]`` token keep-mask
(``True`` = visible). Build strategies by name with :func:`get_strategy`.

Example:
    >>> import torch
    >>> from miam_explain.masking import get_strategy
    >>> strategy = get_strategy("miam", modalities=["climate", "landsat", "sentinel2"])
    >>> g = torch.Generator().manual_seed(0)
    >>> p = strategy.sample(4, generator=g)                        # float[4, 3]
    >>> tokens = torch.tensor([0, 0, 1, 2, 2])                     # modality of each token
    >>> keep = strategy.keep_mask(p, tokens, torch.ones(4, 5, dtype=torch.bool), generator=g)
    >>> tuple(keep.shape)
    (4, 5)
"""

from __future__ import annotations

from miam_explain.masking.base import MaskingStrategy, keep_mask
from miam_explain.masking.miam import MIAM, BetaHypercube, imbalance_ratios
from miam_explain.masking.opm import OPM
from miam_explain.masking.registry import STRATEGIES, from_state_dict, get_strategy, strategy_hyperparameters

__all__ = [
    "MaskingStrategy",
    "MIAM",
    "BetaHypercube",
    "OPM",
    "STRATEGIES",
    "get_strategy",
    "from_state_dict",
    "strategy_hyperparameters",
    "keep_mask",
    "imbalance_ratios",
]
