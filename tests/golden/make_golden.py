"""Write the stored results that ``tests/test_golden.py`` compares the current code against.

It uses the stored tiny test model (``tiny.safetensors``; ``--retrain`` trains it again on the
session's synthetic data, 240 sites, 12 species, seed 3, and stores the new checkpoint), and stores the results of the current code for exact and sampled Shapley
values (prediction and performance games, in-process and through the chunk store), the subset
evaluation and the three reports, with the commit they came from (``provenance.json``). Run it only
when a change of results is meant, and say so in the commit that stores them.

    python tests/golden/make_golden.py [--retrain]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from tiny import CASES, REPORTS, TINY, synth_dataset  # noqa: E402


def read_numbers(path: Path) -> dict[str, np.ndarray]:
    """The numeric variables (netCDF) or columns (CSV) of a report file, as float64."""
    if path.suffix == ".csv":
        import pandas as pd

        table = pd.read_csv(path)
        return {c: table[c].to_numpy(dtype=np.float64) for c in table.columns if table[c].dtype.kind in "biuf"}
    ds = xr.load_dataset(path, engine="h5netcdf")
    return {var: np.asarray(ds[var].values, dtype=np.float64) for var in ds.data_vars if ds[var].dtype.kind in "biuf"}


def main(retrain: bool = False) -> None:
    from miam_explain import shapley
    from miam_explain.reports import run_report
    from miam_explain.runtime.subsets import evaluate
    from miam_explain.training.config import RunConfig
    from miam_explain.training.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = synth_dataset(tmp)
        model = HERE / "tiny.safetensors"
        if retrain or not model.is_file():
            run = tmp / "run"
            train(data, RunConfig.from_dict(TINY), run, progress=False)
            shutil.copy(run / "best.safetensors", model)
        arrays: dict[str, np.ndarray] = {}
        for name, options in CASES.items():
            options = dict(options)
            if options.pop("stored", False):
                options["store"] = tmp / f"{name}.zarr"
            ds = shapley(model, data, **options).load()
            for var in ds.data_vars:
                arrays[f"{name}/{var}"] = np.asarray(ds[var].values, dtype=np.float64)
        table = evaluate(model, data=data, split="all", subsets="paper", device="cpu")
        arrays["evaluate/auc"] = table["auc"].to_numpy(dtype=np.float64)
        for kind, (options, files) in REPORTS.items():
            folder = run_report(kind, model, data, out=tmp / kind, **options)
            for file in files:
                for var, values in read_numbers(folder / file).items():
                    arrays[f"{kind}:{file}/{var}"] = values
            summary = json.loads((folder / "summary.json").read_text())
            if kind == "heatwave":
                arrays["heatwave:flagged_years"] = np.asarray(summary["flagged_years"], dtype=np.float64)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        np.savez_compressed(HERE / "results.npz", **arrays)
        (HERE / "provenance.json").write_text(json.dumps({"commit": commit, "arrays": len(arrays)}, indent=2) + "\n")
        print(f"{len(arrays)} arrays from commit {commit[:7]} -> {HERE / 'results.npz'}")


if __name__ == "__main__":
    main(retrain="--retrain" in sys.argv[1:])
