"""Honest uncertainty on games whose players share information, and the budget contract of ``estimate``.

The games are closed forms written for these tests: years that each tell most of the same story
(one redundant group), or three groups of such players, plus small unique and pairwise parts. Their
exact values come from all ``2^P`` coalitions. Over many seeds the ±1.96 SE interval of a sampled
estimate must cover the exact value 90-98% of the time for every player.
"""

from __future__ import annotations

import numpy as np
import pytest

from miam_explain.errors import ConfigError
from miam_explain.explain import estimate
from miam_explain.explain.estimators import (
    AdjustedEstimator,
    ExactEstimator,
    LeverageEstimator,
    PermutationEstimator,
    StratifiedEstimator,
)
from miam_explain.explain.game import FunctionGame
from miam_explain.explain.reference_games import redundant_game

N_PLAYERS = 12
#: Seeds per coverage check; a per-player coverage of 0.95 then has a binomial SE of 0.007.
N_SEEDS = 600
#: Float rounding of values of order one, not Monte Carlo error.
ROUNDING = 1e-12


@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize(
    "make, blocks_or_pairs",
    [(lambda seed: StratifiedEstimator(seed=seed, progress=False), 20),
     (lambda seed: PermutationEstimator(seed=seed, progress=False), 60)],
    ids=["stratified", "permutation"],
)
def test_standard_errors_cover_the_exact_value_for_every_player(groups, make, blocks_or_pairs):
    game = redundant_game(N_PLAYERS, groups=groups, seed=100 + groups)
    assert_covers(game, make, make(0).min_budget(N_PLAYERS, samples=blocks_or_pairs))


@pytest.mark.parametrize(("groups", "unequal"), [(3, False), (1, True)])
def test_leverage_standard_errors_cover_the_exact_value_for_every_player(groups, unequal):
    """At the fewest pairs ``auto`` accepts, 8 per player (measured 0.925-0.972 per player; at 4 per player 0.83-0.985)."""
    game = redundant_game(N_PLAYERS, groups=groups, seed=100 + groups, unequal=unequal)
    assert_covers(game, lambda seed: LeverageEstimator(seed=seed, progress=False), 2 + 2 * 8 * N_PLAYERS)


@pytest.mark.calibration
@pytest.mark.parametrize(("groups", "unequal"), [(3, False), (1, True)])
def test_adjusted_standard_errors_cover_the_exact_value_for_every_player(groups, unequal):
    """At the fewest pairs ``auto`` gives it, 8 per player in each of 5 folds (about 0.4 s a run: 4 minutes a game,
    so on request: ``pytest -m calibration``; benchmarks/estimators.py measures it on every game in docs/performance.md).

    With each fold's finite-population factor taken from its own pairs, one unequal group over-covered (0.97-0.99
    per player over 600 seeds): the folds are parts of one draw without replacement, so their errors partly cancel.
    With the whole draw's factor, 150 seeds gave 0.92-0.967 (unequal group) and 0.92-0.953 (three groups)."""
    game = redundant_game(N_PLAYERS, groups=groups, seed=100 + groups, unequal=unequal)
    assert_covers(game, lambda seed: AdjustedEstimator(seed=seed, progress=False), 2 + 2 * 5 * 8 * N_PLAYERS)


def test_leverage_is_exact_on_one_group_of_equal_members():
    """A function of |S| plus terms of order one and two: the size intercepts and the pairing fit it exactly."""
    game = redundant_game(N_PLAYERS, groups=1, seed=101)
    exact = ExactEstimator(progress=False).estimate(game).values
    result = LeverageEstimator(seed=0, progress=False).estimate(game, budget=2 + 2 * 8 * N_PLAYERS)
    np.testing.assert_allclose(result.values, exact, atol=1e-12)
    np.testing.assert_allclose(result.se, 0.0, atol=1e-12)


def assert_covers(game: FunctionGame, make, budget: int) -> None:
    """Over :data:`N_SEEDS` seeds, ±1.96 SE covers the exact value 90-98% of the time for every sampled player."""
    exact = ExactEstimator(progress=False).estimate(game).values
    covered, sampled = np.zeros(N_PLAYERS), np.zeros(N_PLAYERS, dtype=bool)
    for seed in range(N_SEEDS):
        result = make(seed).estimate(game, budget=budget)
        error = np.abs(result.values - exact)
        # an SE at rounding level (a player whose marginal contribution never varies) claims exactness: hold it to that
        exactish = result.se <= ROUNDING
        assert np.all(error[exactish] <= ROUNDING), f"seed {seed}: zero SE with error {error[exactish].max()}"
        covered += error <= 1.96 * result.se + ROUNDING
        sampled |= ~exactish
    coverage = covered[sampled] / N_SEEDS
    assert sampled.sum() >= N_PLAYERS // 2, f"only {sampled.sum()} players have sampling error"
    assert coverage.min() >= 0.90 and coverage.max() <= 0.98, f"per-player coverage {np.round(coverage, 3)}"


def test_stratified_beats_permutation_at_equal_evaluations_on_one_redundant_group():
    """Position balance removes the lottery of who comes first (measured here: > 5x lower RMSE)."""
    rmse = rmse_at_equal_evaluations(redundant_game(N_PLAYERS, groups=1, seed=7),
                                     {"stratified": StratifiedEstimator, "permutation": PermutationEstimator}, n_seeds=40)
    assert rmse["stratified"] * 5 < rmse["permutation"], rmse


def test_leverage_beats_stratified_at_equal_evaluations_on_three_redundant_groups():
    """What a player adds depends on which groups came before; the regression pools it (measured here: ~5x)."""
    rmse = rmse_at_equal_evaluations(redundant_game(N_PLAYERS, groups=3, seed=7),
                                     {"leverage": LeverageEstimator, "stratified": StratifiedEstimator}, n_seeds=20)
    assert rmse["leverage"] * 2 < rmse["stratified"], rmse


def rmse_at_equal_evaluations(game: FunctionGame, makers: dict, *, n_seeds: int) -> dict[str, float]:
    """RMSE against the exact values of each estimator class over seeds ``0 .. n_seeds-1``, at 20 stratified blocks."""
    exact = ExactEstimator(progress=False).estimate(game).values
    budget = StratifiedEstimator(progress=False).min_budget(N_PLAYERS, samples=20)
    errors = {name: [make(seed=seed, progress=False).estimate(game, budget=budget).values - exact
                     for seed in range(n_seeds)] for name, make in makers.items()}
    return {name: float(np.sqrt(np.mean(np.square(e)))) for name, e in errors.items()}


@pytest.mark.parametrize("method", ["auto", "exact", "stratified", "permutation", "kernel", "leverage", "adjusted"])
@pytest.mark.parametrize("budget", [4096, 9000])
def test_estimate_never_evaluates_more_than_the_budget(method, budget):
    game = redundant_game(N_PLAYERS, groups=3, seed=1)
    result = estimate(game, method=method, budget=budget, seed=2)
    assert result.n_evaluations <= budget and game.n_evaluations <= budget
    np.testing.assert_allclose(result.values.sum(), result.v_full - result.v_empty, atol=1e-10)


@pytest.mark.parametrize("method", ["auto", "leverage", "adjusted"])
def test_estimate_never_evaluates_more_than_a_sampling_budget(method):
    game = redundant_game(N_PLAYERS, groups=3, seed=1)
    result = estimate(game, method=method, budget=1501, seed=2)
    assert result.method == ("adjusted" if method == "auto" else method)
    assert result.n_evaluations <= 1501 and game.n_evaluations <= 1501
    np.testing.assert_allclose(result.values.sum(), result.v_full - result.v_empty, atol=1e-10)


def test_estimate_picks_by_the_budget_and_refuses_what_it_cannot_do():
    game = redundant_game(N_PLAYERS, groups=1, seed=2)
    assert estimate(game, budget=2**N_PLAYERS).method == "exact"
    assert estimate(game, budget=2**N_PLAYERS - 1).method == "leverage"  # more than half the pairs: nearly enumerated
    assert estimate(game, budget=2 + 80 * N_PLAYERS).method == "adjusted"  # 8 pairs per player in each of 5 folds
    assert estimate(game, budget=2 + 16 * N_PLAYERS).method == "leverage"  # 8 pairs per player
    assert estimate(game, budget=1 + 16 * N_PLAYERS).method == "permutation"
    assert estimate(game, budget=100).method == "permutation"
    with pytest.raises(ConfigError, match="over the budget"):
        estimate(game, method="exact", budget=100)
    with pytest.raises(ConfigError, match="too small"):
        estimate(game, method="stratified", budget=100)
    with pytest.raises(ConfigError, match="too small"):
        estimate(game, method="leverage", budget=40)
    with pytest.raises(ConfigError, match="unknown method"):
        estimate(game, method="shap")
