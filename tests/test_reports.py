"""The ndvi, heatwave and modalities reports: contents, the block bootstrap, the CLI, atomic output."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from miam_explain.cli import main
from miam_explain.errors import ConfigError, OutputExistsError
from miam_explain.reports import heatwave_report, modalities_report, ndvi_report, run_report
from miam_explain.reports.common import block_resamples
from miam_explain.training.config import RunConfig
from miam_explain.training.metrics import macro_auc, weighted_macro_auc
from miam_explain.training.trainer import train

TINY = {
    "model": {"width": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0},
    "masking": {"strategy": "miam"},
    "training": {"epochs": 2, "batch_size": 64, "lr": 3e-3, "seed": 1, "collapse": True, "device": "cpu"},
}
FAST = dict(split="all", n_boot=20, device="cpu", progress=False)


@pytest.fixture(scope="module")
def run(synth_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "run"
    train(synth_data, RunConfig.from_dict(TINY), out, progress=False)
    return out


def _self_contained(html: str) -> bool:
    sources = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)""", html)
    return all(s.startswith("data:image/png;base64,") for s in sources) and len(sources) > 0


def test_block_bootstrap_draws_whole_blocks():
    blocks = np.repeat([7, 3, 9, 1, 5], [4, 1, 6, 2, 3])
    resamples = block_resamples(blocks, 50, np.random.default_rng(0))
    for index in resamples:
        counts = np.bincount(index, minlength=len(blocks))
        for b in np.unique(blocks):
            assert len(set(counts[blocks == b])) == 1  # a block comes in whole, or not at all
        assert sum(counts[blocks == b][0] for b in np.unique(blocks)) == 5  # as many draws as blocks
    assert len({tuple(sorted(i)) for i in resamples}) > 10
    again = block_resamples(blocks, 50, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(resamples, again))


def test_weighted_auc_equals_the_auc_of_the_resampled_data():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (80, 7), generator=g).double()  # many ties
    labels = (torch.rand(80, 7, generator=g) > 0.7).double()
    labels[:, 6] = 1  # one class only: left out
    rng = np.random.default_rng(1)
    index = [rng.integers(0, 80, 80) for _ in range(6)]
    weights = torch.stack([torch.ones(80)] + [torch.as_tensor(np.bincount(i, minlength=80)).double() for i in index])
    got = weighted_macro_auc(scores, labels, weights).numpy()
    expected = [macro_auc(scores, labels)] + [macro_auc(scores[i], labels[i]) for i in index]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_ndvi_report(run, synth_data, tmp_path):
    folder = ndvi_report(run, synth_data, out=tmp_path / "ndvi", **FAST)
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("band_ranking", "shapley", "interaction", "combinations"):
        assert key in summary
    bands = summary["band_ranking"]
    assert sorted(bands) == sorted(["red", "green", "blue", "nir"])
    values = [summary["shapley"][b]["value"] for b in bands]
    assert values == sorted(values, reverse=True)
    # efficiency: the band values add up to the gain from no band to all bands
    assert sum(values) == pytest.approx(summary["v_full"] - summary["v_empty"], abs=1e-9)
    assert all(summary["shapley"][b]["lo"] <= summary["shapley"][b]["hi"] for b in bands)
    combos = pd.read_csv(folder / "combinations.csv")
    assert len(combos) == 16 and len(summary["combinations"]) == 16
    full = combos.loc[combos.bands == "red+green+blue+nir", "metric"].item()
    assert full == pytest.approx(summary["v_full"])
    pair = summary["interaction"]["red×nir"]["value"]
    assert pair == pytest.approx(summary["interaction"]["matrix"]["red"]["nir"])
    html = (folder / "report.html").read_text()
    assert _self_contained(html) and "red and nir together contribute" in html.lower()
    assert len(list((folder / "figures").glob("*.png"))) == 4
    for name in ("ndvi.nc", "red_nir_sites.nc", "bands.csv"):
        assert (folder / name).is_file()


def test_heatwave_report(run, synth_data, tmp_path):
    kwargs = dict(FAST, budget=100 * 240, seed=5)
    folder = heatwave_report(run, synth_data, out=tmp_path / "hw", **kwargs)
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("flagged_years", "per_year", "window_curve"):
        assert key in summary
    years = sorted(int(y) for y in summary["per_year"])
    assert years == list(range(2000, 2019))
    curve = pd.read_csv(folder / "window_curve.csv")
    assert len(curve) == len(years) and list(curve["start"]) == years[::-1]
    assert (curve["lo"] <= curve["hi"]).all()
    assert set(summary["flagged_years"]) <= set(years[:-1])  # the last year cannot be flagged
    assert list(curve.loc[curve.flagged, "start"]) == sorted(summary["flagged_years"], reverse=True)
    assert all(v["se"] > 0 for v in summary["per_year"].values())
    assert _self_contained((folder / "report.html").read_text())
    # the same seed gives the same report
    again = json.loads((heatwave_report(run, synth_data, out=tmp_path / "hw2", **kwargs) / "summary.json").read_text())
    assert again["per_year"] == summary["per_year"] and again["flagged_years"] == summary["flagged_years"]


def test_modalities_report(run, synth_data, tmp_path):
    folder = modalities_report(run, synth_data, out=tmp_path / "mod", **FAST)
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("shapley", "subset_table"):
        assert key in summary
    total = sum(v["value"] for v in summary["shapley"].values())
    assert total == pytest.approx(summary["v_full"] - summary["v_empty"], abs=1e-9)
    assert len(summary["subset_table"]) == 12
    all_row = [r for r in summary["subset_table"] if r["subset"] == "all"][0]
    assert all_row["auc"] == pytest.approx(summary["v_full"], abs=1e-6)  # two code paths, one number
    assert summary["strategy"] == "miam" and len(summary["history"]) == 2
    history = pd.read_csv(folder / "history.csv")
    assert set(history.columns) >= {"epoch", "modality", "s", "rho_s", "rho_d"}
    html = (folder / "report.html").read_text()
    assert _self_contained(html) and "Imbalance during training" in html


def test_output_is_atomic_and_never_overwritten(run, synth_data, tmp_path, monkeypatch):
    out = tmp_path / "ndvi"
    out.mkdir()
    with pytest.raises(OutputExistsError):
        ndvi_report(run, synth_data, out=out, **FAST)
    import miam_explain.reports.ndvi as ndvi

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ndvi, "write_html", broken)
    with pytest.raises(OSError):
        ndvi_report(run, synth_data, out=tmp_path / "partial", **FAST)
    assert not (tmp_path / "partial").exists() and not list(tmp_path.glob(".partial*"))
    with pytest.raises(ConfigError, match="unknown report"):
        run_report("ndvy", run, synth_data, out=tmp_path / "x")
    with pytest.raises(ConfigError, match="n_boot"):
        ndvi_report(run, synth_data, out=tmp_path / "y", split="all", n_boot=3, device="cpu")


def test_report_cli(run, synth_data, tmp_path, capsys):
    out = tmp_path / "mod"
    code = main(["report", "modalities", "--model", str(run), "--data", str(synth_data), "--split", "all", "--n-boot", "20",
                 "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Modality ranking" in printed and str((out / "report.html").resolve()) in printed
    code = main(["report", "modalities", "--model", str(run), "--data", str(synth_data), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    code = main(["report", "modalities", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "z"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "z").exists()
    code = main(["report", "birds", "--model", str(run), "--out", str(tmp_path / "w")])
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_heatwave_budget_too_small_for_standard_errors(run, synth_data, tmp_path):
    with pytest.raises(ConfigError, match="too few for standard errors"):
        heatwave_report(run, synth_data, out=tmp_path / "hw", budget=20 * 240, **FAST)
    assert not (tmp_path / "hw").exists()
