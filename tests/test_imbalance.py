"""The imbalance regime of the synthetic generator: a clean tabular proxy of the Sentinel-2 NDVI field (issue 16).

At ``imbalance = R`` one more tabular column correlates at R with the NDVI driver; at 0 (the default)
every file is byte-identical to what the generator wrote before the setting existed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miam_explain.cli import main
from miam_explain.data.glc.reader import index_files, read_tabular
from miam_explain.data.synth import synthesize
from miam_explain.data.synth.params import IMBALANCE_COLUMN, IMBALANCE_FILE
from miam_explain.errors import ConfigError

#: Small worlds: enough sites for a correlation to within 0.01 (it is exact before rounding and NaN cells).
ARGS = {"n_sites": 120, "n_species": 6, "progress": False}


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _proxy_and_ndvi(raw: Path) -> tuple[np.ndarray, np.ndarray]:
    proxy = pd.read_csv(raw / IMBALANCE_FILE).set_index("surveyId")[IMBALANCE_COLUMN]
    sites = pd.read_csv(raw / "truth_sites.csv").set_index("surveyId")
    return proxy.reindex(sites.index).to_numpy(), sites["ndvi"].to_numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proxy_column_correlates_with_the_planted_ndvi_at_the_setting(tmp_path, seed):
    raw = synthesize(tmp_path / "raw", seed=seed, imbalance=0.9, **ARGS)
    proxy, ndvi = _proxy_and_ndvi(raw)
    ok = np.isfinite(proxy)
    r = float(np.corrcoef(proxy[ok], ndvi[ok])[0, 1])
    assert r == pytest.approx(0.9, abs=0.01)
    assert ok.sum() >= 0.95 * len(proxy)  # at most a few NaN cells (0.5 %), like every environmental CSV
    truth = json.loads((raw / "truth.json").read_text())
    record = truth["imbalance"]
    assert (record["rho"], record["column"], record["file"], record["modality"]) == (
        0.9, IMBALANCE_COLUMN, IMBALANCE_FILE, "tabular")
    assert record["correlation"] == pytest.approx(r, abs=1e-4)
    assert record["species"] == truth["ndvi_species"] and record["species"]
    assert truth["settings"]["imbalance"] == 0.9 and truth["effect_modalities"]["ndvi"] == ["sentinel2", "tabular"]
    # the reader takes the proxy as one more tabular variable
    table, groups = read_tabular(index_files(raw).tabular, pd.read_csv(raw / "truth_sites.csv")["surveyId"].to_numpy())
    assert IMBALANCE_COLUMN in table.columns and IMBALANCE_COLUMN in groups["other"]


def test_imbalance_zero_is_byte_identical_and_on_adds_only_the_proxy(tmp_path):
    default = _files(synthesize(tmp_path / "default", seed=4, **ARGS))
    zero = _files(synthesize(tmp_path / "zero", seed=4, imbalance=0.0, **ARGS))
    on = _files(synthesize(tmp_path / "on", seed=4, imbalance=0.9, **ARGS))
    assert zero == default
    # same random streams: inputs and labels do not move; only the proxy CSV and truth.json are new
    assert set(on) - set(default) == {IMBALANCE_FILE}
    assert [k for k in default if on[k] != default[k]] == ["truth.json"]
    assert "imbalance" not in json.loads((tmp_path / "default" / "truth.json").read_text())


def test_proxy_makes_the_ndvi_visible_through_tabular(tmp_path):
    """The recorded visibility (adjusted R^2 of a linear readout) of the NDVI through tabular rises to about R^2."""
    off = json.loads((synthesize(tmp_path / "off", seed=5, **ARGS) / "truth.json").read_text())
    on = json.loads((synthesize(tmp_path / "on", seed=5, imbalance=0.9, **ARGS) / "truth.json").read_text())
    assert on["visibility"]["ndvi"]["tabular"] == pytest.approx(0.81, abs=0.06)
    assert off["visibility"]["ndvi"]["tabular"] < 0.3
    assert on["visibility"]["ndvi"]["sentinel2"] == off["visibility"]["ndvi"]["sentinel2"]
    assert on["modality_signal"]["tabular"] > off["modality_signal"]["tabular"]


@pytest.mark.parametrize("value", [-0.1, 1.0, True, "0.9", float("nan")])
def test_bad_imbalance_raises_config_error(tmp_path, value):
    with pytest.raises(ConfigError, match="imbalance") as info:
        synthesize(tmp_path / "out", imbalance=value, **ARGS)
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()


def test_data_synth_command_takes_imbalance(tmp_path, capsys):
    out = tmp_path / "raw"
    assert main(["data", "synth", "--out", str(out), "--sites", "30", "--species", "6", "--quiet",
                 "--imbalance", "0.5"]) == 0
    assert json.loads((out / "truth.json").read_text())["imbalance"]["rho"] == 0.5
    capsys.readouterr()
    assert main(["data", "synth", "--out", str(tmp_path / "bad"), "--sites", "30", "--imbalance", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--imbalance" in err
