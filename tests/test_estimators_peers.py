"""The exact estimator against shap, captum and shapiq on the same game.

Each peer gets our game wrapped as its own kind of function, so that what it
evaluates is exactly ``v(coalition)``:

* shap: a model ``f(X)`` over binary player vectors, with an ``Independent``
  masker whose background is the all-zeros row, explaining the all-ones row; a
  masked feature takes the background value 0, i.e. the player is absent.
* captum: a forward function over float player vectors, input ones, baselines
  zero, one feature group per player (``feature_mask``).
* shapiq: its value function over ``bool[C, P]`` coalitions, as ours.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from miam_explain.explain.estimators import ExactEstimator
from miam_explain.explain.game import FunctionGame

ATOL = 1e-6


def random_game(
    n_players: int, seed: int, value_shape: tuple[int, ...] = (), *, dyadic: bool = False
) -> FunctionGame:
    """A game with a random value table; ``dyadic`` values (multiples of 1/8 in [-1, 1]) are exact in float32."""
    rng = np.random.default_rng(seed)
    shape = (2**n_players, *value_shape)
    table = rng.integers(-8, 9, size=shape) / 8.0 if dyadic else rng.normal(size=shape)
    weights = 1 << np.arange(n_players, dtype=np.int64)
    return FunctionGame(
        lambda keep: table[keep.astype(np.int64) @ weights], tuple(f"p{i}" for i in range(n_players)), value_shape
    )


def as_coalitions(x: np.ndarray) -> np.ndarray:
    """Peers pass player vectors of 0 (absent) and 1 (present); turn them into coalitions, checking the values."""
    x = np.asarray(x)
    assert np.all((x == 0) | (x == 1)), "a peer passed a player vector that is not binary"
    return x == 1


@pytest.mark.parametrize(("n_players", "value_shape"), [(4, ()), (6, ()), (5, (3,))])
def test_shap_exact_explainer(n_players: int, value_shape: tuple[int, ...]) -> None:
    shap = pytest.importorskip("shap")
    game = random_game(n_players, seed=n_players, value_shape=value_shape)
    ours = ExactEstimator(progress=False).estimate(game)
    masker = shap.maskers.Independent(np.zeros((1, n_players)), max_samples=1)
    explainer = shap.explainers.Exact(lambda x: game(as_coalitions(x)), masker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explanation = explainer(np.ones((1, n_players)))
    # shap: values[sample, feature, *outputs], base_values[sample, *outputs]
    np.testing.assert_allclose(explanation.values[0], ours.values, atol=ATOL)
    np.testing.assert_allclose(explanation.base_values[0], ours.v_empty, atol=ATOL)


@pytest.mark.parametrize("n_players", [3, 6])
def test_captum_shapley_values(n_players: int) -> None:
    captum_attr = pytest.importorskip("captum.attr")
    # captum accumulates attributions in float32 whatever the input dtype (``total_attrib`` is made with
    # ``dtype=torch.float`` in captum/attr/_core/shapley_value.py), so on a generic float64 game it agrees to
    # about 1e-6 relative only. A dyadic game makes every marginal contribution and partial sum exact in
    # float32; only the final division by P! rounds, far below ATOL.
    game = random_game(n_players, seed=10 + n_players, value_shape=(2,), dyadic=True)
    ours = ExactEstimator(progress=False).estimate(game)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(game(as_coalitions(x.detach().cpu().numpy())))

    shapley = captum_attr.ShapleyValues(forward)
    inputs = torch.ones(1, n_players, dtype=torch.float64)
    mask = torch.arange(n_players)[None]
    for target in range(2):
        theirs = shapley.attribute(inputs, baselines=0.0, feature_mask=mask, target=target, perturbations_per_eval=8)
        np.testing.assert_allclose(theirs[0].numpy(), ours.values[:, target], atol=ATOL)


@pytest.mark.parametrize("n_players", [4, 7])
def test_shapiq_exact_computer(n_players: int) -> None:
    shapiq = pytest.importorskip("shapiq")
    game = random_game(n_players, seed=20 + n_players)
    ours = ExactEstimator(interactions=True, progress=False).estimate(game)
    computer = shapiq.ExactComputer(lambda keep: game(as_coalitions(keep)), n_players=n_players)

    shapley = computer("SV")
    np.testing.assert_allclose([shapley[(i,)] for i in range(n_players)], ours.values, atol=ATOL)
    assert shapley.baseline_value == pytest.approx(float(ours.v_empty), abs=ATOL)

    banzhaf = computer("BV")
    np.testing.assert_allclose([banzhaf[(i,)] for i in range(n_players)], ours.banzhaf, atol=ATOL)

    sii = computer("SII", order=2)
    pairs = np.zeros((n_players, n_players))
    for i in range(n_players):
        for j in range(i + 1, n_players):
            pairs[i, j] = pairs[j, i] = sii[(i, j)]
    np.testing.assert_allclose(pairs, ours.interactions, atol=ATOL)
    # shapiq's order-1 SII terms are the Shapley values; ours keeps them in `values`, not on the diagonal.
    np.testing.assert_allclose([sii[(i,)] for i in range(n_players)], ours.values, atol=ATOL)
