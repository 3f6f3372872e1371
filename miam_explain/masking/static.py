"""Static masking strategies: their distribution of **p** never changes during training.

================== ==============================================================
name               distribution of **p** (``float[n, M]``)
================== ==============================================================
constant           ``p_m = p`` (default 0.75) for every sample and modality
shared_uniform     one ``u ~ U(0, 1)`` per call (batch), shared by all rows and modalities (MaskSDM)
dirichlet          ``p ~ Dir(1_M)`` per sample (4M): uniform on the simplex
modality_dropout   ``p_m ~ Bernoulli(rate)`` independently (default ``rate = 0.1``)
uniform_hypercube  ``p_m ~ U(0, 1)`` independently
================== ==============================================================

``beta_hypercube`` is MIAM with ``lam = 0`` and lives in :mod:`miam_explain.masking.miam`.
"""

from __future__ import annotations

import dataclasses

import torch

from miam_explain.masking.base import (
    MaskingStrategy,
    check_fraction,
    coerce_float_fields,
    full_rows,
)
from miam_explain.typing import MaskProbabilities

__all__ = [
    "Constant",
    "ConstantConfig",
    "SharedUniform",
    "Dirichlet",
    "ModalityDropout",
    "ModalityDropoutConfig",
    "UniformHypercube",
]


@dataclasses.dataclass(frozen=True)
class ConstantConfig:
    """Hyperparameters of :class:`Constant`.

    Attributes:
        p: The masking probability of every modality.
    """

    p: float = 0.75

    def __post_init__(self) -> None:
        coerce_float_fields(self)
        check_fraction("p", self.p)


class Constant(MaskingStrategy):
    """``p_m = p`` for every sample and modality (default 0.75)."""

    name = "constant"
    Config = ConstantConfig

    def _sample(self, n: int, generator: torch.Generator) -> MaskProbabilities:
        return torch.full((n, self.num_modalities), self.config.p, device=generator.device)


class SharedUniform(MaskingStrategy):
    """MaskSDM: one ``p ~ U(0, 1)`` per call (i.e. per batch), shared by all samples and modalities."""

    name = "shared_uniform"

    def _sample(self, n: int, generator: torch.Generator) -> MaskProbabilities:
        u = torch.rand(1, generator=generator, device=generator.device)
        return full_rows(u.expand(self.num_modalities), n)


class Dirichlet(MaskingStrategy):
    """4M: ``p ~ Dir(1_M)`` per sample, i.e. uniform on the simplex, so every row sums to 1.

    Drawn as normalised ``Exp(1)`` variables ``−log u``, which honours the generator.
    """

    name = "dirichlet"

    def _sample(self, n: int, generator: torch.Generator) -> MaskProbabilities:
        u = torch.rand(n, self.num_modalities, generator=generator, device=generator.device)
        # 1 - u lies in (0, 1], so each draw is finite; ``tiny`` keeps a row of exact zeros
        # (u == 0 everywhere, probability 2^-24 per entry) from dividing 0 by 0.
        e = torch.finfo(u.dtype).tiny - torch.log1p(-u)
        return e / e.sum(dim=1, keepdim=True)


@dataclasses.dataclass(frozen=True)
class ModalityDropoutConfig:
    """Hyperparameters of :class:`ModalityDropout`.

    Attributes:
        rate: Probability that a modality is dropped (``p_m = 1``) in a sample.
    """

    rate: float = 0.1

    def __post_init__(self) -> None:
        coerce_float_fields(self)
        check_fraction("rate", self.rate)


class ModalityDropout(MaskingStrategy):
    """``p_m ∈ {0, 1}`` with ``P(p_m = 1) = rate`` independently per sample and modality."""

    name = "modality_dropout"
    Config = ModalityDropoutConfig

    def _sample(self, n: int, generator: torch.Generator) -> MaskProbabilities:
        u = torch.rand(n, self.num_modalities, generator=generator, device=generator.device)
        return (u < self.config.rate).float()


class UniformHypercube(MaskingStrategy):
    """``p_m ~ U(0, 1)`` independently per sample and modality."""

    name = "uniform_hypercube"

    def _sample(self, n: int, generator: torch.Generator) -> MaskProbabilities:
        return torch.rand(n, self.num_modalities, generator=generator, device=generator.device)
