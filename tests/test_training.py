"""Training, checkpoints, resume and subset evaluation, on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.errors import CheckpointError, ConfigError, DataError, OutputExistsError
from miam_explain.models.checkpoint import load_model, read_checkpoint
from miam_explain.runtime.subsets import evaluate
from miam_explain.training.config import RunConfig, load_config
from miam_explain.runtime.tensors import load_split
from miam_explain.runtime.subsets import paper_subsets, subset_logits
from miam_explain.training.loss import full_weighted_bce, species_weights
from miam_explain.runtime.metrics import macro_auc, per_class_auc
from miam_explain.training.trainer import train
from tiny import TINY as SHARED_TINY

#: The tiny config with more epochs, a patience and MIAM's hyper-parameters spelled out (what these tests train).
TINY = {
    **SHARED_TINY,
    "masking": {"strategy": "miam", "kappa": 10.0, "lam": 3.0},
    "training": {**SHARED_TINY["training"], "epochs": 3, "patience": 5, "seed": 7},
}


@pytest.fixture(scope="module")
def trained(synth_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    result = train(synth_data, RunConfig.from_dict(TINY), out, progress=False)
    return out, result


def test_run_folder_contents(trained):
    out, result = trained
    assert result.epochs_run == 3
    for name in ("config.toml", "log.jsonl", "last.safetensors", "best.safetensors"):
        assert (out / name).is_file(), name
    log = pd.read_json(out / "log.jsonl", lines=True)
    assert list(log["epoch"]) == [1, 2, 3]
    assert {"climate", "landsat", "sentinel2", "tabular", "all"} <= set(log["val"].iloc[0])
    # MIAM coefficients are logged once two epochs of scores exist
    assert log["masking"].iloc[-1], "the last epoch should carry the MIAM coefficients"
    assert load_config(out / "config.toml") == RunConfig.from_dict(TINY)


def test_same_seed_same_weights(trained, synth_data, tmp_path):
    out, _ = trained
    again = train(synth_data, RunConfig.from_dict(TINY), tmp_path / "again", progress=False)
    a, _ = read_checkpoint(out / "last.safetensors")
    b, _ = read_checkpoint(again.run_dir / "last.safetensors")
    for key in a:
        if key.startswith("model."):
            assert torch.equal(a[key], b[key]), key


def test_resume_with_another_config_is_refused(synth_data, tmp_path):
    two = {**TINY, "training": {**TINY["training"], "epochs": 2}}
    partial = tmp_path / "partial"
    train(synth_data, RunConfig.from_dict(two), partial, progress=False)
    _, meta = read_checkpoint(partial / "last.safetensors")
    assert meta["epoch"] == 2
    with pytest.raises(CheckpointError, match="different config"):
        train(synth_data, RunConfig.from_dict(TINY), partial, resume=True, progress=False)


def test_resume_after_interruption_matches_uninterrupted(synth_data, tmp_path):
    """Run 3 epochs; separately run and stop after epoch 2 (by raising from the progress hook), resume to 3."""
    import miam_explain.training.trainer as trainer_module

    config = RunConfig.from_dict(TINY)
    full = train(synth_data, config, tmp_path / "full", progress=False)

    original = trainer_module.validate
    calls = {"n": 0}

    def interrupt_after_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed during epoch 3's validation, after epoch 2's checkpoint
        return original(*args, **kwargs)

    trainer_module.validate = interrupt_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            train(synth_data, config, tmp_path / "cut", progress=False)
    finally:
        trainer_module.validate = original
    resumed = train(synth_data, config, tmp_path / "cut", resume=True, progress=False)
    assert resumed.epochs_run == 3
    a, meta_a = read_checkpoint(full.run_dir / "last.safetensors")
    b, meta_b = read_checkpoint(resumed.run_dir / "last.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert meta_a["history"][-1]["val"] == meta_b["history"][-1]["val"]
    assert meta_a["masking"] == meta_b["masking"]


def test_checkpoint_round_trip_predictions_identical(trained, synth_data):
    out, _ = trained
    model = load_model(out / "best.safetensors")
    assert not model.training
    ds = open_dataset(synth_data)
    data = load_split(ds, model.schema, "test")
    keeps = {"all": np.ones(model.schema.n_tokens, dtype=bool)}
    first, _ = subset_logits(model, data, keeps)
    again, _ = subset_logits(load_model(out), data, keeps)  # a run folder resolves to best.safetensors
    assert torch.equal(first["all"], again["all"])


def test_evaluate_paper_subsets(trained, synth_data, tmp_path, capsys):
    out, _ = trained
    table = evaluate(out, data=synth_data, split="test", device="cpu")
    model = load_model(out)
    assert list(table["subset"]) == list(paper_subsets(model.schema))
    assert len(table) == 12  # GeoPlant-shaped data gives the paper's 12 subsets
    assert table["auc"].between(0, 1).all()
    row = table.set_index("subset")
    assert row.loc["all", "visible_tokens"] > row.loc["climate", "visible_tokens"] > 0
    # the CLI writes the same table, with --data defaulting to the checkpoint's dataset
    csv = tmp_path / "table.csv"
    assert main(["evaluate", "--model", str(out), "--out", str(csv), "--quiet", "--device", "cpu"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(csv), table, check_dtype=False)


def test_user_subsets_and_empty_subset(trained, synth_data, tmp_path):
    out, _ = trained
    spec = tmp_path / "subsets.toml"
    spec.write_text('[subsets]\nprior = []\nndvi = ["spectral_bands:red", "spectral_bands:nir"]\n')
    table = evaluate(out, data=synth_data, subsets=spec, device="cpu").set_index("subset")
    assert table.loc["prior", "visible_tokens"] == 0
    # the prior is one prediction for every site: its AUC is 0.5 exactly (all ties)
    assert table.loc["prior", "auc"] == pytest.approx(0.5)
    assert table.loc["ndvi", "visible_tokens"] <= 50


def test_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (200, 6))
    labels[:, 2] = 1  # one class only: left out
    scores = np.round(rng.normal(size=(200, 6)), 1)  # many ties
    auc, valid = per_class_auc(torch.tensor(scores), torch.tensor(labels))
    expected = [roc_auc_score(labels[:, k], scores[:, k]) for k in range(6) if k != 2]
    np.testing.assert_allclose(auc[valid].numpy(), expected, atol=1e-12)
    assert macro_auc(torch.tensor(scores), torch.tensor(labels)) == pytest.approx(np.mean(expected), abs=1e-12)


def test_full_weighted_loss_balances_each_species():
    labels = torch.tensor([[1, 0], [0, 0], [0, 1], [0, 1]], dtype=torch.float32)
    w = species_weights(labels)
    torch.testing.assert_close(w, torch.tensor([4.0, 2.0]))
    # at p = 0.5 each species contributes log 2 * (n_pos * w + n_neg * w / (w - 1)) / (N K)
    loss = full_weighted_bce(torch.zeros(4, 2), labels, w)
    expected = np.log(2) * ((1 * 4 + 3 * 4 / 3) + (2 * 2 + 2 * 2 / 1)) / 8
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_bad_input(trained, synth_data, tmp_path, capsys):
    out, _ = trained
    bad = tmp_path / "bad.toml"
    bad.write_text("[training]\nepoch = 3\n")
    with pytest.raises(ConfigError, match="unknown \\[training\\] key"):
        load_config(bad)
    code = main(["train", "--data", str(synth_data), "--strategy", "nope", "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err and "miam" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(OutputExistsError, match="--resume"):
        train(synth_data, RunConfig.from_dict(TINY), out, progress=False)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes((out / "best.safetensors").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(corrupt)


def test_checkpoint_with_mismatched_schema_is_refused(trained, synth_data, tmp_path, capsys):
    out, _ = trained
    ds = open_dataset(synth_data).load()
    smaller = ds.isel(landsat_year=slice(0, 14))
    path = tmp_path / "smaller.nc"
    smaller.to_netcdf(path, engine="h5netcdf")
    code = main(["evaluate", "--model", str(out), "--data", str(path), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit the data" in err and "landsat" in err


def test_data_without_train_split(synth_data, tmp_path):
    ds = open_dataset(synth_data).load()
    ds = ds.assign_coords(split=("site", np.where(ds["split"].values == "train", "val", ds["split"].values).astype(object)))
    path = tmp_path / "notrain.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(DataError, match="split 'train' has no sites"):
        train(path, RunConfig.from_dict(TINY), tmp_path / "run", progress=False)
