"""Custom groupings everywhere: range selectors, ``groupings=`` in shapley / evaluate / reports, their errors.

The heat_windows example of docs/schema.md (four climate windows) is the running case: its exact
Shapley values equal those of the same game built by hand (the windows' years listed one by one,
and brute force over the 16 coalitions through the subset evaluation), the result records the
grouping's definition, and every bad grouping is a one-line error naming the grouping, the member
and the fix.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.data.schema import TokenSchema, read_groupings
from miam_explain.errors import ConfigError, SchemaError
from miam_explain.explain import ShapleyRequest, plan, shapley
from miam_explain.explain.result import open_result
from miam_explain.models.checkpoint import load_model
from miam_explain.reports import ReportOptions, modalities_report
from miam_explain.runtime import load_split
from miam_explain.runtime.subsets import evaluate, evaluate_subsets

HEAT_TOML = """
[groupings.heat_windows]
"2000-2004" = ["climate_years:2000..2004"]
"2005-2009" = ["climate_years:2005..2009"]
"2010-2014" = ["climate_years:2010..2014"]
"2015-2018" = ["climate_years:2015..2018"]
"""
#: The same windows, year by year.
WINDOWS = {"2000-2004": range(2000, 2005), "2005-2009": range(2005, 2010), "2010-2014": range(2010, 2015),
           "2015-2018": range(2015, 2019)}
BY_HAND = {"by_hand": {name: [f"climate_years:{y}" for y in years] for name, years in WINDOWS.items()}}
FAST = dict(value="performance", method="exact", split="all", device="cpu")


@pytest.fixture(scope="module")
def heat_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("groupings") / "heat.toml"
    path.write_text(HEAT_TOML)
    return path


@pytest.fixture(scope="module")
def schema(synth_data) -> TokenSchema:
    return TokenSchema.from_dataset(open_dataset(synth_data))


def one_line(capsys) -> str:
    """The CLI's stderr, asserting it is exactly one line (no traceback)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ----------------------------------------------------------------------------------------------------------------------
# range selectors


def test_year_ranges_select_the_years_from_start_to_end(schema):
    by_year = schema.select([f"climate_years:{y}" for y in range(2000, 2005)])
    np.testing.assert_array_equal(schema.select("climate_years:2000..2004"), by_year)
    np.testing.assert_array_equal(schema.select(" climate_years : 2000 .. 2004 "), by_year)
    np.testing.assert_array_equal(schema.select("years:2003..2003"), schema.select("years:2003"))
    assert schema.ordering("climate_years") == schema.ordering("years") == "value"
    assert schema.ordering("modalities") is None and schema.ordering("tokens") is None


def test_band_and_patch_ranges_follow_data_order_and_the_grid(schema):
    bands = schema.members("spectral_bands")
    assert schema.ordering("spectral_bands") == "position" and schema.ordering("patches") == "grid"
    np.testing.assert_array_equal(schema.select(f"spectral_bands:{bands[1]}..{bands[3]}"),
                                  schema.select([f"spectral_bands:{b}" for b in bands[1:4]]))
    square = [f"patches:r{r}c{c}" for r in range(1, 4) for c in range(1, 4)]
    np.testing.assert_array_equal(schema.select("patches:r1c1..r3c3"), schema.select(square))
    np.testing.assert_array_equal(schema.select("patches:r1c1..center"), schema.select(square[:2] + square[3:5]))
    for name in schema.grouping_names:
        if name.endswith("_bands") and name != "spectral_bands":
            members = schema.members(name)
            assert schema.ordering(name) == "position"
            np.testing.assert_array_equal(schema.select(f"{name}:{members[0]}..{members[1]}"),
                                          schema.select([f"{name}:{m}" for m in members[:2]]))


def test_the_heat_windows_are_four_disjoint_players_covering_the_climate(schema, heat_file):
    players = schema.with_groupings(heat_file).players("heat_windows")
    assert players.names == tuple(WINDOWS) and players.n_players == 4
    covered = players.token_matrix()
    assert covered.sum(axis=0).max() == 1
    np.testing.assert_array_equal(np.flatnonzero(covered.any(axis=0)), schema.select("modalities:climate"))
    assert json.loads(players.definition) == {"heat_windows": {w: [f"climate_years:{y[0]}..{y[-1]}"]
                                                               for w, y in WINDOWS.items()}}
    assert schema.players("climate_years").definition == ""  # a built-in grouping: the data defines it


def test_groupings_come_as_a_path_toml_text_or_a_mapping(heat_file):
    as_path = read_groupings(heat_file)
    assert read_groupings(str(heat_file)) == read_groupings(HEAT_TOML) == as_path
    assert read_groupings({"heat_windows": {w: f"climate_years:{y[0]}..{y[-1]}" for w, y in WINDOWS.items()}}) == as_path
    request = ShapleyRequest(group="heat_windows", groupings=HEAT_TOML)
    assert request.groupings == as_path and ShapleyRequest(group="x").groupings is None


# ----------------------------------------------------------------------------------------------------------------------
# errors: one line, naming the grouping, the member and the fix


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ({"a": ["climate_years:2000..2005"], "b": ["climate_years:2005..2009"]},
         r"grouping 'g' cannot be the players of a game: member 'b' shares 4 token\(s\) with 'a' .*give each token to one member"),
        ({"a": ["spectral_bands:nri"]}, r"user grouping 'g', member 'a': unknown member 'nri' .*did you mean 'nir'"),
        ({"a": []}, r"user grouping 'g', member 'a' selects no tokens; give it at least one selector"),
        ({"a": ["climate_years:2004..2000"]},
         r"user grouping 'g', member 'a': range 'climate_years:2004..2000' ends before it starts .*'climate_years:2000..2004'"),
        ({"a": ["climate_years:1990..2004"]},
         r"user grouping 'g', member 'a': unknown start '1990' of range .*must be members of 'climate_years': 2000, 2001"),
        ({"a": ["modalities:climate..tabular"]},
         r"user grouping 'g', member 'a': grouping 'modalities' is not ordered, so 'modalities:climate..tabular' is not a range"),
        ({"a": ["climate_years:2000.."]}, r"malformed range 'climate_years:2000..'; write GROUPING:START..END"),
        ({"a": ["patches:r3c3..r1c1"]}, r"ends before it starts .*write the top-left patch first, e.g. 'patches:r1c1..r3c3'"),
    ],
)
def test_a_bad_grouping_is_refused_by_the_plan_with_one_line(members, match, tiny_run, synth_data):
    with pytest.raises(SchemaError, match=match) as caught:
        plan(ShapleyRequest(group="g", groupings={"g": members}, **FAST), tiny_run, synth_data)
    assert "\n" not in str(caught.value)


def test_an_unknown_group_lists_every_grouping_the_custom_ones_too(tiny_run, synth_data, heat_file):
    with pytest.raises(SchemaError, match=r"unknown grouping 'heat_window'; did you mean 'heat_windows'\? "
                                          r"valid groupings: modalities, .*, heat_windows$"):
        plan(ShapleyRequest(group="heat_window", groupings=heat_file, **FAST), tiny_run, synth_data)


def test_a_missing_or_malformed_file_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"groupings file '.*missing.toml' does not exist; pass a TOML file"):
        ShapleyRequest(group="g", groupings=tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('[groupings.g\na = ["years:2003"]\n')
    with pytest.raises(ConfigError, match=r"groupings file broken.toml is not valid TOML \(.*line 1"):
        ShapleyRequest(group="g", groupings=broken)
    with pytest.raises(ConfigError, match=r"groupings text is not valid TOML"):
        ShapleyRequest(group="g", groupings="[groupings.g]\na = [")
    with pytest.raises(SchemaError, match=r"groupings text has no \[groupings.NAME\] tables"):
        ShapleyRequest(group="g", groupings="[subsets]\na = 1")
    with pytest.raises(ConfigError, match="does not exist"):
        ReportOptions(groupings=tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("toml", "group", "message"),
    [
        ('[groupings.g]\na = ["climate_years:2000..2005"]\nb = ["climate_years:2005..2009"]\n', "g",
         "member 'b' shares 4 token(s) with 'a'"),
        ('[groupings.g]\na = ["climate_years:2009..2005"]\n', "g", "ends before it starts"),
        (HEAT_TOML, "heat_window", "did you mean 'heat_windows'?"),
        ("[groupings.g\n", "g", "groupings file bad.toml is not valid TOML"),
        (None, "g", "does not exist"),
    ],
)
def test_the_cli_prints_one_line(toml, group, message, tiny_run, synth_data, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    if toml is not None:
        path.write_text(toml)
    out = tmp_path / "out.nc"
    code = main(["shapley", "--model", str(tiny_run), "--data", str(synth_data), "--group", group, "--groupings",
                 str(path), "--value", "performance", "--split", "all", "--device", "cpu", "--quiet", "--out", str(out)])
    line = one_line(capsys)
    assert code == 2 and line.startswith("miam-explain: error: ") and message in line, line
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------------------------
# the heat windows: exact values, equal to the game built by hand


def test_heat_windows_equal_brute_force_over_the_subset_evaluation(tiny_run, synth_data, heat_file):
    ds = shapley(tiny_run, synth_data, group="heat_windows", groupings=heat_file, **FAST)
    phi = ds["shapley"].values
    assert ds["player"].values.tolist() == list(WINDOWS) and ds.attrs["method"] == "exact"
    assert abs(phi.sum() - float(ds["v_full"] - ds["v_empty"])) < 1e-12  # efficiency
    # brute force: every coalition of windows as a token subset (the years listed by hand), one metric each
    model = load_model(tiny_run)
    schema = model.schema
    keeps = {}
    for coalition in itertools.product([False, True], repeat=4):
        years = [f"climate_years:{y}" for on, ys in zip(coalition, WINDOWS.values()) if on for y in ys]
        keeps[coalition] = schema.keep_vector(years)
    table = evaluate_subsets(model, load_split(open_dataset(synth_data), schema, "all"), keeps, device="cpu")
    value = dict(zip(keeps, table["auc"]))
    expected = np.zeros(4)
    for i in range(4):
        for coalition, v in value.items():
            if not coalition[i]:
                size = sum(coalition)
                weight = math.factorial(size) * math.factorial(3 - size) / math.factorial(4)
                expected[i] += weight * (value[coalition[:i] + (True,) + coalition[i + 1 :]] - v)
    np.testing.assert_allclose(phi, expected, rtol=0, atol=1e-6)
    assert float(ds["v_full"]) == pytest.approx(value[(True,) * 4], abs=1e-6)


def test_heat_windows_equal_the_grouping_built_by_hand_in_the_prediction_game(tiny_run, synth_data, heat_file):
    common = dict(method="exact", target="richness", device="cpu")
    ranged = shapley(tiny_run, synth_data, group="heat_windows", groupings=heat_file, **common)
    by_hand = shapley(tiny_run, synth_data, group="by_hand", groupings=BY_HAND, **common)
    for name in ("shapley", "v_empty", "v_full", "banzhaf"):
        np.testing.assert_array_equal(ranged[name].values, by_hand[name].values)
    gap = ranged["shapley"].sum("player") - (ranged["v_full"] - ranged["v_empty"])
    assert float(abs(gap).max()) < 1e-9


# ----------------------------------------------------------------------------------------------------------------------
# the definition travels with the result; the CLI and the Python API agree


def test_the_cli_equals_the_api_and_records_the_definition(tiny_run, synth_data, heat_file, tmp_path, capsys):
    api = shapley(tiny_run, synth_data, group="heat_windows", groupings=heat_file, **FAST)
    out = tmp_path / "heat.nc"
    assert main(["shapley", "--model", str(tiny_run), "--data", str(synth_data), "--group", "heat_windows",
                 "--groupings", str(heat_file), "--value", "performance", "--method", "exact", "--split", "all",
                 "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    assert "grouping heat_windows" in capsys.readouterr().out
    cli = open_result(out)
    np.testing.assert_array_equal(cli["shapley"].values, api["shapley"].values)
    for ds in (api, cli):
        assert ds.attrs["grouping"] == "heat_windows"
        assert json.loads(ds.attrs["grouping_definition"]) == {"heat_windows": {
            w: [f"climate_years:{y[0]}..{y[-1]}"] for w, y in WINDOWS.items()}}
    # the definition reloads as groupings= and gives the same players
    again = shapley(tiny_run, synth_data, group="heat_windows", groupings=json.loads(cli.attrs["grouping_definition"]), **FAST)
    np.testing.assert_array_equal(again["shapley"].values, api["shapley"].values)
    assert shapley(tiny_run, synth_data, group="modalities", **FAST).attrs["grouping_definition"] == ""


def test_a_stored_run_records_the_definition_and_refuses_another_one(tiny_run, synth_data, heat_file, tmp_path):
    import zarr

    store = tmp_path / "heat.zarr"
    stored = shapley(tiny_run, synth_data, group="heat_windows", groupings=heat_file, store=store, chunk_size=4, **FAST)
    memory = shapley(tiny_run, synth_data, group="heat_windows", groupings=heat_file, **FAST)
    np.testing.assert_allclose(stored["shapley"].values, memory["shapley"].values, rtol=0, atol=1e-12)
    assert stored.attrs["grouping_definition"] == memory.attrs["grouping_definition"]
    config = zarr.open_group(str(store / "_run"), mode="r", zarr_format=2).attrs["config"]
    assert config["grouping_definition"] == memory.attrs["grouping_definition"]
    shifted = {"heat_windows": {"2000-2004": ["climate_years:2000..2003"], "2005-2009": ["climate_years:2004..2009"],
                                "2010-2014": ["climate_years:2010..2014"], "2015-2018": ["climate_years:2015..2018"]}}
    with pytest.raises(ConfigError, match="holds a run with another grouping_definition"):
        shapley(tiny_run, synth_data, group="heat_windows", groupings=shifted, store=store, chunk_size=4, **FAST)


def test_a_worker_rebuilds_the_custom_players_from_the_chunk_spec(tiny_run, synth_data, heat_file):
    import pickle

    from miam_explain.explain.scale.chunks import prediction_chunk

    options = dict(group="heat_windows", groupings=heat_file, method="exact", target="richness", device="cpu")
    the_plan = plan(ShapleyRequest(**options), tiny_run, synth_data)
    spec = the_plan.spec
    assert pickle.loads(pickle.dumps(spec)) == spec and hash(spec) == hash(pickle.loads(pickle.dumps(spec)))
    assert json.loads(spec.groupings) == {"heat_windows": {w: [f"climate_years:{y[0]}..{y[-1]}"] for w, y in WINDOWS.items()}}
    arrays, _, _ = prediction_chunk(spec, the_plan.positions[:5])  # no resources: loaded from the spec, as on a worker
    direct = shapley(tiny_run, synth_data, sites=the_plan.sites[0][:5].tolist(), **options)
    np.testing.assert_array_equal(arrays["shapley"], direct["shapley"].values)


# ----------------------------------------------------------------------------------------------------------------------
# evaluate and the reports take groupings too


def test_evaluate_names_custom_groupings_in_subsets(tiny_run, synth_data, heat_file, tmp_path, capsys):
    subsets = {"early": ["heat_windows:2000-2004"], "late": ["heat_windows:2010-2014", "heat_windows:2015-2018"]}
    table = evaluate(tiny_run, data=synth_data, split="all", subsets=subsets, groupings=heat_file, device="cpu")
    hand = evaluate(tiny_run, data=synth_data, split="all", device="cpu", subsets={
        "early": [f"climate_years:{y}" for y in range(2000, 2005)],
        "late": [f"climate_years:{y}" for y in range(2010, 2019)]})
    np.testing.assert_allclose(table["auc"], hand["auc"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(table["visible_tokens"], hand["visible_tokens"], rtol=0, atol=1e-12)
    with pytest.raises(SchemaError, match="subset 'early': unknown grouping 'heat_windows'"):
        evaluate(tiny_run, data=synth_data, split="all", subsets=subsets, device="cpu")
    spec = tmp_path / "subsets.toml"
    spec.write_text('[subsets]\nearly = ["heat_windows:2000-2004"]\nrange = ["climate_years:2000..2004"]\n')
    out = tmp_path / "table.csv"
    assert main(["evaluate", "--model", str(tiny_run), "--data", str(synth_data), "--split", "all", "--subsets", str(spec),
                 "--groupings", str(heat_file), "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    written = out.read_text().splitlines()
    assert written[1].split(",")[1] == written[2].split(",")[1]  # the window and the range hold the same tokens
    assert main(["evaluate", "--model", str(tiny_run), "--data", str(synth_data), "--subsets", str(spec),
                 "--groupings", str(tmp_path / "nope.toml"), "--device", "cpu", "--quiet"]) == 2
    assert "groupings file" in one_line(capsys)


SOURCES = {"sources": {"sky": ["modalities:sentinel2", "modalities:landsat"], "ground": ["modalities:climate",
                                                                                        "modalities:tabular"]}}


def test_the_modalities_report_plays_a_custom_grouping(tiny_run, synth_data, tmp_path, capsys):
    folder = modalities_report(tiny_run, synth_data, out=tmp_path / "sources", split="all", n_boot=20, device="cpu",
                               progress=False, group="sources", groupings=SOURCES)
    with xr.open_dataset(folder / "modalities.nc", engine="h5netcdf") as ds:
        assert ds["player"].values.tolist() == ["sky", "ground"] and ds.attrs["grouping"] == "sources"
        assert json.loads(ds.attrs["grouping_definition"]) == SOURCES
        values = ds["shapley"].values
    direct = shapley(tiny_run, synth_data, group="sources", groupings=SOURCES, **FAST)
    np.testing.assert_allclose(values, direct["shapley"].values, rtol=0, atol=1e-6)
    path = tmp_path / "sources.toml"
    path.write_text('[groupings.sources]\nsky = ["modalities:sentinel2", "modalities:landsat"]\n'
                    'all_of_it = ["modalities"]\n')
    code = main(["report", "modalities", "--model", str(tiny_run), "--data", str(synth_data), "--split", "all",
                 "--n-boot", "20", "--device", "cpu", "--quiet", "--group", "sources", "--groupings", str(path),
                 "--out", str(tmp_path / "overlap")])
    line = one_line(capsys)
    assert code == 2 and "grouping 'sources' cannot be the players of a game" in line
    assert not (tmp_path / "overlap").exists()
