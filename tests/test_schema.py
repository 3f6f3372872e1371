"""Tests of the token schema: token order, groupings, selectors, user groupings, serialisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from miam_explain import TokenSchema
from miam_explain.data.schema import ModalityLayout, Players
from miam_explain.errors import ConfigError, DataError, SchemaError

N_SITES = 3
WORLDCLIM = [f"Bio{i}" for i in range(1, 20)]
SOIL = ["Soilgrid-clay", "Soilgrid-sand"]
HUMAN = ["HumanFootprint-roads"]
LANDCOVER = ["LandCover-1", "LandCover-2"]
TABULAR = [*WORLDCLIM, "Elevation", *SOIL, *HUMAN, *LANDCOVER, "Unassigned"]
GROUPS = {"worldclim": WORLDCLIM, "soil": SOIL, "elevation": ["Elevation"], "human_footprint": HUMAN, "landcover": LANDCOVER}


def _var(modality: str, kind: str, coords: dict[str, list], attrs: dict | None = None) -> tuple[str, xr.DataArray]:
    """One ``x_<modality>`` variable of zeros with dims ``<modality>_<role>`` and the given coords."""
    roles = list(coords)
    dims = ["site", *(f"{modality}_{r}" for r in roles)]
    shape = [N_SITES, *(len(v) for v in coords.values())]
    da = xr.DataArray(
        np.zeros(shape, dtype=np.float32),
        dims=dims,
        coords={f"{modality}_{r}": v for r, v in coords.items()},
        attrs={"kind": kind, "roles": ",".join(roles), **(attrs or {})},
    )
    return f"x_{modality}", da


def timeseries(modality: str, channels: list[str], years: list[int], steps: int, **attrs) -> tuple[str, xr.DataArray]:
    return _var(modality, "timeseries", {"channel": channels, "year": years, "step": list(range(1, steps + 1))}, attrs)


def image(modality: str, bands: list[str], size: int, grid: int | None = 5) -> tuple[str, xr.DataArray]:
    attrs = {} if grid is None else {"grid": grid}
    name, da = _var(modality, "image", {"band": bands, "y": list(range(size)), "x": list(range(size))}, attrs)
    return name, da.drop_vars([f"{modality}_y", f"{modality}_x"])


def tabular(modality: str, variables: list[str], groups: dict | None = None) -> tuple[str, xr.DataArray]:
    attrs = {} if groups is None else {"groups": json.dumps(groups)}
    return _var(modality, "tabular", {"variable": variables}, attrs)


def embedding(modality: str, dim: int) -> tuple[str, xr.DataArray]:
    name, da = _var(modality, "embedding", {"dim": list(range(dim))})
    return name, da.drop_vars(f"{modality}_dim")


def make_dataset(*variables: tuple[str, xr.DataArray]) -> xr.Dataset:
    """A consolidated dataset with the given modality variables, plus site coords and labels."""
    ds = xr.Dataset(
        {name: da for name, da in variables},
        coords={
            "site_id": ("site", np.arange(N_SITES, dtype=np.int64)),
            "lat": ("site", np.linspace(40, 50, N_SITES)),
            "lon": ("site", np.linspace(0, 10, N_SITES)),
        },
    )
    ds["labels"] = (("site", "species"), np.zeros((N_SITES, 2), dtype=np.uint8))
    ds.attrs["miam_format"] = "miam-explain consolidated v1"
    return ds


CLIMATE = timeseries("climate", ["pr", "tas", "tasmin", "tasmax"], list(range(2000, 2019)), 12)
LANDSAT = timeseries(
    "landsat", ["red", "green", "blue", "nir", "swir1", "swir2"], list(range(2000, 2021)), 4, channel_kind="band"
)
SENTINEL2 = image("sentinel2", ["red", "green", "blue", "nir"], 64, grid=5)


@pytest.fixture(scope="module")
def geoplant() -> xr.Dataset:
    return make_dataset(CLIMATE, LANDSAT, SENTINEL2, tabular("tabular", TABULAR, GROUPS))


@pytest.fixture(scope="module")
def schema(geoplant: xr.Dataset) -> TokenSchema:
    return TokenSchema.from_dataset(geoplant)


# ---- tokens -------------------------------------------------------------------------------


def test_geoplant_token_counts(schema: TokenSchema) -> None:
    assert schema.modalities == ["climate", "landsat", "sentinel2", "tabular"]
    sizes = {m: len(schema.select(f"modalities:{m}")) for m in schema.modalities}
    assert sizes == {"climate": 76, "landsat": 126, "sentinel2": 100, "tabular": len(TABULAR)}
    assert len(schema) == schema.n_tokens == 76 + 126 + 100 + len(TABULAR)
    starts = [(lay.name, lay.start, lay.stop) for lay in schema.layouts]
    assert starts == [("climate", 0, 76), ("landsat", 76, 202), ("sentinel2", 202, 302), ("tabular", 302, 302 + len(TABULAR))]


def test_token_order_and_names(schema: TokenSchema) -> None:
    names = schema.token_names
    # timeseries: channel-major, then year
    assert names[:3] == ("climate:pr:2000", "climate:pr:2001", "climate:pr:2002")
    assert names[19] == "climate:tas:2000"
    assert names[19 + 3] == "climate:tas:2003"
    assert names[76] == "landsat:red:2000" and names[76 + 21] == "landsat:green:2000"
    # image: band-major, then patch row-major
    assert names[202:205] == ("sentinel2:red:r0c0", "sentinel2:red:r0c1", "sentinel2:red:r0c2")
    assert names[202 + 5] == "sentinel2:red:r1c0"
    assert names[202 + 25 * 3 + 12] == "sentinel2:nir:r2c2"
    assert names[302] == "tabular:Bio1" and names[-1] == "tabular:Unassigned"
    np.testing.assert_array_equal(schema.modality_of_token, np.repeat([0, 1, 2, 3], [76, 126, 100, len(TABULAR)]))
    assert schema.modality_of_token.dtype == np.int64


def test_table_columns_and_dtypes(schema: TokenSchema) -> None:
    table = schema.table
    assert list(table.columns) == ["token", "name", "modality", "kind", "channel", "year", "patch_row", "patch_col"]
    assert len(table) == schema.n_tokens
    np.testing.assert_array_equal(table["token"].to_numpy(), np.arange(schema.n_tokens))
    assert str(table["year"].dtype) == str(table["patch_row"].dtype) == str(table["patch_col"].dtype) == "Int64"
    row = table.iloc[19 + 3]
    assert (row["name"], row["modality"], row["kind"], row["channel"], row["year"]) == ("climate:tas:2003", "climate", "timeseries", "tas", 2003)
    assert pd.isna(row["patch_row"]) and pd.isna(row["patch_col"])
    row = table.iloc[202 + 25 * 3 + 12]
    assert (row["channel"], row["patch_row"], row["patch_col"]) == ("nir", 2, 2) and pd.isna(row["year"])
    row = table.iloc[302]
    assert (row["kind"], row["channel"]) == ("tabular", "Bio1")
    # the table is a copy: editing it does not change the schema
    table.loc[0, "name"] = "changed"
    assert schema.table.loc[0, "name"] == "climate:pr:2000"


def test_table_matches_token_names_and_selectors(schema: TokenSchema) -> None:
    table = schema.table
    assert tuple(table["name"]) == schema.token_names
    for t in (0, 80, 250, 310):
        np.testing.assert_array_equal(schema.select(f"tokens:{schema.token_names[t]}"), [t])


def test_embedding_is_one_token_named_after_its_modality() -> None:
    schema = TokenSchema.from_dataset(make_dataset(embedding("embeddings_name", 16), embedding("other", 8)))
    assert schema.token_names == ("embeddings_name", "other")
    assert schema.table["channel"].tolist() == [None, None]
    assert schema.layout("embeddings_name").shape == (16,)
    assert schema.grouping_names == ["modalities", "tokens"]


def test_layout_gives_what_a_tokenizer_needs(schema: TokenSchema) -> None:
    climate = schema.layout("climate")
    assert (climate.variable, climate.kind, climate.shape, climate.token_shape) == ("x_climate", "timeseries", (4, 19, 12), (4, 19))
    s2 = schema.layout("sentinel2")
    assert s2.token_slice == slice(202, 302) and s2.token_shape == (4, 5, 5)
    ye, xe = s2.patch_edges
    assert ye == xe == (2, 14, 26, 38, 50, 62)  # centre crop 64 -> 60, 12-pixel patches
    # the tokenizer recipe reproduces the token order: reshape of a time series is channel-major
    x = np.arange(4 * 19 * 12).reshape(1, 4, 19, 12)
    tokens = x.reshape(1, 4 * 19, 12)
    t = schema.token_names.index("climate:tas:2003") - climate.start
    np.testing.assert_array_equal(tokens[0, t], x[0, 1, 3])
    with pytest.raises(SchemaError, match="valid modalities: climate, landsat"):
        schema.layout("climat")


def test_from_dataset_does_not_load_values(tmp_path: Path, geoplant: xr.Dataset) -> None:
    store = tmp_path / "data.zarr"
    geoplant.to_zarr(store, zarr_format=2, consolidated=True)
    lazy = xr.open_zarr(store, chunks=None)
    loaded = TokenSchema.from_dataset(lazy)
    for name in lazy.data_vars:
        assert not lazy[name].variable._in_memory, name
    assert loaded == TokenSchema.from_dataset(geoplant)
    assert loaded.grouping("variable_groups").keys() == TokenSchema.from_dataset(geoplant).grouping("variable_groups").keys()


# ---- built-in groupings -------------------------------------------------------------------


def test_builtin_grouping_names(schema: TokenSchema) -> None:
    assert schema.grouping_names == [
        "modalities",
        "spectral_bands",
        "patches",
        "years",
        "climate_years",
        "landsat_years",
        "landsat_bands",
        "climate_channels",
        "landsat_channels",
        "variables",
        "variable_groups",
        "tokens",
    ]
    assert schema.builtin_groupings == schema.grouping_names
    assert "climate_bands" not in schema.grouping_names  # climate has no channel_kind="band"


def test_years(schema: TokenSchema) -> None:
    assert schema.members("years") == [str(y) for y in range(2000, 2021)]
    y2003 = schema.select("years:2003")
    assert len(y2003) == 4 + 6
    assert [schema.token_names[t] for t in y2003[:4]] == [f"climate:{c}:2003" for c in ("pr", "tas", "tasmin", "tasmax")]
    assert len(schema.select("years:2020")) == 6
    assert all(schema.token_names[t].startswith("landsat:") for t in schema.select("years:2020"))
    assert schema.members("climate_years") == [str(y) for y in range(2000, 2019)]
    assert schema.members("landsat_years") == [str(y) for y in range(2000, 2021)]
    np.testing.assert_array_equal(
        schema.select("years:2003"), np.union1d(schema.select("climate_years:2003"), schema.select("landsat_years:2003"))
    )


def test_bands_channels_and_patches(schema: TokenSchema) -> None:
    assert schema.members("spectral_bands") == ["red", "green", "blue", "nir"]
    nir = schema.select("spectral_bands:nir")
    assert len(nir) == 25 and nir[0] == 202 + 75 and nir[-1] == 301
    assert schema.members("landsat_bands") == ["red", "green", "blue", "nir", "swir1", "swir2"]
    assert len(schema.select("landsat_bands:swir1")) == 21
    assert schema.members("climate_channels") == ["pr", "tas", "tasmin", "tasmax"]
    assert len(schema.select("climate_channels:tas")) == 19
    np.testing.assert_array_equal(schema.select("landsat_channels:nir"), schema.select("landsat_bands:nir"))
    assert schema.members("patches") == [f"r{r}c{c}" for r in range(5) for c in range(5)]
    assert "center" not in schema.members("patches")
    assert schema.aliases("patches") == {"center": "r2c2"}
    np.testing.assert_array_equal(schema.select("patches:center"), schema.select("patches:r2c2"))
    assert [schema.token_names[t] for t in schema.select("patches:center")] == [f"sentinel2:{b}:r2c2" for b in ("red", "green", "blue", "nir")]


def test_variables_and_variable_groups(schema: TokenSchema) -> None:
    assert schema.members("variables") == TABULAR
    assert schema.members("variable_groups") == ["worldclim", "soil", "elevation", "human_footprint", "landcover", "other"]
    assert len(schema.select("variable_groups:worldclim")) == 19
    assert [schema.token_names[t] for t in schema.select("variable_groups:other")] == ["tabular:Unassigned"]
    np.testing.assert_array_equal(schema.select("variables:Bio1"), [302])


def test_every_grouping_is_sorted_int64_and_players_match(schema: TokenSchema) -> None:
    for name in schema.grouping_names:
        members = schema.grouping(name)
        assert members, name
        for member, idx in members.items():
            assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0) and idx.size > 0, (name, member)
            assert not idx.flags.writeable
        players = schema.players(name)
        assert isinstance(players, Players)
        assert list(players.names) == schema.members(name)
        assert players.n_players == len(members) and players.n_tokens == schema.n_tokens
    # partitions: these groupings cover every token of their scope exactly once
    for name, scope in [("modalities", "all"), ("tokens", "all"), ("spectral_bands", "modalities:sentinel2"),
                        ("patches", "modalities:sentinel2"), ("years", "climate_years,landsat_years"),
                        ("variables", "modalities:tabular"), ("variable_groups", "modalities:tabular")]:
        matrix = schema.players(name).token_matrix()
        assert matrix.shape == (len(schema.members(name)), schema.n_tokens)
        np.testing.assert_array_equal(matrix.sum(axis=0) == 1, schema.keep_vector(scope), err_msg=name)


def test_players_token_matrix_and_covered(schema: TokenSchema) -> None:
    players = schema.players("spectral_bands")
    matrix = players.token_matrix()
    assert matrix.dtype == bool and matrix.sum() == 100
    keep = np.array([[True, False, False, True]])  # red and nir
    np.testing.assert_array_equal((keep.astype(int) @ matrix) > 0, schema.keep_vector("spectral_bands:red,spectral_bands:nir")[None])
    np.testing.assert_array_equal(players.covered(), schema.keep_vector("modalities:sentinel2"))


def test_no_image_means_no_spectral_bands_or_patches() -> None:
    schema = TokenSchema.from_dataset(make_dataset(CLIMATE, tabular("tabular", ["a", "b"])))
    assert "spectral_bands" not in schema.grouping_names and "patches" not in schema.grouping_names
    assert "landsat_years" not in schema.grouping_names
    assert schema.members("variable_groups") == ["other"]  # no groups attribute
    with pytest.raises(SchemaError, match="unknown grouping 'spectral_bands'.*valid groupings: modalities"):
        schema.select("spectral_bands:nir")


def test_shared_bands_across_images_and_even_grid() -> None:
    ds = make_dataset(image("s2", ["red", "nir"], 8, grid=4), image("planet", ["nir", "red", "rededge"], 6, grid=2))
    schema = TokenSchema.from_dataset(ds)
    assert schema.members("spectral_bands") == ["red", "nir", "rededge"]
    assert len(schema.select("spectral_bands:nir")) == 16 + 4
    assert schema.members("patches") == [f"r{r}c{c}" for r in range(4) for c in range(4)]
    assert len(schema.select("patches:r0c0")) == 2 + 3 and len(schema.select("patches:r3c3")) == 2
    assert schema.aliases("patches") == {}  # even grids have no centre
    with pytest.raises(SchemaError, match="unknown member 'center'"):
        schema.select("patches:center")


def test_image_grid_defaults_to_5_and_must_fit() -> None:
    schema = TokenSchema.from_dataset(make_dataset(image("s2", ["red"], 10, grid=None)))
    assert schema.layout("s2").grid == 5 and schema.n_tokens == 25
    with pytest.raises(DataError, match="grid=12 cannot cut a 10x10 image"):
        TokenSchema.from_dataset(make_dataset(image("s2", ["red"], 10, grid=12)))


def test_modality_names_come_from_the_data() -> None:
    ds = make_dataset(
        timeseries("weather", ["t"], [2010, 2011, 2012], 6),
        timeseries("modis", ["ndvi", "evi"], [2011, 2012], 2, channel_kind="band"),
        tabular("soil", ["ph"]),
        tabular("terrain", ["slope", "ph"]),
    )
    schema = TokenSchema.from_dataset(ds)
    assert schema.n_tokens == 3 + 4 + 1 + 2
    assert {"weather_channels", "weather_years", "modis_bands", "modis_channels", "modis_years"} <= set(schema.grouping_names)
    assert len(schema.select("years:2012")) == 1 + 2 and len(schema.select("years:2010")) == 1
    assert schema.members("variables") == ["ph", "slope"]
    assert len(schema.select("variables:ph")) == 2  # shared across tabular modalities


# ---- selectors ----------------------------------------------------------------------------


def test_selector_unions(schema: TokenSchema) -> None:
    red, nir = schema.select("spectral_bands:red"), schema.select("spectral_bands:nir")
    union = np.union1d(red, nir)
    np.testing.assert_array_equal(schema.select("spectral_bands:red,spectral_bands:nir"), union)
    np.testing.assert_array_equal(schema.select(["spectral_bands:nir", "spectral_bands:red"]), union)
    np.testing.assert_array_equal(schema.select(" spectral_bands:red , spectral_bands : nir "), union)
    both = schema.select(["years:2003", "modalities:tabular", "years:2003"])
    assert len(both) == 10 + len(TABULAR) and both.dtype == np.int64 and np.all(np.diff(both) > 0)


def test_bare_grouping_all_and_none(schema: TokenSchema) -> None:
    np.testing.assert_array_equal(schema.select("modalities"), np.arange(schema.n_tokens))
    np.testing.assert_array_equal(schema.select("all"), np.arange(schema.n_tokens))
    assert schema.select("none").size == 0 and schema.select([]).size == 0
    np.testing.assert_array_equal(schema.select("spectral_bands"), np.arange(202, 302))
    np.testing.assert_array_equal(schema.select("years"), np.arange(0, 202))
    np.testing.assert_array_equal(schema.select("patches"), schema.select("modalities:sentinel2"))


def test_keep_vector(schema: TokenSchema) -> None:
    keep = schema.keep_vector("patches:center")
    assert keep.dtype == bool and keep.shape == (schema.n_tokens,) and keep.sum() == 4
    assert schema.keep_vector("none").sum() == 0 and schema.keep_vector("all").all()


def test_token_selector_with_colons(schema: TokenSchema) -> None:
    t = schema.select("tokens:climate:tas:2003")
    np.testing.assert_array_equal(t, [19 + 3])


def test_member_names_with_commas() -> None:
    schema = TokenSchema.from_dataset(make_dataset(tabular("tab", ["Trees, broadleaf", "Water"])))
    np.testing.assert_array_equal(schema.select("variables:Trees, broadleaf"), [0])
    with pytest.raises(SchemaError, match="unknown member 'Trees' of grouping 'variables'"):  # in one string a comma separates
        schema.select("variables:Water,variables:Trees, broadleaf")
    np.testing.assert_array_equal(schema.select(["variables:Water", "variables:Trees, broadleaf"]), [0, 1])


def test_unknown_grouping_lists_valid_groupings(schema: TokenSchema) -> None:
    with pytest.raises(SchemaError) as info:
        schema.select("spectral_band:nir")
    message = str(info.value)
    assert "unknown grouping 'spectral_band'" in message and "did you mean 'spectral_bands'" in message
    assert "valid groupings: modalities, spectral_bands" in message and "tokens" in message and "\n" not in message
    for call in (schema.members, schema.players, schema.grouping, schema.aliases):
        with pytest.raises(SchemaError, match="unknown grouping 'nope'"):
            call("nope")


def test_unknown_member_lists_valid_members(schema: TokenSchema) -> None:
    with pytest.raises(SchemaError, match=r"unknown member 'nri' of grouping 'spectral_bands'.*did you mean 'nir'.*valid members: red, green, blue, nir$"):
        schema.select("spectral_bands:nri")
    with pytest.raises(SchemaError, match=r"valid members: r0c0, .* \(aliases: center\)"):
        schema.select("patches:middle")
    with pytest.raises(SchemaError) as info:
        schema.select("tokens:climate:tas:1999")
    message = str(info.value)
    assert f"... and {schema.n_tokens - 30} more" in message and "\n" not in message
    assert message.count("climate:") <= 30 + 3  # member, selector, suggestion and 30 listed names


@pytest.mark.parametrize("bad", ["", ":nir", "years:", "spectral_bands:red,", ",", "all:x", " : "])
def test_malformed_selectors_explain_the_syntax(schema: TokenSchema, bad: str) -> None:
    with pytest.raises(SchemaError, match="malformed selector.*GROUPING:MEMBER"):
        schema.select(bad)


@pytest.mark.parametrize("bad", [3, None, [1], b"years:2003", {"years": "2003"}])
def test_non_string_selectors_raise_schema_error(schema: TokenSchema, bad: object) -> None:
    with pytest.raises(SchemaError, match="string"):
        schema.select(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["x", "years:abc", "tokens:", "a:b:c", "modalities:climate:x", "all,none,foo", "[]", "patches:r9c9", "\u00e9:\u00e9"]
)
def test_any_string_gives_a_schema_error_or_a_result(schema: TokenSchema, text: str) -> None:
    try:
        out = schema.select(text)
    except SchemaError as exc:
        assert "\n" not in str(exc)
    else:
        assert out.dtype == np.int64


# ---- user groupings -----------------------------------------------------------------------

NDVI_TOML = """
[groupings.ndvi]
ndvi = ["spectral_bands:red", "spectral_bands:nir"]
other_bands = ["spectral_bands:green", "spectral_bands:blue"]

[groupings.heat]
heatwave = "years:2003,years:2004"
rest = ["climate_years"]
"""


def test_user_groupings_from_toml(tmp_path: Path, geoplant: xr.Dataset) -> None:
    path = tmp_path / "groupings.toml"
    path.write_text(NDVI_TOML)
    schema = TokenSchema.from_dataset(geoplant, groupings=path)
    assert schema.grouping_names[-2:] == ["ndvi", "heat"]
    assert schema.members("ndvi") == ["ndvi", "other_bands"]
    assert len(schema.select("ndvi:ndvi")) == 50
    np.testing.assert_array_equal(schema.select("ndvi:ndvi"), schema.select("spectral_bands:red,spectral_bands:nir"))
    assert len(schema.select("heat:heatwave")) == 20 and len(schema.select("heat:rest")) == 76
    assert schema.players("ndvi").names == ("ndvi", "other_bands")
    assert schema.user_groupings["heat"]["heatwave"] == ("years:2003,years:2004",)
    # str path works too, and user groupings do not change equality
    assert TokenSchema.from_dataset(geoplant, groupings=str(path)) == TokenSchema.from_dataset(geoplant)


def test_user_groupings_from_mapping_and_chaining(schema: TokenSchema, geoplant: xr.Dataset) -> None:
    spec = {
        "pairs": {"rn": ["spectral_bands:red", "spectral_bands:nir"], "gb": ["spectral_bands:green", "spectral_bands:blue"]},
        "big": {"image_pair": ["pairs:rn"], "climate": ["modalities:climate"]},
    }
    user = TokenSchema.from_dataset(geoplant, groupings=spec)
    np.testing.assert_array_equal(user.select("big:image_pair"), user.select("pairs:rn"))
    added = schema.with_groupings({"pairs": spec["pairs"]})
    assert added.members("pairs") == ["rn", "gb"] and "pairs" not in schema.grouping_names
    with pytest.raises(SchemaError, match="'pairs' is already defined"):
        added.with_groupings({"pairs": spec["pairs"]})


@pytest.mark.parametrize("name", ["years", "spectral_bands", "landsat_bands", "climate_years", "tokens", "all", "none"])
def test_user_grouping_cannot_redefine_builtin(geoplant: xr.Dataset, name: str) -> None:
    with pytest.raises(SchemaError, match=f"user grouping '{name}' would redefine a built-in grouping"):
        TokenSchema.from_dataset(geoplant, groupings={name: {"a": ["years:2003"]}})


def test_builtin_names_are_reserved_even_when_absent() -> None:
    ds = make_dataset(CLIMATE)
    with pytest.raises(SchemaError, match="redefine a built-in"):
        TokenSchema.from_dataset(ds, groupings={"spectral_bands": {"a": ["years:2003"]}})


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"g": {"a": ["spectral_bands:nri"]}}, "user grouping 'g', member 'a': unknown member 'nri'"),
        ({"g": {"a": ["none"]}}, "selects no tokens"),
        ({"g": {}}, "must be a table of members"),
        ({"g": ["years:2003"]}, "must be a table of members"),
        ({"g": {"a": [3]}}, "must be a list of selector strings"),
        ({"groupings": {"g": {"a": ["years:2003"]}}}, "not the whole TOML document"),
        ({"a:b": {"a": ["years:2003"]}}, "not valid"),
        ({"g": {" a": ["years:2003"]}}, "member name ' a' is not valid"),
    ],
)
def test_bad_user_groupings(geoplant: xr.Dataset, spec: dict, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        TokenSchema.from_dataset(geoplant, groupings=spec)


def test_bad_toml_files(tmp_path: Path, geoplant: xr.Dataset) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TokenSchema.from_dataset(geoplant, groupings=tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[groupings.x\n")
    with pytest.raises(ConfigError, match="groupings file broken.toml is not valid TOML"):
        TokenSchema.from_dataset(geoplant, groupings=broken)
    empty = tmp_path / "empty.toml"
    empty.write_text("[subsets]\na = 1\n")
    with pytest.raises(SchemaError, match=r"no \[groupings.NAME\] tables"):
        TokenSchema.from_dataset(geoplant, groupings=empty)
    with pytest.raises(SchemaError, match="path to a TOML file or a mapping"):
        TokenSchema.from_dataset(geoplant, groupings=42)  # type: ignore[arg-type]


# ---- serialisation and comparison ---------------------------------------------------------


def test_to_dict_from_dict_round_trip(tmp_path: Path, geoplant: xr.Dataset) -> None:
    schema = TokenSchema.from_dataset(geoplant, groupings={"ndvi": {"ndvi": ["spectral_bands:red", "spectral_bands:nir"]}})
    text = json.dumps(schema.to_dict())
    back = TokenSchema.from_dict(json.loads(text))
    assert back == schema and hash(back) == hash(schema)
    assert back.token_names == schema.token_names and back.grouping_names == schema.grouping_names
    assert back.user_groupings == schema.user_groupings
    pd.testing.assert_frame_equal(back.table, schema.table)
    for name in schema.grouping_names:
        assert back.aliases(name) == schema.aliases(name)
        for (ma, ia), (mb, ib) in zip(schema.grouping(name).items(), back.grouping(name).items()):
            assert ma == mb
            np.testing.assert_array_equal(ia, ib)
    assert back.diff(schema) == ""


def test_from_dict_rejects_other_data(schema: TokenSchema) -> None:
    with pytest.raises(SchemaError, match="not a token schema"):
        TokenSchema.from_dict({"modalities": []})
    damaged = schema.to_dict()
    del damaged["modalities"][0]["kind"]
    with pytest.raises(SchemaError, match="damaged"):
        TokenSchema.from_dict(damaged)


def test_equality(schema: TokenSchema, geoplant: xr.Dataset) -> None:
    assert schema == TokenSchema.from_dataset(geoplant)
    assert schema != TokenSchema.from_dataset(make_dataset(CLIMATE, LANDSAT, SENTINEL2))
    assert schema != "schema"


def test_diff_messages(schema: TokenSchema) -> None:
    labels = ("the checkpoint", "the data")
    short_landsat = timeseries("landsat", ["red", "green", "blue", "nir", "swir1", "swir2"], list(range(2000, 2014)), 4, channel_kind="band")
    tab = tabular("tabular", TABULAR, GROUPS)
    cases = [
        (make_dataset(CLIMATE, short_landsat, SENTINEL2, tab),
         "modality landsat: 126 tokens in the checkpoint, 84 in the data (landsat_year has 21 entries in the checkpoint, 14 in the data)"),
        (make_dataset(CLIMATE, LANDSAT, tab), "modality sentinel2 is in the checkpoint but not in the data"),
        (make_dataset(CLIMATE, LANDSAT, SENTINEL2, tab, embedding("extra", 4)), "modality extra is in the data but not in the checkpoint"),
        (make_dataset(LANDSAT, CLIMATE, SENTINEL2, tab), "the modalities are in a different order"),
        (make_dataset(CLIMATE, LANDSAT, image("sentinel2", ["red", "green", "blue", "nir"], 64, grid=4), tab),
         "modality sentinel2: 100 tokens in the checkpoint, 64 in the data (grid 5 in the checkpoint, 4 in the data)"),
        (make_dataset(CLIMATE, LANDSAT, image("sentinel2", ["red", "green", "blue", "nir"], 32, grid=5), tab),
         "modality sentinel2: sentinel2_y has 64 entries in the checkpoint, 32 in the data"),
        (make_dataset(timeseries("climate", ["pr", "tmean", "tasmin", "tasmax"], list(range(2000, 2019)), 12), LANDSAT, SENTINEL2, tab),
         "modality climate: channel 1 is 'tas' in the checkpoint, 'tmean' in the data"),
        (make_dataset(CLIMATE, LANDSAT, SENTINEL2, tabular("tabular", TABULAR)),
         "modality tabular: variable group 'worldclim' is [Bio1"),
        (make_dataset(CLIMATE, timeseries("landsat", ["red", "green", "blue", "nir", "swir1", "swir2"], list(range(2000, 2021)), 4), SENTINEL2, tab),
         "modality landsat: channel_kind 'band' in the checkpoint, None in the data"),
    ]
    for ds, expected in cases:
        other = TokenSchema.from_dataset(ds)
        assert schema != other
        text = schema.diff(other, labels=labels)
        assert text.startswith(expected), (text, expected)
        assert "\n" not in text
    assert schema.diff(schema) == ""


# ---- malformed datasets -------------------------------------------------------------------


def test_malformed_datasets_raise_data_error() -> None:
    name, da = CLIMATE
    with pytest.raises(DataError, match="kind 'video'"):
        TokenSchema.from_dataset(make_dataset((name, da.assign_attrs(kind="video"))))
    with pytest.raises(DataError, match="roles="):
        TokenSchema.from_dataset(make_dataset((name, da.assign_attrs(roles="year,channel,step"))))
    with pytest.raises(DataError, match="must have dims"):
        TokenSchema.from_dataset(make_dataset((name, da.rename(climate_step="steps"))))
    with pytest.raises(DataError, match="no modality variables"):
        TokenSchema.from_dataset(make_dataset())
    bad_groups = tabular("tab", ["a"])[1].assign_attrs(groups=json.dumps({"g": ["a", "zz"]}))
    with pytest.raises(DataError, match="group 'g' names variables that are not in tab_variable: zz"):
        TokenSchema.from_dataset(make_dataset(("x_tab", bad_groups)))
    with pytest.raises(DataError, match="not valid JSON"):
        TokenSchema.from_dataset(make_dataset(("x_tab", bad_groups.assign_attrs(groups="{oops"))))
    dup = tabular("tab", ["a", "a"])
    with pytest.raises(DataError, match="duplicate variable names"):
        TokenSchema.from_dataset(make_dataset(dup))


def test_builtin_name_clash_is_a_data_error() -> None:
    ds = make_dataset(image("s2", ["red"], 5), timeseries("spectral", ["b1"], [2000], 2, channel_kind="band"))
    with pytest.raises(DataError, match="'spectral_bands'.*rename the modality"):
        TokenSchema.from_dataset(ds)


def test_layout_round_trip() -> None:
    layout = ModalityLayout("s2", "image", (4, 64, 64), labels=("r", "g", "b", "n"), grid=5)
    assert ModalityLayout.from_dict(json.loads(json.dumps(layout.to_dict()))) == layout
