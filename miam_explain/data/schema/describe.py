"""What a player is, in the data's own words: its coordinates, and one number per token for a site.

* :func:`player_coords` labels each player of a grouping with the ``modality``, ``band``,
  ``channel``, ``variable``, ``year`` and ``patch`` its tokens share (the result of a Shapley run
  carries them as coordinates along ``player``);
* :func:`token_summaries` reduces a modality's input to one scalar per token and site (the shap
  export shows it next to each value).

Both read the schema only (the layouts and the token table), so they hold for the built-in and
the user groupings alike.

Example:
    >>> from miam_explain.data.format import open_dataset
    >>> from miam_explain.data.schema import TokenSchema
    >>> schema = TokenSchema.from_dataset(open_dataset(data_path))
    >>> coords = player_coords(schema, schema.players("years"))
    >>> coords["modality"][0], int(coords["year"][0]), coords["band"][0]
    ('climate+landsat', 2000, '')
    >>> coords = player_coords(schema, schema.players("spectral_bands"))
    >>> coords["modality"].tolist(), coords["band"].tolist()
    (['sentinel2', 'sentinel2', 'sentinel2', 'sentinel2'], ['red', 'green', 'blue', 'nir'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from miam_explain.data.schema.groupings import Players
    from miam_explain.data.schema.layout import ModalityLayout
    from miam_explain.data.schema.token_schema import TokenSchema

__all__ = ["PLAYER_COORDS", "player_coords", "token_summaries"]

#: The coordinates :func:`player_coords` gives every player, in order. ``year`` is ``int64`` (-1 where
#: it does not apply); the others are strings (``""`` where they do not apply).
PLAYER_COORDS: tuple[str, ...] = ("modality", "band", "channel", "variable", "year", "patch")


def player_coords(schema: TokenSchema, players: Players) -> dict[str, np.ndarray]:
    """The coordinates of each player: what all its tokens share.

    * ``modality``: the modalities of its tokens joined by ``+`` in token order
      (``climate+landsat`` for ``years:2003``);
    * ``band``: the band when every token is an image token or a token of a time series whose
      ``channel_kind`` is ``band`` (Landsat), all of one band;
    * ``channel``: the channel when every token is a time-series token, all of one channel
      (Landsat tokens have both ``band`` and ``channel``);
    * ``variable``: the variable when every token is a tabular token, all of one variable;
    * ``year``: the year when every token is a time-series token, all of one year;
    * ``patch``: ``r{row}c{col}`` when every token is an image token, all of one patch.

    Args:
        schema: The token schema.
        players: Players of one of its groupings (``schema.players(name)``).

    Returns:
        ``{name: array[P]}`` for every name of :data:`PLAYER_COORDS`: ``year`` ``int64``, the
        others ``object`` arrays of ``str``, ``""`` (``-1`` for ``year``) where they do not apply.
    """
    table = schema.table
    band_series = {layout.name for layout in schema.layouts if layout.kind == "timeseries" and layout.channel_kind == "band"}
    modality = table["modality"].to_numpy(dtype=object)
    kind = table["kind"].to_numpy(dtype=object)
    channel = table["channel"].to_numpy(dtype=object)
    year = table["year"].to_numpy(dtype=object, na_value=None)
    patch = np.array([None if r is None else f"r{r}c{c}" for r, c in zip(
        table["patch_row"].to_numpy(dtype=object, na_value=None), table["patch_col"].to_numpy(dtype=object, na_value=None))],
        dtype=object)
    is_band = np.array([k == "image" or m in band_series for k, m in zip(kind, modality)], dtype=bool)

    def shared(values: np.ndarray, idx: np.ndarray, applies: np.ndarray) -> object | None:
        """The one value of ``values[idx]`` when every token of ``idx`` is one it ``applies`` to, else None."""
        if not applies[idx].all():
            return None
        found = {values[i] for i in idx}
        return found.pop() if len(found) == 1 else None

    out: dict[str, list] = {name: [] for name in PLAYER_COORDS}
    for idx in players.indices:
        out["modality"].append("+".join(dict.fromkeys(modality[i] for i in idx)))
        out["band"].append(shared(channel, idx, is_band))
        out["channel"].append(shared(channel, idx, kind == "timeseries"))
        out["variable"].append(shared(channel, idx, kind == "tabular"))
        out["year"].append(shared(year, idx, kind == "timeseries"))
        out["patch"].append(shared(patch, idx, kind == "image"))
    coords = {name: np.array(["" if v is None else str(v) for v in values], dtype=object)
              for name, values in out.items() if name != "year"}
    coords["year"] = np.array([-1 if v is None else int(v) for v in out["year"]], dtype=np.int64)
    return {name: coords[name] for name in PLAYER_COORDS}


def token_summaries(layout: ModalityLayout, x: np.ndarray) -> np.ndarray:
    """One number per token and site: the mean of the values the token holds (NaN, i.e. missing, ignored).

    A tabular token is its variable's value; a time-series token the mean over its steps; an image
    token the mean over its patch's pixels; an embedding token the mean of its dims.

    Args:
        layout: The modality.
        x: ``float[N, *layout.shape]``, the modality's input for ``N`` sites.

    Returns:
        ``float64[N, layout.n_tokens]`` in the modality's token order (NaN where a token holds no
        finite value).

    Example:
        >>> from miam_explain.data.schema import ModalityLayout
        >>> layout = ModalityLayout("climate", "timeseries", (2, 3, 4), labels=("tas", "pr"), years=(2000, 2001, 2002))
        >>> x = np.arange(24, dtype=float).reshape(1, 2, 3, 4)
        >>> token_summaries(layout, x)[0]  # tas 2000, 2001, 2002, then pr
        array([ 1.5,  5.5,  9.5, 13.5, 17.5, 21.5])
    """
    import warnings

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if layout.kind == "tabular":
        return x.reshape(n, layout.n_tokens).copy()
    if layout.kind == "timeseries":
        cells = x.reshape(n, layout.n_tokens, -1)
    elif layout.kind == "image":
        ye, xe = layout.patch_edges
        g, bands = layout.grid, layout.shape[0]
        crop = x[:, :, ye[0] : ye[-1], xe[0] : xe[-1]]
        ph, pw = (ye[-1] - ye[0]) // g, (xe[-1] - xe[0]) // g
        # (N, B, g*ph, g*pw) -> (N, B, g, ph, g, pw) -> (N, B, g, g, ph*pw): band, then patch row, then column
        cells = crop.reshape(n, bands, g, ph, g, pw).transpose(0, 1, 2, 4, 3, 5).reshape(n, bands * g * g, ph * pw)
    else:
        cells = x.reshape(n, 1, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN token is NaN, by design
        return np.nanmean(cells, axis=2)
