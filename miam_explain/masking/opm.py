"""OPM: On-the-fly Prediction Modulation (Wei, Hu, Du & Wen 2024).

Source: Y. Wei, D. Hu, H. Du, J.-R. Wen, "On-the-fly Modulation for Balanced
Multimodal Learning", IEEE TPAMI 2024 (arXiv:2410.11582); reference code
GeWu-Lab/BML_TPAMI2024, ``code/models/Classifier.py`` (``calcu_q``,
``Modality_drop.execute_drop``) and ``code/scripts/train_opm.sh``.

The rule, as in the reference code:

1. Discrepancy ratio of each modality, ``ρ_m = s_m / s_other``. The reference
   code has two modalities (``ρ_1 = s_1 / s_2``); for ``M`` modalities we use
   the mean of the *others*, ``ρ_m = s_m / mean_{j≠m} s_j``, which is identical
   for ``M = 2``. (``M = 1``: ``ρ = 1``.)
2. Drop probability ``q_m = q_base · (1 + λ · tanh(ρ_m − 1))`` if ``ρ_m > 1``
   (a dominant modality), else ``q_m = 0``: a dominated modality is never
   dropped. ``q`` is clipped to ``[0, 1]``.
3. Per batch, the drop is executed with probability ``p_exe`` (the code's
   ``exe_drop``); when it is, each sample drops modality ``m`` independently
   with probability ``q_m``. A dropped modality has ``p_m = 1`` (all its tokens
   hidden), a kept one ``p_m = 0``.

Since the weakest modality always has ``ρ ≤ 1``, a sample never loses every modality.

Adaptations to token masking, documented in ``docs/masking.md``:

- ``s_m`` is the per-epoch validation score of modality ``m`` evaluated alone
  (what MIAM uses), fed through :meth:`OPM.update`, instead of the code's
  per-batch sum of unimodal softmax scores of the true class. Until the first
  update ``q = 0`` (no drop), which plays the role of the code's warm-up epochs.
- The code rescales the kept features by ``1/(1 − θ)``; hidden tokens here are
  replaced by the mask embedding, so there is nothing to rescale.
- Defaults ``q_base = 0.5`` and ``λ = 0.4`` follow DESIGN (the MIAM paper's
  setting); the reference script uses ``q_base = 0.5, λ = 0.5, p_exe = 0.7``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from miam_explain.errors import ConfigError
from miam_explain.masking.base import (
    MaskingStrategy,
    check_finite,
    check_fraction,
    coerce_float_fields,
)
from miam_explain.typing import MaskProbabilities

__all__ = ["OPM", "OPMConfig", "opm_ratios", "opm_drop_probabilities"]


@dataclasses.dataclass(frozen=True)
class OPMConfig:
    """Hyperparameters of :class:`OPM`.

    Attributes:
        q_base: Base drop probability of a dominant modality.
        lam: λ, how much the drop probability grows with the discrepancy ratio.
        p_exe: Probability that the drop is executed at all in a batch (reference code: 0.7).
    """

    q_base: float = 0.5
    lam: float = 0.4
    p_exe: float = 0.7

    def __post_init__(self) -> None:
        coerce_float_fields(self)
        check_fraction("q_base", self.q_base)
        check_finite("lam", self.lam)
        check_fraction("p_exe", self.p_exe)


def opm_ratios(scores: Sequence[float]) -> list[float]:
    """Discrepancy ratios ``ρ_m = s_m / mean_{j≠m} s_j`` (``1`` when ``M = 1``).

    Args:
        scores: ``float[M]`` positive per-modality scores.

    Returns:
        ``M`` ratios.
    """
    if min(scores) <= 0:
        raise ConfigError(f"OPM scores must be > 0 (use an AUC, accuracy or 1/loss), got {list(scores)}")
    num = len(scores)
    if num == 1:
        return [1.0]
    total = sum(scores)
    return [s / ((total - s) / (num - 1)) for s in scores]


def opm_drop_probabilities(ratios: Sequence[float], *, q_base: float, lam: float) -> list[float]:
    """``q_m = clip(q_base · (1 + λ · tanh(ρ_m − 1)), 0, 1)`` if ``ρ_m > 1``, else ``0``.

    Args:
        ratios: ``float[M]`` discrepancy ratios from :func:`opm_ratios`.
        q_base: Base drop probability.
        lam: λ.

    Returns:
        ``M`` drop probabilities.
    """
    return [min(max(q_base * (1.0 + lam * math.tanh(r - 1.0)), 0.0), 1.0) if r > 1.0 else 0.0 for r in ratios]


class OPM(MaskingStrategy):
    """On-the-fly Prediction Modulation (Wei et al. 2024): drop dominant modalities whole.

    See the module docstring for the exact rule and its source.

    Attributes:
        q: Current per-modality drop probabilities (all 0 before the first :meth:`update`).
        history: One dict per :meth:`update`: ``epoch`` and, each as ``{modality: float}``,
            ``s``, ``rho`` and ``q``.
    """

    name = "opm"
    Config = OPMConfig
    adaptive = True

    def __init__(self, config: Any = None, *, modalities: Sequence[str], single_token: bool = False) -> None:
        super().__init__(config, modalities=modalities, single_token=single_token)
        self.q: list[float] = [0.0] * self.num_modalities
        self.history: list[dict[str, Any]] = []

    def _sample(self, n: int, generator: torch.Generator) -> MaskProbabilities:
        device = generator.device
        execute = torch.rand(1, generator=generator, device=device) < self.config.p_exe
        q = torch.tensor(self.q, dtype=torch.float32, device=device)
        u = torch.rand(n, self.num_modalities, generator=generator, device=device)
        return ((u < q) & execute).float()

    def update(self, scores: Mapping[str, float]) -> None:
        """Recompute the drop probabilities from one epoch of per-modality scores.

        Args:
            scores: ``{modality: s_m}``, each ``> 0`` (validation AUC, accuracy or ``1/loss``
                of the modality evaluated alone).
        """
        s = self._check_scores(scores)
        rho = opm_ratios([s[m] for m in self.modalities])
        self.q = opm_drop_probabilities(rho, q_base=self.config.q_base, lam=self.config.lam)
        self.history.append(
            {
                "epoch": len(self.history) + 1,
                "s": s,
                "rho": dict(zip(self.modalities, rho)),
                "q": dict(zip(self.modalities, self.q)),
            }
        )

    def state_dict(self) -> dict[str, Any]:
        """Configuration, current ``q`` and history, as JSON-serialisable python types."""
        state = super().state_dict()
        state["q"] = [float(x) for x in self.q]
        state["history"] = [
            {"epoch": int(e["epoch"]), **{k: {m: float(v) for m, v in e[k].items()} for k in ("s", "rho", "q")}}
            for e in self.history
        ]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``q`` and history written by :meth:`state_dict`."""
        super().load_state_dict(state)
        if "q" not in state or "history" not in state or len(state["q"]) != self.num_modalities:
            raise ConfigError("OPM state needs 'q' (one per modality) and 'history'; pass the dict from OPM.state_dict()")
        for value in state["q"]:
            check_fraction("q", float(value))
        self.q = [float(x) for x in state["q"]]
        self.history = [
            {"epoch": int(e["epoch"]), **{k: {m: float(v) for m, v in e[k].items()} for k in ("s", "rho", "q")}}
            for e in state["history"]
        ]
