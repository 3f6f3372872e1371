"""The game contract: a value function over coalitions of players.

A *game* maps a boolean coalition matrix ``keep: bool[C, P]`` (``True`` = the
player is present, the project's one polarity) to values ``float64[C, *value_shape]``.
``value_shape`` is ``()`` for a scalar game such as the performance game, and
``(n_sites, n_targets)`` for the prediction game. Estimators
(:mod:`miam_explain.explain.estimators`) only ever talk to a game through this
contract, so they never know which model, if any, sits behind it.

:class:`FunctionGame` wraps a plain numpy function of the coalition matrix; it
serves closed-form games in tests and documentation, and users who want to
explain their own value function.

Example:
    >>> import numpy as np
    >>> w = np.array([1.0, 2.0, 3.0])
    >>> game = FunctionGame(lambda keep: keep @ w, players=("a", "b", "c"))
    >>> game(np.array([[True, False, True]]))
    array([4.])
    >>> game.n_evaluations
    1
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from miam_explain.typing import CoalitionMatrix

__all__ = ["Game", "PlayerGame", "FunctionGame", "as_coalition_array"]


@runtime_checkable
class Game(Protocol):
    """Anything that maps a coalition matrix to values.

    Attributes:
        players: Names of the ``P`` players, in column order of the coalition matrix.
        n_players: ``P``, the number of players.
        n_evaluations: Number of coalitions (rows) evaluated so far.
    """

    @property
    def players(self) -> tuple[str, ...]: ...

    @property
    def n_players(self) -> int: ...

    @property
    def n_evaluations(self) -> int: ...

    def __call__(self, coalitions: CoalitionMatrix) -> np.ndarray:
        """Evaluate the game.

        Args:
            coalitions: ``bool[C, P]`` numpy array or torch tensor, ``True`` where
                the player is present.

        Returns:
            ``float64[C, *value_shape]`` values, one per coalition.
        """
        ...


def as_coalition_array(coalitions: CoalitionMatrix, n_players: int) -> np.ndarray:
    """Check a coalition matrix and return it as a numpy ``bool[C, P]`` array.

    Args:
        coalitions: ``bool[C, P]`` numpy array or torch tensor (any device).
        n_players: ``P``, the expected number of columns.

    Returns:
        ``bool[C, P]`` numpy array (a view when the input already is one).

    Raises:
        ValueError: the matrix is not two-dimensional, has the wrong number of
            columns, or is not boolean.
    """
    if isinstance(coalitions, torch.Tensor):
        coalitions = coalitions.detach().cpu().numpy()
    array = np.asarray(coalitions)
    if array.ndim != 2 or array.shape[1] != n_players:
        raise ValueError(f"coalitions must have shape (C, {n_players}), got {array.shape}")
    if array.dtype != np.bool_:
        raise ValueError(
            f"coalitions must be boolean (True = player present), got dtype {array.dtype}; convert with .astype(bool)"
        )
    return array


class PlayerGame:
    """The bookkeeping a game class shares: its players (checked names) and the coalitions it has evaluated.

    A subclass sets ``self._players`` through :meth:`_set_players` and adds to
    ``self._n_evaluations`` in its ``__call__``.
    """

    _players: tuple[str, ...] = ()
    _n_evaluations: int = 0

    def _set_players(self, players: Sequence[str]) -> None:
        if isinstance(players, str):
            raise ValueError(f"players must be a sequence of names, got the single string {players!r}")
        names = tuple(str(p) for p in players)
        if not names:
            raise ValueError("a game needs at least one player")
        if len(set(names)) != len(names):
            raise ValueError(f"player names must be unique, got {names}")
        self._players = names
        self._n_evaluations = 0

    @property
    def players(self) -> tuple[str, ...]:
        """Names of the ``P`` players."""
        return self._players

    @property
    def n_players(self) -> int:
        """``P``, the number of players."""
        return len(self._players)

    @property
    def n_evaluations(self) -> int:
        """Number of coalitions evaluated so far."""
        return self._n_evaluations


class FunctionGame(PlayerGame):
    """A game defined by a python/numpy function of the coalition matrix.

    Args:
        fn: Maps ``bool[C, P]`` (numpy) to an array-like of shape ``(C, *value_shape)``.
        players: Names of the ``P`` players.
        value_shape: Shape of one coalition's value; ``()`` for a scalar game.

    Raises:
        ValueError: the player names are empty or not unique.

    Example:
        >>> import numpy as np
        >>> both = FunctionGame(lambda keep: (keep[:, 0] & keep[:, 1]).astype(float), players=("x", "y"))
        >>> both(np.array([[True, True], [True, False]]))
        array([1., 0.])
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        players: Sequence[str],
        value_shape: tuple[int, ...] = (),
    ) -> None:
        self._set_players(players)
        self._fn = fn
        self.value_shape = tuple(int(d) for d in value_shape)

    def __call__(self, coalitions: CoalitionMatrix) -> np.ndarray:
        """Evaluate ``fn`` on a coalition matrix.

        Args:
            coalitions: ``bool[C, P]`` numpy array or torch tensor.

        Returns:
            ``float64[C, *value_shape]``.

        Raises:
            ValueError: the coalition matrix is malformed, or ``fn`` returned a
                wrongly shaped result.
        """
        keep = as_coalition_array(coalitions, self.n_players)
        values = np.asarray(self._fn(keep), dtype=np.float64)
        expected = (keep.shape[0], *self.value_shape)
        if values.shape != expected:
            raise ValueError(f"the game function returned shape {values.shape}, expected {expected} (C, *value_shape)")
        self._n_evaluations += keep.shape[0]
        return values

    def __repr__(self) -> str:
        return f"FunctionGame(players={self._players}, value_shape={self.value_shape})"
