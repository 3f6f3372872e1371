"""Exact Shapley, Banzhaf and pairwise interaction values from a complete table of ``2^P`` coalition values.

Row ``k`` of a value table is the value of the coalition whose bitmask is ``k`` (bit ``i`` =
player ``i``). Every formula is one weighted sum over the table per player (or pair), vectorised.

Example:
    >>> import numpy as np
    >>> table = np.array([0.0, 1.0, 2.0, 4.0])  # v({}), v({a}), v({b}), v({a, b})
    >>> shapley_from_table(table)
    array([1.5, 2.5])
    >>> float(interactions_from_table(table)[0, 1])  # v({a, b}) - v({a}) - v({b}) + v({})
    1.0
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "coalitions_from_bitmasks",
    "coalition_sizes",
    "table_players",
    "semivalue",
    "shapley_from_table",
    "banzhaf_from_table",
    "interactions_from_table",
]


def coalitions_from_bitmasks(bitmasks: np.ndarray, n_players: int) -> np.ndarray:
    """Turn coalition bitmasks into a coalition matrix.

    Args:
        bitmasks: ``int[C]``; bit ``i`` is set when player ``i`` is present.
        n_players: ``P``.

    Returns:
        ``bool[C, P]`` coalition matrix.
    """
    bitmasks = np.asarray(bitmasks, dtype=np.int64)
    return ((bitmasks[:, None] >> np.arange(n_players, dtype=np.int64)) & 1).astype(bool)


def table_players(table: np.ndarray) -> int:
    n_players = int(table.shape[0]).bit_length() - 1
    if n_players < 1 or table.shape[0] != 1 << n_players:
        raise ValueError(f"a value table needs 2^P rows (P >= 1), got {table.shape[0]}")
    return n_players


def coalition_sizes(n_players: int) -> np.ndarray:
    """``int64[2^P]``: number of players in each bitmask coalition."""
    index = np.arange(1 << n_players, dtype=np.int64)
    sizes = np.zeros(1 << n_players, dtype=np.int64)
    for i in range(n_players):
        sizes += (index >> i) & 1
    return sizes


def shapley_from_table(table: np.ndarray) -> np.ndarray:
    """Exact Shapley values from a complete value table, in ``O(P·2^P)``.

    ``phi_i = sum_{S ⊆ N∖{i}} |S|!(P-|S|-1)!/P! [v(S ∪ {i}) - v(S)]``, written as
    one weighted sum over the table per player: a coalition ``T`` enters with
    weight ``(|T|-1)!(P-|T|)!/P!`` when ``i ∈ T`` and ``-|T|!(P-|T|-1)!/P!`` when not.

    Args:
        table: ``float64[2^P, *value_shape]``; row ``k`` is the value of the
            coalition whose bitmask is ``k`` (bit ``i`` = player ``i``).

    Returns:
        ``float64[P, *value_shape]``.
    """
    n_players = table_players(table)
    # w_out[s] = s!(P-s-1)!/P! = 1 / (P * C(P-1, s)); w_in[s] = w_out[s-1].
    w_out = np.array([1.0 / (n_players * math.comb(n_players - 1, s)) for s in range(n_players)] + [0.0])
    w_in = np.concatenate([[0.0], w_out[:-1]])
    return semivalue(table, w_in, w_out)


def semivalue(table: np.ndarray, w_in: np.ndarray, w_out: np.ndarray) -> np.ndarray:
    """``phi_i = sum_T w_in[|T|] v(T) [i in T] - w_out[|T|] v(T) [i not in T]``, one weighted sum per player.

    Args:
        table: ``float64[2^P, *value_shape]`` indexed by coalition bitmask.
        w_in: ``float64[P + 1]`` weight of a coalition of each size that holds ``i``.
        w_out: ``float64[P + 1]`` weight of a coalition of each size that lacks ``i``.

    Returns:
        ``float64[P, *value_shape]``.
    """
    n_players = table_players(table)
    flat = table.reshape(table.shape[0], -1)
    sizes = coalition_sizes(n_players)
    weight_in, weight_out = w_in[sizes], w_out[sizes]
    index = np.arange(table.shape[0], dtype=np.int64)
    out = np.empty((n_players, flat.shape[1]))
    for i in range(n_players):
        present = ((index >> i) & 1).astype(bool)
        out[i] = np.where(present, weight_in, -weight_out) @ flat
    return out.reshape((n_players, *table.shape[1:]))


def banzhaf_from_table(table: np.ndarray) -> np.ndarray:
    """Exact Banzhaf values: ``beta_i = 2^{1-P} sum_{S ⊆ N∖{i}} [v(S ∪ {i}) - v(S)]``.

    Args:
        table: ``float64[2^P, *value_shape]`` indexed by coalition bitmask.

    Returns:
        ``float64[P, *value_shape]``.
    """
    n_players = table_players(table)
    scale = np.full(n_players + 1, 0.5 ** (n_players - 1))
    return semivalue(table, scale, scale)


def interactions_from_table(table: np.ndarray) -> np.ndarray:
    """Exact pairwise Shapley interaction index (Grabisch & Roubens 1999), in ``O(P²·2^P)``.

    ``I_ij = sum_{S ⊆ N∖{i,j}} |S|!(P-|S|-2)!/(P-1)! [v(S∪{i,j}) - v(S∪{i}) - v(S∪{j}) + v(S)]``
    for ``i != j``. The diagonal, where the pairwise index is not defined, is 0.

    Args:
        table: ``float64[2^P, *value_shape]`` indexed by coalition bitmask.

    Returns:
        ``float64[P, P, *value_shape]``, symmetric in the first two axes.
    """
    n_players = table_players(table)
    flat = table.reshape(table.shape[0], -1)
    out = np.zeros((n_players, n_players, flat.shape[1]))
    if n_players >= 2:
        sizes = coalition_sizes(n_players)
        # padded[t + 2] = t!(P-t-2)!/(P-1)! = 1 / ((P-1) * C(P-2, t)) for 0 <= t <= P-2, else 0.
        padded = np.zeros(n_players + 3)
        padded[2 : n_players + 1] = [
            1.0 / ((n_players - 1) * math.comb(n_players - 2, t)) for t in range(n_players - 1)
        ]
        # A coalition T with |T| = s enters with S = T minus the pair members it holds.
        w_both, w_one, w_none = padded[sizes], -padded[sizes + 1], padded[sizes + 2]
        index = np.arange(table.shape[0], dtype=np.int64)
        for i in range(n_players):
            has_i = ((index >> i) & 1).astype(bool)
            for j in range(i + 1, n_players):
                has_j = ((index >> j) & 1).astype(bool)
                coef = np.where(has_i & has_j, w_both, np.where(has_i ^ has_j, w_one, w_none))
                out[i, j] = out[j, i] = coef @ flat
    return out.reshape((n_players, n_players, *table.shape[1:]))
