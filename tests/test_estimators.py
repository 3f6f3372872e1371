"""Estimators on closed-form games: axioms, brute force, convergence, stopping and invariance.

Every game here is a value table indexed by coalition bitmask (bit ``i`` =
player ``i``) or a closed form, so the true Shapley values are known. All
sampling is seeded; tolerances are explicit.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from miam_explain.errors import ConfigError
from miam_explain.explain.estimators import (
    MAX_EXACT_PLAYERS,
    ExactEstimator,
    KernelEstimator,
    LeverageEstimator,
    PermutationEstimator,
    ShapleyResult,
    StratifiedEstimator,
    choose_method,
)
from miam_explain.explain.estimators.leverage import pairs_per_stratum
from miam_explain.explain.game import FunctionGame, Game

METHODS = ("exact", "stratified", "permutation", "kernel", "leverage")
#: Sampling budget (game evaluations) of the axiom tests.
BUDGET = 6000
#: Sampled estimates must lie within this many standard errors of the truth.
Z_MAX = 4.5


def make_estimator(method: str, seed: int = 0) -> ExactEstimator | PermutationEstimator | KernelEstimator:
    if method == "exact":
        return ExactEstimator(interactions=True, progress=False)
    if method == "permutation":
        return PermutationEstimator(seed=seed, progress=False)
    if method == "stratified":
        return StratifiedEstimator(seed=seed, progress=False)
    if method == "leverage":
        return LeverageEstimator(seed=seed, progress=False)
    return KernelEstimator(seed=seed, progress=False)


def budget_for(method: str, n_players: int) -> int | None:
    """The axiom tests' budget: :data:`BUDGET`; for leverage 3/4 of the ``2^P`` coalitions (with all it is exact)."""
    if method == "exact":
        return None
    if method == "leverage":
        return max(LeverageEstimator().min_budget(n_players), 3 * 2**n_players // 4)
    return BUDGET


def run(method: str, game: Game, seed: int = 0) -> ShapleyResult:
    return make_estimator(method, seed).estimate(game, budget_for(method, game.n_players))


def names(n_players: int) -> tuple[str, ...]:
    return tuple(f"p{i}" for i in range(n_players))


def bitmask(keep: np.ndarray) -> np.ndarray:
    return keep.astype(np.int64) @ (1 << np.arange(keep.shape[1], dtype=np.int64))


def table_game(table: np.ndarray) -> FunctionGame:
    """A game given by its full value table ``float[2^P, *value_shape]``."""
    n_players = int(table.shape[0]).bit_length() - 1
    return FunctionGame(lambda keep: table[bitmask(keep)], names(n_players), value_shape=table.shape[1:])


def random_table(n_players: int, seed: int, value_shape: tuple[int, ...] = ()) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2**n_players, *value_shape))


def additive_game(weights: np.ndarray) -> FunctionGame:
    """``v(S) = sum_{i in S} w_i`` with ``w: float[P, *value_shape]``; ``phi = w``."""
    return FunctionGame(
        lambda keep: np.tensordot(keep.astype(float), weights, axes=1), names(weights.shape[0]), weights.shape[1:]
    )


def pair_game(n_players: int) -> FunctionGame:
    """``v(S) = 1`` iff players 0 and 1 are both in ``S``: ``phi = (1/2, 1/2, 0, …)``, ``I_01 = 1``."""
    return FunctionGame(lambda keep: (keep[:, 0] & keep[:, 1]).astype(float), names(n_players))


def null_player_table(n_players: int, null: int, seed: int) -> np.ndarray:
    """A random table in which player ``null`` never changes the value."""
    table = random_table(n_players, seed)
    return table[np.arange(2**n_players) & ~(1 << null)]


def symmetric_table(n_players: int, seed: int) -> np.ndarray:
    """A random table in which players 0 and 1 are interchangeable."""
    table = random_table(n_players, seed)
    index = np.arange(2**n_players)
    swapped = (index & ~3) | ((index & 1) << 1) | ((index >> 1) & 1)
    return table + table[swapped]


def naive_shapley(table: np.ndarray) -> np.ndarray:
    """Average marginal contribution over all ``P!`` orderings."""
    n_players = int(table.shape[0]).bit_length() - 1
    phi = np.zeros((n_players, *table.shape[1:]))
    for order in itertools.permutations(range(n_players)):
        mask = 0
        for player in order:
            phi[player] += table[mask | (1 << player)] - table[mask]
            mask |= 1 << player
    return phi / math.factorial(n_players)


def subsets_without(n_players: int, excluded: tuple[int, ...]) -> list[int]:
    others = [p for p in range(n_players) if p not in excluded]
    return [sum(1 << p for p in combo) for r in range(len(others) + 1) for combo in itertools.combinations(others, r)]


def naive_banzhaf(table: np.ndarray) -> np.ndarray:
    n_players = int(table.shape[0]).bit_length() - 1
    phi = np.zeros((n_players, *table.shape[1:]))
    for i in range(n_players):
        for s in subsets_without(n_players, (i,)):
            phi[i] += table[s | (1 << i)] - table[s]
    return phi / 2 ** (n_players - 1)


def naive_interactions(table: np.ndarray) -> np.ndarray:
    """The pairwise Shapley interaction index from its definition (zero diagonal)."""
    n_players = int(table.shape[0]).bit_length() - 1
    out = np.zeros((n_players, n_players, *table.shape[1:]))
    for i, j in itertools.combinations(range(n_players), 2):
        for s in subsets_without(n_players, (i, j)):
            size = bin(s).count("1")
            weight = math.factorial(size) * math.factorial(n_players - size - 2) / math.factorial(n_players - 1)
            delta = table[s | (1 << i) | (1 << j)] - table[s | (1 << i)] - table[s | (1 << j)] + table[s]
            out[i, j] += weight * delta
        out[j, i] = out[i, j]
    return out


def assert_within_se(result: ShapleyResult, truth: np.ndarray) -> None:
    """A sampled estimate lies within ``Z_MAX`` standard errors of the truth (and the SE is positive)."""
    error = np.abs(result.values - truth)
    assert np.all(result.se > 0)
    assert np.all(error <= Z_MAX * result.se), f"max |error|/se = {np.max(error / result.se):.2f}"


# ----------------------------------------------------------------------------------------------------------------------
# the game wrapper


def test_function_game_counts_and_accepts_torch() -> None:
    game = additive_game(np.array([1.0, 2.0, 3.0]))
    keep = torch.tensor([[True, False, True], [False, False, False]])
    np.testing.assert_array_equal(game(keep), [4.0, 0.0])
    assert game.n_evaluations == 2
    assert isinstance(game, Game)


def test_function_game_rejects_bad_input() -> None:
    game = additive_game(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="boolean"):
        game(np.ones((1, 3), dtype=int))
    with pytest.raises(ValueError, match=r"\(C, 3\)"):
        game(np.ones((1, 4), dtype=bool))
    wrong = FunctionGame(lambda keep: np.zeros((keep.shape[0], 2)), names(3))
    with pytest.raises(ValueError, match="expected"):
        wrong(np.ones((1, 3), dtype=bool))
    with pytest.raises(ValueError, match="unique"):
        FunctionGame(lambda keep: keep.sum(1), ("a", "a"))


# ----------------------------------------------------------------------------------------------------------------------
# 1. axioms, for every estimator


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value_shape", [(), (3, 2)])
def test_efficiency(method: str, value_shape: tuple[int, ...]) -> None:
    table = random_table(6, seed=1, value_shape=value_shape)
    result = run(method, table_game(table))
    assert result.values.shape == (6, *value_shape) and result.se.shape == (6, *value_shape)
    np.testing.assert_allclose(result.v_empty, table[0], rtol=0, atol=0)
    np.testing.assert_allclose(result.v_full, table[-1], rtol=0, atol=0)
    np.testing.assert_allclose(result.efficiency_gap, 0.0, atol=1e-10)
    assert result.method == method
    if method == "exact":
        assert result.n_evaluations == 64 and result.converged and np.all(result.se == 0)
    elif method == "leverage":  # 23 of the 31 complementary pairs, two evaluations each: 8 left out (17 groups hold pairs)
        assert result.n_evaluations == budget_for(method, 6) == 48 and result.n_samples == 8 and not result.se_reliable
        assert_within_se(result, naive_shapley(table))
    else:
        cost = make_estimator(method).min_budget(6) - 2  # evaluations per sample
        assert BUDGET - cost < result.n_evaluations <= BUDGET
        assert_within_se(result, naive_shapley(table))  # the SE covers the error


def test_permutation_is_efficient_for_every_sample() -> None:
    """One antithetic pair already sums exactly to v_full - v_empty."""
    table = random_table(7, seed=2)
    result = PermutationEstimator(seed=3, progress=False).estimate(table_game(table), budget=2 * 7)
    assert result.n_evaluations == 14
    np.testing.assert_allclose(result.efficiency_gap, 0.0, atol=1e-12)
    assert np.all(np.isnan(result.se))  # one sample: no standard error


@pytest.mark.parametrize("method", METHODS)
def test_additive_game_vector_valued(method: str) -> None:
    weights = np.random.default_rng(4).normal(size=(5, 3, 2))
    result = run(method, additive_game(weights))
    if method == "kernel":
        assert_within_se(result, weights)
    else:  # every marginal contribution of an additive game is w_i (and a regression fits it exactly)
        np.testing.assert_allclose(result.values, weights, atol=1e-12)
        np.testing.assert_allclose(result.se, 0.0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_pure_pair_interaction(method: str) -> None:
    result = run(method, pair_game(5))
    truth = np.array([0.5, 0.5, 0.0, 0.0, 0.0])
    if method == "kernel":
        assert_within_se(result, truth)
    elif method == "leverage":  # over a pair, z0 z1 - (1 - z0)(1 - z1) = z0 + z1 - 1 is linear: an exact fit
        np.testing.assert_allclose(result.values, truth, atol=1e-12)
        np.testing.assert_allclose(result.se, 0.0, atol=1e-12)
    elif method == "stratified":  # a Latin block need not put 0 before 1 in half its orders; 2..4 add nothing ever
        assert np.all(np.abs(result.values[:2] - truth[:2]) <= Z_MAX * result.se[:2]) and np.all(result.se[:2] > 0)
        np.testing.assert_allclose(result.values[2:], 0.0, atol=1e-12)
    else:  # an antithetic pair gives (1/2, 1/2) exactly: player 0 comes last in one order, player 1 in the other
        np.testing.assert_allclose(result.values, truth, atol=1e-12)
    if method == "exact":
        expected = np.zeros((5, 5))
        expected[0, 1] = expected[1, 0] = 1.0
        np.testing.assert_allclose(result.interactions, expected, atol=1e-12)
        np.testing.assert_allclose(result.banzhaf, [0.5, 0.5, 0, 0, 0], atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_null_player(method: str) -> None:
    result = run(method, table_game(null_player_table(6, null=2, seed=5)))
    if method in ("kernel", "leverage"):  # a null player is zero in expectation only
        assert abs(result.values[2]) <= Z_MAX * result.se[2]
    else:  # every marginal contribution of a null player is exactly zero
        assert abs(result.values[2]) <= 1e-12
        assert result.se[2] <= 1e-12
    if method == "exact":
        np.testing.assert_allclose(result.interactions[2], 0.0, atol=1e-12)
        assert abs(result.banzhaf[2]) <= 1e-12


@pytest.mark.parametrize("method", METHODS)
def test_symmetric_players(method: str) -> None:
    result = run(method, table_game(symmetric_table(6, seed=6)))
    gap = abs(result.values[0] - result.values[1])
    if method == "exact":
        assert gap <= 1e-12
        assert abs(result.banzhaf[0] - result.banzhaf[1]) <= 1e-12
    else:
        assert gap <= Z_MAX * (result.se[0] + result.se[1])


@pytest.mark.parametrize("method", METHODS)
def test_linearity(method: str) -> None:
    """phi(a v + b w) = a phi(v) + b phi(w); sampled estimators draw the same coalitions for the same seed."""
    v, w = random_table(6, seed=7, value_shape=(2,)), random_table(6, seed=8, value_shape=(2,))
    a, b = 2.5, -1.5
    phi_v, phi_w, phi_mix = (run(method, table_game(t), seed=11).values for t in (v, w, a * v + b * w))
    np.testing.assert_allclose(phi_mix, a * phi_v + b * phi_w, atol=1e-10)


# ----------------------------------------------------------------------------------------------------------------------
# 2. brute force


@pytest.mark.parametrize("n_players", [1, 2, 3, 5, 6])
def test_exact_equals_brute_force(n_players: int) -> None:
    table = random_table(n_players, seed=n_players, value_shape=(2,))
    result = ExactEstimator(interactions=True, progress=False).estimate(table_game(table))
    np.testing.assert_allclose(result.values, naive_shapley(table), atol=1e-12)
    np.testing.assert_allclose(result.banzhaf, naive_banzhaf(table), atol=1e-12)
    np.testing.assert_allclose(result.interactions, naive_interactions(table), atol=1e-12)
    assert result.interactions.shape == (n_players, n_players, 2)


def test_exact_without_interactions_leaves_them_out() -> None:
    result = ExactEstimator(progress=False).estimate(table_game(random_table(3, seed=0)))
    assert result.interactions is None and result.banzhaf is not None


# ----------------------------------------------------------------------------------------------------------------------
# 3. convergence and calibration

N_SEEDS = 16


@pytest.mark.parametrize(
    ("estimator", "samples"),
    [(PermutationEstimator, [8, 32, 128, 512]), (KernelEstimator, [16, 64, 256, 1024]), (StratifiedEstimator, [4, 16, 64, 256])],
)
def test_sampled_converge_to_exact(estimator: type, samples: list[int]) -> None:
    n_players = 8
    table = random_table(n_players, seed=9)
    truth = naive_shapley(table)
    game = table_game(table)
    cost = estimator(progress=False).min_budget(n_players) - 2
    assert_converges(lambda seed: estimator(seed=seed, progress=False), game, truth, [2 + cost * n for n in samples])


def assert_converges(make, game: Game, truth: np.ndarray, budgets: list[int], *, n_samples: int | None = None) -> None:
    """RMSE over :data:`N_SEEDS` seeds falls like budget^-1/2 (log-log slope in [-0.75, -0.3]) and error/se has RMS in [0.5, 2]."""
    rmse, z_scores = [], []
    for budget in budgets:
        errors = []
        for seed in range(N_SEEDS):
            result = make(seed).estimate(game, budget)
            assert result.n_evaluations == budget and not result.converged
            assert n_samples is None or result.n_samples == n_samples
            errors.append(result.values - truth)
            z_scores.append((result.values - truth) / result.se)
        rmse.append(np.sqrt(np.mean(np.square(errors))))
    slope = np.polyfit(np.log(budgets), np.log(rmse), 1)[0]
    assert -0.75 <= slope <= -0.3, f"log RMSE vs log budget slope {slope:.3f}, RMSE {rmse}"
    assert rmse[-1] < rmse[0] / 4
    z_rms = np.sqrt(np.mean(np.square(z_scores)))
    assert 0.5 <= z_rms <= 2.0, f"RMS of error/se = {z_rms:.3f}"


# ----------------------------------------------------------------------------------------------------------------------
# 4. stopping and bad input


@pytest.mark.parametrize("estimator", [PermutationEstimator, KernelEstimator, StratifiedEstimator])
def test_tol_stops_early(estimator: type) -> None:
    game = table_game(random_table(6, seed=10))
    tol = 0.05
    result = estimator(seed=0, tol=tol, progress=False).estimate(game, budget=200_000)
    assert result.converged
    assert result.n_evaluations < 200_000 / 4
    assert result.se.max() <= tol * (result.values.max() - result.values.min())
    unbounded = estimator(seed=0, tol=tol, progress=False).estimate(table_game(random_table(6, seed=10)))
    assert unbounded.converged and unbounded.n_evaluations == result.n_evaluations
    np.testing.assert_array_equal(unbounded.values, result.values)


@pytest.mark.parametrize("estimator", [PermutationEstimator, KernelEstimator, StratifiedEstimator])
def test_budget_before_tol_is_not_converged(estimator: type) -> None:
    result = estimator(seed=0, tol=1e-6, progress=False).estimate(table_game(random_table(6, seed=10)), budget=500)
    assert not result.converged and result.n_evaluations <= 500


def test_budget_too_small_raises() -> None:
    game = table_game(random_table(5, seed=0))
    with pytest.raises(ConfigError, match="at least 10"):
        PermutationEstimator(progress=False).estimate(game, budget=9)
    assert game.n_evaluations == 0
    PermutationEstimator(progress=False).estimate(game, budget=10)
    with pytest.raises(ConfigError, match="at least 4"):
        KernelEstimator(progress=False).estimate(game, budget=3)
    with pytest.raises(ConfigError, match="budget, a tol"):
        KernelEstimator(progress=False).estimate(game)
    with pytest.raises(ConfigError, match="2\\^5 = 32"):
        ExactEstimator(progress=False).estimate(game, budget=31)
    with pytest.raises(ConfigError, match="at least 18"):  # 4 pairs of sizes 1|4 and 4 of 2|3
        LeverageEstimator(progress=False).estimate(game, budget=17)
    with pytest.raises(ConfigError, match="budget, a tol"):
        LeverageEstimator(progress=False).estimate(game)
    assert game.n_evaluations == 10  # only the one run that was allowed


def test_exact_refuses_too_many_players() -> None:
    game = FunctionGame(lambda keep: keep.sum(1).astype(float), names(MAX_EXACT_PLAYERS + 1))
    with pytest.raises(ConfigError, match="2\\^21") as error:
        ExactEstimator(progress=False).estimate(game)
    assert "method='permutation'" in str(error.value) and "sampling" in str(error.value)
    assert game.n_evaluations == 0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_tol_raises(bad: float) -> None:
    with pytest.raises(ConfigError, match="tol"):
        PermutationEstimator(tol=bad)


def test_one_player_is_exact_for_all() -> None:
    game = additive_game(np.array([[2.0, 3.0]]))
    for method in METHODS:
        result = run(method, game)
        np.testing.assert_allclose(result.values, [[2.0, 3.0]])
        assert result.converged and np.all(result.se == 0)


def test_choose_method() -> None:
    assert choose_method(4, 10, budget=160) == "exact"
    assert choose_method(4, 10, budget=159) == "permutation"
    assert choose_method(10, 1, budget=None) == "exact"
    assert choose_method(MAX_EXACT_PLAYERS + 1, 1, budget=None) == "leverage"
    assert choose_method(MAX_EXACT_PLAYERS + 1, 1, budget=2 + 16 * 21) == "leverage"  # 8 pairs per player
    assert choose_method(MAX_EXACT_PLAYERS + 1, 1, budget=1 + 16 * 21) == "permutation"
    assert choose_method(MAX_EXACT_PLAYERS + 1, 10, budget=10 * (2 + 16 * 21)) == "leverage"  # counted per site
    assert choose_method(MAX_EXACT_PLAYERS + 1, 10, budget=10 * (2 + 16 * 21) - 1) == "permutation"
    assert choose_method(MAX_EXACT_PLAYERS + 1, 1, budget=2 + 20 * 21 * 20) == "adjusted"  # stratified left auto
    assert choose_method(MAX_EXACT_PLAYERS + 1, 1, budget=2 + 80 * 21) == "adjusted"  # 8 pairs per player per fold
    assert choose_method(MAX_EXACT_PLAYERS + 1, 1, budget=2 + 80 * 21 - 2) == "leverage"
    assert choose_method(MAX_EXACT_PLAYERS + 1, 10, budget=10 * (2 + 80 * 21)) == "leverage"  # one value per site
    assert choose_method(12, 1, budget=2**12 - 2) == "leverage"  # more than half the pairs: nearly enumerated
    with pytest.raises(ConfigError, match="n_sites"):
        choose_method(4, 0, budget=None)


# ----------------------------------------------------------------------------------------------------------------------
# 5. chunk and batch invariance


def test_exact_chunk_size_never_changes_the_answer() -> None:
    table = random_table(7, seed=12, value_shape=(3,))
    results = [
        ExactEstimator(interactions=True, chunk_size=size, progress=False).estimate(table_game(table))
        for size in (1, 7, 64, 2**16)
    ]
    for other in results[1:]:
        np.testing.assert_array_equal(other.values, results[0].values)
        np.testing.assert_array_equal(other.interactions, results[0].interactions)
        np.testing.assert_array_equal(other.banzhaf, results[0].banzhaf)


@pytest.mark.parametrize(
    ("make", "batches"),
    [
        (lambda b: PermutationEstimator(seed=5, batch_permutations=b, progress=False), (1, 7, 32, 1000)),
        (lambda b: KernelEstimator(seed=5, batch_samples=b, progress=False), (1, 7, 128, 1000)),
        (lambda b: StratifiedEstimator(seed=5, batch_blocks=b, progress=False), (1, 3, 50)),
        (lambda b: StratifiedEstimator(seed=5, antithetic=True, batch_blocks=b, progress=False), (1, 4)),
    ],
)
def test_sampling_batch_size_never_changes_the_answer(make, batches: tuple[int, ...]) -> None:
    table = random_table(6, seed=13, value_shape=(2,))
    results = [make(b).estimate(table_game(table), budget=1502) for b in batches]
    for other in results[1:]:
        assert other.n_evaluations == results[0].n_evaluations
        np.testing.assert_allclose(other.values, results[0].values, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.se, results[0].se, rtol=1e-9)


def test_same_seed_same_result_and_generator_advances() -> None:
    game = table_game(random_table(6, seed=14))
    first = KernelEstimator(seed=3, progress=False)
    a = first.estimate(game, 400)
    b = KernelEstimator(seed=3, progress=False).estimate(game, 400)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.seed == 3
    assert not np.array_equal(first.estimate(game, 400).values, a.values)


# ----------------------------------------------------------------------------------------------------------------------
# 6. leverage sampling: the design, the border, convergence, stopping, chunks


def test_leverage_design_gives_every_size_its_share_and_grows_nested() -> None:
    n_players = 9  # strata 1|8 (9 pairs), 2|7 (36), 3|6 (84), 4|5 (126)
    previous = np.zeros(4, dtype=np.int64)
    for n_pairs in range(1, 2**8):
        allocation = pairs_per_stratum(n_players, n_pairs)
        assert allocation.sum() == n_pairs and np.all(allocation >= previous)
        units = np.array([9, 36, 84, 126])
        open_strata = allocation < units
        assert np.ptp(allocation[open_strata]) <= 1 if open_strata.any() else n_pairs == 255
        assert np.all(allocation[~open_strata] <= allocation[open_strata].max(initial=units.max()))  # border: taken whole
        previous = allocation
    even = pairs_per_stratum(6, 12)  # the middle stratum 3|3 pairs two coalitions of size 3: half the pairs
    assert even.tolist() == [5, 5, 2]


def test_leverage_samples_pairs_without_replacement_within_the_budget() -> None:
    table = random_table(10, seed=15)
    seen: list[np.ndarray] = []

    def record(keep: np.ndarray) -> np.ndarray:
        seen.append(bitmask(keep))
        return table[bitmask(keep)]

    game = FunctionGame(record, names(10))
    result = LeverageEstimator(seed=1, batch_pairs=7, progress=False).estimate(game, budget=601)
    rows = np.concatenate(seen)
    assert result.n_evaluations == game.n_evaluations == rows.size == 600  # 299 pairs and the endpoints
    assert np.unique(rows).size == rows.size  # no coalition twice
    sizes = np.bincount(bitmask_popcount(rows[2:]), minlength=11)
    assert sizes[1] == sizes[9] == 10 and sizes[2] == sizes[8] == 45  # the border: sizes 1, 2 (and 8, 9) whole
    assert sizes[3] == sizes[7] and sizes[4] == sizes[6]  # a pair holds one coalition of each size
    assert np.ptp(sizes[3:8]) <= 2  # and each open size as many (a 5|5 pair holds two of size 5)


def bitmask_popcount(bits: np.ndarray) -> np.ndarray:
    return np.array([bin(int(b)).count("1") for b in bits])


@pytest.mark.parametrize("n_players", [2, 3, 5, 8])
def test_leverage_with_every_coalition_is_exact(n_players: int) -> None:
    """The border trick takes every stratum whole at 2^P: the regression over all coalitions is Shapley's."""
    table = random_table(n_players, seed=16, value_shape=(2,))
    result = LeverageEstimator(seed=0, progress=False).estimate(table_game(table), budget=2**n_players)
    exact = ExactEstimator(progress=False).estimate(table_game(table))
    np.testing.assert_allclose(result.values, exact.values, atol=1e-12)
    assert np.all(result.se == 0) and result.converged and result.n_samples == 0
    assert result.n_evaluations == 2**n_players


def test_leverage_converges_to_exact() -> None:
    """RMSE falls like budget^-1/2 (a little faster: near the border, fewer pairs are left to draw)."""
    n_players = 18
    table = random_table(n_players, seed=9)
    truth = ExactEstimator(progress=False).estimate(table_game(table)).values
    budgets = [2 + 2 * k * n_players for k in (8, 32, 128, 512)]
    assert_converges(lambda seed: LeverageEstimator(seed=seed, progress=False), table_game(table), truth, budgets, n_samples=20)


def test_leverage_tol_stops_early_in_nested_rounds() -> None:
    table = random_table(12, seed=17)
    tol = 0.1
    result = LeverageEstimator(seed=0, tol=tol, progress=False).estimate(table_game(table), budget=8000)
    assert result.converged and result.n_evaluations < 8000 / 4 and result.n_samples == 20
    assert result.se.max() <= tol * (result.values.max() - result.values.min())
    unbounded = LeverageEstimator(seed=0, tol=tol, progress=False).estimate(table_game(table))
    assert unbounded.converged and unbounded.n_evaluations == result.n_evaluations
    np.testing.assert_array_equal(unbounded.values, result.values)
    short = LeverageEstimator(seed=0, tol=1e-6, progress=False).estimate(table_game(table), budget=500)
    assert not short.converged and short.n_evaluations == 500


def test_leverage_batch_and_chunk_never_change_the_answer(monkeypatch) -> None:
    import miam_explain.explain.estimators.leverage as leverage

    table = random_table(9, seed=18, value_shape=(3, 2))
    results = [LeverageEstimator(seed=5, batch_pairs=b, progress=False).estimate(table_game(table), budget=301)
               for b in (1, 7, 512)]
    monkeypatch.setattr(leverage, "CHUNK_ELEMENTS", 1)  # one value element at a time
    results.append(LeverageEstimator(seed=5, progress=False).estimate(table_game(table), budget=301))
    for other in results[1:]:
        assert other.n_evaluations == results[0].n_evaluations == 300
        np.testing.assert_allclose(other.values, results[0].values, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.se, results[0].se, rtol=1e-9)


# ----------------------------------------------------------------------------------------------------------------------
# regression-adjusted leverage sampling


def test_tree_shapley_equals_brute_force_and_shap_tree_explainer() -> None:
    """The leaves' closed form against all 2^P coalitions and against shap's interventional TreeSHAP (one all-zeros background row)."""
    shap = pytest.importorskip("shap")
    from sklearn.ensemble import HistGradientBoostingRegressor

    from miam_explain.explain.estimators.adjusted import tree_shapley

    n_players = 8
    rng = np.random.default_rng(3)
    rows = rng.random((600, n_players)) < 0.5
    target = rows[:, 0] * rows[:, 1] - 0.5 * rows[:, 2] * ~rows[:, 3] + np.sin(rows @ rng.normal(size=n_players))
    model = HistGradientBoostingRegressor(max_iter=40, max_leaf_nodes=12, min_samples_leaf=3).fit(rows.astype(float), target)
    game = FunctionGame(lambda keep: model.predict(keep.astype(float)), [f"p{i}" for i in range(n_players)])
    brute = ExactEstimator(progress=False).estimate(game).values
    ours = tree_shapley(model, n_players)
    np.testing.assert_allclose(ours, brute, atol=1e-10)
    explainer = shap.TreeExplainer(model, data=np.zeros((1, n_players)), feature_perturbation="interventional")
    np.testing.assert_allclose(ours, explainer.shap_values(np.ones((1, n_players)))[0], atol=1e-6)


def _three_groups(n_players: int, seed: int) -> FunctionGame:
    from miam_explain.explain.reference_games import redundant_game

    return redundant_game(n_players, groups=3, seed=seed)


@pytest.mark.parametrize("value_shape", [(), (3,)])
def test_adjusted_is_efficient_and_keeps_to_the_budget(value_shape: tuple[int, ...]) -> None:
    from miam_explain.explain.estimators import AdjustedEstimator

    from miam_explain.explain.reference_games import redundant_value

    scalar, scales = redundant_value(12, groups=3, seed=7), np.array([1.0, -2.0, 0.5])
    value = scalar if not value_shape else (lambda keep: scalar(keep)[:, None] * scales)
    game = FunctionGame(value, [f"p{i}" for i in range(12)], value_shape=value_shape)
    result = AdjustedEstimator(seed=1, progress=False).estimate(game, budget=2 + 80 * 12)
    assert result.method == "adjusted" and result.n_evaluations <= 2 + 80 * 12
    assert result.values.shape == (12, *value_shape) and np.all(result.se > 0)
    np.testing.assert_allclose(result.values.sum(axis=0), result.v_full - result.v_empty, atol=1e-10)
    if value_shape:  # one surrogate per element, all from the same pairs: linear in the game
        np.testing.assert_allclose(result.values[:, 1], -2.0 * result.values[:, 0], atol=0.05 * np.abs(result.values).max())


def test_adjusted_stays_exact_where_leverage_is() -> None:
    """One group of equal members: leverage sampling fits it exactly; the surrogate's first stage does too, so the correction has nothing left."""
    from miam_explain.explain.estimators import AdjustedEstimator
    from miam_explain.explain.reference_games import redundant_game

    game = redundant_game(14, groups=1, seed=5)
    exact = ExactEstimator(progress=False).estimate(game).values
    result = AdjustedEstimator(seed=0, progress=False).estimate(game, budget=2 + 80 * 14)
    np.testing.assert_allclose(result.values, exact, atol=1e-10)
    np.testing.assert_allclose(result.se, 0.0, atol=1e-10)


def test_adjusted_beats_leverage_at_equal_evaluations_on_redundant_groups() -> None:
    """Same pairs (same seed), other estimate: on three redundant groups the surrogate takes out most of what leverage misses."""
    from miam_explain.explain.estimators import AdjustedEstimator

    errors = {"leverage": [], "adjusted": []}
    for game_seed in (11, 12):
        game = _three_groups(13, seed=game_seed)
        exact = ExactEstimator(progress=False).estimate(game).values
        for seed in range(6):
            for make in (LeverageEstimator, AdjustedEstimator):
                result = make(seed=seed, progress=False).estimate(game, budget=2 + 80 * 13)
                errors[make.method].append(np.square(result.values - exact).mean())
    rmse = {name: math.sqrt(np.mean(errs)) for name, errs in errors.items()}
    assert rmse["adjusted"] * 1.5 < rmse["leverage"], rmse


def test_adjusted_runs_plain_leverage_for_many_values_and_says_so() -> None:
    from miam_explain.explain.estimators import AdjustedEstimator
    from miam_explain.explain.estimators.adjusted import MAX_ADJUSTED_VALUES

    from miam_explain.explain.reference_games import redundant_value

    scalar = redundant_value(12, groups=3, seed=7)
    game = FunctionGame(lambda keep: scalar(keep)[:, None] * np.arange(1.0, MAX_ADJUSTED_VALUES + 2), [f"p{i}" for i in range(12)],
                        value_shape=(MAX_ADJUSTED_VALUES + 1,))
    result = AdjustedEstimator(seed=4, progress=False).estimate(game, budget=2 + 80 * 12)
    plain = LeverageEstimator(seed=4, progress=False).estimate(game, budget=2 + 80 * 12)
    assert result.method == "leverage"
    np.testing.assert_array_equal(result.values, plain.values)
    np.testing.assert_array_equal(result.se, plain.se)


def test_adjusted_refuses_a_budget_below_its_folds() -> None:
    from miam_explain.explain.estimators import AdjustedEstimator

    estimator = AdjustedEstimator(seed=0, progress=False)
    small = LeverageEstimator(seed=0, progress=False).min_budget(15)
    with pytest.raises(ConfigError, match="too small for leverage sampling"):
        estimator.estimate(_three_groups(15, seed=1), budget=small)


def test_leverage_flags_its_standard_error_near_enumeration() -> None:
    """With all but a pair of 2^12 evaluated the error is one left-out pair's residual: the result says its SE is not to be trusted."""
    from miam_explain.explain.reference_games import redundant_game

    game = redundant_game(12, groups=3, seed=2)
    near = LeverageEstimator(seed=0, progress=False).estimate(game, budget=2**12 - 2)
    assert near.n_samples == 1 and not near.se_reliable and np.all(near.se > 0)
    far = LeverageEstimator(seed=0, progress=False).estimate(game, budget=2 + 16 * 12)
    assert far.n_samples == 20 and far.se_reliable


def test_adjusted_flags_its_standard_error_near_enumeration_too() -> None:
    """Asked for by name with all but a pair evaluated, each fold's error is again the left-out pair's residual."""
    from miam_explain.explain.estimators import AdjustedEstimator
    from miam_explain.explain.reference_games import redundant_game

    near = AdjustedEstimator(seed=0, progress=False).estimate(redundant_game(12, groups=3, seed=2), budget=2**12 - 2)
    assert near.method == "adjusted" and not near.se_reliable
