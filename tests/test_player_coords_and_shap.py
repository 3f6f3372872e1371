"""Token level on a whole split (a budget per site, a default that buys the smallest reliable design),
the players' coordinates from the token schema, and the shap export with each site's input.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from miam_explain import open_dataset
from miam_explain.cli import main
from miam_explain.data.format import text_values
from miam_explain.data.schema import PLAYER_COORDS, TokenSchema, player_coords
from miam_explain.errors import ConfigError, DataError
from miam_explain.explain import ShapleyRequest, open_result, plan, result_to_shap, save_result, shapley
from miam_explain.explain.plan import plan_estimator, run_budget
from miam_explain.explain.result import result_dataset


def _design(n_players: int) -> int:
    """Coalitions per site of the smallest design ``auto`` samples with (leverage, 8 pairs per player)."""
    return 2 + 16 * n_players


@pytest.fixture(scope="module")
def test_sites(synth_data) -> list[int]:
    ds = open_dataset(synth_data)
    return [int(s) for s in ds["site_id"].values[text_values(ds["split"].values) == "test"][:5]]


# ----------------------------------------------------------------------------------------------------------------------
# the budget


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(budget=1000, budget_per_site=10), "not both"),
        (dict(budget_per_site=0), "budget_per_site must be a positive whole number"),
        (dict(budget_per_site=2.5), "budget_per_site must be a positive whole number"),
    ],
)
def test_budget_per_site_is_checked_by_the_request_with_one_line(options, message):
    with pytest.raises(ConfigError) as error:
        ShapleyRequest(group="tokens", **options)
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1
    assert ShapleyRequest(group="tokens", budget_per_site=np.int64(7)).budget_per_site == 7


def test_the_cli_refuses_both_budgets_with_one_line(tiny_run, capsys, tmp_path):
    code = main(["shapley", "--model", str(tiny_run), "--group", "tokens", "--budget", "1000", "--budget-per-site", "10",
                 "--out", str(tmp_path / "x.nc"), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "not both" in err and len(err.strip().splitlines()) == 1


def test_the_default_buys_the_smallest_reliable_design_and_keeps_small_games_as_they_were():
    # token level on a whole GeoPlant-sized test split: 2,000,000 evaluations were 153 coalitions per site
    estimator, coalitions = plan_estimator(342, 13_000)
    assert (estimator.method, coalitions) == ("leverage", _design(342))
    assert run_budget(342, 13_000) == _design(342) * 13_000
    # where 2,000,000 evaluations buy the design, nothing changes: exact when 2^P x sites fits, else its share
    assert run_budget(4, 13_000) == run_budget(19, 100) == 2_000_000
    assert plan_estimator(4, 13_000)[0].method == "exact" and plan_estimator(19, 100)[1] == 20_000
    # a budget per site is an explicit budget: exact over it is refused with the cost
    assert plan_estimator(342, 50, budget_per_site=900, method="permutation")[1] == 900
    with pytest.raises(ConfigError, match="over the budget"):
        plan_estimator(6, 10, budget_per_site=63, method="exact")


# ----------------------------------------------------------------------------------------------------------------------
# player coordinates


def test_player_coordinates_come_from_the_schema_for_builtin_and_user_groupings(tiny_run, synth_data):
    schema = TokenSchema.from_dataset(open_dataset(synth_data))
    tokens = player_coords(schema, schema.players("tokens"))
    table = schema.table
    assert list(tokens) == list(PLAYER_COORDS) and tokens["year"].dtype == np.int64
    assert tokens["modality"].tolist() == table["modality"].tolist()
    series = (table["kind"] == "timeseries").to_numpy()
    np.testing.assert_array_equal(tokens["year"][series], table["year"][series].to_numpy(dtype=np.int64))
    assert (tokens["year"][~series] == -1).all() and (tokens["channel"][~series] == "").all()
    image = (table["kind"] == "image").to_numpy()
    assert (tokens["band"][image] == table["channel"][image]).all() and tokens["patch"][image][0] == "r0c0"
    years = player_coords(schema, schema.players("years"))
    assert years["modality"][0] == "climate+landsat" and set(years["modality"]) <= {"climate+landsat", "landsat"}
    assert (years["band"] == "").all() and (years["year"] == np.asarray(schema.members("years"), dtype=np.int64)).all()
    windows = {"windows": {"early": ["climate_years:2000..2009"], "late": ["climate_years:2010..2018"]}}
    the_plan = plan(ShapleyRequest(group="windows", groupings=windows, device="cpu"), tiny_run, synth_data)
    assert the_plan.player_coords["modality"].tolist() == ["climate", "climate"]
    assert the_plan.player_coords["year"].tolist() == [-1, -1] and the_plan.player_coords["channel"].tolist() == ["", ""]


def test_a_token_level_result_sums_by_modality_and_keeps_its_coordinates(tiny_run, synth_data, test_sites, tmp_path):
    # the smallest sampler, one antithetic pair of permutations per site (1,366 coalitions), keeps this fast;
    # leverage sampling's regression over 342 players alone takes about a minute on a busy 2-core CPU
    ds = shapley(tiny_run, synth_data, group="tokens", sites=test_sites[:2], method="permutation", budget_per_site=1366, target="richness", device="cpu")
    assert ds.attrs["method"] == "permutation" and ds.sizes["player"] == 342 and ds.attrs["n_evaluations"] == 1366
    by_modality = ds["shapley"].groupby("modality").sum()
    assert sorted(text_values(by_modality["modality"].values)) == ["climate", "landsat", "sentinel2", "tabular"]
    total = ds["shapley"].sum("player")
    np.testing.assert_allclose(by_modality.sum("modality"), total, rtol=0, atol=1e-12)
    np.testing.assert_allclose(total, ds["v_full"] - ds["v_empty"], rtol=0, atol=1e-9)
    path = tmp_path / "tokens.nc"
    save_result(ds, path)
    back = open_result(path)
    for name in PLAYER_COORDS:
        np.testing.assert_array_equal(np.asarray(back[name].values).astype(ds[name].dtype), ds[name].values, err_msg=name)
    np.testing.assert_allclose(back["shapley"].groupby("modality").sum(), by_modality, rtol=0, atol=1e-12)


def test_a_stored_run_keeps_the_coordinates(tiny_run, synth_data, test_sites, tmp_path):
    ds = shapley(tiny_run, synth_data, group="spectral_bands", sites=test_sites, device="cpu",
                 store=tmp_path / "bands.zarr", chunk_size=2)
    back = open_result(tmp_path / "bands.zarr")
    assert text_values(back["band"].values).tolist() == ["red", "green", "blue", "nir"] == text_values(ds["player"].values).tolist()
    assert set(text_values(back["modality"].values)) == {"sentinel2"} and (back["year"].values == -1).all()


# ----------------------------------------------------------------------------------------------------------------------
# the shap export


@pytest.fixture(scope="module")
def variables_result(tiny_run, synth_data, test_sites) -> xr.Dataset:
    return shapley(tiny_run, synth_data, group="variables", sites=test_sites, budget_per_site=_design(40),
                   target="richness", device="cpu")


def _positions(data: xr.Dataset, site_ids) -> np.ndarray:
    ids = data["site_id"].values.tolist()
    return np.asarray([ids.index(int(s)) for s in site_ids])


def test_the_export_holds_each_sites_raw_variables(variables_result, synth_data):
    explanation = result_to_shap(variables_result)  # the dataset recorded in the result's provenance
    n, p = variables_result.sizes["site"], variables_result.sizes["player"]
    assert explanation.values.shape == explanation.data.shape == (n, p)
    assert explanation.feature_names == text_values(variables_result["player"].values).tolist()
    np.testing.assert_array_equal(explanation.base_values, variables_result["v_empty"].isel(target=0).values)
    np.testing.assert_array_equal(explanation.values, variables_result["shapley"].isel(target=0).values)
    raw = xr.open_zarr(synth_data)  # read apart from the package
    rows = _positions(raw, variables_result["site_id"].values)
    expected = raw["x_tabular"].isel(site=rows).sel(tabular_variable=explanation.feature_names).values
    np.testing.assert_allclose(explanation.data, expected, rtol=0, atol=0)
    assert (np.nanstd(explanation.data, axis=0) > 0).mean() > 0.9  # the values vary across sites
    given = result_to_shap(variables_result, synth_data)
    np.testing.assert_array_equal(given.data, explanation.data)


def test_a_group_players_input_is_its_mean_normalised_value(tiny_run, synth_data, test_sites):
    ds = shapley(tiny_run, synth_data, group="spectral_bands", sites=test_sites, target="richness", device="cpu")
    explanation = result_to_shap(ds, open_dataset(synth_data))
    raw = xr.open_zarr(synth_data)
    image = raw["x_sentinel2"]
    train = image.isel(site=np.flatnonzero(text_values(raw["split"].values) == "train")).values.astype(np.float64)
    mean, std = np.nanmean(train, axis=(0, 2, 3)), np.nanstd(train, axis=(0, 2, 3))
    crop = image.isel(site=_positions(raw, ds["site_id"].values)).values.astype(np.float64)[:, :, 2:62, 2:62]
    finite = np.isfinite(crop).all(axis=(1, 2, 3))  # sites whose image has no missing pixel
    assert finite.sum() >= 2
    expected = (crop[finite].mean(axis=(2, 3)) - mean) / std  # 5 x 5 patches of 12 pixels: the centre 60 x 60 crop
    np.testing.assert_allclose(explanation.data[finite], expected, rtol=1e-6, atol=1e-9)


def test_shap_draws_its_plots_from_an_export(variables_result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    explanation = result_to_shap(variables_result)
    for draw in (lambda: shap.plots.beeswarm(explanation, show=False), lambda: shap.plots.bar(explanation, show=False),
                 lambda: shap.plots.waterfall(explanation[0], show=False),
                 lambda: shap.plots.scatter(explanation[:, 0], show=False)):
        plt.figure()
        draw()
        assert plt.gcf().axes, "nothing was drawn"
        plt.close("all")


def test_the_export_of_a_performance_result_and_without_a_dataset():
    performance = result_dataset(shapley=np.array([0.2, 0.1]), shapley_se=np.zeros(2), v_empty=np.float64(0.5),
                                 v_full=np.float64(0.8), players=["red", "nir"], attrs={"game": "performance"})
    explanation = result_to_shap(performance)
    assert explanation.values.shape == (1, 2) and np.isnan(explanation.data).all()
    prediction = result_dataset(shapley=np.zeros((1, 2, 1)), shapley_se=np.zeros((1, 2, 1)), v_empty=np.zeros((1, 1)),
                                v_full=np.zeros((1, 1)), players=["red", "nir"], targets=["richness"],
                                sites=(np.array([1]), np.zeros(1), np.zeros(1)),
                                attrs={"game": "prediction", "data": "in-memory dataset", "grouping": "spectral_bands"})
    with pytest.raises(DataError, match="pass data="):
        result_to_shap(prediction)
