"""The ndvi, heatwave and modalities reports: contents, the block bootstrap, the CLI, atomic output.

One tiny model (240 synthetic sites, width 16, 2 epochs) serves every test; each report is
written once per module and inspected by several tests. The planted-truth checks on a model
that has learnt the planted effects are in ``test_planted_truth.py`` (slow).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.errors import ConfigError, OutputExistsError, SchemaError
from miam_explain.explain import explain_game
from miam_explain.explain.games import prediction_game
from miam_explain.models.checkpoint import load_model
from miam_explain.reports import (
    ReportContext,
    ReportOptions,
    heatwave_report,
    modalities_report,
    ndvi_report,
    open_context,
    run_report,
)
from miam_explain.reports.bootstrap import block_resamples, percentile_interval, resample_weights
from miam_explain.reports.heatwave import flag_years
from miam_explain.reports.ndvi import find_pair
from miam_explain.reports.writer import write_folder
from miam_explain.runtime.metrics import macro_auc, weighted_macro_auc
from miam_explain.runtime.subsets import evaluate, paper_subsets
FAST = dict(split="all", n_boot=20, device="cpu", progress=False)
#: Heatwave sampling budget: 8 leverage pairs per year over 19 years (2 + 2 x 8 x 19 coalitions) on 240 sites.
HEATWAVE = dict(FAST, budget=(2 + 2 * 8 * 19) * 240, seed=5)


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


@pytest.fixture(scope="module")
def species(synth_data) -> str:
    """A species id of the data (the target of the CLI's ndvi map)."""
    from miam_explain.data.format import text_values

    return str(list(text_values(open_dataset(synth_data)["species"].values))[0])


@pytest.fixture(scope="module")
def ndvi_cli(run, synth_data, species, tmp_path_factory):
    """``miam-explain report ndvi`` on the tiny model, mapping one species: (folder, exit code, stdout)."""
    out = tmp_path_factory.mktemp("ndvi") / "ndvi"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["report", "ndvi", "--model", str(run), "--data", str(synth_data), "--split", "all", "--n-boot", "20",
                     "--target", species, "--device", "cpu", "--seed", "3", "--out", str(out), "--quiet"])
    return out, code, stdout.getvalue()


@pytest.fixture(scope="module")
def heatwave(run, synth_data, tmp_path_factory):
    return heatwave_report(run, synth_data, out=tmp_path_factory.mktemp("heatwave") / "hw", **HEATWAVE)


@pytest.fixture(scope="module")
def modalities(run, synth_data, tmp_path_factory):
    return modalities_report(run, synth_data, out=tmp_path_factory.mktemp("modalities") / "mod", **FAST)


def _summary(folder) -> dict:
    return json.loads((folder / "summary.json").read_text())


def _self_contained(html: str) -> bool:
    """Every src/href is an embedded PNG (no file, no URL), and there is at least one."""
    sources = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)""", html)
    return len(sources) > 0 and all(s.startswith("data:image/png;base64,") for s in sources) and "<link" not in html


def _inside(lo, value, hi) -> bool:
    return bool(np.all(np.asarray(lo) <= np.asarray(value) + 1e-12) and np.all(np.asarray(value) <= np.asarray(hi) + 1e-12))


# ---- the block bootstrap ---------------------------------------------------------------------------------------------


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
    weights = resample_weights(resamples, len(blocks))
    assert weights.shape == (51, len(blocks)) and np.all(weights[0] == 1)
    assert np.array_equal(weights[1:].sum(1), [len(i) for i in resamples])


def test_block_bootstrap_sees_the_spread_between_blocks():
    # 40 blocks of 25 sites; each block shifts all its sites by its own effect (sd 1), sites add noise (sd 0.2).
    # The spread of the mean comes from the blocks: sd ~ 1 / sqrt(40). Resampling single sites would miss it.
    rng = np.random.default_rng(0)
    blocks = np.repeat(np.arange(40), 25)
    values = rng.normal(0, 1, 40)[blocks] + rng.normal(0, 0.2, blocks.size)
    weights = resample_weights(block_resamples(blocks, 2000, np.random.default_rng(1)), blocks.size)
    means = weights[1:] @ values / weights[1:].sum(1)
    expected = values.reshape(40, 25).mean(1).std() / np.sqrt(40)
    assert means.std() == pytest.approx(expected, rel=0.1)
    by_site = np.array([values[np.random.default_rng(s).integers(0, values.size, values.size)].mean() for s in range(300)])
    assert by_site.std() < 0.35 * means.std()
    lo, hi = percentile_interval(means)
    assert lo < values.mean() < hi and hi - lo == pytest.approx(2 * 1.96 * expected, rel=0.15)


def test_weighted_auc_equals_the_auc_of_the_resampled_data():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (80, 7), generator=g).double()  # many ties
    labels = (torch.rand(80, 7, generator=g) > 0.7).double()
    labels[:, 6] = 1  # one class only: left out
    rng = np.random.default_rng(1)
    index = [rng.integers(0, 80, 80) for _ in range(6)]
    weights = torch.as_tensor(resample_weights(index, 80))
    got = weighted_macro_auc(scores, labels, weights).numpy()
    expected = [macro_auc(scores, labels)] + [macro_auc(scores[i], labels[i]) for i in index]
    np.testing.assert_allclose(got, expected, atol=1e-12)


# ---- options and the one pass over the engine ------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"n_boot": 3}, "n_boot must be an integer >= 20"),
    ({"n_boot": 50.0}, "n_boot must be an integer"),
    ({"n_boot": True}, "n_boot must be an integer"),
    ({"seed": -1}, "seed must be a non-negative"),
    ({"seed": "1"}, "seed must be a non-negative"),
    ({"budget": 0}, "budget must be a positive number"),
    ({"budget": 1.5e6}, "budget must be a whole number"),
    ({"device": "gpu"}, "unknown device 'gpu'"),
    ({"split": ""}, "split must be train, val, test or all"),
    ({"target": "all"}, "a report maps one target"),
    ({"target": ["a", "b"]}, "a report maps one target"),
    ({"target": True}, "a report maps one target"),
])
def test_report_options_are_checked_once_with_a_one_line_fix(options, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        ReportOptions(**options)
    assert "\n" not in str(caught.value)


def test_report_options_normalise_and_refuse_unknown_names(run, synth_data, tmp_path):
    options = ReportOptions(n_boot=np.int64(40), seed=np.int64(2), budget=np.int64(10**6), target=np.int64(3), progress=0)
    assert (options.n_boot, options.seed, options.budget, options.progress) == (40, 2, 10**6, False)
    assert type(options.n_boot) is int and type(options.seed) is int and type(options.budget) is int
    with pytest.raises(AttributeError):
        options.n_boot = 20  # frozen
    assert ReportOptions.from_kwargs({"split": "all"}) == ReportOptions(split="all")
    with pytest.raises(ConfigError, match=r"unknown report option\(s\) \['nboot'\]; valid: split, target, n_boot"):
        ReportOptions.from_kwargs({"nboot": 20})
    # a typo in a report's keyword is a ConfigError (not a TypeError), before any work
    for call in (lambda: ndvi_report(run, synth_data, out=tmp_path / "a", nboot=20),
                 lambda: run_report("heatwave", run, synth_data, out=tmp_path / "b", budjet=10)):
        with pytest.raises(ConfigError, match="unknown report option"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_report_cli_defaults_are_the_options_defaults():
    """The command line keeps its own defaults (it imports no report until it runs one); they must not drift."""
    from miam_explain.cli import build_parser
    from miam_explain.commands.report import KINDS
    from miam_explain.reports import REPORTS

    args = build_parser().parse_args(["report", "ndvi", "--model", "m", "--out", "o"])
    defaults = ReportOptions()
    assert (args.split, args.target, args.n_boot, args.seed, args.device, args.budget, args.overwrite, not args.quiet) == (
        defaults.split, defaults.target, defaults.n_boot, defaults.seed, defaults.device, defaults.budget,
        defaults.overwrite, defaults.progress)
    assert tuple(KINDS) == tuple(REPORTS)


@pytest.fixture(scope="module")
def ndvi_context(run, synth_data):
    """The context of an NDVI report on every site, mapping richness."""
    return open_context(run, synth_data, group="spectral_bands", options=ReportOptions(**FAST, seed=4), maps_target=True)


def test_coalitions_are_evaluated_in_one_pass_over_the_engine(ndvi_context, monkeypatch):
    ctx = ndvi_context
    engine, n = ctx.engine, ctx.n_sites
    masks = np.array([[i >> b & 1 for b in range(ctx.game.n_players)] for i in range(2**ctx.game.n_players)], dtype=bool)
    calls, groups = [], []
    real = engine.iter_logits

    def counted(keep, **kwargs):
        calls.append(len(keep))
        for start, logits in real(keep, **kwargs):
            groups.append(len(logits))
            yield start, logits

    monkeypatch.setattr(engine, "iter_logits", counted)
    rows = engine.n_forward_rows
    table = ctx.evaluate(masks)
    assert calls == [len(masks)] and sum(groups) == len(masks)  # one engine pass: metric, resamples and map together
    assert engine.n_forward_rows - rows == len(masks) * n  # each coalition forwarded once per site
    # row 0 of the weighted game (all-ones weights) is the plain metric; the map is the prediction game's target
    np.testing.assert_allclose(table.metric, ctx.game(masks), rtol=0, atol=1e-12)
    np.testing.assert_allclose(table.sites, ctx.target_game(masks)[..., 0], rtol=0, atol=0)
    assert table.boot.shape == (len(masks), 20) and table.sites.shape == (len(masks), n)
    # resample b is the metric of the resampled data (whole blocks, drawn from the report's seed)
    resamples = block_resamples(ctx.blocks, 20, np.random.default_rng(4))
    logits, labels = engine.logits(ctx.game.token_keep(masks))[-1], ctx.game.data.target  # batched as in the pass
    expected = [macro_auc(logits[index], labels[index]) for index in resamples[:5]]
    np.testing.assert_allclose(table.boot[-1, :5], expected, rtol=0, atol=1e-12)
    # groups of any size give the same metric: rows with nothing visible (sites whose data is all missing) are one input
    calls.clear(), groups.clear()
    monkeypatch.setattr(engine, "iter_logits", lambda keep, **kw: counted(keep, max_elements=3 * n * engine.n_outputs))
    again = ctx.evaluate(masks)
    assert calls == [len(masks)] and groups == [3, 3, 3, 3, 3, 1]
    np.testing.assert_allclose(again.metric, table.metric, rtol=0, atol=1e-9)
    np.testing.assert_allclose(again.boot, table.boot, rtol=0, atol=1e-9)
    np.testing.assert_allclose(again.sites, table.sites, rtol=0, atol=1e-5)


def test_exact_reports_refuse_a_budget_below_every_combination(ndvi_context):
    n, p = ndvi_context.n_sites, ndvi_context.game.n_players
    ndvi_context.check_exact(report="NDVI", noun="bands", budget=2**p * n)  # just enough
    with pytest.raises(ConfigError, match=f"the NDVI report evaluates every combination of the bands: .*{2**p * n:,} "
                                          f".*over the budget of {2**p * n - 1:,}; raise --budget or leave it out$"):
        ndvi_context.check_exact(report="NDVI", noun="bands", budget=2**p * n - 1)
    many = SimpleNamespace(game=SimpleNamespace(n_players=21), n_sites=n)  # more bands than exact values allow
    with pytest.raises(ConfigError, match="every combination of the bands: .*21 players.*limit of 20.*; sample them with miam-explain shapley --method permutation instead$"):
        ReportContext.check_exact(many, report="NDVI", noun="bands", budget=None)


# ---- ndvi -----------------------------------------------------------------------------------------------------------


def test_ndvi_report(ndvi_cli, run, synth_data, species):
    folder, code, printed = ndvi_cli
    assert code == 0
    assert "Red and nir together contribute" in printed and str((folder / "report.html").resolve()) in printed
    summary = _summary(folder)
    for key in ("band_ranking", "shapley", "interaction", "combinations"):
        assert key in summary
    bands = list(load_model(run).schema.members("spectral_bands"))  # the players, read from the data
    p = len(bands)
    assert sorted(summary["band_ranking"]) == sorted(bands)
    values = [summary["shapley"][b]["value"] for b in summary["band_ranking"]]
    assert values == sorted(values, reverse=True)
    # efficiency: the band values add up to the gain from no band to all bands
    assert sum(values) == pytest.approx(summary["v_full"] - summary["v_empty"], abs=1e-9)
    assert all(_inside(v["lo"], v["value"], v["hi"]) for v in summary["shapley"].values())
    combos = pd.read_csv(folder / "combinations.csv")
    assert len(combos) == 2**p == len(summary["combinations"])
    assert _inside(combos.lo, combos.metric, combos.hi) and list(combos.metric) == sorted(combos.metric, reverse=True)
    metric = dict(zip(combos.bands, combos.metric))
    assert metric["+".join(bands)] == pytest.approx(summary["v_full"]) and metric["(none)"] == pytest.approx(summary["v_empty"])
    inter = summary["interaction"]
    assert inter["red×nir"]["value"] == pytest.approx(inter["matrix"]["red"]["nir"])
    assert _inside(inter["red×nir"]["lo"], inter["red×nir"]["value"], inter["red×nir"]["hi"])
    joint = summary["shapley"]["red"]["value"] + summary["shapley"]["nir"]["value"]
    assert inter["red+nir joint"]["value"] == pytest.approx(joint)
    synergy = metric["red+nir"] - metric["red"] - metric["nir"] + metric["(none)"]
    assert inter["red+nir alone"]["synergy"]["value"] == pytest.approx(synergy, abs=1e-12)
    with xr.open_dataset(folder / "ndvi.nc", engine="h5netcdf") as ds:
        assert ds.sizes["coalition"] == 2**p and ds.sizes["resample"] == 20 and ds.attrs["seed"] == 3
    html = (folder / "report.html").read_text()
    assert _self_contained(html) and html.count("<img") == 4 and "red and nir together contribute" in html.lower()
    assert len(list((folder / "figures").glob("*.png"))) == 4 and (folder / "bands.csv").is_file()


def test_ndvi_map_equals_the_prediction_game(ndvi_cli, run, synth_data, species):
    """The map comes from the predictions cached with the band combinations; the engine's own game agrees."""
    folder, _, _ = ndvi_cli
    summary = _summary(folder)
    assert summary["map"]["target"] == species and summary["map"]["units"] == "probability"
    game = prediction_game(run, synth_data, group="spectral_bands", split="all", target=[species], device="cpu")
    result = explain_game(game, method="exact")
    bands = list(game.players)
    expected = result.values[bands.index("red"), :, 0] + result.values[bands.index("nir"), :, 0]
    with xr.open_dataset(folder / "red_nir_sites.nc", engine="h5netcdf") as ds:
        np.testing.assert_allclose(ds["red_nir_contribution"].values, expected, atol=1e-5)
        np.testing.assert_array_equal(ds["site_id"].values, np.asarray(game.data.site_id))
        assert ds["red_nir_contribution"].attrs["units"] == "probability"


def test_ndvi_needs_red_and_nir():
    assert find_pair(["blue", "NIR", "Red"]) == (2, 1)  # looked up by name, case aside, wherever they are
    with pytest.raises(SchemaError, match="without nir.*needs a red and a nir band"):
        find_pair(["red", "green", "blue"])
    with pytest.raises(SchemaError, match="without red and nir"):
        find_pair(["b02", "b03"])


# ---- heatwave -------------------------------------------------------------------------------------------------------


def test_heatwave_report(heatwave, synth_data):
    folder = heatwave
    summary = _summary(folder)
    for key in ("flagged_years", "criterion", "per_year", "window_curve", "typical_drop"):
        assert key in summary
    with open_dataset(synth_data) as ds:
        years = sorted(int(y) for y in ds["climate_year"].values)  # the data's years, nothing hard-coded
    assert sorted(int(y) for y in summary["per_year"]) == years
    curve = pd.read_csv(folder / "window_curve.csv")
    assert len(curve) == len(years) == len(summary["window_curve"])
    assert list(curve["start"]) == years[::-1] and (curve["end"] == years[-1]).all()
    assert _inside(curve.lo, curve.metric, curve.hi)
    assert _inside(curve.jump_lo[1:], curve.jump[1:], curve.jump_hi[1:])
    np.testing.assert_allclose(curve.jump[1:], np.diff(curve.metric), atol=1e-12)
    # the flags follow from the saved bootstrap replicates of the leave-one-year-out drops, by the documented rule
    per_year = pd.read_csv(folder / "per_year.csv")
    with xr.open_dataset(folder / "heatwave.nc", engine="h5netcdf") as ds:
        drops_boot, years_nc = ds["drop_boot"].values, ds["year"].values.tolist()
    assert years_nc == years == per_year.year.tolist()
    flagged, lower = flag_years(drops_boot)
    assert [y for y, f in zip(years, flagged) if f] == summary["flagged_years"] == per_year.year[per_year.flagged].tolist()
    np.testing.assert_allclose(lower, per_year.flag_lower, atol=1e-12)
    assert _inside(per_year.drop_lo, per_year["drop"], per_year.drop_hi)
    np.testing.assert_allclose(per_year["drop"], summary["full_series"] - np.asarray(
        [summary["full_series"] - summary["per_year"][str(y)]["drop"] for y in years]), atol=1e-12)
    # the per-year Shapley values: efficient over the whole series, both standard errors kept and combined
    assert (per_year.se_sampling > 0).all() and (per_year.se_bootstrap > 0).all()
    np.testing.assert_allclose(per_year.se, np.hypot(per_year.se_sampling, per_year.se_bootstrap), atol=1e-15)
    assert per_year.shapley.sum() == pytest.approx(summary["full_series"] - summary["no_climate"], abs=1e-9)
    assert summary["full_series"] == pytest.approx(curve.metric.iloc[-1], abs=1e-12)
    assert summary["shapley_samples"] == 20 and summary["shapley_se_reliable"] is True  # 20 jackknife groups
    assert summary["map"]["year"] in years and summary["map"]["units"] == "expected species"
    if summary["flagged_years"]:
        assert summary["map"]["year"] in summary["flagged_years"]
    else:
        assert summary["map"]["year"] == per_year.year[per_year["drop"].idxmax()]
    html = (folder / "report.html").read_text()
    assert _self_contained(html) and html.count("<img") == 4 and "too few to trust" not in html


def test_heatwave_report_is_reproducible_and_overwrites_on_request(heatwave, run, synth_data):
    first = _summary(heatwave)
    with pytest.raises(OutputExistsError):
        heatwave_report(run, synth_data, out=heatwave, **HEATWAVE)
    assert _summary(heatwave) == first  # refused, untouched
    heatwave_report(run, synth_data, out=heatwave, overwrite=True, **HEATWAVE)
    again = _summary(heatwave)
    assert again["per_year"] == first["per_year"] and again["flagged_years"] == first["flagged_years"]
    assert again["window_curve"] == first["window_curve"]


def test_flag_years_finds_a_year_that_adds_what_others_do_not():
    rng = np.random.default_rng(0)
    drops = rng.normal(0.002, 0.001, size=(19, 200))  # hiding any one year costs a little: not a finding
    assert not flag_years(drops)[0].any()
    drops[7] += 0.02  # one year carries much more, in every resample
    flagged, lower = flag_years(drops)
    assert np.flatnonzero(flagged).tolist() == [7] and lower[7] > 0.01
    drops[3] += rng.normal(0.02, 0.03, size=200)  # large on average but not reliably so
    assert np.flatnonzero(flag_years(drops)[0]).tolist() == [7]
    redundant = rng.normal(0.0, 0.001, size=(19, 200))
    redundant[5] += 0.002  # above the median on average, but not in 1 - 0.05/19 of the resamples (2 sd)
    assert not flag_years(redundant)[0].any()


def test_heatwave_budget_too_small_for_standard_errors(run, synth_data, tmp_path):
    with pytest.raises(ConfigError, match="too few for standard errors"):
        heatwave_report(run, synth_data, out=tmp_path / "hw", **dict(HEATWAVE, budget=20 * 240))
    # the smallest leverage design over 19 years: 4 pairs of each of the 9 sizes 1|18 ... 9|10, 2 + 2 x 36 = 74 coalitions
    with pytest.raises(ConfigError, match=r"under the smallest leverage design \(74 coalitions x 240 sites"):
        heatwave_report(run, synth_data, out=tmp_path / "hw", **dict(HEATWAVE, budget=74 * 240 - 1))
    assert not (tmp_path / "hw").exists()


# ---- modalities -----------------------------------------------------------------------------------------------------


def test_modalities_report(modalities, run, synth_data):
    folder = modalities
    summary = _summary(folder)
    for key in ("shapley", "subset_table"):
        assert key in summary
    total = sum(v["value"] for v in summary["shapley"].values())
    assert total == pytest.approx(summary["v_full"] - summary["v_empty"], abs=1e-9)
    assert all(_inside(v["lo"], v["value"], v["hi"]) for v in summary["shapley"].values())
    model = load_model(run)
    assert sorted(summary["shapley"]) == sorted(model.schema.modalities)
    table = pd.DataFrame(summary["subset_table"])
    assert list(table.subset) == list(paper_subsets(model.schema))
    assert _inside(table.lo, table.auc, table.hi)
    # two code paths, one number: the report's cached subsets and the training evaluation
    reference = evaluate(run, data=synth_data, split="all", device="cpu").set_index("subset")
    np.testing.assert_allclose(table.set_index("subset").auc, reference.auc.loc[table.subset], atol=1e-9)
    assert table.set_index("subset").auc["all"] == pytest.approx(summary["v_full"], abs=1e-6)
    assert summary["strategy"] == "miam" and len(summary["history"]) == 2
    history = pd.read_csv(folder / "history.csv")
    assert set(history.columns) >= {"epoch", "modality", "s", "rho_s", "rho_d"}
    assert len(history) == 2 * len(model.schema.modalities)
    html = (folder / "report.html").read_text()
    assert _self_contained(html) and "Imbalance during training" in html and html.count("<img") == 3


def test_modalities_report_without_miam_history(run, synth_data, tmp_path):
    """A model trained with another strategy (here: a loaded model whose metadata says so) gets a note, not a figure."""
    model = load_model(run)
    model.meta = dict(model.meta, config=dict(model.meta["config"], masking={"strategy": "constant"}),
                      history=[dict(h, masking={}) for h in model.meta["history"]])
    folder = modalities_report(model, synth_data, out=tmp_path / "mod", **FAST)
    summary = _summary(folder)
    assert summary["strategy"] == "constant" and summary["history"] == []
    html = (folder / "report.html").read_text()
    assert "constant strategy, which records no MIAM coefficients" in html and html.count("<img") == 2
    assert not (folder / "history.csv").exists()


def test_species_report(run, synth_data, tmp_path):
    """Each species' AUC explained by the modalities; the report's own pass equals the explain path's per-species game."""
    from miam_explain import shapley
    from miam_explain.reports import species_report
    from miam_explain.reports.species import MIN_PRESENCES, leading_players

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["report", "species", "--model", str(run), "--data", str(synth_data), "--split", "all", "--n-boot", "20",
                     "--device", "cpu", "--out", str(tmp_path / "species"), "--quiet"])
    assert code == 0 and "Leading player:" in stdout.getvalue()
    folder = tmp_path / "species"
    summary = _summary(folder)
    assert {"per_species", "leading_player", "led_by", "dependents"} <= set(summary)
    reference = shapley(run, synth_data, group="modalities", value="performance", target="all", split="all",
                        method="exact", device="cpu")
    species_ids = [str(t) for t in reference["target"].values]
    assert sorted(summary["per_species"]) == sorted(species_ids)
    for sid in species_ids:
        record, phi = summary["per_species"][sid], reference["shapley"].sel(target=sid).to_series()
        assert record["shapley"] == pytest.approx(phi.to_dict(), abs=1e-9)  # two code paths, one number
        assert record["leading_player"] == summary["leading_player"][sid] == phi.idxmax()
        assert record["auc_all"] == pytest.approx(float(reference["v_full"].sel(target=sid)), abs=1e-9)
        assert record["enough_presences"] == (record["presences"] >= MIN_PRESENCES)
        assert record["resolved"] == (record["margin_lo"] > 0)
    assert sum(v["species"] for v in summary["led_by"].values()) == sum(r["enough_presences"] for r in summary["per_species"].values())
    ds = xr.open_dataset(folder / "species.nc", engine="h5netcdf")
    assert ds["shapley"].dims == ("player", "target")
    assert bool((ds["shapley_lo"] <= ds["shapley_hi"]).all()) and bool(np.isfinite(ds["shapley_lo"]).all())
    table = pd.read_csv(folder / "species.csv")
    assert {"species", "presences", "leading_player", "runner_up", "margin", "margin_lo", "resolved"} <= set(table.columns)
    html = (folder / "report.html").read_text()
    assert _self_contained(html) and html.count("<img") == 2
    # the leader rule on its own: a clear leader is resolved, a tie is not
    phi = np.array([[0.3, 0.10], [0.1, 0.11]])
    rng = np.random.default_rng(0)
    boot = phi[:, None, :] + rng.normal(scale=0.02, size=(2, 200, 2))
    lead, second, margin, lo = leading_players(phi, boot)
    assert lead.tolist() == [0, 1] and second.tolist() == [1, 0]
    assert lo[0] > 0 and lo[1] < 0


def test_species_report_refuses_a_budget_below_every_combination(run, synth_data, tmp_path):
    from miam_explain.reports import species_report

    with pytest.raises(ConfigError, match="every combination"):
        species_report(run, synth_data, out=tmp_path / "s", budget=5, **FAST)
    assert not (tmp_path / "s").exists()


# ---- output folder and command line ---------------------------------------------------------------------------------


def test_output_folder_is_atomic(tmp_path):
    out = tmp_path / "report"

    def broken(folder):
        (folder / "report.html").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_folder(out, overwrite=False, write=broken)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its hidden sibling
    write_folder(out, overwrite=False, write=lambda folder: (folder / "report.html").write_text("v1"))
    with pytest.raises(OutputExistsError):
        write_folder(out, overwrite=False, write=lambda folder: (folder / "report.html").write_text("v2"))
    with pytest.raises(OSError):
        write_folder(out, overwrite=True, write=broken)
    assert (out / "report.html").read_text() == "v1"  # a failed overwrite keeps the old report
    write_folder(out, overwrite=True, write=lambda folder: (folder / "report.html").write_text("v2"))
    assert (out / "report.html").read_text() == "v2" and [p.name for p in tmp_path.iterdir()] == ["report"]


def test_reports_refuse_bad_options_before_working(run, synth_data, tmp_path):
    existing = tmp_path / "exists"
    existing.mkdir()
    with pytest.raises(OutputExistsError):
        ndvi_report(run, synth_data, out=existing, **FAST)
    with pytest.raises(ConfigError, match="unknown report"):
        run_report("ndvy", run, synth_data, out=tmp_path / "x")
    with pytest.raises(ConfigError, match="n_boot"):
        ndvi_report(run, synth_data, out=tmp_path / "y", **dict(FAST, n_boot=3))
    with pytest.raises(ConfigError, match="unknown target"):
        ndvi_report(run, synth_data, out=tmp_path / "z", **dict(FAST, target="not-a-species"))
    with pytest.raises(ConfigError, match="over the budget"):
        ndvi_report(run, synth_data, out=tmp_path / "w", **dict(FAST, budget=100))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]


def test_report_cli_errors_are_one_line(run, synth_data, tmp_path, capsys):
    out = tmp_path / "mod"
    out.mkdir()
    calls = {
        "already exists": ["report", "modalities", "--model", str(run), "--data", str(synth_data), "--out", str(out)],
        "nothing": ["report", "ndvi", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "z")],
        "invalid choice": ["report", "birds", "--model", str(run), "--out", str(tmp_path / "w")],
        "n_boot": ["report", "ndvi", "--model", str(run), "--n-boot", "2", "--out", str(tmp_path / "v")],
    }
    for expected, argv in calls.items():
        code = main([*argv, "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, (expected, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mod"]
