"""A Shapley result as a ``shap.Explanation``, with each site's input next to its values.

:func:`result_to_shap` puts a result's values (``values[site, player]``), ``v_empty``
(``base_values``) and players (``feature_names``) into an Explanation, and fills its ``data``
with what each player *is* at each site, read from the dataset the result explains:

* a player of **one token** (a ``variables`` or ``tokens`` player, a single-token user player): the
  token's raw (un-normalised) value, reduced to one number per site by
  :func:`~miam_explain.data.schema.token_summaries`: a tabular variable's value, the mean over the
  steps of a time-series token, the mean over the pixels of an image patch, the mean of an
  embedding's dims;
* a player of **several tokens** (a band, a year, a modality ...): the mean over its tokens of the
  token's mean *normalised* value, the inputs standardised per channel (per variable, time-series
  channel, image band, embedding dim) with the mean and standard deviation of the dataset's train
  split (all sites when it has no train split), i.e. as the model normalises them when it was
  trained on this dataset (:class:`~miam_explain.models.normalization.NormStats`). Missing
  values (NaN) are left out; a player with no finite value at a site gets NaN there.

shap's plots then colour and place the sites by their input: ``shap.plots.beeswarm``, ``bar``,
``waterfall`` (one site, ``explanation[i]``) and ``scatter`` (one player, ``explanation[:, j]``).
A performance-game result has one row and no per-site input: its ``data`` is NaN.

Example:
    >>> from miam_explain.explain import shapley
    >>> result = shapley(run_folder, group="variables", target="richness", budget_per_site=642, device="cpu")
    >>> explanation = result_to_shap(result)  # reads the dataset recorded in result.attrs["data"]
    >>> explanation.values.shape == explanation.data.shape == (result.sizes["site"], result.sizes["player"])
    True
    >>> explanation.feature_names == result["player"].values.tolist()
    True
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from miam_explain.data.format import open_dataset, read_values, select_split, text_values
from miam_explain.data.schema import TokenSchema, token_summaries
from miam_explain.errors import ConfigError, DataError
from miam_explain.explain.games import players_of
from miam_explain.models.normalization import NormStats

__all__ = ["result_to_shap", "player_inputs"]

#: Sites read at a time from the dataset.
READ_CHUNK = 1024


def result_to_shap(ds: xr.Dataset, data: xr.Dataset | str | os.PathLike | None = None, *, target: str | None = None):
    """A ``shap.Explanation`` of a result, so shap's beeswarm, bar, waterfall and scatter plots work.

    Args:
        ds: A Shapley result (:func:`~miam_explain.explain.shapley` or
            :func:`~miam_explain.explain.result.open_result`).
        data: The dataset the result explains, or its path; ``None`` opens the one recorded in
            ``ds.attrs["data"]``. Not read for a performance-game result.
        target: The output to export, when the result has several.

    Returns:
        ``shap.Explanation`` with ``values`` ``float64[N, P]``, ``base_values`` ``float64[N]``
        (``v_empty``), ``data`` ``float64[N, P]`` (each site's input per player, see the module
        docstring; NaN for a performance result, ``N = 1``) and ``feature_names`` the ``P`` players.

    Raises:
        DataError: not a Shapley result, no dataset to read (none recorded and none given), or a
            dataset that lacks the result's sites or players.
        ConfigError: a missing or unknown ``target`` on a result with several.
    """
    import shap

    if "shapley" not in ds or "player" not in ds["shapley"].dims:
        raise DataError("not a miam-explain Shapley result (no 'shapley' variable over 'player'); pass a result of shapley()")
    values, base = ds["shapley"], ds["v_empty"]
    if "target" in values.dims:
        targets = text_values(ds["target"].values).tolist()
        if target is None:
            if len(targets) > 1:
                raise ConfigError(f"the result has {len(targets)} targets; pick one with target= from {targets[:10]}")
            target = targets[0]
        if str(target) not in targets:
            raise ConfigError(f"target {target!r} is not in the result; choose from {targets[:10]}")
        values, base = values.isel(target=targets.index(str(target))), base.isel(target=targets.index(str(target)))
    players = text_values(ds["player"].values).tolist()
    if "site" in values.dims:
        array = np.asarray(values.transpose("site", "player").values, dtype=np.float64)
        base_values = np.asarray(base.values, dtype=np.float64)
        inputs = player_inputs(ds, data)
    else:
        array = np.asarray(values.values, dtype=np.float64)[None, :]
        base_values = np.asarray([float(base.values)])
        inputs = np.full_like(array, np.nan)
    return shap.Explanation(values=array, base_values=base_values, data=inputs, feature_names=players)


def player_inputs(ds: xr.Dataset, data: xr.Dataset | str | os.PathLike | None = None) -> np.ndarray:
    """Each site's input per player of a prediction-game result (the ``data`` of :func:`result_to_shap`).

    Args:
        ds: A prediction-game result (with ``site_id`` along ``site``).
        data: The dataset it explains, or its path; ``None`` for ``ds.attrs["data"]``.

    Returns:
        ``float64[N, P]``: a single-token player's raw value, a group player's mean normalised value.

    Raises:
        DataError: no dataset to read, or one that lacks the result's sites or players.
    """
    dataset = _dataset(ds, data)
    definition = str(ds.attrs.get("grouping_definition", "") or "")
    schema = TokenSchema.from_dataset(dataset)
    players = players_of(schema, str(ds.attrs.get("grouping", "")), json.loads(definition) if definition else None)
    names = text_values(ds["player"].values).tolist()
    if list(players.names) != names:
        raise DataError(
            f"the dataset's grouping {ds.attrs.get('grouping')!r} has players {list(players.names)[:5]} ..., the result "
            f"{names[:5]} ...; pass data= the dataset the result explains"
        )
    positions = _positions(dataset, np.asarray(ds["site_id"].values))
    single = all(len(idx) == 1 for idx in players.indices)
    raw, normalised = _token_values(dataset, schema, positions, norm=None if single else _norm_stats(dataset, schema))
    out = np.empty((positions.size, players.n_players), dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a player with no finite value at a site is NaN
        for p, idx in enumerate(players.indices):
            out[:, p] = raw[:, idx[0]] if len(idx) == 1 else np.nanmean(normalised[:, idx], axis=1)
    return out


def _dataset(ds: xr.Dataset, data: xr.Dataset | str | os.PathLike | None) -> xr.Dataset:
    """The dataset given, or the one the result records."""
    if isinstance(data, xr.Dataset):
        return data
    if data is None:
        recorded = str(ds.attrs.get("data", "") or "")
        if not recorded or recorded == "in-memory dataset" or not Path(recorded).exists():
            raise DataError(
                f"the result records no dataset that can be opened (data={recorded!r}); pass data= the dataset it explains"
            )
        data = recorded
    return open_dataset(data)


def _positions(dataset: xr.Dataset, site_ids: np.ndarray) -> np.ndarray:
    """``int64[N]`` positions along the dataset's ``site`` dim of the result's ``site_id`` values."""
    where = {int(s): i for i, s in enumerate(np.asarray(read_values(dataset["site_id"])))}
    missing = [int(s) for s in site_ids if int(s) not in where]
    if missing:
        raise DataError(f"site_id(s) {missing[:5]} of the result are not in the dataset; pass data= the dataset the result explains")
    return np.asarray([where[int(s)] for s in site_ids], dtype=np.int64)


def _norm_stats(dataset: xr.Dataset, schema: TokenSchema) -> NormStats:
    """The per-channel statistics of the train split (every site when there is none), as training computes them."""
    try:
        part = select_split(dataset, "train")
    except DataError:
        part = dataset
    return NormStats.from_dataset(part, schema)


def _token_values(
    dataset: xr.Dataset, schema: TokenSchema, positions: np.ndarray, *, norm: NormStats | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(raw, normalised)``: ``float64[N, T]`` token summaries of the sites at ``positions`` (``normalised`` None without ``norm``)."""
    n = positions.size
    raw = np.full((n, schema.n_tokens), np.nan)
    normalised = None if norm is None else np.full((n, schema.n_tokens), np.nan)
    order = np.argsort(positions, kind="stable")  # read in storage order
    for start in range(0, n, READ_CHUNK):
        rows = order[start : start + READ_CHUNK]
        for layout in schema.layouts:
            x = np.asarray(read_values(dataset[layout.variable].isel(site=positions[rows])), dtype=np.float64)
            raw[rows, layout.token_slice] = token_summaries(layout, x)
            if norm is not None:
                shape = (1, -1) + (1,) * (x.ndim - 2)
                mean = np.asarray(norm.mean[layout.name]).reshape(shape)
                std = np.asarray(norm.std[layout.name]).reshape(shape)
                normalised[rows, layout.token_slice] = token_summaries(layout, (x - mean) / std)
    return raw, normalised
