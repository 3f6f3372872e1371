"""The explain engine on a small trained model: games, invariances, the result schema, CLI and bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import xarray as xr

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.data.format import text_values
from miam_explain.errors import ConfigError, DataError, SchemaError
from miam_explain.explain import result_to_shap, shapley
from miam_explain.runtime.engine import Engine
from miam_explain.explain.games import prediction_game
from miam_explain.models.checkpoint import load_model
from miam_explain.runtime.tensors import load_split



@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


@pytest.fixture(scope="module")
def sites(run, synth_data):
    ds = open_dataset(synth_data)
    test_ids = ds["site_id"].values[text_values(ds["split"].values) == "test"]
    return [int(s) for s in test_ids[:6]]


def test_engine_matches_a_direct_forward(run, synth_data):
    model = load_model(run)
    ds = open_dataset(synth_data)
    data = load_split(ds, model.schema, "test")
    engine = Engine(model, data, device=torch.device("cpu"), chunk_rows=50)
    rng = np.random.default_rng(0)
    keep = torch.as_tensor(rng.random((5, model.schema.n_tokens)) > 0.4)
    got = engine.logits(keep)
    assert got.shape == (5, len(data), model.config.n_outputs)
    with torch.no_grad():
        inputs, _ = data.batch(slice(None), "cpu")
        tokens, observed = model.tokenize(inputs)
        for c in range(5):
            expected = model.forward_tokens(tokens, keep[c][None, :] & observed)
            torch.testing.assert_close(got[c], expected, atol=1e-5, rtol=1e-5)


def test_prediction_game_context_and_missing_tokens(run, synth_data, sites):
    game = prediction_game(run, synth_data, group="spectral_bands", sites=sites, target="richness", device="cpu")
    assert game.players == ("red", "green", "blue", "nir")
    keep = game.token_keep(np.array([[True, False, False, False]]))
    schema = game.engine.model.schema
    np.testing.assert_array_equal(keep[0].numpy(), schema.keep_vector("spectral_bands:red"))
    with_context = prediction_game(run, synth_data, group="spectral_bands", sites=sites, context="all", device="cpu", target="richness")
    keep_all = with_context.token_keep(np.zeros((1, 4), dtype=bool))[0].numpy()
    assert keep_all.sum() == schema.n_tokens - len(schema.select("modalities:sentinel2"))
    values = game(np.array([[True, True, True, True], [False] * 4]))
    assert values.shape == (2, len(sites), 1)
    # the empty coalition hides everything: one prediction (the prior) for every site
    assert np.allclose(values[1], values[1, 0])


def test_exact_shapley_on_the_model_is_efficient_and_matches_brute_force(run, synth_data, sites):
    ds = shapley(run, synth_data, group="modalities", sites=sites, target="all", method="exact", device="cpu")
    assert ds["shapley"].dims == ("site", "player", "target")
    np.testing.assert_allclose(ds["shapley"].sum("player"), ds["v_full"] - ds["v_empty"], atol=1e-9)
    # brute force over the 4! orderings of the 4 modalities, on the same game
    game = prediction_game(run, synth_data, group="modalities", sites=sites, target="all", device="cpu")
    p = game.n_players
    coalitions = list(itertools.product([False, True], repeat=p))
    values = game(np.array(coalitions))  # one batched call, as the estimator makes
    table = {bits: values[i] for i, bits in enumerate(coalitions)}
    phi = np.zeros((p, *table[(False,) * p].shape))
    for order in itertools.permutations(range(p)):
        present = [False] * p
        for player in order:
            before = table[tuple(present)]
            present[player] = True
            phi[player] += table[tuple(present)] - before
    phi /= math.factorial(p)
    np.testing.assert_allclose(ds["shapley"].transpose("player", "site", "target").values, phi, atol=1e-9)


def test_invariance_chunks_collapse_and_cli(run, synth_data, sites, tmp_path):
    kwargs = dict(group="spectral_bands", sites=sites, target="richness", method="exact", device="cpu", interactions=True)
    base = shapley(run, synth_data, **kwargs)
    full = shapley(run, synth_data, collapse=False, **kwargs)
    # float32 forwards; richness sums the probabilities of all species, so allow 1e-5 per value
    np.testing.assert_allclose(base["shapley"], full["shapley"], atol=1e-5)
    np.testing.assert_allclose(base["interaction"], full["interaction"], atol=1e-5)
    out = tmp_path / "r.nc"
    code = main(["shapley", "--model", str(run), "--data", str(synth_data), "--group", "spectral_bands", "--sites",
                 ",".join(map(str, sites)), "--target", "richness", "--method", "exact", "--interactions",
                 "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    cli = xr.open_dataset(out, engine="h5netcdf")
    np.testing.assert_allclose(cli["shapley"].values, base["shapley"].values, atol=1e-9)
    np.testing.assert_array_equal(cli["site_id"].values, sites)


def test_engine_chunk_size_does_not_change_values(run, synth_data, sites):
    game = prediction_game(run, synth_data, group="modalities", sites=sites, target="all", device="cpu")
    keep = np.array(list(itertools.product([False, True], repeat=4)))
    a = game(keep)
    game.engine.chunk_rows = 7
    b = game(keep)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_result_schema_and_provenance(run, synth_data, sites):
    ds = shapley(run, synth_data, group="spectral_bands", value="performance", method="permutation", budget=6000,
                 seed=3, device="cpu")
    assert ds["shapley"].dims == ("player",) and ds["v_full"].dims == ()
    for key in ("game", "metric", "grouping", "context", "method", "budget", "n_evaluations", "seed",
                "model_sha256", "data", "split", "version", "created"):
        assert key in ds.attrs, key
    assert ds.attrs["game"] == "performance" and ds.attrs["metric"] == "auc" and ds.attrs["seed"] == 3
    assert len(ds.attrs["model_sha256"]) == 64
    assert float(ds["shapley"].sum() - (ds["v_full"] - ds["v_empty"])) == pytest.approx(0, abs=1e-9)
    assert (ds["shapley_se"] > 0).all()
    pred = shapley(run, synth_data, group="modalities", sites=sites, target="richness", device="cpu")
    for coord in ("site_id", "lat", "lon", "player", "target"):
        assert coord in pred.coords
    explanation = result_to_shap(pred)
    assert explanation.values.shape == (len(sites), 4)
    np.testing.assert_allclose(explanation.base_values, pred["v_empty"].sel(target="richness").values)


def test_bad_input(run, synth_data, capsys, tmp_path):
    with pytest.raises(SchemaError, match="valid groupings"):
        shapley(run, synth_data, group="bands", device="cpu")
    with pytest.raises(ConfigError, match="unknown target"):
        shapley(run, synth_data, group="modalities", target=["no_such_species"], device="cpu")
    with pytest.raises(ConfigError, match="minimum|at least|too small"):
        shapley(run, synth_data, group="climate_years", value="performance", method="permutation", budget=5, device="cpu")
    with pytest.raises(ConfigError, match="permutation"):
        shapley(run, synth_data, group="tokens", method="exact", device="cpu")
    ds = open_dataset(synth_data).load()
    ds = ds.assign_coords(split=("site", np.where(ds["split"].values == "test", "val", ds["split"].values).astype(object)))
    notest = tmp_path / "notest.nc"
    ds.to_netcdf(notest, engine="h5netcdf")
    with pytest.raises(DataError, match="split 'test' has no sites"):
        shapley(run, notest, group="modalities", device="cpu")
    out = tmp_path / "exists.nc"
    out.write_text("x")
    code = main(["shapley", "--model", str(run), "--group", "modalities", "--out", str(out), "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == "x"
