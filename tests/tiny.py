"""The one tiny test setting: the synthetic data, the TINY training config, and the stored-result cases.

``conftest.py`` builds its session fixtures from these, and ``golden/make_golden.py`` wrote the
stored results of ``test_golden.py`` with them, so the two always describe the same runs.
"""

from __future__ import annotations

from pathlib import Path

#: The synthetic GeoPlant data every test reads (GLC25 layout, planted effects).
SYNTH = {"n_sites": 240, "n_species": 12, "seed": 3}
#: Sites per chunk when preparing it.
PREPARE_CHUNK = 100

#: The one tiny training config (width 16, one block, two epochs of MIAM on the CPU).
TINY = {
    "model": {"width": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0},
    "masking": {"strategy": "miam"},
    "training": {"epochs": 2, "batch_size": 64, "lr": 3e-3, "seed": 1, "collapse": True, "device": "cpu"},
}

#: Test-split sites of the synthetic data (the budgets below are per-site counts times this).
N_TEST = 36
N_ALL = SYNTH["n_sites"]

#: Shapley runs whose results are stored (``shapley(model, data, **case)``; ``stored`` runs go through
#: the resumable chunk store, in this process).
CASES: dict[str, dict] = {
    "pred_exact": dict(group="spectral_bands", method="exact", target="all", interactions=True, device="cpu"),
    "pred_perm": dict(group="climate_years", method="permutation", budget=N_TEST * (2 + 3 * 36), seed=4,
                      target="richness", device="cpu"),
    "pred_kernel": dict(group="modalities", method="kernel", budget=N_TEST * 42, seed=2, context="all", target="all",
                        output="logit", device="cpu"),
    "perf_exact": dict(group="modalities", value="performance", method="exact", interactions=True, split="all",
                       device="cpu"),
    "perf_perm": dict(group="climate_years", value="performance", method="permutation", budget=N_ALL * (2 + 4 * 36),
                      seed=5, split="all", device="cpu"),
    "perf_kernel": dict(group="variable_groups", value="performance", method="kernel", budget=N_ALL * 60, seed=6,
                        metric="neg_loss", split="all", device="cpu"),
    "pred_exact_stored": dict(group="spectral_bands", method="exact", target="all", interactions=True, device="cpu",
                              stored=True, chunk_size=10),
    "pred_perm_stored": dict(group="climate_years", method="permutation", budget=N_TEST * (2 + 3 * 36), seed=4,
                             target="richness", device="cpu", stored=True, chunk_size=16),
    "perf_perm_stored": dict(group="climate_years", value="performance", method="permutation",
                             budget=N_ALL * (2 + 4 * 36), seed=5, split="all", device="cpu", stored=True, chunk_size=8),
    "perf_exact_stored": dict(group="modalities", value="performance", method="exact", interactions=True, split="all",
                              device="cpu", stored=True, chunk_size=5),
}

_FAST = dict(split="all", n_boot=20, device="cpu", progress=False)
#: Reports whose numbers are stored: ``{kind: (options, netCDF files)}``.
REPORTS: dict[str, tuple[dict, tuple[str, ...]]] = {
    "ndvi": (dict(_FAST, seed=3), ("ndvi.nc", "red_nir_sites.nc")),
    "heatwave": (dict(_FAST, budget=(2 + 2 * 8 * 19) * N_ALL, seed=5), ("heatwave.nc", "year_sites.nc")),
    "modalities": (dict(_FAST, seed=0), ("modalities.nc", "subsets.csv")),
    "species": (dict(_FAST, seed=0), ("species.nc", "species.csv")),
}


def synth_dataset(folder: Path) -> Path:
    """Write the synthetic raw folder and its consolidated dataset under ``folder``; return the dataset."""
    from miam_explain.data.glc import prepare_geoplant
    from miam_explain.data.synth import synthesize

    raw = synthesize(folder / "raw", **SYNTH, progress=False)
    out = folder / "data.zarr"
    prepare_geoplant(raw, out, progress=False, chunk_size=PREPARE_CHUNK)
    return out
