"""The one explain path: the request validates once, the registry is the one extension point of estimators,
the engine's token cache is bounded, and a weighted performance game is a bootstrap of the metric.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.errors import ConfigError, DataError
from miam_explain.explain import ESTIMATORS, ShapleyRequest, performance_game, plan, shapley
from miam_explain.explain.estimators import ExactEstimator, PermutationEstimator, choose_method
from miam_explain.models.checkpoint import load_model
from miam_explain.runtime import METRICS, Engine, load_split, resolve_metric


# ----------------------------------------------------------------------------------------------------------------------
# the request


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(value="both"), "value 'both'"),
        (dict(method="shap"), "unknown method 'shap'"),
        (dict(budget=0), "positive number"),
        (dict(budget=2.5), "whole number"),
        (dict(tol=-1.0), "tol must be a positive number"),
        (dict(seed=-1), "non-negative"),
        (dict(context="some"), "context 'some'"),
        (dict(output="odds"), "output 'odds'"),
        (dict(metric="f1"), "unknown metric 'f1'"),
        (dict(target=[]), "target [] is not valid"),
        (dict(device="tpu"), "unknown device 'tpu'"),
        (dict(scheduler="tcp://x:1", workers=2), "not both"),
        (dict(workers=0), "workers must be a positive whole number"),
        (dict(store="out.nc"), "must be a .zarr folder"),
        (dict(chunk_size=10), "apply to stored or sharded runs"),
        (dict(overwrite=True), "apply to stored or sharded runs"),
        (dict(value="performance", sites=[1]), "--sites applies to the prediction game"),
    ],
)
def test_the_request_refuses_each_bad_option_with_one_line(options, message):
    with pytest.raises(ConfigError) as error:
        ShapleyRequest(group="modalities", **options)
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1


def test_the_request_normalises_what_it_accepts():
    request = ShapleyRequest(group="modalities", target=["12", 7], sites=["3", 4], budget=np.int64(100), store="x.zarr")
    assert request.target == ("12", "7") and request.sites == (3, 4) and request.budget == 100
    assert request.chunked and not request.sharded and request.total_budget == 100
    with pytest.raises(DataError, match="not a whole number"):
        ShapleyRequest(group="modalities", sites=["x"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.seed = 3


def test_the_plan_resolves_players_targets_budget_and_chunks(tiny_run, synth_data):
    the_plan = plan(ShapleyRequest(group="spectral_bands", target="all", device="cpu"), tiny_run, synth_data)
    assert the_plan.players == ("red", "green", "blue", "nir") and the_plan.method == "exact"
    assert the_plan.n_chunks == 1 and the_plan.chunk_size == the_plan.n_sites == len(the_plan.positions)
    assert len(the_plan.spec.targets) == 12 and the_plan.spec.target_index == tuple(range(12))
    sampled = plan(ShapleyRequest(group="climate_years", value="performance", budget=240 * 40, split="all", device="cpu"),
                   tiny_run, synth_data)
    assert sampled.method == "permutation" and sampled.coalitions == 40 and sampled.spec.metric == "auc"
    with pytest.raises(ConfigError, match="over the budget"):
        plan(ShapleyRequest(group="spectral_bands", method="exact", budget=10, device="cpu"), tiny_run, synth_data)


# ----------------------------------------------------------------------------------------------------------------------
# the registry: a new estimator is one class plus one line


class MirrorEstimator(PermutationEstimator):
    """A made-up estimator for the test: permutation sampling under another name."""

    method = "mirror"


def test_a_registered_estimator_runs_through_the_api_and_the_cli(monkeypatch, tiny_run, synth_data, tmp_path):
    monkeypatch.setitem(ESTIMATORS, "mirror", MirrorEstimator)  # the one registry line
    common = dict(group="spectral_bands", value="performance", budget=240 * 14, seed=3, split="all", device="cpu")
    mirrored = shapley(tiny_run, synth_data, method="mirror", **common)
    reference = shapley(tiny_run, synth_data, method="permutation", **common)
    assert mirrored.attrs["method"] == "mirror"
    np.testing.assert_array_equal(mirrored["shapley"].values, reference["shapley"].values)
    out = tmp_path / "mirror.nc"
    assert main(["shapley", "--model", str(tiny_run), "--data", str(synth_data), "--group", "spectral_bands",
                 "--value", "performance", "--method", "mirror", "--budget", str(240 * 14), "--split", "all",
                 "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    monkeypatch.delitem(ESTIMATORS, "mirror")
    with pytest.raises(ConfigError, match="unknown method 'mirror'"):
        ShapleyRequest(group="modalities", method="mirror")


def test_auto_consults_the_registry_in_order():
    assert choose_method(4, 10, budget=160) == "exact" and choose_method(4, 10, budget=159) == "permutation"
    assert ExactEstimator.fits(4, 10, 160) and not ExactEstimator.fits(21, 1, None)


def test_exact_limits_are_checked_in_one_place_with_the_run_cost():
    with pytest.raises(ConfigError, match=r"2\^4 = 16 coalitions x 10 sites = 160 model evaluations, over the budget of 159"):
        ExactEstimator.check(4, 159, n_sites=10)
    ExactEstimator.check(4, 160, n_sites=10)


# ----------------------------------------------------------------------------------------------------------------------
# the engine and the weighted performance game


def test_a_bounded_token_cache_recomputes_and_gives_the_same_logits(tiny_run, synth_data):
    model = load_model(tiny_run)
    data = load_split(open_dataset(synth_data), model.schema, "all")
    keep = torch.as_tensor(np.random.default_rng(1).random((6, model.schema.n_tokens)) > 0.5)
    cached = Engine(model, data, device=torch.device("cpu"))
    bounded = Engine(model, data, device=torch.device("cpu"), cache_bytes=1, tokenize_batch=64)
    assert cached.cached and not bounded.cached and bounded.tokens is None
    torch.testing.assert_close(bounded.logits(keep), cached.logits(keep), atol=1e-5, rtol=1e-5)
    groups = list(cached.iter_logits(keep, max_elements=2 * len(data) * model.config.n_outputs))
    assert [start for start, _ in groups] == [0, 2, 4]
    torch.testing.assert_close(torch.cat([logits for _, logits in groups]), cached.logits(keep))


def test_a_weighted_performance_game_is_the_metric_under_each_weighting(tiny_run, synth_data):
    plain = performance_game(tiny_run, synth_data, group="modalities", split="all", device="cpu")
    n = plain.engine.n_sites
    rng = np.random.default_rng(0)
    weights = np.vstack([np.ones(n), rng.integers(0, 3, (3, n))]).astype(np.float64)
    weighted = performance_game(tiny_run, synth_data, group="modalities", split="all", weights=weights, device="cpu")
    keep = np.array([[True, False, False, False], [True, True, True, True], [False, True, False, True]])
    values, reference = weighted(keep), plain(keep)
    assert values.shape == (3, 4)
    np.testing.assert_allclose(values[:, 0], reference, atol=1e-12)  # all ones: the plain metric
    # an integer weighting equals the plain metric on the data with each site repeated that many times
    repeated = np.repeat(np.arange(n), weights[1].astype(int))
    logits = plain.engine.logits(plain.token_keep(keep))
    for c in range(3):
        expected = METRICS["auc"].value(logits[c][repeated], plain.data.target[repeated])
        assert values[c, 1] == pytest.approx(expected, abs=1e-9)


def test_the_metric_registry_refuses_a_metric_that_does_not_fit_the_task():
    assert resolve_metric("auto", "multiclass").name == "accuracy"
    with pytest.raises(ConfigError, match="needs multi-class data"):
        resolve_metric("top5", "multilabel")
    logits, labels = torch.randn(20, 3), torch.randint(0, 2, (20, 3)).float()
    ones = torch.ones(1, 20)
    for name in ("auc", "neg_loss"):
        assert float(METRICS[name].weighted(logits, labels, ones)[0]) == pytest.approx(METRICS[name].value(logits, labels), abs=1e-6)


def test_shapley_result_of_the_one_path_is_exactly_efficient(tiny_run, synth_data):
    ds = shapley(tiny_run, synth_data, group="modalities", value="performance", split="all", device="cpu")
    gap = float(ds["shapley"].sum("player") - (ds["v_full"] - ds["v_empty"]))
    assert abs(gap) < 1e-12 and ds.attrs["n_sites"] == 240


def test_the_adjusted_estimator_runs_a_performance_game_through_the_api(tiny_run, synth_data):
    """``--method adjusted`` on a performance game: one value per coalition, so the surrogate adjusts it; efficiency holds."""
    common = dict(group="climate_years", value="performance", budget=240 * 400, seed=3, split="all", device="cpu")
    adjusted = shapley(tiny_run, synth_data, method="adjusted", **common)
    plain = shapley(tiny_run, synth_data, method="leverage", **common)
    assert adjusted.attrs["method"] == "adjusted" and plain.attrs["method"] == "leverage"
    assert adjusted.sizes["player"] == 19 and int(adjusted.attrs["n_evaluations"]) <= 400
    gap = float(adjusted["shapley"].sum("player") - (adjusted["v_full"] - adjusted["v_empty"]))
    assert abs(gap) < 1e-9
    # the same pairs, another estimate: both within a few standard errors of each other
    diff = np.abs(adjusted["shapley"] - plain["shapley"]).values
    assert np.all(diff <= 5 * np.hypot(adjusted["shapley_se"].values, plain["shapley_se"].values) + 1e-9)


def test_auto_adjusts_a_performance_game_and_leaves_a_prediction_game_to_leverage(tiny_run, synth_data):
    """The performance game has one value per coalition: ``auto`` counts its coalitions, not its sites."""
    performance = plan(ShapleyRequest(group="climate_years", value="performance", budget=240 * 1600, split="all",
                                      device="cpu"), tiny_run, synth_data)
    prediction = plan(ShapleyRequest(group="climate_years", budget=240 * 1600, split="all", target="richness",
                                     device="cpu"), tiny_run, synth_data)
    assert performance.method == "adjusted" and prediction.method == "leverage"
    assert performance.coalitions == prediction.coalitions == 1600
