"""The masking-strategy contract and the token keep-mask.

A masking strategy is a distribution over the per-modality masking
probabilities **p** in ``[0, 1]^M``. It maps ``(n, generator)`` to a
``float[n, M]`` tensor; :func:`keep_mask` then turns **p** into a per-token
``bool[n, T]`` keep-mask (``True`` = visible). Adaptive strategies (``miam``,
``opm``) read per-modality validation scores once per epoch through
:meth:`MaskingStrategy.update`; static ones ignore them.

Everything here is vectorised torch and runs on the device of the injected
:class:`torch.Generator`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from miam_explain.errors import ConfigError
from miam_explain.typing import KeepMask, MaskProbabilities, TokenModality

__all__ = ["MaskingStrategy", "keep_mask"]


def keep_mask(
    p: MaskProbabilities,
    modality_of_token: TokenModality,
    observed: torch.Tensor,
    *,
    generator: torch.Generator,
) -> KeepMask:
    """Draw which tokens stay visible: ``keep = (u > p[:, modality_of_token]) & observed``.

    Each token of modality ``m`` is hidden independently with probability
    ``p[:, m]``; a token that is not observed (missing data) is never visible.

    Args:
        p: ``float[n, M]`` masking probabilities, one row per sample.
        modality_of_token: ``int64[T]`` modality index (``0 <= . < M``) of every token.
        observed: ``bool[n, T]``, ``True`` where every value of the token is finite.
        generator: Source of randomness; the uniforms ``u`` are drawn on its device.

    Returns:
        ``bool[n, T]`` keep-mask, ``True`` where the token is visible.

    Raises:
        ValueError: the shapes do not fit together.
    """
    if p.ndim != 2:
        raise ValueError(f"p must have shape (n, M), got {tuple(p.shape)}")
    if modality_of_token.ndim != 1:
        raise ValueError(f"modality_of_token must have shape (T,), got {tuple(modality_of_token.shape)}")
    n, num_modalities = p.shape
    num_tokens = modality_of_token.shape[0]
    if tuple(observed.shape) != (n, num_tokens):
        raise ValueError(f"observed must have shape (n, T) = {(n, num_tokens)}, got {tuple(observed.shape)}")
    if observed.dtype != torch.bool:
        raise ValueError(f"observed must be a bool tensor, got {observed.dtype}")
    if num_tokens and (int(modality_of_token.min()) < 0 or int(modality_of_token.max()) >= num_modalities):
        raise ValueError(f"modality_of_token must lie in [0, {num_modalities}); p has {num_modalities} columns")
    u = torch.rand(n, num_tokens, generator=generator, device=generator.device, dtype=p.dtype)
    p_token = p.to(u.device)[:, modality_of_token.to(u.device)]
    return (u > p_token) & observed.to(u.device)


@dataclasses.dataclass(frozen=True)
class NoHyperparameters:
    """Hyperparameters of a strategy that has none."""


def coerce_float_fields(config: Any) -> None:
    """Turn every field of a frozen hyperparameter dataclass into a python ``float``.

    Raises:
        ConfigError: a field is not a real number (``bool`` and strings are refused).
    """
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{type(config).__name__}.{field.name} must be a number, got {value!r}")
        object.__setattr__(config, field.name, float(value))


def check_fraction(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``0 <= value <= 1``."""
    if not (0.0 <= value <= 1.0):
        raise ConfigError(f"{name} must lie in [0, 1], got {value!r}")


def check_positive(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` is finite and ``> 0``."""
    if not (math.isfinite(value) and value > 0.0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def check_finite(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` is finite."""
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")


class MaskingStrategy(abc.ABC):
    """A distribution over per-modality masking probabilities **p** in ``[0, 1]^M``.

    Subclasses set :attr:`name` and :attr:`Config` (a frozen dataclass of
    hyperparameters) and implement :meth:`_sample`. Build them with
    :func:`miam_explain.masking.get_strategy`.

    Args:
        config: The strategy's hyperparameters (an instance of :attr:`Config`).
        modalities: Modality names, in the column order of **p**.
        single_token: Every modality is a single token (changes MIAM's corner weights).
    """

    #: Registry name of the strategy.
    name: ClassVar[str]
    #: Frozen dataclass of hyperparameters.
    Config: ClassVar[type] = NoHyperparameters
    #: Whether :meth:`update` changes the distribution.
    adaptive: ClassVar[bool] = False

    def __init__(self, config: Any = None, *, modalities: Sequence[str], single_token: bool = False) -> None:
        self.config = self.Config() if config is None else config
        if not isinstance(self.config, self.Config):
            raise ConfigError(f"{self.name} takes a {self.Config.__name__}, got {type(self.config).__name__}")
        self.modalities: tuple[str, ...] = _check_modalities(modalities)
        self.single_token = bool(single_token)

    @property
    def num_modalities(self) -> int:
        """Number of modalities ``M`` (columns of **p**)."""
        return len(self.modalities)

    @property
    def hyperparameters(self) -> dict[str, float]:
        """The hyperparameters as a plain ``dict``."""
        return dataclasses.asdict(self.config)

    def sample(self, n: int, *, generator: torch.Generator) -> MaskProbabilities:
        """Draw masking probabilities for a batch.

        Args:
            n: Number of samples (rows).
            generator: Source of randomness; the result lives on its device.

        Returns:
            ``float32[n, M]`` tensor of masking probabilities in ``[0, 1]``.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return self._sample(n, generator)

    @abc.abstractmethod
    def _sample(self, n: int, generator: torch.Generator) -> MaskProbabilities:
        """Draw ``float32[n, M]`` masking probabilities on ``generator.device``."""

    def keep_mask(
        self,
        p: MaskProbabilities,
        modality_of_token: TokenModality,
        observed: torch.Tensor,
        *,
        generator: torch.Generator,
    ) -> KeepMask:
        """Token keep-mask for probabilities ``p``; see :func:`keep_mask`.

        Args:
            p: ``float[n, M]`` masking probabilities from :meth:`sample`.
            modality_of_token: ``int64[T]`` modality index of every token.
            observed: ``bool[n, T]``, ``True`` where the token has data.
            generator: Source of randomness.

        Returns:
            ``bool[n, T]``, ``True`` where the token is visible.
        """
        if p.ndim == 2 and p.shape[1] != self.num_modalities:
            raise ValueError(f"p has {p.shape[1]} columns but the strategy has {self.num_modalities} modalities")
        return keep_mask(p, modality_of_token, observed, generator=generator)

    def update(self, scores: Mapping[str, float]) -> None:
        """Feed one epoch of per-modality validation scores (static strategies ignore them).

        Args:
            scores: ``{modality: score}`` for every modality, e.g. the macro AUC of
                the model evaluated on that modality alone (or ``1/loss``).
        """
        self._check_scores(scores)

    def state_dict(self) -> dict[str, Any]:
        """All state needed to rebuild and resume the strategy, as JSON-serialisable python types."""
        return {
            "strategy": self.name,
            "modalities": list(self.modalities),
            "single_token": self.single_token,
            "hyperparameters": self.hyperparameters,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state written by :meth:`state_dict`.

        Raises:
            ConfigError: the state belongs to another strategy, modality list or hyperparameters.
        """
        mine = MaskingStrategy.state_dict(self)
        for key, value in mine.items():
            theirs = state.get(key)
            if key == "hyperparameters" and isinstance(theirs, Mapping):
                try:
                    theirs = {k: float(v) for k, v in theirs.items()}
                except (TypeError, ValueError):
                    raise ConfigError(f"state hyperparameters must be numbers, got {theirs!r}") from None
            if theirs != value:
                raise ConfigError(
                    f"state was saved with {key}={state.get(key)!r}, but this strategy has {key}={value!r}; "
                    "rebuild it with miam_explain.masking.from_state_dict(state)"
                )

    def _check_scores(self, scores: Mapping[str, float]) -> dict[str, float]:
        """Validate one epoch of scores and return them as ``{modality: float}``."""
        if not isinstance(scores, Mapping):
            raise ConfigError(f"scores must be a mapping {{modality: score}}, got {type(scores).__name__}")
        if set(scores) != set(self.modalities):
            raise ConfigError(
                f"scores must name exactly the modalities {list(self.modalities)}, got {sorted(scores)}"
            )
        out = {}
        for m in self.modalities:
            value = float(scores[m])
            if not math.isfinite(value):
                raise ConfigError(f"score of modality {m!r} must be finite, got {value!r}")
            out[m] = value
        return out

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        params = f", {params}" if params else ""
        return f"{type(self).__name__}(modalities={list(self.modalities)!r}{params}, single_token={self.single_token})"


def _check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    if isinstance(modalities, str) or not isinstance(modalities, Sequence):
        raise ConfigError(f"modalities must be a list of names, got {modalities!r}")
    names = tuple(modalities)
    if not names:
        raise ConfigError("modalities must name at least one modality")
    if not all(isinstance(m, str) and m for m in names):
        raise ConfigError(f"modalities must be non-empty strings, got {list(names)!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"modality names must be unique, got {list(names)!r}")
    return names


def full_rows(values: torch.Tensor, n: int) -> MaskProbabilities:
    """Repeat a ``float[M]`` vector into a fresh ``float[n, M]`` tensor."""
    return values.unsqueeze(0).expand(n, values.shape[0]).clone()
