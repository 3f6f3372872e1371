"""Build masking strategies by name: :func:`get_strategy` and :func:`from_state_dict`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from miam_explain.errors import ConfigError
from miam_explain.masking.base import MaskingStrategy
from miam_explain.masking.miam import MIAM, BetaHypercube
from miam_explain.masking.opm import OPM
from miam_explain.masking.static import Constant, Dirichlet, ModalityDropout, SharedUniform, UniformHypercube

__all__ = ["STRATEGIES", "get_strategy", "from_state_dict", "strategy_hyperparameters"]

#: Every strategy by name, in the order of the paper's table.
STRATEGIES: dict[str, type[MaskingStrategy]] = {
    cls.name: cls
    for cls in (Constant, SharedUniform, Dirichlet, ModalityDropout, OPM, UniformHypercube, BetaHypercube, MIAM)
}


def strategy_hyperparameters(name: str) -> dict[str, float]:
    """The hyperparameters of strategy ``name`` with their defaults.

    Raises:
        ConfigError: unknown ``name``.
    """
    cls = _strategy_class(name)
    return dataclasses.asdict(cls.Config())


def get_strategy(
    name: str,
    *,
    modalities: Sequence[str],
    single_token: bool = False,
    **hyperparameters: float,
) -> MaskingStrategy:
    """Build a masking strategy.

    Args:
        name: One of ``constant``, ``shared_uniform``, ``dirichlet``, ``modality_dropout``,
            ``opm``, ``uniform_hypercube``, ``beta_hypercube``, ``miam``.
        modalities: Modality names, in the column order of **p**.
        single_token: Every modality is a single token (MIAM moves the all-one corner's weight
            to the all-zero corner).
        **hyperparameters: Fields of the strategy's config dataclass, e.g. ``kappa``, ``lam``,
            ``eps`` (miam); ``kappa``, ``eps`` (beta_hypercube); ``q_base``, ``lam``, ``p_exe``
            (opm); ``p`` (constant); ``rate`` (modality_dropout).
            Every key is checked against the config's fields.

    Returns:
        The strategy, with ``r = 1`` (MIAM) or ``q = 0`` (OPM) until its first ``update``.

    Raises:
        ConfigError: unknown name or hyperparameter, or a value out of range. The message lists
            the valid choices.

    Example:
        >>> miam = get_strategy("miam", modalities=["climate", "landsat"], kappa=10, lam=1)
        >>> miam.hyperparameters
        {'kappa': 10.0, 'lam': 1.0, 'eps': 0.001}
    """
    cls = _strategy_class(name)
    valid = [field.name for field in dataclasses.fields(cls.Config)]
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        choices = ", ".join(valid) if valid else "none"
        raise ConfigError(f"strategy {name!r} has no hyperparameter {', '.join(map(repr, unknown))}; valid: {choices}")
    try:
        config = cls.Config(**hyperparameters)
    except ConfigError as exc:
        raise ConfigError(f"strategy {name!r}: {exc}") from None
    return cls(config, modalities=modalities, single_token=single_token)


def from_state_dict(state: Mapping[str, Any]) -> MaskingStrategy:
    """Rebuild a strategy, with its adaptive state, from :meth:`MaskingStrategy.state_dict`.

    Raises:
        ConfigError: the state is not a strategy state.
    """
    missing = [k for k in ("strategy", "modalities", "single_token", "hyperparameters") if k not in state]
    if missing:
        raise ConfigError(f"not a masking-strategy state: missing {', '.join(missing)}")
    strategy = get_strategy(
        state["strategy"],
        modalities=list(state["modalities"]),
        single_token=bool(state["single_token"]),
        **dict(state["hyperparameters"]),
    )
    strategy.load_state_dict(state)
    return strategy


def _strategy_class(name: str) -> type[MaskingStrategy]:
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown masking strategy {name!r}; choose one of: {', '.join(STRATEGIES)}") from None
