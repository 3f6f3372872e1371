"""The paper's Table 1 subsets and the multi-seed strategy comparison (issue 16, items 2 and 3)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from miam_explain.cli import main
from miam_explain.data.schema import TokenSchema
from miam_explain.runtime.subsets import load_subsets, paper_subsets, table1_subsets
from miam_explain.training.compare import (
    MEAN,
    compare_runs,
    masking_history,
    paired_tests,
    run_folder,
    summarize,
    summary_markdown,
)
from miam_explain.training.config import RunConfig
from tiny import TINY

ROOT = Path(__file__).resolve().parents[1]
#: Table 1's columns on GeoPlant-shaped data, in order.
TABLE1 = ["BIO1", "WorldClim", "Clim:2018", "Clim:2000-2018", "Center patch", "RGB", "Tabular", "Landsat",
          "Sentinel-2", "Satellite", "All"]
STRATEGIES, SEEDS = ["miam", "shared_uniform"], [1, 2]


@pytest.fixture(scope="module")
def schema(synth_data) -> TokenSchema:
    return TokenSchema.from_dataset(xr.open_zarr(synth_data))


def test_table1_subsets_on_geoplant_data(schema):
    table = table1_subsets(schema)
    assert list(table) == TABLE1
    keep = load_subsets("table1", schema)
    tokens = {name: set(np.flatnonzero(v)) for name, v in keep.items()}
    climate, landsat, s2 = (set(np.flatnonzero(schema.keep_vector(f"modalities:{m}")))
                            for m in ("climate", "landsat", "sentinel2"))
    assert len(tokens["BIO1"]) == 1 and tokens["BIO1"] < tokens["WorldClim"] < tokens["Tabular"]
    assert len(tokens["WorldClim"]) == 19
    assert tokens["Clim:2018"] < tokens["Clim:2000-2018"] == climate and len(tokens["Clim:2018"]) == 4
    assert len(tokens["Center patch"]) == 4 and tokens["Center patch"] < s2  # every band of the central patch
    assert tokens["RGB"] < s2 and len(tokens["RGB"]) == 3 * 25
    assert tokens["Satellite"] == landsat | s2 and len(tokens["All"]) == schema.n_tokens
    # the earlier "paper" table is unchanged (the stored golden results pin it)
    assert list(paper_subsets(schema))[:3] == ["rgb", "climate_last5", "landsat_last5"]
    assert list(load_subsets("paper", schema)) == list(paper_subsets(schema))


# ------------------------------------------------------------------ statistics
def _long(values: dict[str, list[float]], subset: str = "All") -> pd.DataFrame:
    return pd.DataFrame([{"strategy": s, "seed": k, "subset": subset, "value": v}
                         for s, vs in values.items() for k, v in enumerate(vs)])


def test_summary_and_paired_test_match_hand_computation():
    values = {"miam": [0.80, 0.84, 0.79, 0.83], "shared_uniform": [0.78, 0.80, 0.78, 0.79]}
    long = pd.concat([_long(values), _long({k: [v - 0.1 for v in vs] for k, vs in values.items()}, "Satellite")])
    summary = summarize(long).set_index(["strategy", "subset"])
    assert list(summary.index.get_level_values("subset")[:3]) == ["All", "Satellite", MEAN]
    row = summary.loc[("miam", "All")]
    assert row["mean"] == pytest.approx(np.mean(values["miam"]))
    assert row["se"] == pytest.approx(np.std(values["miam"], ddof=1) / 2) and row["n"] == 4
    assert summary.loc[("miam", MEAN), "mean"] == pytest.approx(np.mean(values["miam"]) - 0.05)
    paired = paired_tests(long).set_index("subset")
    d = np.subtract(values["miam"], values["shared_uniform"])
    assert paired.loc["All", "diff"] == pytest.approx(d.mean())
    assert paired.loc["All", "se"] == pytest.approx(d.std(ddof=1) / 2)
    assert paired.loc["All", "p"] == pytest.approx(stats.ttest_rel(values["miam"], values["shared_uniform"]).pvalue)
    assert paired.loc[MEAN, "diff"] == pytest.approx(d.mean())


def test_paired_test_uses_only_common_seeds_and_needs_two():
    long = _long({"miam": [0.8, 0.9, 0.7], "opm": [0.7]})
    row = paired_tests(long).iloc[0]
    assert row["n"] == 1 and row["diff"] == pytest.approx(0.1) and np.isnan(row["se"]) and np.isnan(row["p"])
    assert "0.800" in summary_markdown(summarize(long)) and "±" in summary_markdown(summarize(long))
    with pytest.raises(ValueError, match="reference strategy 'dirichlet'"):
        paired_tests(long, reference="dirichlet")


# ------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def compared(synth_data, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """Two strategies x two seeds of the tiny model (two epochs each) on the test data."""
    out = tmp_path_factory.mktemp("compare") / "out"
    long = compare_runs(synth_data, RunConfig.from_dict(TINY), out, strategies=STRATEGIES, seeds=SEEDS, progress=False,
                        log=lambda _: None)
    return out, long


def test_compare_runs_every_strategy_on_the_same_seeds(compared):
    out, long = compared
    assert len(long) == len(STRATEGIES) * len(SEEDS) * len(TABLE1)
    assert list(long.drop_duplicates(["strategy", "seed"])[["strategy", "seed"]].itertuples(index=False, name=None)) == [
        (s, k) for s in STRATEGIES for k in SEEDS]
    assert list(long["subset"].iloc[: len(TABLE1)]) == TABLE1 and long["value"].between(0, 1).all()
    assert not long["reused"].any() and (long["train_seconds"] > 0).all()
    for s in STRATEGIES:
        for k in SEEDS:
            config = (run_folder(out, s, k) / "config.toml").read_text()
            assert f"seed = {k}" in config and f'strategy = "{s}"' in config
    # two seeds give two different models; two strategies with one seed give two different models too
    by = long.set_index(["strategy", "seed", "subset"])["value"]
    assert by[("miam", 1, "All")] != by[("miam", 2, "All")]
    assert by[("miam", 1, "All")] != by[("shared_uniform", 1, "All")]


def test_compare_resumes_finished_runs(compared, synth_data):
    out, long = compared
    (run_folder(out, "miam", 2) / "subsets-table1.csv").unlink()  # a killed evaluation: evaluated again, not trained
    started = time.perf_counter()
    again = compare_runs(synth_data, RunConfig.from_dict(TINY), out, strategies=STRATEGIES, seeds=SEEDS,
                         progress=False, log=lambda _: None)
    assert again["reused"].all() and time.perf_counter() - started < 30
    pd.testing.assert_frame_equal(again.drop(columns="reused"), long.drop(columns="reused"))


def test_masking_history_reads_miam_coefficients(compared):
    out, _ = compared
    history = masking_history({k: run_folder(out, "miam", k) for k in SEEDS})
    assert len(history) == len(SEEDS) * 2 * 4  # seeds x epochs x modalities
    first, second = history[history["epoch"] == 1], history[history["epoch"] == 2]
    assert first["rho_d"].isna().all() and second["rho_d"].gt(0).all()
    # rho_s is the score over its geometric mean: the product over modalities is 1 (up to the 0.001 offset)
    for _, rows in history.groupby(["seed", "epoch"]):
        assert np.prod(rows["rho_s"]) == pytest.approx(1.0, abs=1e-6)
    assert masking_history({1: run_folder(out, "shared_uniform", 1)}).empty


def test_compare_script_writes_tables_and_figures(compared, synth_data, tmp_path, capsys):
    out, long = compared
    spec = importlib.util.spec_from_file_location("compare_strategies", ROOT / "training" / "compare_strategies.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    config = tmp_path / "tiny.toml"
    from miam_explain.training.config import to_toml

    config.write_text(to_toml(RunConfig.from_dict(TINY)))
    argv = ["--data", str(synth_data), "--config", str(config), "--out", str(out), "--strategies", ",".join(STRATEGIES),
            "--seed", str(SEEDS[0]), "--seeds", str(len(SEEDS)), "--quiet"]
    assert script.main(argv) == 0
    printed = capsys.readouterr().out
    assert "wall time:" in printed and "0 trained in this call" in printed
    for name in ("runs.csv", "summary.csv", "paired.csv", "table.md", "table.png", "masking.csv", "masking.png"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))  # atomic writes leave nothing behind
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["strategy"]) == {"shared_uniform"} and list(paired["subset"]) == [*TABLE1, MEAN]
    assert "miam (2)" in (out / "table.md").read_text()
    assert script.main([*argv[:-3], "--strategies", "miam,nope", "--quiet"]) == 2
    assert "unknown strategies" in capsys.readouterr().err


def test_evaluate_command_takes_table1(compared, synth_data, capsys):
    out, _ = compared
    assert main(["evaluate", "--model", str(run_folder(out, "miam", 1)), "--data", str(synth_data),
                 "--subsets", "table1", "--device", "cpu", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in TABLE1)


def test_miam_sensitivity_script_sweeps_kappa_and_lambda_against_the_baseline(compared, synth_data, tmp_path, capsys):
    """One new (kappa, lambda) setting trained; the config's own read from the comparison folder; MIAM minus baseline."""
    out, long = compared
    spec = importlib.util.spec_from_file_location("miam_sensitivity", ROOT / "training" / "miam_sensitivity.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.grid([3.0, 10.0], [1.0, 3.0], (10.0, 3.0), "cross") == [(3.0, 3.0), (10.0, 3.0), (10.0, 1.0)]
    assert len(script.grid([3.0, 10.0], [1.0, 3.0], (10.0, 3.0), "full")) == 4
    from miam_explain.training.config import to_toml

    config = tmp_path / "tiny.toml"
    tiny = RunConfig.from_dict(TINY)
    config.write_text(to_toml(tiny))
    default_kappa = tiny.masking.get("kappa", 10.0)
    sens = tmp_path / "sens"
    argv = ["--data", str(synth_data), "--config", str(config), "--baseline", str(out), "--out", str(sens),
            "--kappa", f"{default_kappa:g}", "--lam", "1", "--seed", str(SEEDS[0]), "--seeds", str(len(SEEDS)), "--quiet"]
    assert script.main(argv) == 0
    assert (sens / "k10_l1" / "miam" / f"seed{SEEDS[0]}" / "config.toml").is_file()
    assert "lam = 1" in (sens / "k10_l1" / "miam" / f"seed{SEEDS[0]}" / "config.toml").read_text()
    assert not (sens / "k10_l3").exists()  # the config's own setting comes from the comparison's miam runs
    paired = pd.read_csv(sens / "paired.csv")
    assert set(paired["setting"]) == {"miam k10_l3", "miam k10_l1"}
    # the config's setting: MIAM minus shared_uniform, the opposite sign of the comparison's own paired test
    mine = paired[(paired["setting"] == "miam k10_l3") & (paired["subset"] == "All")].iloc[0]
    reference = paired_tests(long, reference="shared_uniform")
    theirs = reference[(reference["strategy"] == "miam") & (reference["subset"] == "All")].iloc[0]
    assert mine["diff"] == pytest.approx(-theirs["diff"], abs=1e-6) and int(mine["n"]) == len(SEEDS)
    for name in ("runs.csv", "paired.csv", "table.md", "sensitivity.png"):
        assert (sens / name).is_file(), name
    assert "| 10 | 1 |" in (sens / "table.md").read_text()
    assert script.main([*argv[:4], "--baseline", str(out), "--out", str(sens), "--lam", "x", "--quiet"]) == 2
    assert "--lam 'x' must be comma-separated numbers" in capsys.readouterr().err


def test_compare_on_a_species_subset_and_per_species_evaluation(compared, synth_data, tmp_path, capsys):
    """--species scores each subset by the mean AUC of those species: the mean of the per-species evaluation."""
    from miam_explain.runtime.subsets import evaluate

    out, long = compared
    run = run_folder(out, "miam", SEEDS[0])
    per_species = evaluate(run, data=synth_data, split="test", subsets="table1", device="cpu", per_species=True)
    macro = evaluate(run, data=synth_data, split="test", subsets="table1", device="cpu")
    np.testing.assert_allclose(per_species.groupby("subset", sort=False)["auc"].mean().loc[macro["subset"]], macro["auc"],
                               atol=1e-12)  # every species of the tiny data has an AUC on the test split
    chosen = sorted(per_species["species"].unique())[:3]
    spec = importlib.util.spec_from_file_location("compare_strategies", ROOT / "training" / "compare_strategies.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    listing = tmp_path / "truth.json"
    listing.write_text('{"chosen": [%s]}' % ", ".join(chosen))
    assert script.read_species(f"{listing}:chosen") == chosen and script.read_species("a, b") == ["a", "b"]
    config = tmp_path / "tiny.toml"
    from miam_explain.training.config import to_toml

    config.write_text(to_toml(RunConfig.from_dict(TINY)))
    argv = ["--data", str(synth_data), "--config", str(config), "--out", str(out), "--strategies", ",".join(STRATEGIES),
            "--seed", str(SEEDS[0]), "--seeds", str(len(SEEDS)), "--species", f"{listing}:chosen", "--tables",
            str(tmp_path / "tables"), "--quiet"]
    assert script.main(argv) == 0
    runs = pd.read_csv(tmp_path / "tables" / "runs.csv")
    expected = per_species[per_species["species"].isin(chosen)].groupby("subset")["auc"].mean()
    got = runs[(runs["strategy"] == "miam") & (runs["seed"] == SEEDS[0])].set_index("subset")["value"]
    np.testing.assert_allclose(got.loc[expected.index], expected, atol=1e-6)
    assert (runs["metric"] == "auc (species)").all() and (tmp_path / "tables" / "table.md").is_file()
    assert script.main([*argv[:-5], "--species", "nope", "--tables", str(tmp_path / "t2"), "--quiet"]) == 2
    assert "not in the data" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(run), "--data", str(synth_data), "--subsets", "table1", "--per-species",
                 "--device", "cpu", "--quiet"]) == 0
    assert "Satellite" in capsys.readouterr().out
