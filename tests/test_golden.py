"""The code gives the stored results: a regression anchor for every numeric path of the explain engine and reports.

``golden/`` holds a tiny checkpoint trained on the session's synthetic data and the results that the
code of ``golden/provenance.json``'s commit computed with it (``golden/make_golden.py``): exact and
sampled Shapley values of the prediction and performance games, in-process and through the chunk
store, the subset evaluation and the numbers of the three reports. The first stored results came
from the code before the one explain path (commit 4198bc6) and the restructuring reproduced them
bitwise; they were recomputed when the synthetic generator changed (v3) and whenever a change of
results is meant, which the commit that recomputes them must say. Sampled results at a fixed seed
must match too: the same coalitions are drawn and evaluated. The tolerance, 1e-6 absolute, covers
float32 forward passes on other CPUs; every value compared is a probability, a logit or an AUC, of
order 0.01 to 10.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiny import CASES, REPORTS

GOLDEN = Path(__file__).resolve().parent / "golden"
ATOL = 1e-6


@pytest.fixture(scope="module")
def stored() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "results.npz") as npz:
        return {name: npz[name] for name in npz.files}


@pytest.fixture(scope="module")
def model() -> Path:
    return GOLDEN / "tiny.safetensors"


def _compare(stored: dict[str, np.ndarray], prefix: str, actual: dict[str, np.ndarray]) -> None:
    expected = {k[len(prefix) + 1 :]: v for k, v in stored.items() if k.startswith(prefix + "/")}
    assert expected, f"nothing stored for {prefix}"
    assert set(actual) >= set(expected), f"{prefix}: missing {sorted(set(expected) - set(actual))}"
    for name, values in expected.items():
        np.testing.assert_allclose(actual[name], values, rtol=0, atol=ATOL, err_msg=f"{prefix}/{name}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_shapley_results_equal_the_stored_ones(case, stored, model, synth_data, tmp_path):
    from miam_explain import shapley

    options = dict(CASES[case])
    if options.pop("stored", False):
        options["store"] = tmp_path / f"{case}.zarr"
    ds = shapley(model, synth_data, **options).load()
    _compare(stored, case, {var: np.asarray(ds[var].values, dtype=np.float64) for var in ds.data_vars})


def test_subset_evaluation_equals_the_stored_one(stored, model, synth_data):
    from miam_explain.runtime.subsets import evaluate

    table = evaluate(model, data=synth_data, split="all", subsets="paper", device="cpu")
    _compare(stored, "evaluate", {"auc": table["auc"].to_numpy(dtype=np.float64)})


@pytest.mark.parametrize("kind", sorted(REPORTS))
def test_report_numbers_equal_the_stored_ones(kind, stored, model, synth_data, tmp_path):
    from golden.make_golden import read_numbers
    from miam_explain.reports import run_report

    options, files = REPORTS[kind]
    folder = run_report(kind, model, synth_data, out=tmp_path / kind, **options)
    for file in files:
        _compare(stored, f"{kind}:{file}", read_numbers(folder / file))
    if kind == "heatwave":
        flagged = json.loads((folder / "summary.json").read_text())["flagged_years"]
        np.testing.assert_array_equal(np.asarray(flagged, dtype=np.float64), stored["heatwave:flagged_years"])
