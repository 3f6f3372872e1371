"""MIAM: modality imbalance-aware masking, and its static special case ``beta_hypercube``.

MIAM draws **p** from a mixture over the corners ``c ∈ {0,1}^M`` of the unit
hypercube of product beta distributions::

    f_c(p) = Π_m  Beta(p_m; 1, κ·r_m^(−λ))   if c_m = 0   (p_m near 0: modality mostly visible)
                  Beta(p_m; κ·r_m^λ, 1)      if c_m = 1   (p_m near 1: modality mostly hidden)

Corner weights: ``1/4`` for ``(0,…,0)`` and for ``(1,…,1)``, and
``1/(2(2^M − 2))`` for every other corner. When every modality is a single
token, the weight of ``(1,…,1)`` moves to ``(0,…,0)`` (which then has ``1/2``).
With a single modality (``M = 1``) there are no "other" corners and the two
corners get ``1/2`` each (single token: ``(0)`` gets everything).

The imbalance ratio ``r_m = ρ_s,m / ρ_d,m`` comes from the per-modality
validation scores ``s_m`` (each modality evaluated alone) of the last two
epochs; see :func:`imbalance_ratios`. A high ``r_m`` (a strong, stable
modality) pushes ``p_m`` toward 1, so that modality is hidden more often.
``beta_hypercube`` is MIAM with ``λ = 0``: the ratios have no effect.

Sampling is exact and fully vectorised: the corner first (the "other" corners by
rejection of constant bit-vectors), then each beta by its closed-form inverse
CDF (``Beta(1, b)``: ``1 − u^(1/b)``; ``Beta(a, 1)``: ``u^(1/a)``), so every
random number comes from the injected generator, on its device.
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
    check_positive,
    coerce_float_fields,
)
from miam_explain.typing import MaskProbabilities

__all__ = [
    "MIAM",
    "MIAMConfig",
    "BetaHypercube",
    "BetaHypercubeConfig",
    "corner_weights",
    "sample_corners",
    "sample_beta_corners",
    "imbalance_ratios",
]


@dataclasses.dataclass(frozen=True)
class MIAMConfig:
    """Hyperparameters of :class:`MIAM`.

    Attributes:
        kappa: Sharpness κ: how tightly **p** concentrates at the corners.
        lam: Strength λ of the imbalance correction (paper: 3 for GeoPlant, 1 with one token per modality).
        eps: ε added to ``s_m``, ``d_m`` and ``ρ_d,m`` in :func:`imbalance_ratios`.
    """

    kappa: float = 10.0
    lam: float = 3.0
    eps: float = 0.001

    def __post_init__(self) -> None:
        coerce_float_fields(self)
        check_positive("kappa", self.kappa)
        check_finite("lam", self.lam)
        check_positive("eps", self.eps)


@dataclasses.dataclass(frozen=True)
class BetaHypercubeConfig:
    """Hyperparameters of :class:`BetaHypercube` (MIAM with ``lam = 0``).

    Attributes:
        kappa: Sharpness κ: how tightly **p** concentrates at the corners.
        eps: ε of :func:`imbalance_ratios` (the ratios are only recorded, never used).
    """

    kappa: float = 10.0
    eps: float = 0.001

    @property
    def lam(self) -> float:
        """λ is fixed at 0: the distribution ignores the imbalance ratios."""
        return 0.0

    def __post_init__(self) -> None:
        coerce_float_fields(self)
        check_positive("kappa", self.kappa)
        check_positive("eps", self.eps)


def corner_weights(num_modalities: int, *, single_token: bool = False) -> tuple[float, float]:
    """Probabilities of the all-zero and the all-one corner.

    The remaining mass, ``1 − w_zero − w_one``, is spread uniformly over the
    ``2^M − 2`` other corners.

    Args:
        num_modalities: ``M``.
        single_token: Every modality is one token: the all-one corner's weight moves to the all-zero corner.

    Returns:
        ``(w_zero, w_one)``.
    """
    w_zero, w_one = (0.5, 0.5) if num_modalities == 1 else (0.25, 0.25)
    if single_token:
        return w_zero + w_one, 0.0
    return w_zero, w_one


def sample_corners(
    n: int, num_modalities: int, *, single_token: bool = False, generator: torch.Generator
) -> torch.Tensor:
    """Draw mixture corners with the MIAM weights (:func:`corner_weights`).

    An "other" corner is a uniform bit-vector, redrawn (only on the rows that
    need it) while it is all-0 or all-1.

    Args:
        n: Number of rows.
        num_modalities: ``M``.
        single_token: See :func:`corner_weights`.
        generator: Source of randomness; the result lives on its device.

    Returns:
        ``bool[n, M]``, ``True`` where ``c_m = 1``.
    """
    device = generator.device
    w_zero, w_one = corner_weights(num_modalities, single_token=single_token)
    u = torch.rand(n, generator=generator, device=device)
    is_one = (u >= w_zero) & (u < w_zero + w_one)
    corners = is_one.unsqueeze(1).expand(n, num_modalities).clone()
    other = torch.nonzero(u >= w_zero + w_one).squeeze(1)
    while other.numel():
        bits = torch.rand(other.numel(), num_modalities, generator=generator, device=device) < 0.5
        corners[other] = bits
        constant = bits.all(dim=1) | ~bits.any(dim=1)
        other = other[constant]
    return corners


def sample_beta_corners(
    corners: torch.Tensor, kappa0: torch.Tensor, kappa1: torch.Tensor, *, generator: torch.Generator
) -> MaskProbabilities:
    """Draw ``p_m ~ Beta(1, kappa0_m)`` where ``c_m = 0`` and ``p_m ~ Beta(kappa1_m, 1)`` where ``c_m = 1``.

    Both betas have a parameter equal to 1 and so a closed-form inverse CDF:
    ``Beta(1, b)``: ``1 − u^(1/b)``; ``Beta(a, 1)``: ``u^(1/a)`` (with ``1 − u``
    replaced by the equally uniform ``u``). One uniform per entry, exact.

    Args:
        corners: ``bool[n, M]`` corners from :func:`sample_corners`.
        kappa0: ``float[M]`` second parameter of the ``c_m = 0`` beta.
        kappa1: ``float[M]`` first parameter of the ``c_m = 1`` beta.
        generator: Source of randomness (on the device of ``corners``).

    Returns:
        ``float32[n, M]`` masking probabilities in ``[0, 1]``.
    """
    n, num_modalities = corners.shape
    # The parameter that is not 1, per entry: kappa0 where c = 0, kappa1 where c = 1 (one term
    # of the sum is exactly 0, so no rounding when kappa0 and kappa1 differ by orders of magnitude).
    c = corners.to(kappa0.dtype)
    shape = torch.addcmul((1 - c).mul_(kappa0), c, kappa1)
    x = torch.rand(n, num_modalities, generator=generator, device=corners.device).log_().div_(shape)
    return torch.where(corners, torch.exp(x), torch.expm1(x).neg_())


def imbalance_ratios(previous: Sequence[float], current: Sequence[float], *, eps: float) -> dict[str, list[float]]:
    """MIAM's imbalance ratios from two consecutive epochs of per-modality scores.

    With ``s = current + ε`` and ``d = |current − previous| + ε``::

        ρ_s,m = s_m / geomean(s),   ρ_d,m = d_m / geomean(d) + ε,   r_m = ρ_s,m / ρ_d,m

    Args:
        previous: ``float[M]`` scores ``s_m(t − 1)``.
        current: ``float[M]`` scores ``s_m(t)``: validation score of each modality evaluated alone
            (macro AUC, or ``1/loss``); must exceed ``−ε``.
        eps: ε.

    Returns:
        ``{"d", "rho_s", "rho_d", "r"}``, each a list of ``M`` floats (``d`` without ε).
    """
    s = [c + eps for c in current]
    if min(s) <= 0:
        raise ConfigError(f"MIAM scores must be > -eps (use an AUC or 1/loss), got {list(current)}")
    d_raw = [abs(c - p) for c, p in zip(current, previous)]
    d = [x + eps for x in d_raw]
    rho_s = [x / _geomean(s) for x in s]
    rho_d = [x / _geomean(d) + eps for x in d]
    return {"d": d_raw, "rho_s": rho_s, "rho_d": rho_d, "r": [a / b for a, b in zip(rho_s, rho_d)]}


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


class MIAM(MaskingStrategy):
    """Modality imbalance-aware masking (MIAM, 2025): a beta mixture over the hypercube corners.

    ``update(scores)`` once per epoch recomputes the imbalance ratios ``r`` from
    the last two epochs (``r = 1`` until two epochs exist) and appends one entry
    to :attr:`history`. :meth:`set_ratios` sets ``r`` directly (for pictures).

    Attributes:
        history: One dict per :meth:`update`, keys ``epoch`` and, each as
            ``{modality: float}``: ``s``, ``d``, ``rho_s``, ``rho_d`` (``None`` in the
            first epoch), ``r``, and the effective beta parameters ``kappa0`` (``κ·r^−λ``,
            of ``Beta(1, ·)`` at ``c_m = 0``) and ``kappa1`` (``κ·r^λ``, of ``Beta(·, 1)``
            at ``c_m = 1``).

    Example:
        >>> from miam_explain.masking import get_strategy
        >>> miam = get_strategy("miam", modalities=["climate", "landsat", "sentinel2"], kappa=10, lam=3)
        >>> p = miam.sample(128, generator=torch.Generator().manual_seed(0))
        >>> tuple(p.shape)
        (128, 3)
    """

    name = "miam"
    Config = MIAMConfig
    adaptive = True

    def __init__(self, config: Any = None, *, modalities: Sequence[str], single_token: bool = False) -> None:
        super().__init__(config, modalities=modalities, single_token=single_token)
        self.ratios: list[float] = [1.0] * self.num_modalities
        self.history: list[dict[str, Any]] = []

    @property
    def kappa0(self) -> list[float]:
        """``κ·r_m^(−λ)``: second parameter of the ``c_m = 0`` beta, per modality."""
        return [self.config.kappa * r ** (-self.config.lam) for r in self.ratios]

    @property
    def kappa1(self) -> list[float]:
        """``κ·r_m^λ``: first parameter of the ``c_m = 1`` beta, per modality."""
        return [self.config.kappa * r**self.config.lam for r in self.ratios]

    def sample_corners(self, n: int, *, generator: torch.Generator) -> torch.Tensor:
        """Draw ``bool[n, M]`` mixture corners (``True`` where ``c_m = 1``); see :func:`sample_corners`."""
        return sample_corners(n, self.num_modalities, single_token=self.single_token, generator=generator)

    def _sample(self, n: int, generator: torch.Generator) -> MaskProbabilities:
        corners = self.sample_corners(n, generator=generator)
        device = generator.device
        kappa0 = torch.tensor(self.kappa0, dtype=torch.float32, device=device)
        kappa1 = torch.tensor(self.kappa1, dtype=torch.float32, device=device)
        return sample_beta_corners(corners, kappa0, kappa1, generator=generator)

    def set_ratios(self, ratios: Mapping[str, float] | Sequence[float]) -> None:
        """Set the imbalance ratios ``r`` directly, as given (no normalisation).

        The next :meth:`update` replaces them. Useful to see the effect of κ and λ without training.

        Args:
            ratios: ``{modality: r_m}`` or ``M`` numbers in modality order, each finite and ``> 0``.
        """
        if isinstance(ratios, Mapping):
            if set(ratios) != set(self.modalities):
                raise ConfigError(f"ratios must name exactly the modalities {list(self.modalities)}, got {sorted(ratios)}")
            values = [ratios[m] for m in self.modalities]
        else:
            values = list(ratios)
            if len(values) != self.num_modalities:
                raise ConfigError(
                    f"give one ratio per modality ({self.num_modalities}: {', '.join(self.modalities)}), got {len(values)}"
                )
        for m, r in zip(self.modalities, values):
            check_positive(f"ratio of modality {m!r}", float(r))
        self.ratios = [float(r) for r in values]

    def update(self, scores: Mapping[str, float]) -> None:
        """Record one epoch of per-modality scores and recompute ``r``.

        Args:
            scores: ``{modality: s_m}``: validation score of each modality evaluated alone
                (macro AUC, or ``1/loss``), each ``> −ε``.
        """
        s = self._check_scores(scores)
        current = [s[m] for m in self.modalities]
        eps = self.config.eps
        if min(current) + eps <= 0:
            raise ConfigError(f"MIAM scores must be > -eps (use an AUC or 1/loss), got {s}")
        entry: dict[str, Any] = {"epoch": len(self.history) + 1, "s": s}
        if self.history:
            previous = [self.history[-1]["s"][m] for m in self.modalities]
            stats = imbalance_ratios(previous, current, eps=eps)
            self.ratios = stats["r"]
        else:
            shifted = [c + eps for c in current]
            stats = {"d": None, "rho_s": [x / _geomean(shifted) for x in shifted], "rho_d": None}
            self.ratios = [1.0] * self.num_modalities
        for key in ("d", "rho_s", "rho_d"):
            entry[key] = None if stats[key] is None else dict(zip(self.modalities, stats[key]))
        entry["r"] = dict(zip(self.modalities, self.ratios))
        entry["kappa0"] = dict(zip(self.modalities, self.kappa0))
        entry["kappa1"] = dict(zip(self.modalities, self.kappa1))
        self.history.append(entry)

    def state_dict(self) -> dict[str, Any]:
        """Configuration, current ratios and full history, as JSON-serialisable python types."""
        state = super().state_dict()
        state["ratios"] = list(self.ratios)
        state["history"] = [_plain(entry) for entry in self.history]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ratios and history written by :meth:`state_dict`."""
        super().load_state_dict(state)
        if "ratios" not in state or "history" not in state:
            raise ConfigError("MIAM state needs 'ratios' and 'history'; pass the dict from MIAM.state_dict()")
        self.set_ratios(state["ratios"])
        self.history = [_plain(entry) for entry in state["history"]]


class BetaHypercube(MIAM):
    """MIAM with ``λ = 0``: a static beta mixture over the hypercube corners.

    It still records the scores and ratios in :attr:`history` (for diagnostics),
    but its distribution never changes: ``κ·r^0 = κ``.
    """

    name = "beta_hypercube"
    Config = BetaHypercubeConfig
    adaptive = False


def _plain(value: Any) -> Any:
    """Deep copy of nested dicts/lists with python floats (JSON-serialisable)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    return float(value)
