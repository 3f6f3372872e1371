"""Shape-documented type aliases used across miam-explain.

Each alias names the array shape it stands for; ``C`` is the number of
coalitions, ``P`` of players, ``N`` of sites/samples, ``M`` of modalities and
``T`` of tokens.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import torch

#: ``bool[C, P]``: one row per coalition, ``True`` where the player is present.
CoalitionMatrix: TypeAlias = np.ndarray | torch.Tensor
#: ``bool[N, T]``: ``True`` where a token is visible (``keep`` polarity).
KeepMask: TypeAlias = torch.Tensor
#: ``float[N, M]``: per-sample, per-modality masking probabilities **p**.
MaskProbabilities: TypeAlias = torch.Tensor
#: ``int64[T]``: modality index of every token.
TokenModality: TypeAlias = torch.Tensor
#: ``int64[k]``: indices of tokens in the token schema.
TokenIndices: TypeAlias = np.ndarray
