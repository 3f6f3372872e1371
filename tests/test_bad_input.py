"""Property-based sweep of bad input through the public entry points.

Hypothesis feeds malformed data, selectors, arguments, checkpoints and command
lines to ``open_dataset``, ``TokenSchema.select``/``keep_vector``, ``shapley``,
``load_model`` and ``miam_explain.cli.main``. Every failure must be a
:class:`~miam_explain.errors.MiamError` with a one-line message that names the
offending value or the fix (never an IndexError, KeyError, TypeError, RuntimeError
… from deep inside numpy, torch or xarray), and the command line must exit with
status 2 and print one line. Where bad-looking input is accepted, the answer must
be sane: shapes, finite values, efficiency, unchanged weights.

The examples are derandomized (the same cases on every run) and bounded so the
file runs in about a minute; ``MIAM_FUZZ_SCALE=10`` multiplies the example counts
and draws fresh random cases, for a longer fuzzing session. The number of cases
run is printed at the end of the module.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import string
import struct
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import miam_explain
from miam_explain import MiamError, TokenSchema, load_model, open_dataset, shapley
from miam_explain.cli import main
from miam_explain.data.format import text_values, write_dataset
from miam_explain.data.inspect import summarize
from miam_explain.errors import CheckpointError
from miam_explain.models.checkpoint import read_checkpoint, save_checkpoint, write_checkpoint
from miam_explain.models.fusion import MiamModel, ModelConfig
from miam_explain.models.normalization import NormStats
from miam_explain.runtime.tensors import load_split

SCALE = max(1, int(os.environ.get("MIAM_FUZZ_SCALE", "1")))
#: Hypothesis cases run per test, reported at the end of the module.
CASES: Counter = Counter()
#: How many of them were accepted (a sane answer) rather than refused (a MiamError).
ACCEPTED: Counter = Counter()


def fuzz(max_examples: int):
    """Bounded, deadline-free settings; derandomized unless ``MIAM_FUZZ_SCALE`` asks for a longer session."""
    return settings(
        max_examples=max_examples * SCALE,
        deadline=None,
        derandomize=SCALE == 1,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


@pytest.fixture(scope="module", autouse=True)
def report_cases(request):
    yield
    total = sum(CASES.values())
    if total:
        plugins = request.config.pluginmanager
        reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
        detail = ", ".join(f"{name} {n} ({ACCEPTED[name]} accepted)" for name, n in sorted(CASES.items()))
        line = f"test_bad_input: {total} hypothesis cases: {detail}"
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line("")
                reporter.write_line(line)
        else:  # pragma: no cover
            print(line)


# ------------------------------------------------------------------------------ the contract

#: Words that say what to do (or what was expected) in a message.
FIX_WORDS = (
    "use ", "pass ", "choose", "give ", "fix", "must", "expected", "check", "re-create", "prepare", "train",
    "pick", "raise", "drop", "set ", "write", "copy", "valid", "see ", "make ", "rename", "did you mean", "needs",
)


def check_error(exc: BaseException, *offending) -> str:
    """A user error: a MiamError, one non-empty line, naming the fix or the offending value."""
    assert isinstance(exc, MiamError), f"{type(exc).__name__} escaped: {exc!r}"
    message = str(exc)
    assert message.strip(), f"empty message from {type(exc).__name__}"
    assert len(message.splitlines()) == 1, f"multi-line message: {message!r}"
    lowered = message.lower()
    named = [str(o) for o in offending if o is not None and str(o) and str(o) in message]
    assert named or any(word in lowered for word in FIX_WORDS), f"message names neither the value nor a fix: {message!r}"
    return message


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` with stdout and stderr captured; any escaping exception fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def check_cli(argv: list[str]) -> int:
    code, _, err = run_cli(argv)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, (argv, err)
        assert lines[0].startswith("miam-explain") and "error" in lines[0], (argv, err)
        assert "Traceback" not in err
    return code


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ds_mem(synth_data) -> xr.Dataset:
    return open_dataset(synth_data).load()


@pytest.fixture(scope="module")
def small(ds_mem, tmp_path_factory) -> dict[str, Path]:
    """48 sites as netCDF, zarr v2 (consolidated, 3 site chunks) and zarr v3."""
    root = tmp_path_factory.mktemp("small")
    part = ds_mem.isel(site=slice(0, 48))
    paths = {"nc": root / "small.nc", "zarr2": root / "small.zarr", "zarr3": root / "small3.zarr"}
    write_dataset(part, paths["nc"])
    for key, fmt in (("zarr2", 2), ("zarr3", 3)):
        chunked = part.chunk({"site": 16})
        for name in chunked.variables:
            chunked[name].encoding = {}
        chunked.to_zarr(paths[key], zarr_format=fmt, consolidated=True)
    return paths


@pytest.fixture(scope="module")
def model_path(ds_mem, synth_data, tmp_path_factory) -> Path:
    """An untrained but complete checkpoint (random weights): what matters here is the plumbing."""
    schema = TokenSchema.from_dataset(ds_mem)
    species = [str(s) for s in text_values(ds_mem["species"].values)]
    torch.manual_seed(0)
    train = ds_mem.isel(site=np.flatnonzero(text_values(ds_mem["split"].values) == "train"))
    model = MiamModel(schema, ModelConfig(width=16, depth=1, heads=2, mlp_ratio=2.0, n_outputs=len(species)),
                      NormStats.from_dataset(train, schema))
    run = tmp_path_factory.mktemp("model") / "run"
    run.mkdir()
    meta = {"species": species, "task": "multilabel", "data": {"path": str(synth_data), "fingerprint": ""}, "history": []}
    save_checkpoint(run / "best.safetensors", model=model, meta=meta)
    return run / "best.safetensors"


@pytest.fixture(scope="module")
def model(model_path) -> MiamModel:
    return load_model(model_path)


@pytest.fixture(scope="module")
def ds_few(ds_mem) -> xr.Dataset:
    """60 sites, 20 of each split: what the Shapley cases explain."""
    split = text_values(ds_mem["split"].values)
    keep = np.sort(np.concatenate([np.flatnonzero(split == s)[:20] for s in ("train", "val", "test")]))
    few = ds_mem.isel(site=keep)
    assert min(int((text_values(few["split"].values) == s).sum()) for s in ("train", "val", "test")) >= 4
    return few


@pytest.fixture(scope="module")
def test_ids(ds_few) -> list[int]:
    return [int(s) for s in ds_few["site_id"].values[text_values(ds_few["split"].values) == "test"]]


def consume(path) -> None:
    """Open a dataset and read everything downstream code reads; check what comes back is sane."""
    ds = open_dataset(path)
    schema = TokenSchema.from_dataset(ds)
    facts, table = summarize(ds)
    assert facts["sites"] == ds.sizes["site"] and len(table) == len(schema.modalities)
    data = load_split(ds, schema, "all")
    n = len(data)
    for layout in schema.layouts:
        assert tuple(data.inputs[layout.name].shape) == (n, *layout.shape)
    assert torch.isin(data.target, torch.tensor([0.0, 1.0])).all()
    assert len(np.unique(data.site_id)) == n
    known = np.isfinite(data.lat)
    assert (np.abs(data.lat[known]) <= 90).all() and np.array_equal(known, np.isfinite(data.lon))


# ------------------------------------------------------------------------------- open_dataset

CORRUPTIONS = ("truncate", "empty", "random", "flip", "delete", "append", "zero")


def corrupt(path: Path, mode: str, position: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = path.read_bytes()
    cut = int(position * len(data))
    if mode == "truncate":
        path.write_bytes(data[:cut])
    elif mode == "empty":
        path.write_bytes(b"")
    elif mode == "random":
        path.write_bytes(rng.integers(0, 256, max(len(data), 1), dtype=np.uint8).tobytes())
    elif mode == "flip":
        buf = bytearray(data)
        for i in rng.integers(0, max(len(buf), 1), 1 + len(buf) // 50):
            if buf:
                buf[i] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(buf))
    elif mode == "delete":
        path.unlink()
    elif mode == "append":
        path.write_bytes(data + rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
    elif mode == "zero":
        buf = bytearray(data)
        buf[cut : cut + 4096] = bytes(len(buf[cut : cut + 4096]))
        path.write_bytes(bytes(buf))


def _store_files(store: Path) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())


@fuzz(45)
@given(data=st.data(), fmt=st.sampled_from(["zarr2", "zarr3"]), mode=st.sampled_from(CORRUPTIONS),
       position=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_open_dataset_with_a_damaged_zarr_store(small, tmp_path, data, fmt, mode, position, seed):
    CASES["damaged zarr"] += 1
    files = _store_files(small[fmt])
    # metadata files and the chunks of the per-site arrays are the interesting targets
    target = data.draw(st.sampled_from(files), label="file")
    store = tmp_path / f"case{CASES['damaged zarr']}.zarr"
    shutil.copytree(small[fmt], store)
    corrupt(store / target, mode, position, seed)
    try:
        consume(store)
        ACCEPTED["damaged zarr"] += 1
    except Exception as exc:  # noqa: BLE001 - the contract is checked below
        check_error(exc, store.name)
    finally:
        shutil.rmtree(store, ignore_errors=True)


@fuzz(25)
@given(mode=st.sampled_from(CORRUPTIONS[:4] + ("zero", "append")), position=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_open_dataset_with_a_damaged_netcdf_file(small, tmp_path, mode, position, seed):
    CASES["damaged netCDF"] += 1
    path = tmp_path / f"case{CASES['damaged netCDF']}.nc"
    shutil.copyfile(small["nc"], path)
    corrupt(path, mode, position, seed)
    try:
        consume(path)
        ACCEPTED["damaged netCDF"] += 1
    except Exception as exc:  # noqa: BLE001
        check_error(exc, path.name)
    finally:
        path.unlink(missing_ok=True)


@fuzz(20)
@given(kind=st.sampled_from(["bytes", "text", "empty_dir", "missing", "dir_of_junk", "nested_empty"]),
       suffix=st.sampled_from([".nc", ".zarr", ".txt", ""]), payload=st.binary(max_size=300),
       name=st.sampled_from(["thing", "a\nb", "x\u2028y", "tab\tname", "é字🌍", " ", "-"]))
def test_open_dataset_with_things_that_are_no_dataset(tmp_path, kind, suffix, payload, name):
    CASES["not a dataset"] += 1
    path = tmp_path / f"{name}{CASES['not a dataset']}{suffix}"
    if kind == "bytes":
        path.write_bytes(payload)
    elif kind == "text":
        path.write_text(payload.decode("latin-1"))
    elif kind == "empty_dir":
        path.mkdir()
    elif kind == "dir_of_junk":
        path.mkdir()
        for name in (".zgroup", ".zattrs", "zarr.json", ".zmetadata"):
            (path / name).write_bytes(payload)
    elif kind == "nested_empty":
        (path / "x_climate").mkdir(parents=True)
    with pytest.raises(MiamError) as info:
        open_dataset(path)
    check_error(info.value, path.name)


def _mutations(ds: xr.Dataset):
    """Named ways to break a consolidated dataset, each a function (dataset, rng) -> dataset."""
    n = ds.sizes["site"]

    def with_coord(name, values):
        return lambda d, rng: d.assign_coords({name: ("site", values(d, rng))})

    def poke(values, fill):
        def make(d, rng):
            out = np.array(values(d), copy=True)
            out[rng.integers(0, len(out), 1 + int(rng.integers(0, 3)))] = fill
            return out
        return make

    special = [np.nan, np.inf, -np.inf, 91.0, -200.0, 1e308, 0.0]
    muts = {}
    for coord in ("lat", "lon"):
        for value in special:
            muts[f"{coord}={value}"] = with_coord(coord, lambda d, rng, c=coord, v=value: poke(lambda x: x[c].values.astype(float), v)(d, rng))
        muts[f"{coord} as text"] = with_coord(coord, lambda d, rng, c=coord: d[c].values.astype(str).astype(object))
    muts["lat and lon NaN together"] = lambda d, rng: d.assign_coords(
        lat=("site", np.where(np.arange(n) % 7 == 0, np.nan, d["lat"].values)),
        lon=("site", np.where(np.arange(n) % 7 == 0, np.nan, d["lon"].values)))
    muts["site_id duplicated"] = with_coord("site_id", lambda d, rng: np.repeat(d["site_id"].values[: (n + 1) // 2], 2)[:n])
    muts["site_id float"] = with_coord("site_id", lambda d, rng: d["site_id"].values + 0.5)
    muts["site_id text"] = with_coord("site_id", lambda d, rng: d["site_id"].values.astype(str).astype(object))
    muts["site_id negative"] = with_coord("site_id", lambda d, rng: -d["site_id"].values)
    for value in (np.nan, 2.0, -1.0, 0.5, np.inf, 255.0):
        def labels(d, rng, v=value):
            lab = d["labels"].values.astype(np.float32)
            lab[rng.integers(0, n), rng.integers(0, lab.shape[1])] = v
            return d.assign(labels=(("site", "species"), lab))
        muts[f"label {value}"] = labels
    muts["labels as text"] = lambda d, rng: d.assign(labels=d["labels"].astype(str).astype(object))
    muts["labels bool"] = lambda d, rng: d.assign(labels=d["labels"].astype(bool))
    for name in ("labels", "species", "site_id", "lat", "x_climate", "x_sentinel2", "split"):
        muts[f"drop {name}"] = lambda d, rng, v=name: d.drop_vars(v)
    muts["drop every modality"] = lambda d, rng: d.drop_vars([v for v in d.data_vars if str(v).startswith("x_")])
    muts["x as int"] = lambda d, rng: d.assign(x_climate=d["x_climate"].fillna(0).astype(np.int16))
    muts["x as text"] = lambda d, rng: d.assign(x_tabular=d["x_tabular"].astype(str).astype(object))
    muts["x as complex"] = lambda d, rng: d.assign(x_tabular=d["x_tabular"].astype(np.complex64))
    for value in (np.nan, np.inf, -np.inf, 1e30, -1e38):
        def x_values(d, rng, v=value):
            x = d["x_landsat"].values.copy()
            mask = rng.random(x.shape) < rng.choice([0.01, 0.5, 1.0])
            x[mask] = v
            return d.assign(x_landsat=(d["x_landsat"].dims, x, d["x_landsat"].attrs))
        muts[f"x_landsat {value}"] = x_values
    for attr, value in (("kind", "movie"), ("kind", 3), ("roles", "a,b"), ("grid", 0), ("grid", "abc"), ("grid", 1e9),
                        ("grid", np.inf), ("grid", -3), ("grid", 2.5)):
        var = "x_sentinel2" if attr == "grid" else "x_climate"
        muts[f"{var}.{attr}={value}"] = lambda d, rng, a=attr, v=value, var=var: d.assign({var: d[var].assign_attrs({a: v})})
    muts["groups not JSON"] = lambda d, rng: d.assign(x_tabular=d["x_tabular"].assign_attrs(groups="{bad"))
    muts["groups name unknown variable"] = lambda d, rng: d.assign(x_tabular=d["x_tabular"].assign_attrs(groups='{"g": ["nope"]}'))
    muts["groups wrong type"] = lambda d, rng: d.assign(x_tabular=d["x_tabular"].assign_attrs(groups="[1, 2]"))
    muts["years float"] = lambda d, rng: d.assign_coords(climate_year=d["climate_year"].values + 0.5)
    muts["years text"] = lambda d, rng: d.assign_coords(climate_year=np.array([f"y{i}" for i in range(d.sizes["climate_year"])], dtype=object))
    muts["years duplicated"] = lambda d, rng: d.assign_coords(climate_year=np.zeros(d.sizes["climate_year"], np.int64))
    muts["years NaN"] = lambda d, rng: d.assign_coords(climate_year=np.full(d.sizes["climate_year"], np.nan))
    muts["band names duplicated"] = lambda d, rng: d.assign_coords(sentinel2_band=np.array(["red"] * d.sizes["sentinel2_band"], dtype=object))
    muts["species duplicated"] = lambda d, rng: d.assign_coords(species=np.zeros(d.sizes["species"], np.int64))
    muts["split unknown"] = with_coord("split", lambda d, rng: np.array(["training"] * n, dtype=object))
    muts["split empty strings"] = with_coord("split", lambda d, rng: np.array([""] * n, dtype=object))
    muts["no sites"] = lambda d, rng: d.isel(site=slice(0, 0))
    muts["one site"] = lambda d, rng: d.isel(site=slice(0, 1))
    muts["format attr missing"] = lambda d, rng: d.assign_attrs(miam_format="")
    muts["empty modality dim"] = lambda d, rng: d.isel(tabular_variable=slice(0, 0))
    muts["modality named like a grouping"] = lambda d, rng: d.rename(
        {"x_tabular": "x_years", "tabular_variable": "years_variable"})
    return muts


@pytest.fixture(scope="module")
def mutations(small):
    with xr.open_dataset(small["nc"], engine="h5netcdf") as handle:
        base = handle.load()
    return base, _mutations(base)


@fuzz(70)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), n_mutations=st.integers(1, 2))
def test_open_dataset_with_wrong_values_types_and_missing_variables(mutations, tmp_path, data, seed, n_mutations):
    base, muts = mutations
    names = data.draw(st.lists(st.sampled_from(sorted(muts)), min_size=n_mutations, max_size=n_mutations, unique=True),
                      label="mutations")
    CASES["wrong values"] += 1
    rng = np.random.default_rng(seed)
    ds = base.copy(deep=True)
    try:
        for name in names:
            ds = muts[name](ds, rng)
    except (ValueError, KeyError):
        assume(False)  # the mutation itself does not apply (e.g. the variable was dropped already)
    path = tmp_path / f"case{CASES['wrong values']}.nc"
    try:
        ds.to_netcdf(path, engine="h5netcdf")
    except Exception:  # noqa: BLE001 - netCDF cannot hold it (complex, mixed objects): not our reader's problem
        assume(False)
    try:
        consume(path)
        ACCEPTED["wrong values"] += 1
    except Exception as exc:  # noqa: BLE001
        check_error(exc, path.name, *names)


# ------------------------------------------------------------------------------- selectors

SELECTOR_CHARS = st.sampled_from(list(":,: ,") + list(string.ascii_letters[:8]) + list("0123456789_-") +
                                 ["é", "ñ", "字", "\u2028", "\n", "\t", "\x00", "🌍", "\u200b"])


@st.composite
def selector(draw, schema: TokenSchema):
    groupings = schema.grouping_names
    kind = draw(st.sampled_from(["valid"] * 4 + ["grouping"] * 2 + ["mixed", "text", "colons", "huge", "special"]))
    if kind == "valid":
        g = draw(st.sampled_from(groupings))
        return f"{g}:{draw(st.sampled_from(schema.members(g) + list(schema.aliases(g))))}"
    if kind == "grouping":
        return draw(st.sampled_from(groupings + ["all", "none"]))
    if kind == "mixed":
        g = draw(st.sampled_from(groupings + ["bands", "", "ALL", "modalities "]))
        m = draw(st.text(SELECTOR_CHARS, max_size=8) | st.sampled_from(["red", "2003", "center", "r9c9", "climate"]))
        return f"{draw(st.sampled_from(['', ' ']))}{g}{draw(st.sampled_from([':', '::', ': ', ' : ']))}{m}"
    if kind == "colons":
        return draw(st.text(st.sampled_from(list(":, ") + ["a"]), max_size=12))
    if kind == "huge":
        return f"{draw(st.sampled_from(['tokens', 'years', 'patches']))}:{draw(st.integers(-2**70, 2**70))}"
    if kind == "special":
        return draw(st.sampled_from(["all:x", "none:", ":", ",", "", " ", "all,none", "tokens:", "tokens:climate:pr:2003",
                                     "years:2003,years:2004", "patches:center,", ",,all"]))
    return draw(st.text(SELECTOR_CHARS, max_size=20))


@fuzz(300)
@given(data=st.data(), as_list=st.booleans())
def test_select_and_keep_vector(ds_mem, data, as_list):
    CASES["selectors"] += 1
    schema = TokenSchema.from_dataset(ds_mem)
    if as_list:
        items = data.draw(st.lists(selector(schema) | st.sampled_from([None, 3, b"years", 2.5, ("x",)]), max_size=4), label="selectors")
    else:
        items = data.draw(selector(schema) | st.sampled_from([None, 7, b"tokens", {"a": 1}, ["years", None]]), label="selectors")
    try:
        indices = schema.select(items)
        keep = schema.keep_vector(items)
    except Exception as exc:  # noqa: BLE001
        check_error(exc, *(items if isinstance(items, list) else [items]))
        return
    ACCEPTED["selectors"] += 1
    assert indices.dtype == np.int64 and indices.ndim == 1
    assert np.all(np.diff(indices) > 0) and (indices.size == 0 or (0 <= indices[0] and indices[-1] < schema.n_tokens))
    assert keep.dtype == bool and keep.shape == (schema.n_tokens,) and np.array_equal(np.flatnonzero(keep), indices)
    # a single valid grouping:member selects exactly that member's tokens
    if isinstance(items, str) and items.count(":") == 1 and "," not in items:
        g, m = items.split(":")
        if g in schema.grouping_names and m in schema.members(g):
            assert np.array_equal(indices, schema.grouping(g)[m])


VALID_SPEC = st.dictionaries(
    st.sampled_from(["ndvi", "my_group", "sat"]),
    st.dictionaries(st.sampled_from(["m", "red_nir", "x y"]),
                    st.sampled_from(["spectral_bands:red", "years:2003", "modalities:climate,modalities:tabular"])
                    | st.lists(st.sampled_from(["spectral_bands:nir", "patches:center", "variable_groups:worldclim"]), min_size=1, max_size=2),
                    min_size=1, max_size=3),
    min_size=1, max_size=2)


@fuzz(40)
@given(spec=VALID_SPEC | st.dictionaries(
    st.text(SELECTOR_CHARS, max_size=6) | st.sampled_from(["ndvi", "years", "tokens", "all"]),
    st.dictionaries(st.text(SELECTOR_CHARS, max_size=5) | st.just("m"),
                    st.sampled_from(["spectral_bands:red", "nope:x", "", "all"]) | st.lists(st.sampled_from(["years:2003", "x"]), max_size=2)
                    | st.integers() | st.none(), max_size=3) | st.integers() | st.text(max_size=3),
    max_size=3))
def test_user_groupings(ds_mem, spec):
    CASES["user groupings"] += 1
    try:
        schema = TokenSchema.from_dataset(ds_mem, groupings=spec)
    except Exception as exc:  # noqa: BLE001
        check_error(exc, *spec)
        return
    ACCEPTED["user groupings"] += 1
    for name in schema.user_groupings:
        for member, indices in schema.grouping(name).items():
            assert indices.size > 0 and indices.max() < schema.n_tokens


# --------------------------------------------------------------------------------- shapley

SMALL_GROUPS = ["modalities", "spectral_bands", "landsat_bands", "climate_channels"]
NAMES = st.text(SELECTOR_CHARS, max_size=10)


@st.composite
def shapley_kwargs(draw, test_ids: list[int], species: list[str]):
    """Arguments of :func:`shapley`: most valid, zero to two of them bad (so each refusal has one cause)."""
    value = draw(st.sampled_from(["prediction", "prediction", "performance"]))
    group = draw(st.sampled_from(SMALL_GROUPS))
    method = draw(st.sampled_from(["auto", "exact", "permutation", "kernel"]))
    sampling = method in ("permutation", "kernel")
    site_ids = st.sampled_from(test_ids[:6])
    valid = {
        "value": st.just(value),
        "group": st.just(group),
        "method": st.just(method),
        "budget": st.integers(200, 3000) if sampling else (st.none() | st.integers(10_000, 10**30)),
        "tol": (st.none() | st.floats(0.001, 1.0)) if not sampling else st.floats(0.001, 1.0),
        "seed": st.integers(0, 2**64),
        "context": st.sampled_from(["none", "all"]),
        "output": st.sampled_from(["probability", "logit"]),
        "metric": st.sampled_from(["auto", "auc", "neg_loss"]),
        "split": st.sampled_from(["test", "val", "all"]) if value == "performance" else st.just("test"),
        "interactions": st.just(True) if method == "exact" else st.just(False),
        "sites": st.lists(site_ids, min_size=1, max_size=3) | st.lists(site_ids.map(str), min_size=1, max_size=2)
        if value == "prediction" else st.none(),
        "target": st.sampled_from(["auto", "all", "richness"]) | st.lists(st.sampled_from(species[:4]), min_size=1, max_size=3)
        if value == "prediction" else st.just("auto"),
    }
    bad = {
        "value": st.sampled_from(["", "Prediction", "both", None, 3]),
        "group": st.sampled_from(["tokens", "bands", "", None, 5, ["modalities"], "modalities "]) | NAMES,
        "method": st.sampled_from(["Exact", "", None, "shap", 1]),
        "budget": st.integers(-10, 1) | st.sampled_from([2.5, float("nan"), float("inf"), "100", True, -(10**30)]),
        "tol": st.sampled_from([0.0, -0.1, float("nan"), float("inf"), -float("inf"), "x", True, 1e-320j]),
        "seed": st.integers(-(2**64), -1) | st.sampled_from([1.5, "1", None, float("nan")]),
        "context": st.sampled_from(["some", "", "None", None, 1]),
        "output": st.sampled_from(["odds", "", None]),
        "metric": st.sampled_from(["f1", "accuracy", "top5", "", None, 3]),
        "split": st.sampled_from(["nope", "", "TEST", 1, "train,test"]),
        "interactions": st.just(True),
        "sites": st.lists(site_ids | st.integers(-2**70, 2**70) | st.sampled_from([True, 1.5, "x", None, "", "1e3"]), max_size=3)
        | st.sampled_from([5, "1,2", b"x", [[1]], {}]),
        "target": st.lists(NAMES | st.integers() | st.sampled_from([None, True]), max_size=3)
        | st.sampled_from(["", "Richness", None, 5, {"a": 1}, [], "x"]),
    }
    broken = draw(st.sets(st.sampled_from(sorted(bad)), max_size=2), label="broken")
    kwargs = {"device": "cpu"}
    for name in valid:
        kwargs[name] = draw(bad[name] if name in broken else valid[name], label=name)
    if kwargs["group"] == "tokens" and kwargs["method"] != "exact" and (kwargs["budget"] is None or (
            isinstance(kwargs["budget"], int) and kwargs["budget"] > 3000)):
        kwargs["budget"] = 3000  # 342 players: keep the sampling short
    if kwargs["sites"] is None:
        del kwargs["sites"]
    return kwargs


def check_result(ds: xr.Dataset, kwargs: dict, model: MiamModel) -> None:
    """What an accepted call must give: labelled shapes, finite values, efficiency."""
    players = model.schema.members(kwargs["group"])
    assert list(ds["player"].values) == players
    values, se = ds["shapley"], ds["shapley_se"].values
    assert np.isfinite(values.values).all()
    if np.isnan(se).any():  # documented: a sampled estimate that rests on a single sample has no se
        assert np.isnan(se).all() and ds.attrs["method"] in ("permutation", "kernel") and not ds.attrs["converged"]
    else:
        assert np.isfinite(se).all() and (se >= 0).all()
    gap = values.sum("player") - (ds["v_full"] - ds["v_empty"])
    assert float(abs(gap).max()) < 1e-6
    if kwargs["value"] == "prediction":
        assert values.dims == ("site", "player", "target")
        if isinstance(kwargs.get("sites"), list):
            assert [int(s) for s in ds["site_id"].values] == [int(s) for s in kwargs["sites"]]
        if kwargs.get("output") == "probability":
            top = len(model.meta["species"]) if "richness" in ds["target"].values else 1.0
            for name in ("v_full", "v_empty"):
                assert ((ds[name] >= 0) & (ds[name] <= top + 1e-9)).all()
    else:
        assert values.dims == ("player",)
    if kwargs.get("interactions"):
        inter = ds["interaction"]
        assert inter.sizes["player"] == inter.sizes["player_j"] == len(players)
        assert np.isfinite(inter.values).all()


@fuzz(50)
@given(data=st.data())
def test_shapley_arguments(model, ds_few, test_ids, data):
    species = [str(s) for s in text_values(ds_few["species"].values)]
    kwargs = data.draw(shapley_kwargs(test_ids, species), label="kwargs")
    CASES["shapley"] += 1
    try:
        result = shapley(model, ds_few, **kwargs)
    except Exception as exc:  # noqa: BLE001
        check_error(exc, *(v for v in kwargs.values() if isinstance(v, (str, int, float))))
        return
    check_result(result, kwargs, model)
    ACCEPTED["shapley"] += 1


def test_shapley_with_repeated_sites_repeats_identical_rows(model, ds_few, test_ids):
    site = test_ids[0]
    result = shapley(model, ds_few, group="modalities", sites=[site, test_ids[1], site], device="cpu")
    np.testing.assert_array_equal(result["shapley"].isel(site=0).values, result["shapley"].isel(site=2).values)
    assert list(result["site_id"].values) == [site, test_ids[1], site]


# ------------------------------------------------------------------------------- load_model


@fuzz(40)
@given(mode=st.sampled_from(CORRUPTIONS + ("header_length", "header_byte")), position=st.floats(0, 1),
       seed=st.integers(0, 2**32 - 1))
def test_load_model_with_a_damaged_file(model_path, model, tmp_path, mode, position, seed):
    CASES["damaged checkpoint"] += 1
    path = tmp_path / f"case{CASES['damaged checkpoint']}.safetensors"
    shutil.copyfile(model_path, path)
    if mode == "header_length":
        data = path.read_bytes()
        length = struct.unpack("<Q", data[:8])[0]
        new = int(np.random.default_rng(seed).choice([0, 1, length - 1, length + 1, len(data), 2**63, int(position * 2**64) % 2**64]))
        path.write_bytes(struct.pack("<Q", new) + data[8:])
    elif mode == "header_byte":  # one byte inside the JSON header
        buf = bytearray(path.read_bytes())
        length = struct.unpack("<Q", bytes(buf[:8]))[0]
        i = 8 + int(position * (length - 1))
        buf[i] = (buf[i] + 1 + seed % 255) % 256
        path.write_bytes(bytes(buf))
    else:
        corrupt(path, mode, position, seed)
    try:
        loaded = load_model(path)
    except Exception as exc:  # noqa: BLE001
        check_error(exc, path.name)
        return
    # accepted only if nothing that matters changed (e.g. a byte of header padding)
    ACCEPTED["damaged checkpoint"] += 1
    reference = model.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, reference[key]), key


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)


@st.composite
def document_edit(draw, document: dict):
    """Replace or delete one value somewhere in the checkpoint's JSON document."""
    path: list = []
    node = document
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
        path.append(key)
        node = node[key]
    action = draw(st.sampled_from(["replace", "replace", "delete"])) if path else "replace"
    return path, action, draw(JSON)


@fuzz(60)
@given(data=st.data())
def test_load_model_with_a_damaged_document(model_path, model, ds_mem, tmp_path, data):
    """Valid checksum, broken content: the JSON document itself is wrong."""
    tensors, document = read_checkpoint(model_path)
    kind = data.draw(st.sampled_from(["document", "document", "whole", "tensor"]), label="kind")
    CASES["checkpoint content"] += 1
    text = json.dumps(document)
    if kind == "whole":
        text = data.draw(st.sampled_from(["[]", "null", "3", '"x"', "{}", "{", ""]) | JSON.map(json.dumps), label="document")
    elif kind == "document":
        path, action, value = data.draw(document_edit(document), label="edit")
        edited = json.loads(text)
        if not path:
            edited = value
        else:
            node = edited
            for key in path[:-1]:
                node = node[key]
            if action == "delete" and isinstance(node, dict):
                del node[path[-1]]
            elif action == "delete":
                node.pop(path[-1])
            else:
                node[path[-1]] = value
        try:
            text = json.dumps(edited, allow_nan=True)
        except (TypeError, ValueError):
            assume(False)
    else:
        key = data.draw(st.sampled_from(sorted(k for k in tensors if k.startswith("model."))), label="tensor")
        change = data.draw(st.sampled_from(["shape", "dtype", "nan", "inf", "missing", "extra", "int", "scalar", "bool"]), label="change")
        tensors = dict(tensors)
        t = tensors[key]
        if change == "shape":
            tensors[key] = torch.zeros(t.numel() + 1)
        elif change == "dtype":
            tensors[key] = t.to(torch.float16)
        elif change in ("nan", "inf"):
            bad = t.clone().reshape(-1)
            bad[data.draw(st.integers(0, bad.numel() - 1))] = float(change)
            tensors[key] = bad.reshape(t.shape)
        elif change == "missing":
            del tensors[key]
        elif change == "extra":
            tensors["model.extra.weight"] = torch.zeros(2)
        elif change == "int":
            tensors[key] = t.to(torch.int32)
        elif change == "scalar":
            tensors[key] = torch.tensor(1.0)
        else:
            tensors[key] = t > 0
    path = tmp_path / f"case{CASES['checkpoint content']}.safetensors"
    write_checkpoint(path, tensors, text)
    try:
        loaded = load_model(path)
        sites = load_split(ds_mem.isel(site=slice(0, 4)), loaded.schema, None)
        logits = loaded(sites.batch(slice(None), "cpu")[0])
    except Exception as exc:  # noqa: BLE001
        check_error(exc, path.name)
        return
    assert logits.shape == (4, loaded.config.n_outputs) and torch.isfinite(logits).all()
    ACCEPTED["checkpoint content"] += 1
    if kind == "tensor":  # a float16 copy of a weight is the only tensor change that may load
        assert change == "dtype"


# ---------------------------------------------------------------------------------- the CLI

JUNK = st.sampled_from(["", "-1", "0", "1e400", "nan", "inf", "-inf", "99999999999999999999", "é", "x,y", "::", "--",
                        "\u2028", "a\nb", "../..", "/dev/null"]) | st.text(SELECTOR_CHARS, max_size=6)


@pytest.fixture(scope="module")
def cli_paths(small, model_path, synth_raw, ds_mem, tmp_path_factory, test_ids):
    root = tmp_path_factory.mktemp("cli")
    (root / "text.txt").write_text("hello")
    (root / "existing.nc").write_bytes(b"x")
    (root / "bad.toml").write_text("[training]\nepochs = 'many'\n")
    (root / "subsets.toml").write_text('[subsets]\na = ["years:2003"]\nb = 5\n')
    result = root / "result.nc"
    ds = shapley(model_path, ds_mem, group="modalities", sites=test_ids[:3], device="cpu")
    ds.to_netcdf(result, engine="h5netcdf")
    return {
        "data": [str(small["nc"]), str(small["zarr2"]), str(root / "text.txt"), str(root / "missing.zarr"), str(root)],
        "model": [str(model_path), str(model_path.parent), str(root / "text.txt"), str(root / "missing.safetensors")],
        "raw": [str(synth_raw), str(root), str(root / "text.txt"), str(root / "missing")],
        "result": [str(result), str(root / "text.txt"), str(small["nc"]), str(root / "missing.nc")],
        "config": [str(root / "bad.toml"), "demo", "nope", str(root / "text.txt")],
        "subsets": [str(root / "subsets.toml"), "paper", str(root / "text.txt"), "nope"],
        "existing": str(root / "existing.nc"),
        "root": root,
    }


def _command_options(command: str, paths: dict, out: str) -> dict[str, tuple[st.SearchStrategy, st.SearchStrategy | None]]:
    """``{option: (valid values, bad values)}`` for one command; ``""`` is the positional argument.

    The valid values never start long work: train never gets a readable dataset, data synth and
    demo never get sizes they accept, and budgets stay small.
    """
    root = paths["root"]
    junk = JUNK
    outs = st.sampled_from([paths["existing"], str(root / "no_such_dir" / "x.nc"), str(root)])
    if command == "shapley":
        return {
            "--model": (st.sampled_from(paths["model"][:2]), st.sampled_from(paths["model"][2:])),
            "--data": (st.sampled_from(paths["data"][:2]), st.sampled_from(paths["data"][2:])),
            "--group": (st.sampled_from(SMALL_GROUPS), st.sampled_from(["nope", "Modalities"]) | junk),
            "--value": (st.sampled_from(["prediction", "performance"]), st.just("x")),
            "--method": (st.sampled_from(["auto", "exact", "permutation", "kernel"]), st.just("x")),
            "--budget": (st.sampled_from(["500", "3000"]), st.sampled_from(["0", "-5", "x", "1.5", "1"])),
            "--tol": (st.sampled_from(["0.05", "0.5"]), st.sampled_from(["nan", "-1", "inf", "x", "0"])),
            "--seed": (st.sampled_from(["0", "7"]), st.sampled_from(["-1", "x"])),
            "--context": (st.sampled_from(["none", "all"]), st.just("x")),
            "--split": (st.sampled_from(["test", "all", "val"]), st.sampled_from(["x", "TEST"]) | junk),
            "--target": (st.sampled_from(["auto", "all", "richness"]), st.sampled_from(["x,y", ",", "richness,all"]) | junk),
            "--sites": (st.none(), st.sampled_from(["", ",", "1,2", "-1", "x", "1e3"]) | junk),
            "--metric": (st.sampled_from(["auto", "neg_loss"]), st.sampled_from(["f1", "accuracy"])),
            "--device": (st.just("cpu"), st.just("tpu")),
            "--out": (st.just(out + ".nc"), outs | st.just(out + ".csv")),
        }
    if command == "evaluate":
        return {
            "--model": (st.sampled_from(paths["model"][:2]), st.sampled_from(paths["model"][2:])),
            "--data": (st.sampled_from(paths["data"][:2]), st.sampled_from(paths["data"][2:])),
            "--split": (st.sampled_from(["test", "all"]), st.just("x") | junk),
            "--subsets": (st.just("paper"), st.sampled_from([paths["subsets"][0], *paths["subsets"][2:]])),
            "--batch-size": (st.sampled_from(["7", "512"]), st.sampled_from(["0", "-1", "x"])),
            "--device": (st.just("cpu"), st.just("x")),
            "--out": (st.just(out + ".csv"), outs),
        }
    if command == "train":
        return {
            "--data": (st.sampled_from(paths["data"][2:]), None), "--config": (st.sampled_from(paths["config"]), None),
            "--strategy": (st.sampled_from(["miam", "opm"]), st.sampled_from(["nope", ""]) | junk),
            "--epochs": (st.just("1"), st.sampled_from(["0", "-1", "x"])), "--batch-size": (st.just("8"), st.sampled_from(["0", "x"])),
            "--lr": (st.just("0.001"), st.sampled_from(["nan", "-1", "x", "0"])), "--seed": (st.just("1"), st.sampled_from(["-1", "x"])),
            "--out": (st.just(out), outs),
        }
    if command == "data prepare":
        return {
            "": (st.just(paths["raw"][0]), st.sampled_from(paths["raw"][1:])),
            "--out": (st.sampled_from([out + ".zarr", out + ".nc"]), outs),
            "--split": (st.sampled_from(["spatial", "given"]), st.sampled_from(["stratified", "x"])),
            "--val": (st.just("0.15"), st.sampled_from(["-1", "2", "nan", "x", "1"])),
            "--test": (st.just("0.15"), st.sampled_from(["1", "nan", "-0.5"])),
            "--spacing": (st.sampled_from(["1", "0.5"]), st.sampled_from(["0", "-1", "1e9", "nan", "inf"])),
            "--chunk-size": (st.sampled_from(["50", "512"]), st.sampled_from(["0", "-1", "x"])),
            "--labels": (st.none(), st.sampled_from(paths["raw"][2:])),
        }
    if command == "data inspect":
        return {"": (st.sampled_from(paths["data"][:2]), st.sampled_from(paths["data"][2:]) | junk)}
    if command == "data synth":
        return {
            "--out": (st.just(out), outs), "--sites": (st.sampled_from(["-1", "0", "3"]), None),
            "--species": (st.sampled_from(["0", "-2", "x"]), None), "--seed": (st.just("0"), st.sampled_from(["-1", "x"])),
            "--heatwave-year": (st.just("2003"), st.sampled_from(["1900", "x", "3000"])),
        }
    if command == "masks":
        return {
            "--strategy": (st.sampled_from(["miam", "constant", "dirichlet"]), st.sampled_from(["nope", "MIAM"]) | junk),
            "--kappa": (st.just("10"), st.sampled_from(["nan", "-1", "0", "x", "inf"])),
            "--lam": (st.just("3"), st.sampled_from(["nan", "x", "-inf"])),
            "--ratios": (st.just("1,1,0.3"), st.sampled_from(["1,1", "1,1,0", "a,b,c", "-1,1,1", "nan,1,1"])),
            "--samples": (st.sampled_from(["50", "200"]), st.sampled_from(["0", "-1", "x"])),
            "--batch-size": (st.just("16"), st.sampled_from(["0", "x"])),
            "--param": (st.none(), st.sampled_from(["p", "p=x", "=1", "rate=2", "nope=1"])),
            "--modalities": (st.just("a,b,c"), st.sampled_from(["a,b", "a,a,a", ""])),
            "--out": (st.just(out + ".png"), outs | st.just(out + ".jpg")),
        }
    if command == "map":
        return {
            "": (st.just(paths["result"][0]), st.sampled_from(paths["result"][1:])),
            "--player": (st.sampled_from(["climate", "climate+tabular"]), st.sampled_from(["nope", "+", "", "climate+"]) | junk),
            "--target": (st.none(), junk),
            "--blocks": (st.sampled_from(["1", "0.5"]), st.sampled_from(["0", "-1", "nan", "inf", "x"])),
            "--basemap": (st.just("none"), st.sampled_from([str(root / "text.txt"), "missing.shp"])),
            "--dpi": (st.just("40"), st.sampled_from(["0", "10000", "x"])),
            "--against": (st.sampled_from(["lat", "lon"]), st.sampled_from(["nope", "Bio1", "site_id"]) | junk),
            "--data": (st.sampled_from(paths["data"][:2]), st.sampled_from(paths["data"][2:])),
            "--neighbours": (st.sampled_from(["1", "2"]), st.sampled_from(["0", "-1", "x", "1.5"])),
            "--permutations": (st.just("99"), st.sampled_from(["0", "10", "x"])),
            "--seed": (st.just("0"), st.sampled_from(["-1", "x"])),
            "--out": (st.just(out + ".png"), outs | st.just(out + ".pdf")),
        }
    if command == "demo":  # never a runnable demo: the --out is always taken by something that is no demo
        return {
            "--out": (st.sampled_from([paths["existing"], str(root / "text.txt")]), None),
            "--sites": (st.just("200"), st.sampled_from(["-1", "0", "x"])), "--heatwave-year": (st.just("2003"), st.sampled_from(["1900", "x"])),
            "--config": (st.just("demo"), st.sampled_from(paths["config"][::2])), "--device": (st.just("cpu"), st.just("x")),
        }
    return {}


REQUIRED = {"shapley": ("--model", "--group", "--out"), "evaluate": ("--model",), "train": ("--data", "--out"),
            "data prepare": ("", "--out"), "data inspect": ("",), "data synth": ("--out",), "masks": ("--out",),
            "map": ("", "--player", "--out"), "demo": ("--out",)}


#: Options always given, with a value that keeps the command from starting long work: without
#: them ``data synth`` would make 2000 sites and ``demo`` would run in the current folder.
SAFETY = {"data synth": ("--sites",), "demo": ("--out",)}


@st.composite
def command_line(draw, paths):
    """A command line: mostly valid options, zero to two of them bad, sometimes a required one left out."""
    commands = ["shapley", "evaluate", "train", "data prepare", "data inspect", "data synth", "masks", "map"]
    command = draw(st.sampled_from(commands * 3 + ["nonsense", "", "data"] + ["demo"]), label="command")
    out = str(paths["root"] / f"out{CASES['cli']}")
    options = _command_options(command, paths, out)
    argv = command.split()
    required = REQUIRED.get(command, ())
    optional = [o for o in sorted(options) if o not in required]
    chosen = [o for o in required if o in SAFETY.get(command, ()) or draw(st.integers(0, 19), label=f"drop {o or 'positional'}") < 19]
    chosen += [o for o in SAFETY.get(command, ()) if o not in chosen]
    chosen += draw(st.lists(st.sampled_from(optional), unique=True, max_size=4), label="options") if optional else []
    breakable = [o for o in chosen if options[o][1] is not None and o not in SAFETY.get(command, ())]
    broken = draw(st.sets(st.sampled_from(breakable), max_size=2), label="broken") if breakable else set()
    for option in chosen:
        valid, bad = options[option]
        value = draw(bad if option in broken else valid, label=option or "positional")
        if value is None:
            continue
        argv.extend([value] if option == "" else [option, value])
    if draw(st.integers(0, 5), label="junk argument") == 5:
        argv.append(draw(st.sampled_from(["--unknown-flag", "-x", "--interactions", "--strict", "--quiet", "extra"])))
    if command in ("shapley", "evaluate", "data prepare", "data synth") and draw(st.booleans()):
        argv.append("--quiet")
    return argv


@fuzz(40)
@given(data=st.data())
def test_command_line(cli_paths, data):
    CASES["cli"] += 1
    argv = data.draw(command_line(cli_paths), label="argv")
    if check_cli(argv) == 0:
        ACCEPTED["cli"] += 1


def test_version_and_help_exit_cleanly():
    assert run_cli(["--version"])[0] == 0
    code, out, _ = run_cli(["shapley", "--help"])
    assert code == 0 and "--group" in out
    assert run_cli([])[0] == 2


def test_public_names_are_the_documented_ones():
    assert set(miam_explain.__all__) >= {"open_dataset", "TokenSchema", "load_model", "shapley", "MiamError"}
    assert issubclass(CheckpointError, MiamError)
