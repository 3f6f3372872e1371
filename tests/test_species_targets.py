"""Per-species performance targets: one metric per species, a vector-valued game with dims (player, target).

Checked against independent references: scikit-learn's per-species ROC AUC on the model's own
predictions, the macro game (the mean over species of the per-species values equals the macro
value, coalition by coalition, and so do their Shapley values, by linearity), and the axioms.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from miam_explain import load_model, shapley
from miam_explain.errors import ConfigError, DataError
from miam_explain.explain.estimators import coalitions_from_bitmasks
from miam_explain.explain.games import performance_game, resolve_performance_targets
from miam_explain.runtime.metrics import (
    METRICS,
    macro_auc,
    per_class_auc,
    per_species_neg_loss,
    weighted_macro_auc,
    weighted_per_class_auc,
    weighted_per_species_neg_loss,
)


def test_weighted_per_class_auc_equals_sklearn_on_replicated_data():
    rng = np.random.default_rng(0)
    scores = torch.as_tensor(np.round(rng.normal(size=(60, 5)), 1))  # rounded: ties
    labels = torch.as_tensor((rng.random((60, 5)) < 0.3).astype(np.float32))
    labels[:, 4] = 0  # one species without presences: undefined
    weights = torch.as_tensor(rng.integers(0, 3, size=(4, 60)).astype(np.float64))
    auc, valid = weighted_per_class_auc(scores, labels, weights)
    for b in range(4):
        rows = np.repeat(np.arange(60), weights[b].numpy().astype(int))
        for k in range(5):
            y = labels.numpy()[rows, k]
            if 0 < y.sum() < len(y):
                assert valid[b, k]
                assert auc[b, k].item() == pytest.approx(roc_auc_score(y, scores.numpy()[rows, k]), abs=1e-12)
            else:
                assert not valid[b, k] and np.isnan(auc[b, k].item())
    # the macro form is the mean of the defined columns
    np.testing.assert_allclose(weighted_macro_auc(scores, labels, weights).numpy(), np.nanmean(auc.numpy(), axis=1))
    np.testing.assert_allclose(weighted_per_class_auc(scores, labels, torch.ones(1, 60))[0][0, :4].numpy(),
                               per_class_auc(scores, labels)[0][:4].numpy())


def test_per_species_neg_loss_against_a_direct_computation():
    rng = np.random.default_rng(1)
    logits = torch.as_tensor(rng.normal(size=(30, 3)))
    labels = torch.as_tensor((rng.random((30, 3)) < 0.4).astype(np.float64))
    p = 1 / (1 + np.exp(-logits.numpy()))
    y = labels.numpy()
    direct = (y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=0)
    np.testing.assert_allclose(per_species_neg_loss(logits, labels).numpy(), direct, rtol=1e-10)
    weights = torch.as_tensor(rng.integers(0, 4, size=(2, 30)).astype(np.float64))
    w = weights.numpy()
    expected = (w @ (y * np.log(p) + (1 - y) * np.log(1 - p))) / w.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weighted_per_species_neg_loss(logits, labels, weights).numpy(), expected, rtol=1e-10)


def test_resolve_performance_targets_keeps_defined_species_and_refuses_the_rest():
    auc = METRICS["auc"]
    names, index = resolve_performance_targets("all", ["a", "b", "c", "d"], np.array([3, 0, 10, 4]), 10, metric=auc,
                                               task="multilabel", split="test")
    assert names == ("a", "d") and index.tolist() == [0, 3]  # b never present, c present everywhere
    assert resolve_performance_targets("auto", ["a"], np.array([1]), 3, metric=auc, task="multilabel", split="test") == ((), None)
    with pytest.raises(ConfigError, match=r"'b'.*no presence or no absence in split 'test'"):
        resolve_performance_targets(["a", "b"], ["a", "b"], np.array([1, 0]), 3, metric=auc, task="multilabel", split="test")
    with pytest.raises(ConfigError, match="unknown target"):
        resolve_performance_targets(["zz"], ["a", "b"], np.array([1, 1]), 3, metric=auc, task="multilabel", split="test")
    with pytest.raises(ConfigError, match="richness"):
        resolve_performance_targets("richness", ["a"], np.array([1]), 3, metric=auc, task="multilabel", split="test")
    with pytest.raises(ConfigError, match="per-species targets need multi-label data"):
        resolve_performance_targets("all", ["a"], np.array([1]), 3, metric=METRICS["accuracy"], task="multiclass",
                                    split="test")
    with pytest.raises(DataError, match="no species has both presences and absences"):
        resolve_performance_targets("all", ["a"], np.array([0]), 3, metric=auc, task="multilabel", split="test")


def test_per_species_game_matches_sklearn_and_averages_to_the_macro_game(tiny_run, synth_data):
    model = load_model(tiny_run, device="cpu")
    per_species = performance_game(model, synth_data, group="modalities", split="all", target="all", device="cpu")
    macro = performance_game(model, synth_data, group="modalities", split="all", device="cpu")
    keep = coalitions_from_bitmasks(np.arange(2**per_species.n_players), per_species.n_players)
    values = per_species(keep)
    assert values.shape == (len(keep), len(per_species.target_names))
    presences = macro.data.target.sum(dim=0).numpy()
    defined = np.flatnonzero((presences > 0) & (presences < len(macro.data)))
    assert per_species.target_index.tolist() == defined.tolist() and len(defined) >= 2
    np.testing.assert_allclose(values.mean(axis=1), macro(keep), atol=1e-12)
    # one coalition against scikit-learn on the engine's own logits
    token_keep = per_species.token_keep(keep[-1:])
    (_, logits), = list(per_species.engine.iter_logits(token_keep))
    labels = per_species.data.target.numpy()
    scores = logits[0].numpy()
    expected = [roc_auc_score(labels[:, k], scores[:, k]) for k in per_species.target_index]
    np.testing.assert_allclose(values[-1], expected, atol=1e-12)
    weighted = performance_game(model, synth_data, group="modalities", split="all", target="all", device="cpu",
                                weights=np.ones((2, len(per_species.data))))
    np.testing.assert_allclose(weighted(keep[-2:]), np.stack([values[-2:]] * 2, axis=1), atol=1e-12)


def test_shapley_per_species_result_has_player_and_target_dims(tiny_run, synth_data):
    ds = shapley(tiny_run, synth_data, group="modalities", value="performance", target="all", split="all",
                 method="exact", interactions=True, device="cpu")
    macro = shapley(tiny_run, synth_data, group="modalities", value="performance", split="all", method="exact",
                    device="cpu")
    assert ds["shapley"].dims == ("player", "target")
    assert ds["v_full"].dims == ("target",) and ds["interaction"].dims == ("player", "player_j", "target")
    assert "presences" in ds.coords and (ds["presences"] > 0).all()
    # efficiency per species, and linearity: the mean over species is the macro game's Shapley value
    np.testing.assert_allclose(ds["shapley"].sum("player"), ds["v_full"] - ds["v_empty"], atol=1e-10)
    np.testing.assert_allclose(ds["shapley"].mean("target"), macro["shapley"], atol=1e-10)
    # modality coordinates aggregate, and one species selects as any xarray label does
    first = str(ds["target"].values[0])
    assert ds["shapley"].sel(target=first).dims == ("player",)
    # explicit species, sampled: the same (player, target) layout, with standard errors
    two = [str(t) for t in ds["target"].values[:2]]
    sampled = shapley(tiny_run, synth_data, group="climate_years", value="performance", target=two, split="all",
                      method="permutation", budget=240 * 400, seed=1, device="cpu")
    assert sampled["shapley"].dims == ("player", "target") and sampled["target"].values.tolist() == two
    assert (sampled["shapley_se"] > 0).any()
    np.testing.assert_allclose(sampled["shapley"].sum("player"), sampled["v_full"] - sampled["v_empty"], atol=1e-9)


def test_per_species_stored_run_resumes_with_the_same_values(tiny_run, synth_data, tmp_path):
    options = dict(group="modalities", value="performance", target="all", split="all", method="exact", device="cpu")
    memory = shapley(tiny_run, synth_data, **options)
    stored = shapley(tiny_run, synth_data, store=tmp_path / "run.zarr", chunk_size=5, **options).load()
    # Coalitions batched otherwise give float32 logits that differ in the last bits, which can swap two
    # nearly tied sites: one swap moves a species' AUC by 1 / (presences x absences).
    presences = memory["presences"].values
    one_swap = 1.0 / (presences * (memory.attrs["n_sites"] - presences))
    assert (np.abs(stored["shapley"].values - memory["shapley"].values) <= 2 * one_swap).all()
    assert stored["target"].values.tolist() == memory["target"].values.tolist()
    again = shapley(tiny_run, synth_data, store=tmp_path / "run.zarr", chunk_size=5, **options).load()
    np.testing.assert_array_equal(again["shapley"].values, stored["shapley"].values)  # read back, not recomputed
    # a store written for the macro game is not reused for per-species targets
    with pytest.raises(ConfigError):
        shapley(tiny_run, synth_data, store=tmp_path / "run.zarr", chunk_size=5,
                **{**options, "target": [str(memory["target"].values[0])]})


def test_performance_targets_refused_clearly(tiny_run, synth_data):
    with pytest.raises(ConfigError, match="richness"):
        shapley(tiny_run, synth_data, group="modalities", value="performance", target="richness", device="cpu")
    with pytest.raises(ConfigError, match="unknown target"):
        shapley(tiny_run, synth_data, group="modalities", value="performance", target=["no-such-species"], device="cpu")


def test_cli_per_species_performance(tiny_run, synth_data, tmp_path, capsys):
    import xarray as xr

    from miam_explain.cli import main

    out = tmp_path / "species.nc"
    assert main(["shapley", "--model", str(tiny_run), "--data", str(synth_data), "--group", "modalities", "--value",
                 "performance", "--target", "all", "--split", "all", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "one auc per species" in printed
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["shapley"].dims == ("player", "target") and int(ds["presences"].min()) > 0
