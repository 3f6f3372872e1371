"""Closed-form games with redundant players, for testing and benchmarking estimators.

Players that share information (the years of a climate series, neighbouring patches, correlated
variables) are the normal case in this field: the first member of a group to arrive brings most
of the group's worth, the later ones little. :func:`redundant_value` builds such a value function
from a seed, with exact Shapley values computable by brute force at small ``P``; the estimator
tests and ``benchmarks/estimators.py`` use the same construction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from miam_explain.explain.game import FunctionGame

__all__ = ["redundant_game", "redundant_value"]


def redundant_value(
    n_players: int, *, groups: int, seed: int, unequal: bool = False
) -> Callable[[np.ndarray], np.ndarray]:
    """``v(S) = sum_g w_g (1 - exp(-a_g |S ∩ G_g|)) + sum_i u_i z_i + sum_k c_k z_i z_j``: diminishing returns per group.

    The players are dealt at random into ``groups`` groups; ``w_g ~ U(0.5, 1.5)``, ``a_g ~ U(0.5, 2)``,
    small unique parts ``u_i ~ N(0, 0.02²)`` and ``P`` random pairwise terms ``c_k ~ N(0, 0.02²)``.
    With ``unequal``, member ``i`` tells a share ``r_i ~ U(0.2, 2)`` of its group's story
    (``|S ∩ G_g|`` becomes ``sum_{i in S ∩ G_g} r_i``), so a marginal contribution depends on
    *which* members came before, not only on how many. With equal members and one group, ``v`` is a
    function of ``|S|`` plus terms of order one and two.

    Args:
        n_players: ``P``.
        groups: Number of redundant groups (at most ``P``).
        seed: Seed of every random choice.
        unequal: Members tell unequal shares of their group's story.

    Returns:
        ``value(keep: bool[C, P]) -> float64[C]``.

    Example:
        >>> value = redundant_value(6, groups=1, seed=0)
        >>> none, one, all_ = value(np.array([[False] * 6, [True] + [False] * 5, [True] * 6]))
        >>> bool(none == 0.0), bool(one > 0.5 * all_)   # one member alone brings most of the group's worth
        (True, True)
    """
    rng = np.random.default_rng(seed)
    members = np.array_split(rng.permutation(n_players), groups)
    weight, rate = rng.uniform(0.5, 1.5, groups), rng.uniform(0.5, 2.0, groups)
    unique = rng.normal(0.0, 0.02, n_players)
    pairs, pair_weight = rng.integers(0, n_players, (n_players, 2)), rng.normal(0.0, 0.02, n_players)
    share = rng.uniform(0.2, 2.0, n_players) if unequal else np.ones(n_players)

    def value(keep: np.ndarray) -> np.ndarray:
        z = keep.astype(float)
        out = z @ unique + (z[:, pairs[:, 0]] * z[:, pairs[:, 1]]) @ pair_weight
        for g, group in enumerate(members):
            out += weight[g] * (1.0 - np.exp(-rate[g] * (z[:, group] @ share[group])))
        return out

    return value


def redundant_game(n_players: int, *, groups: int, seed: int, unequal: bool = False) -> FunctionGame:
    """:func:`redundant_value` as a :class:`~miam_explain.explain.game.FunctionGame` with players ``p0 … p{P-1}``."""
    return FunctionGame(redundant_value(n_players, groups=groups, seed=seed, unequal=unequal),
                        [f"p{i}" for i in range(n_players)])
