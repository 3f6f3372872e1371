"""Marginal contributions along player orders: what permutation-based estimators share.

An *order* is a permutation of the players, ``int[P]`` (``order[k]`` is the ``k``-th player to
arrive). Walking it adds the players one by one; the ``P - 1`` interior prefixes are the
coalitions to evaluate (the empty and the grand coalition are common to every order), and each
player's marginal contribution is the value gained when it arrives.

Example:
    >>> import numpy as np
    >>> order = np.array([[2, 0, 1]])
    >>> position, keep = interior_prefixes(order)
    >>> keep[0].astype(int)  # {2}, then {0, 2}
    array([[0, 0, 1],
           [1, 0, 1]])
    >>> v = lambda rows: rows @ np.array([1.0, 2.0, 4.0])  # an additive game
    >>> marginals_by_player(position, v(keep.reshape(-1, 3)).reshape(1, 2), np.float64(0.0), np.float64(7.0))
    array([[1., 2., 4.]])
"""

from __future__ import annotations

import numpy as np

__all__ = ["interior_prefixes", "marginals_by_player"]


def interior_prefixes(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The interior prefixes of each order.

    Args:
        order: ``int[n, P]``; row ``s`` is a permutation of the players.

    Returns:
        ``(position int[n, P], keep bool[n, P-1, P])``: where each player stands in each order,
        and the prefixes of sizes ``1 .. P-1`` of each order.
    """
    n_players = order.shape[1]
    position = np.argsort(order, axis=1)
    sizes = np.arange(1, n_players)
    return position, position[:, None, :] < sizes[None, :, None]


def marginals_by_player(position: np.ndarray, interior: np.ndarray, v_empty: np.ndarray, v_full: np.ndarray) -> np.ndarray:
    """Each player's marginal contribution along its order.

    Args:
        position: ``int[m, P]`` from :func:`interior_prefixes`.
        interior: ``float64[m, P-1, *value_shape]`` values of the interior prefixes.
        v_empty: ``float64[*value_shape]``.
        v_full: ``float64[*value_shape]``.

    Returns:
        ``float64[m, P, *value_shape]``: ``v(prefix ∪ {i}) - v(prefix)`` for player ``i``; each row
        sums over players to ``v_full - v_empty``.
    """
    m, n_players = position.shape
    value_shape = v_empty.shape
    prefix = np.concatenate(
        [np.broadcast_to(v_empty, (m, 1, *value_shape)), interior, np.broadcast_to(v_full, (m, 1, *value_shape))],
        axis=1,
    )
    marginal = np.diff(prefix, axis=1)  # [m, P, ...]: contribution of the k-th player of the order
    index = position.reshape((m, n_players) + (1,) * len(value_shape))
    return np.take_along_axis(marginal, index, axis=1)
