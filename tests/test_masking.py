"""Masking strategies against their math (DESIGN §1).

Every test is seeded. Statistical checks allow ``Z = 5`` standard errors, with
the standard error derived from the sample size (a false alarm has probability
below 1e-6 per check).
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from miam_explain.errors import ConfigError
from miam_explain.masking import (
    STRATEGIES,
    from_state_dict,
    get_strategy,
    imbalance_ratios,
    keep_mask,
    strategy_hyperparameters,
)

Z = 5.0
MODALITIES = ["climate", "landsat", "sentinel2"]
ALL_NAMES = [
    "constant",
    "shared_uniform",
    "dirichlet",
    "modality_dropout",
    "opm",
    "uniform_hypercube",
    "beta_hypercube",
    "miam",
]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_frequency(count: int | float, n: int, expected: float, what: str = "") -> None:
    """``count / n`` within ``Z`` binomial standard errors of ``expected`` (exact when expected is 0 or 1)."""
    se = math.sqrt(expected * (1 - expected) / n)
    assert abs(count / n - expected) <= Z * se, f"{what}: {count / n:.5f} vs {expected:.5f} (se {se:.2e})"


def design_corner_weights(num_modalities: int, single_token: bool) -> dict[tuple[int, ...], float]:
    """Corner weights written out from DESIGN §1, independently of the implementation."""
    weights = {}
    for corner in itertools.product((0, 1), repeat=num_modalities):
        if sum(corner) == 0:
            weights[corner] = 0.5 if single_token else 0.25
        elif sum(corner) == num_modalities:
            weights[corner] = 0.0 if single_token else 0.25
        else:
            weights[corner] = 1.0 / (2 * (2**num_modalities - 2))
    return weights


# --------------------------------------------------------------------------- every strategy


def test_registry_holds_the_eight_strategies_of_the_paper():
    assert list(STRATEGIES) == ALL_NAMES


@pytest.mark.parametrize("name", ALL_NAMES)
def test_sample_shape_dtype_range(name):
    strategy = get_strategy(name, modalities=MODALITIES)
    strategy.update({"climate": 0.9, "landsat": 0.7, "sentinel2": 0.6})
    strategy.update({"climate": 0.91, "landsat": 0.75, "sentinel2": 0.6})
    p = strategy.sample(10_000, generator=gen())
    assert p.shape == (10_000, 3) and p.dtype == torch.float32
    assert torch.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert strategy.sample(0, generator=gen()).shape == (0, 3)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_same_seed_same_draws(name):
    strategy = get_strategy(name, modalities=MODALITIES)
    a = strategy.sample(1000, generator=gen(7))
    b = strategy.sample(1000, generator=gen(7))
    assert torch.equal(a, b)
    if name != "constant" and name != "opm":  # opm draws nothing before its first update
        assert not torch.equal(a, strategy.sample(1000, generator=gen(8)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ALL_NAMES)
def test_sampling_runs_on_the_generator_device(name):
    strategy = get_strategy(name, modalities=MODALITIES)
    generator = torch.Generator(device="cuda").manual_seed(0)
    p = strategy.sample(1000, generator=generator)
    assert p.device.type == "cuda" and (p >= 0).all() and (p <= 1).all()
    tokens = torch.tensor([0, 1, 1, 2], device="cuda")
    keep = strategy.keep_mask(p, tokens, torch.ones(1000, 4, dtype=torch.bool, device="cuda"), generator=generator)
    assert keep.device.type == "cuda" and keep.dtype == torch.bool


# --------------------------------------------------------------------------- MIAM


@pytest.mark.parametrize("single_token", [False, True])
def test_miam_corner_frequencies_match_design_weights(single_token):
    n = 200_000
    miam = get_strategy("miam", modalities=MODALITIES, single_token=single_token)
    corners = miam.sample_corners(n, generator=gen(1))
    assert corners.shape == (n, 3) and corners.dtype == torch.bool
    index = (corners.long() * torch.tensor([4, 2, 1])).sum(dim=1)
    counts = torch.bincount(index, minlength=8).tolist()
    for corner, weight in design_corner_weights(3, single_token).items():
        code = corner[0] * 4 + corner[1] * 2 + corner[2]
        assert_frequency(counts[code], n, weight, f"corner {corner}")


@pytest.mark.parametrize("single_token", [False, True])
def test_miam_corner_rejection_sampling_for_many_modalities(single_token):
    num_modalities, n = 40, 100_000
    miam = get_strategy("miam", modalities=[f"m{i}" for i in range(num_modalities)], single_token=single_token)
    corners = miam.sample_corners(n, generator=gen(2))
    ones = corners.sum(dim=1)
    assert_frequency(int((ones == 0).sum()), n, 0.5 if single_token else 0.25, "all-zero corner")
    assert_frequency(int((ones == num_modalities).sum()), n, 0.0 if single_token else 0.25, "all-one corner")
    # Any other corner is uniform on the non-constant bit-vectors: each bit is 1 with probability 1/2.
    other = corners[(ones > 0) & (ones < num_modalities)]
    assert_frequency(int(other[:, 0].sum()), other.shape[0], 0.5, "bit 0 of other corners")


@pytest.mark.parametrize("single_token", [False, True])
def test_miam_marginal_means_match_closed_form(single_token):
    kappa, lam, ratios = 5.0, 1.5, [2.0, 1.0, 0.4]
    miam = get_strategy("miam", modalities=MODALITIES, single_token=single_token, kappa=kappa, lam=lam)
    miam.set_ratios(ratios)
    n = 200_000
    p = miam.sample(n, generator=gen(3)).double()
    weights = design_corner_weights(3, single_token)
    for m, r in enumerate(ratios):
        a = kappa * r**lam  # Beta(a, 1) at c_m = 1: mean a / (a + 1)
        b = kappa * r**-lam  # Beta(1, b) at c_m = 0: mean 1 / (1 + b)
        expected = sum(w * (a / (a + 1) if c[m] else 1 / (1 + b)) for c, w in weights.items())
        se = float(p[:, m].std()) / math.sqrt(n)
        assert abs(float(p[:, m].mean()) - expected) <= Z * se, (m, float(p[:, m].mean()), expected)


def test_miam_beta_components_match_their_quantiles():
    # Given the corner, p_m follows Beta(1, kappa0) or Beta(kappa1, 1): check the CDF at a few points.
    miam = get_strategy("miam", modalities=["a", "b"], kappa=4.0, lam=1.0)
    miam.set_ratios([3.0, 1.0 / 3.0])
    n = 200_000
    g = gen(4)
    corners = miam.sample_corners(n, generator=g)
    p = miam.sample(n, generator=gen(4))  # same seed: same corners, then the betas
    for m in range(2):
        a, b = miam.kappa1[m], miam.kappa0[m]
        for x in (0.05, 0.3, 0.7, 0.95):
            high = p[corners[:, m], m]
            low = p[~corners[:, m], m]
            assert_frequency(int((high <= x).sum()), high.numel(), x**a, f"Beta({a:.2f},1) cdf({x})")
            assert_frequency(int((low <= x).sum()), low.numel(), 1 - (1 - x) ** b, f"Beta(1,{b:.2f}) cdf({x})")


def test_imbalance_ratios_follow_design_formula():
    previous, current, eps = [0.70, 0.60, 0.80], [0.75, 0.61, 0.80], 0.001
    s = np.array(current) + eps
    d = np.abs(np.array(current) - np.array(previous)) + eps
    rho_s = s / np.exp(np.log(s).mean())
    rho_d = d / np.exp(np.log(d).mean()) + eps
    out = imbalance_ratios(previous, current, eps=eps)
    np.testing.assert_allclose(out["rho_s"], rho_s, rtol=1e-12)
    np.testing.assert_allclose(out["rho_d"], rho_d, rtol=1e-12)
    np.testing.assert_allclose(out["r"], rho_s / rho_d, rtol=1e-12)


def test_miam_ratios_are_one_until_two_epochs_of_scores():
    miam = get_strategy("miam", modalities=MODALITIES)
    assert miam.ratios == [1.0, 1.0, 1.0]
    miam.update({"climate": 0.9, "landsat": 0.6, "sentinel2": 0.5})
    assert miam.ratios == [1.0, 1.0, 1.0]
    assert miam.history[0]["d"] is None and miam.history[0]["r"] == dict.fromkeys(MODALITIES, 1.0)
    miam.update({"climate": 0.91, "landsat": 0.7, "sentinel2": 0.5})
    assert miam.ratios != [1.0, 1.0, 1.0]
    entry = miam.history[1]
    assert set(entry) == {"epoch", "s", "d", "rho_s", "rho_d", "r", "kappa0", "kappa1"}
    for m in MODALITIES:
        assert entry["kappa0"][m] == pytest.approx(10.0 * entry["r"][m] ** -3.0)
        assert entry["kappa1"][m] == pytest.approx(10.0 * entry["r"][m] ** 3.0)


def test_higher_score_to_change_ratio_gets_higher_mean_p():
    # climate: strong and stable (high s, small d); landsat: weak and still improving.
    miam = get_strategy("miam", modalities=["climate", "landsat"], kappa=10.0, lam=1.0)
    miam.update({"climate": 0.85, "landsat": 0.60})
    miam.update({"climate": 0.86, "landsat": 0.65})
    r = miam.history[-1]["r"]
    assert r["climate"] > 1.0 > r["landsat"]
    n = 100_000
    p = miam.sample(n, generator=gen(5)).double()
    diff = p[:, 0] - p[:, 1]
    assert float(diff.mean()) > Z * float(diff.std()) / math.sqrt(n)


def test_lam_zero_equals_beta_hypercube():
    # MIAM with lam = 0 ignores the ratios: it draws exactly what beta_hypercube draws.
    miam = get_strategy("miam", modalities=MODALITIES, kappa=7.0, lam=0.0)
    beta = get_strategy("beta_hypercube", modalities=MODALITIES, kappa=7.0)
    for scores in ({"climate": 0.9, "landsat": 0.6, "sentinel2": 0.5}, {"climate": 0.95, "landsat": 0.6, "sentinel2": 0.7}):
        miam.update(scores)
        beta.update(scores)
    assert miam.ratios != [1.0, 1.0, 1.0]
    assert torch.equal(miam.sample(50_000, generator=gen(6)), beta.sample(50_000, generator=gen(6)))
    assert miam.kappa0 == miam.kappa1 == [7.0, 7.0, 7.0]


def test_miam_extreme_parameters_stay_in_the_unit_interval():
    miam = get_strategy("miam", modalities=["a", "b"], kappa=10.0, lam=3.0)
    miam.set_ratios([50.0, 0.02])  # kappa * r^±lam spans 1e-4 .. 1e6
    p = miam.sample(100_000, generator=gen(9))
    assert torch.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()


# --------------------------------------------------------------------------- the other strategies


def test_constant():
    p = get_strategy("constant", modalities=MODALITIES).sample(100, generator=gen())
    assert (p == 0.75).all()
    assert (get_strategy("constant", modalities=MODALITIES, p=0.3).sample(5, generator=gen()) == 0.3).all()


def test_dirichlet_rows_sum_to_one_and_are_uniform_on_the_simplex():
    n = 100_000
    p = get_strategy("dirichlet", modalities=MODALITIES).sample(n, generator=gen(10)).double()
    torch.testing.assert_close(p.sum(dim=1), torch.ones(n, dtype=torch.double), atol=1e-6, rtol=0)
    # Dir(1,1,1): each coordinate is Beta(1, 2), so P(p_m <= x) = 1 - (1 - x)^2.
    for m in range(3):
        assert_frequency(int((p[:, m] <= 0.2).sum()), n, 1 - 0.8**2, f"Beta(1,2) cdf, modality {m}")


def test_modality_dropout_is_binary_with_rate():
    n = 100_000
    for rate in (0.1, 0.35):
        kwargs = {} if rate == 0.1 else {"rate": rate}
        p = get_strategy("modality_dropout", modalities=MODALITIES, **kwargs).sample(n, generator=gen(11))
        assert set(p.unique().tolist()) <= {0.0, 1.0}
        for m in range(3):
            assert_frequency(int(p[:, m].sum()), n, rate, f"drop rate of modality {m}")


def test_uniform_hypercube_is_uniform():
    n = 100_000
    p = get_strategy("uniform_hypercube", modalities=MODALITIES).sample(n, generator=gen(12))
    for m in range(3):
        assert_frequency(int((p[:, m] <= 0.3).sum()), n, 0.3, f"U(0,1) cdf, modality {m}")
    assert abs(float(torch.corrcoef(p.T)[0, 1])) < Z / math.sqrt(n)


def test_shared_uniform_shares_one_value_per_call():
    strategy = get_strategy("shared_uniform", modalities=MODALITIES)
    g = gen(13)
    values = []
    for _ in range(2000):
        p = strategy.sample(16, generator=g)
        assert (p == p[0, 0]).all()  # across the batch and across modalities
        values.append(float(p[0, 0]))
    values = np.array(values)
    assert len(np.unique(values)) > 0.99 * len(values)  # a fresh value per call (float32 ties are rare)
    assert_frequency(int((values <= 0.25).sum()), len(values), 0.25, "U(0,1) over calls")


def test_opm_follows_the_reference_rule_for_two_modalities():
    # GeWu-Lab/BML_TPAMI2024 calcu_q: rho = s1/s2; q = q_base (1 + lam tanh(rho - 1)) if rho > 1 else 0.
    opm = get_strategy("opm", modalities=["audio", "visual"], q_base=0.5, lam=0.5, p_exe=1.0)
    opm.update({"audio": 0.9, "visual": 0.6})
    assert opm.q[0] == pytest.approx(0.5 * (1 + 0.5 * math.tanh(0.9 / 0.6 - 1)))
    assert opm.q[1] == 0.0
    assert opm.history[-1]["rho"] == pytest.approx({"audio": 1.5, "visual": 0.6 / 0.9})


def test_opm_never_masks_a_dominated_modality():
    opm = get_strategy("opm", modalities=MODALITIES)
    assert opm.sample(1000, generator=gen()).sum() == 0  # no scores yet: no drop
    opm.update({"climate": 0.9, "landsat": 0.8, "sentinel2": 0.5})
    rho = opm.history[-1]["rho"]
    assert rho["climate"] == pytest.approx(0.9 / 0.65) and rho["landsat"] == pytest.approx(0.8 / 0.7)
    assert rho["sentinel2"] < 1
    g = gen(14)
    calls, n = 2000, 64
    executed = 0
    dropped = torch.zeros(3)
    for _ in range(calls):
        p = opm.sample(n, generator=g)
        assert set(p.unique().tolist()) <= {0.0, 1.0}
        assert (p[:, 2] == 0).all()  # the dominated modality is never dropped
        assert (p.sum(dim=1) < 3).all()  # a sample never loses every modality
        if p.any():  # an executed batch of 64 with q >= 0.5 drops something (P(miss) < 1e-19)
            executed += 1
            dropped += p.sum(dim=0)
    assert_frequency(executed, calls, 0.7, "p_exe: share of batches where the drop is executed")
    q = opm.q
    assert q[0] == pytest.approx(0.5 * (1 + 0.4 * math.tanh(0.9 / 0.65 - 1)))
    for m in range(2):  # within executed batches, each sample drops modality m independently with q_m
        assert_frequency(float(dropped[m]), executed * n, q[m], f"drop frequency of modality {m}")


# --------------------------------------------------------------------------- keep_mask


def test_keep_mask_rate_matches_p_and_hides_unobserved_tokens():
    n = 20_000
    modality_of_token = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    p_row = torch.tensor([0.2, 0.5, 0.9])
    p = p_row.repeat(n, 1)
    observed = torch.rand(n, 10, generator=gen(15)) > 0.3
    keep = keep_mask(p, modality_of_token, observed, generator=gen(16))
    assert keep.shape == (n, 10) and keep.dtype == torch.bool
    assert not (keep & ~observed).any()
    for m in range(3):
        cols = modality_of_token == m
        n_observed = int(observed[:, cols].sum())
        hidden = n_observed - int(keep[:, cols].sum())
        assert_frequency(hidden, n_observed, float(p_row[m]), f"masking rate of modality {m}")


def test_keep_mask_extremes_are_exact():
    modality_of_token = torch.tensor([0, 1, 1])
    observed = torch.tensor([[True, True, False], [True, False, True]])
    p = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    keep = keep_mask(p, modality_of_token, observed, generator=gen())
    assert keep.tolist() == [[True, True, False], [False, False, True]]


def test_keep_mask_per_row_probabilities():
    # Rows with different p: the visible fraction of a row's tokens tracks 1 - p of that row.
    strategy = get_strategy("uniform_hypercube", modalities=["a"])
    p = strategy.sample(200, generator=gen(17))
    keep = strategy.keep_mask(p, torch.zeros(5000, dtype=torch.long), torch.ones(200, 5000, dtype=torch.bool), generator=gen(18))
    visible = keep.double().mean(dim=1)
    se = torch.sqrt(p.double() * (1 - p.double()) / 5000) + 1e-12
    assert ((visible - (1 - p.double()[:, 0])).abs() <= Z * se[:, 0] + 1e-9).all()


def test_keep_mask_refuses_bad_shapes():
    p = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="observed"):
        keep_mask(p, torch.tensor([0, 1]), torch.ones(4, 3, dtype=torch.bool), generator=gen())
    with pytest.raises(ValueError, match="modality_of_token"):
        keep_mask(p, torch.tensor([0, 2]), torch.ones(4, 2, dtype=torch.bool), generator=gen())
    with pytest.raises(ValueError, match="bool"):
        keep_mask(p, torch.tensor([0, 1]), torch.ones(4, 2), generator=gen())


# --------------------------------------------------------------------------- state


EPOCHS = [
    {"climate": 0.80, "landsat": 0.70, "sentinel2": 0.55},
    {"climate": 0.84, "landsat": 0.71, "sentinel2": 0.60},
    {"climate": 0.85, "landsat": 0.74, "sentinel2": 0.61},
    {"climate": 0.86, "landsat": 0.74, "sentinel2": 0.65},
]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_state_dict_round_trip_resumes_exactly(name):
    original = get_strategy(name, modalities=MODALITIES, single_token=True)
    for scores in EPOCHS[:2]:
        original.update(scores)
    state = json.loads(json.dumps(original.state_dict()))  # it must survive JSON (checkpoint metadata)
    resumed = from_state_dict(state)
    assert type(resumed) is type(original) and resumed.single_token
    for scores in EPOCHS[2:]:
        original.update(scores)
        resumed.update(scores)
    assert resumed.state_dict() == original.state_dict()
    assert torch.equal(original.sample(1000, generator=gen(19)), resumed.sample(1000, generator=gen(19)))


def test_miam_history_survives_the_round_trip():
    miam = get_strategy("miam", modalities=MODALITIES, kappa=8.0, lam=2.0)
    for scores in EPOCHS:
        miam.update(scores)
    fresh = get_strategy("miam", modalities=MODALITIES, kappa=8.0, lam=2.0)
    fresh.load_state_dict(json.loads(json.dumps(miam.state_dict())))
    assert fresh.history == miam.history and fresh.ratios == miam.ratios
    assert len(fresh.history) == 4 and fresh.history[3]["rho_d"] is not None


def test_load_state_dict_refuses_another_configuration():
    state = get_strategy("miam", modalities=MODALITIES, lam=1.0).state_dict()
    with pytest.raises(ConfigError, match="hyperparameters"):
        get_strategy("miam", modalities=MODALITIES, lam=2.0).load_state_dict(state)
    with pytest.raises(ConfigError, match="modalities"):
        get_strategy("miam", modalities=["a", "b", "c"], lam=1.0).load_state_dict(state)
    with pytest.raises(ConfigError, match="strategy"):
        get_strategy("opm", modalities=MODALITIES).load_state_dict(state)


# --------------------------------------------------------------------------- errors


def test_unknown_strategy_lists_the_valid_names():
    with pytest.raises(ConfigError) as info:
        get_strategy("miame", modalities=MODALITIES)
    message = str(info.value)
    assert "\n" not in message and "'miame'" in message
    assert all(name in message for name in ALL_NAMES)


@pytest.mark.parametrize(
    ("name", "bad", "valid"),
    [
        ("miam", {"kapa": 3.0}, ["kappa", "lam", "eps"]),
        ("beta_hypercube", {"lam": 1.0}, ["kappa", "eps"]),
        ("opm", {"kappa": 1.0}, ["q_base", "lam", "p_exe"]),
        ("constant", {"rate": 0.1}, ["p"]),
        ("modality_dropout", {"p": 0.1}, ["rate"]),
        ("uniform_hypercube", {"kappa": 1.0}, ["none"]),
    ],
)
def test_unknown_hyperparameter_lists_the_valid_ones(name, bad, valid):
    with pytest.raises(ConfigError) as info:
        get_strategy(name, modalities=MODALITIES, **bad)
    message = str(info.value)
    assert "\n" not in message and repr(next(iter(bad))) in message
    assert all(v in message for v in valid)
    assert list(strategy_hyperparameters(name)) == ([] if valid == ["none"] else valid)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("miam", {"kappa": -1.0}),
        ("miam", {"eps": 0.0}),
        ("miam", {"lam": float("nan")}),
        ("miam", {"kappa": True}),
        ("miam", {"kappa": "10"}),
        ("constant", {"p": 1.5}),
        ("modality_dropout", {"rate": -0.1}),
        ("opm", {"q_base": 2.0}),
        ("opm", {"p_exe": 1.1}),
    ],
)
def test_out_of_range_hyperparameter_is_refused(name, bad):
    with pytest.raises(ConfigError, match=name):
        get_strategy(name, modalities=MODALITIES, **bad)


def test_bad_modalities_and_scores_are_refused():
    with pytest.raises(ConfigError, match="at least one"):
        get_strategy("miam", modalities=[])
    with pytest.raises(ConfigError, match="unique"):
        get_strategy("miam", modalities=["a", "a"])
    with pytest.raises(ConfigError, match="list of names"):
        get_strategy("miam", modalities="abc")
    miam = get_strategy("miam", modalities=MODALITIES)
    with pytest.raises(ConfigError, match="exactly the modalities"):
        miam.update({"climate": 0.5, "landsat": 0.5})
    with pytest.raises(ConfigError, match="finite"):
        miam.update({"climate": 0.5, "landsat": float("nan"), "sentinel2": 0.5})
    with pytest.raises(ConfigError, match="> 0"):
        get_strategy("opm", modalities=MODALITIES).update({"climate": 0.5, "landsat": 0.0, "sentinel2": 0.5})
    with pytest.raises(ConfigError, match="one ratio per modality"):
        miam.set_ratios([1.0, 2.0])
    assert miam.history == []  # refused updates leave no trace
