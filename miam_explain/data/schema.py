"""The token schema: which token is which, and the named groupings of tokens.

A :class:`TokenSchema` is the one adapter between the model's input (a flat
sequence of ``T`` tokens built from the ``x_<modality>`` variables of a
consolidated dataset) and the interpretable *players* of an explanation
(groups of tokens). It is read from a dataset's attributes and coordinates
only, so building it from a lazily opened 20 GB store is instant.

Token order (fixed, ``docs/schema.md`` has the details):

* modalities in the dataset's variable order;
* ``timeseries``: channel-major, then year (``x.reshape(N, C * Y, S)``);
* ``image``: band-major, then patch row-major ``(r, c)`` on a ``grid x grid`` cut;
* ``tabular``: one token per variable, in variable order;
* ``embedding``: one token.

Groupings map member names to token indices (``int64``, sorted). Built-in ones
come from the data (``modalities``, ``spectral_bands``, ``years``, ``patches``,
``tokens`` ...); users add more from TOML. A *selector* ``grouping:member``
names a set of tokens; :meth:`TokenSchema.select` takes a union of them.

Example:
    >>> import miam_explain
    >>> ds = miam_explain.open_dataset("data.zarr")  # doctest: +SKIP
    >>> schema = miam_explain.TokenSchema.from_dataset(ds)  # doctest: +SKIP
    >>> schema.select("spectral_bands:red,spectral_bands:nir").shape  # doctest: +SKIP
    (50,)
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import pandas as pd

from miam_explain._io import read_toml
from miam_explain.data.format import KIND_ROLES, dim_name, modality_names
from miam_explain.errors import DataError, SchemaError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import xarray as xr

    from miam_explain.typing import TokenIndices

__all__ = ["ModalityLayout", "Players", "TokenSchema", "SCHEMA_FORMAT", "BUILTIN_GROUPINGS"]

#: Value of the ``format`` key of :meth:`TokenSchema.to_dict`.
SCHEMA_FORMAT = "miam-explain token schema v1"

#: Built-in grouping names that do not depend on modality names. Together with
#: ``<m>_bands``, ``<m>_channels`` and ``<m>_years`` of the time series they can
#: never be redefined by a user grouping.
BUILTIN_GROUPINGS: tuple[str, ...] = (
    "modalities",
    "spectral_bands",
    "years",
    "patches",
    "variables",
    "variable_groups",
    "tokens",
)

#: Selectors that are not groupings: every token, and no token.
_SPECIAL_SELECTORS = ("all", "none")
#: How many valid names an error message lists before "... and N more".
_MAX_LISTED = 30
_SELECTOR_SYNTAX = (
    "write GROUPING:MEMBER (e.g. 'spectral_bands:nir', 'years:2003'), a bare GROUPING for all its members, "
    "'all' or 'none'; separate several selectors with commas"
)

#: ``{grouping: {member: selectors}}``, where selectors is one string or a list of strings.
GroupingSpec = Mapping[str, Mapping[str, Union[str, Sequence[str]]]]


def _empty_indices() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


def _frozen(indices: np.ndarray) -> np.ndarray:
    """Sorted, unique, read-only ``int64`` copy of ``indices``."""
    out = np.unique(np.asarray(indices, dtype=np.int64))
    out.setflags(write=False)
    return out


def _name_list(names: Sequence[str], limit: int = _MAX_LISTED) -> str:
    """``'a, b, c'`` or ``'a, b, ... and 12 more'``."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... and {len(names) - limit} more"


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


# --------------------------------------------------------------------------------------------
# One modality
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModalityLayout:
    """Where one modality's tokens sit in the global order, and how to cut them from ``x_<name>``.

    This is everything a tokenizer needs. With ``x = ds[layout.variable]`` of shape
    ``(N, *layout.shape)``, the modality's tokens ``layout.start .. layout.stop - 1`` are, in order:

    * ``timeseries`` ``(N, C, Y, S)``: ``x.reshape(N, C * Y, S)``: token ``(c, y)`` holds the
      ``S`` steps of channel ``c`` in year ``y`` (channel-major, then year);
    * ``image`` ``(N, B, H, W)``: for band ``b``, patch row ``r``, patch column ``c`` (in that
      nesting order) the pixels ``x[:, b, ye[r]:ye[r+1], xe[c]:xe[c+1]]`` with
      ``ye, xe = layout.patch_edges`` (a centre crop to the largest multiple of ``grid``,
      so every patch has the same size);
    * ``tabular`` ``(N, V)``: token ``v`` is the scalar ``x[:, v]``;
    * ``embedding`` ``(N, D)``: one token holding the ``D`` values.

    Attributes:
        name: Modality name; the data variable is ``x_<name>``.
        kind: ``tabular``, ``timeseries``, ``image`` or ``embedding``.
        shape: Non-site shape of ``x_<name>``, in the role order of
            :data:`~miam_explain.data.format.KIND_ROLES` (e.g. ``(channel, year, step)``).
        labels: Names along the first non-site dim: the channels (timeseries), bands (image)
            or variables (tabular); empty for an embedding.
        years: The years of a time series, in data order; empty otherwise.
        grid: Patches per side of an image; 0 otherwise.
        channel_kind: The ``channel_kind`` attribute of a time series (``"band"`` makes a
            ``<name>_bands`` grouping), else ``None``.
        groups: Variable groups of a tabular modality, ``((group, (variable, ...)), ...)``,
            from its ``groups`` attribute; empty otherwise.
        start: Index of the modality's first token in the global token order (set by
            :class:`TokenSchema`).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    labels: tuple[str, ...] = ()
    years: tuple[int, ...] = ()
    grid: int = 0
    channel_kind: str | None = None
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    start: int = 0

    def __post_init__(self) -> None:
        where = f"x_{self.name}"
        if self.kind not in KIND_ROLES:
            raise DataError(f"{where} has kind {self.kind!r}; it must be one of {', '.join(KIND_ROLES)}")
        roles = KIND_ROLES[self.kind]
        if len(self.shape) != len(roles):
            raise DataError(f"{where} must have {len(roles)} non-site dims ({', '.join(roles)}), found shape {self.shape}")
        if any(n < 1 for n in self.shape):
            raise DataError(f"{where} has an empty dimension (shape {self.shape}); every modality needs at least one token")
        if self.kind != "embedding":
            if len(self.labels) != self.shape[0]:
                raise DataError(f"{where}: {len(self.labels)} {roles[0]} names for {self.shape[0]} entries; give each {roles[0]} one name")
            if len(set(self.labels)) != len(self.labels):
                dup = sorted({n for n in self.labels if self.labels.count(n) > 1})
                raise DataError(f"{where}: duplicate {roles[0]} names {dup}; give every {roles[0]} a unique name")
        elif self.labels:
            raise DataError(f"{where}: an embedding has no labels; drop the {roles[0]} names")
        if self.kind == "timeseries":
            if len(self.years) != self.shape[1]:
                raise DataError(f"{where}: {len(self.years)} years for a year dim of length {self.shape[1]}; give each year once")
            if len(set(self.years)) != len(self.years):
                raise DataError(f"{where}: duplicate years in the {dim_name(self.name, 'year')} coordinate; give every year once")
        elif self.years:
            raise DataError(f"{where}: only a time series has years; drop them")
        if self.kind == "image":
            height, width = self.shape[1], self.shape[2]
            if not 1 <= self.grid <= min(height, width):
                raise DataError(
                    f"{where}: grid={self.grid} cannot cut a {height}x{width} image into patches; "
                    f"set the attribute grid to an integer in 1..{min(height, width)}"
                )
        elif self.grid:
            raise DataError(f"{where}: only an image has a grid; drop the grid attribute")
        if self.groups and self.kind != "tabular":
            raise DataError(f"{where}: only a tabular modality has variable groups; drop the groups attribute")
        known = set(self.labels)
        for group, variables in self.groups:
            unknown = [v for v in variables if v not in known]
            if unknown:
                raise DataError(
                    f"{where}: group {group!r} names variables that are not in {dim_name(self.name, 'variable')}: "
                    f"{_name_list(unknown)}; fix the 'groups' attribute"
                )

    @property
    def variable(self) -> str:
        """Name of the data variable, ``x_<name>``."""
        return f"x_{self.name}"

    @property
    def token_shape(self) -> tuple[int, ...]:
        """The tokens of this modality as a grid, C-ordered: ``(C, Y)``, ``(B, grid, grid)``, ``(V,)`` or ``(1,)``."""
        if self.kind == "timeseries":
            return (self.shape[0], self.shape[1])
        if self.kind == "image":
            return (self.shape[0], self.grid, self.grid)
        if self.kind == "tabular":
            return (self.shape[0],)
        return (1,)

    @property
    def n_tokens(self) -> int:
        """Number of tokens of this modality."""
        return int(np.prod(self.token_shape))

    @property
    def stop(self) -> int:
        """One past the index of the modality's last token."""
        return self.start + self.n_tokens

    @property
    def token_slice(self) -> slice:
        """``slice(start, stop)``: this modality's tokens in the global order."""
        return slice(self.start, self.stop)

    @property
    def patch_edges(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Pixel edges ``(ye, xe)`` of the patches of an image, each ``grid + 1`` long.

        The image is centre-cropped to the largest multiple of ``grid`` so that all
        patches have the same size (the tokenizer's linear projection needs one size):
        with ``ph = H // grid`` and ``y0 = (H - ph * grid) // 2``, edge ``i`` is
        ``y0 + i * ph`` (resp. ``W``). Patch ``(r, c)`` covers rows ``ye[r]:ye[r+1]``
        and columns ``xe[c]:xe[c+1]``; the few border pixels outside are in no token.
        Empty for other kinds.
        """
        if self.kind != "image":
            return ((), ())
        g = self.grid

        def edges(size: int) -> tuple[int, ...]:
            step = size // g
            offset = (size - step * g) // 2
            return tuple(offset + i * step for i in range(g + 1))

        return edges(self.shape[1]), edges(self.shape[2])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description (without ``start``, which the schema derives)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "labels": list(self.labels),
            "years": list(self.years),
            "grid": self.grid,
            "channel_kind": self.channel_kind,
            "groups": {group: list(variables) for group, variables in self.groups},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModalityLayout:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            shape=tuple(int(n) for n in data["shape"]),
            labels=tuple(str(n) for n in data.get("labels", ())),
            years=tuple(int(y) for y in data.get("years", ())),
            grid=int(data.get("grid", 0)),
            channel_kind=None if data.get("channel_kind") is None else str(data["channel_kind"]),
            groups=tuple((str(g), tuple(str(v) for v in vs)) for g, vs in dict(data.get("groups", {})).items()),
        )

    def _token_rows(self) -> list[tuple[str, str | None, int | None, int | None, int | None]]:
        """``(name, channel, year, patch_row, patch_col)`` of each token, in order."""
        m = self.name
        if self.kind == "timeseries":
            return [(f"{m}:{ch}:{yr}", ch, yr, None, None) for ch in self.labels for yr in self.years]
        if self.kind == "image":
            g = range(self.grid)
            return [(f"{m}:{b}:r{r}c{c}", b, None, r, c) for b in self.labels for r in g for c in g]
        if self.kind == "tabular":
            return [(f"{m}:{v}", v, None, None, None) for v in self.labels]
        return [(m, None, None, None, None)]


def _layout_from_dataset(ds: xr.Dataset, modality: str) -> ModalityLayout:
    """Read one modality's layout from attrs, dims and coords (never the values)."""
    var = ds[f"x_{modality}"]
    where = f"x_{modality}"
    kind = var.attrs.get("kind")
    if kind not in KIND_ROLES:
        raise DataError(f"{where} has kind {kind!r}; it must be one of {', '.join(KIND_ROLES)}")
    roles = KIND_ROLES[kind]
    expected = ("site", *(dim_name(modality, role) for role in roles))
    if tuple(var.dims) != expected:
        raise DataError(f"{where} must have dims {expected}, found {tuple(var.dims)}")
    attr_roles = var.attrs.get("roles")
    if attr_roles is not None:
        found = tuple(r.strip() for r in str(attr_roles).split(",") if r.strip())
        if found != roles:
            raise DataError(f"{where} attribute roles={attr_roles!r} must be {','.join(roles)!r}")
    shape = tuple(int(n) for n in var.shape[1:])

    def coord(role: str) -> list[Any]:
        dim = dim_name(modality, role)
        n = shape[roles.index(role)]
        if dim not in ds.coords:
            return list(range(n))
        values = np.asarray(ds.coords[dim].values)
        if role == "year" and np.issubdtype(values.dtype, np.datetime64):
            values = values.astype("datetime64[Y]").astype(np.int64) + 1970
        return list(values.tolist())

    labels: tuple[str, ...] = ()
    years: tuple[int, ...] = ()
    grid = 0
    channel_kind = None
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if kind != "embedding":
        labels = tuple(str(v) for v in coord(roles[0]))
    if kind == "timeseries":
        try:
            raw_years = coord("year")
            years = tuple(int(y) for y in raw_years)
            if any(isinstance(r, float) and y != r for y, r in zip(years, raw_years)):
                raise ValueError("not whole")
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{where}: the {dim_name(modality, 'year')} coordinate must hold integer years") from None
        if var.attrs.get("channel_kind") is not None:
            channel_kind = str(var.attrs["channel_kind"])
    if kind == "image":
        raw_grid = var.attrs.get("grid", 5)
        try:
            grid = int(raw_grid)
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{where}: attribute grid={raw_grid!r} must be an integer") from None
        if grid != raw_grid and not (isinstance(raw_grid, str) and raw_grid.strip() == str(grid)):
            raise DataError(f"{where}: attribute grid={raw_grid!r} must be an integer")
    if kind == "tabular" and var.attrs.get("groups") is not None:
        groups = _parse_groups(var.attrs["groups"], where)
    return ModalityLayout(
        name=modality,
        kind=kind,
        shape=shape,
        labels=labels,
        years=years,
        grid=grid,
        channel_kind=channel_kind,
        groups=groups,
    )


def _parse_groups(raw: Any, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The ``groups`` attribute (a JSON string or a mapping) as ``((group, (variable, ...)), ...)``."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: attribute groups is not valid JSON ({exc.msg}); write a JSON object group -> [variables]") from None
    if not isinstance(raw, Mapping) or not all(
        isinstance(vs, Sequence) and not isinstance(vs, str) and all(isinstance(v, str) for v in vs) for vs in raw.values()
    ):
        raise DataError(f"{where}: attribute groups must map each group name to a list of variable names")
    return tuple((str(group), tuple(variables)) for group, variables in raw.items() if len(variables) > 0)


# --------------------------------------------------------------------------------------------
# Players
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Players:
    """The players of one grouping: its members (aliases excluded) and their tokens.

    Attributes:
        grouping: Name of the grouping.
        names: Member names, ``P`` of them, in the grouping's natural order.
        indices: Token indices of each member (``int64[k_p]``, sorted), aligned with ``names``.
        n_tokens: Number of tokens ``T`` of the schema.
    """

    grouping: str
    names: tuple[str, ...]
    indices: tuple[np.ndarray, ...]
    n_tokens: int

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name} ({len(idx)})" for name, idx in zip(self.names, self.indices))
        return f"Players({self.grouping!r}, {self.n_players} players of {self.n_tokens} tokens: {sizes})"

    @property
    def n_players(self) -> int:
        """Number of players ``P``."""
        return len(self.names)

    def token_matrix(self) -> np.ndarray:
        """``bool[P, T]``: ``True`` where token ``t`` belongs to player ``p``.

        A coalition ``keep: bool[C, P]`` makes the token keep-mask
        ``(keep.astype(int) @ matrix) > 0`` (``bool[C, T]``).
        """
        matrix = np.zeros((self.n_players, self.n_tokens), dtype=bool)
        for p, idx in enumerate(self.indices):
            matrix[p, idx] = True
        return matrix

    def covered(self) -> np.ndarray:
        """``bool[T]``: ``True`` for the tokens that belong to some player (the rest is context)."""
        out = np.zeros(self.n_tokens, dtype=bool)
        for idx in self.indices:
            out[idx] = True
        return out


# --------------------------------------------------------------------------------------------
# The schema
# --------------------------------------------------------------------------------------------


class TokenSchema:
    """One row per token of the model input, and named groupings of tokens.

    Build it with :meth:`from_dataset` (or :meth:`from_dict` from a checkpoint).
    Two schemas are equal (``==``) when they describe the same tokens: the same
    modalities, in the same order, with the same kinds, shapes, names, years,
    grids, channel kinds and variable groups. User groupings are analysis
    choices, not model facts, and take no part in equality.

    Args:
        layouts: The modalities, in token order; their ``start`` is recomputed.
        groupings: User groupings ``{name: {member: selectors}}`` (see
            :meth:`from_dataset`).

    Raises:
        DataError: the layouts are inconsistent, or built-in grouping names collide.
        SchemaError: a user grouping is not valid.

    Example:
        >>> schema = TokenSchema.from_dataset(ds)  # doctest: +SKIP
        >>> schema.members("patches")[:3]  # doctest: +SKIP
        ['r0c0', 'r0c1', 'r0c2']
        >>> players = schema.players("spectral_bands")  # doctest: +SKIP
        >>> players.names, [len(i) for i in players.indices]  # doctest: +SKIP
        (('red', 'green', 'blue', 'nir'), [25, 25, 25, 25])
    """

    def __init__(self, layouts: Sequence[ModalityLayout], *, groupings: GroupingSpec | None = None) -> None:
        if not layouts:
            raise DataError("the dataset has no modality variables (named x_<modality>)")
        placed: list[ModalityLayout] = []
        start = 0
        for layout in layouts:
            placed.append(replace(layout, start=start))
            start += layout.n_tokens
        names = [layout.name for layout in placed]
        if len(set(names)) != len(names):
            raise DataError(f"duplicate modality names {names}; give every modality its own name")
        self._layouts: tuple[ModalityLayout, ...] = tuple(placed)
        self._n_tokens = start

        rows = [row for layout in placed for row in layout._token_rows()]
        self._token_names: tuple[str, ...] = tuple(row[0] for row in rows)
        if len(set(self._token_names)) != len(self._token_names):
            counts = pd.Series(self._token_names).value_counts()
            dup = str(counts.index[0])
            raise DataError(f"two tokens are both named {dup!r}; rename a modality, channel, band or variable")
        self._rows = rows
        modality_of_token = np.concatenate(
            [np.full(layout.n_tokens, m, dtype=np.int64) for m, layout in enumerate(placed)]
        )
        modality_of_token.setflags(write=False)
        self._modality_of_token = modality_of_token

        self._groupings: dict[str, dict[str, np.ndarray]] = {}
        self._aliases: dict[str, dict[str, str]] = {}
        self._build_builtin()
        self._builtin_names: tuple[str, ...] = tuple(self._groupings)
        self._user_spec: dict[str, dict[str, tuple[str, ...]]] = {}
        for name, members in _normalize_spec(groupings).items():
            self._add_user_grouping(name, members)

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_dataset(
        cls,
        ds: xr.Dataset,
        *,
        groupings: str | os.PathLike | GroupingSpec | None = None,
    ) -> TokenSchema:
        """Read the token schema of a consolidated dataset.

        Only attributes, dims and coordinates are read; the data arrays are never loaded.

        Args:
            ds: A consolidated dataset (see :mod:`miam_explain.data.format`); its
                ``x_<modality>`` variables define the tokens.
            groupings: Extra user groupings: a path to a TOML file with
                ``[groupings.NAME]`` tables, or the mapping ``{NAME: {member: selectors}}``
                (i.e. the ``groupings`` table itself). ``selectors`` is a list of selector
                strings (or one, possibly comma-separated, string); it may name built-in
                groupings and user groupings defined before it.

        Returns:
            The schema.

        Raises:
            DataError: a modality variable breaks the consolidated format.
            ConfigError: the TOML file cannot be read.
            SchemaError: a user grouping redefines a built-in one or uses an unknown selector.
        """
        layouts = [_layout_from_dataset(ds, modality) for modality in modality_names(ds)]
        return cls(layouts, groupings=_load_groupings(groupings))

    def with_groupings(self, groupings: str | os.PathLike | GroupingSpec | None) -> TokenSchema:
        """A copy of this schema with user ``groupings`` added to the ones it has.

        Args:
            groupings: As in :meth:`from_dataset`.

        Raises:
            SchemaError: a name is already taken, or a selector is unknown.
        """
        spec: dict[str, Any] = {name: dict(members) for name, members in self._user_spec.items()}
        for name, members in _normalize_spec(_load_groupings(groupings)).items():
            if name in spec:
                raise SchemaError(f"user grouping {name!r} is already defined; choose another name")
            spec[name] = members
        return TokenSchema(self._layouts, groupings=spec)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain description (for a checkpoint's metadata).

        Returns:
            ``{"format": ..., "modalities": [layout, ...], "groupings": {name: {member: [selector, ...]}}}``.
        """
        return {
            "format": SCHEMA_FORMAT,
            "modalities": [layout.to_dict() for layout in self._layouts],
            "groupings": {name: {m: list(s) for m, s in members.items()} for name, members in self._user_spec.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenSchema:
        """Inverse of :meth:`to_dict`.

        Raises:
            SchemaError: ``data`` is not a token schema written by :meth:`to_dict`.
        """
        if not isinstance(data, Mapping) or data.get("format") != SCHEMA_FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise SchemaError(f"not a token schema (format {found!r}, expected {SCHEMA_FORMAT!r}); pass the output of TokenSchema.to_dict()")
        try:
            layouts = [ModalityLayout.from_dict(item) for item in data["modalities"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"token schema dictionary is damaged ({type(exc).__name__}: {exc}); re-create it with TokenSchema.to_dict()") from None
        return cls(layouts, groupings=data.get("groupings") or None)

    # ---- tokens ------------------------------------------------------------------------

    @property
    def n_tokens(self) -> int:
        """Number of tokens ``T``."""
        return self._n_tokens

    def __len__(self) -> int:
        return self._n_tokens

    @property
    def modalities(self) -> list[str]:
        """Modality names, in token order."""
        return [layout.name for layout in self._layouts]

    @property
    def layouts(self) -> tuple[ModalityLayout, ...]:
        """What a tokenizer needs per modality, in token order (see :class:`ModalityLayout`)."""
        return self._layouts

    def layout(self, modality: str) -> ModalityLayout:
        """The :class:`ModalityLayout` of one modality.

        Raises:
            SchemaError: unknown modality.
        """
        for layout in self._layouts:
            if layout.name == modality:
                return layout
        raise SchemaError(
            f"unknown modality {modality!r}; {_did_you_mean(str(modality), self.modalities)}"
            f"valid modalities: {_name_list(self.modalities)}"
        )

    @property
    def token_names(self) -> tuple[str, ...]:
        """Name of every token (``climate:tas:2003``, ``sentinel2:nir:r2c2``, ``tabular:Bio1``, ``<embedding>``)."""
        return self._token_names

    @property
    def modality_of_token(self) -> np.ndarray:
        """``int64[T]``: index into :attr:`modalities` of each token (read-only)."""
        return self._modality_of_token

    @cached_property
    def _table(self) -> pd.DataFrame:
        modality = [layout.name for layout in self._layouts for _ in range(layout.n_tokens)]
        kind = [layout.kind for layout in self._layouts for _ in range(layout.n_tokens)]
        return pd.DataFrame(
            {
                "token": np.arange(self._n_tokens, dtype=np.int64),
                "name": pd.Series([r[0] for r in self._rows], dtype=object),
                "modality": pd.Series(modality, dtype=object),
                "kind": pd.Series(kind, dtype=object),
                "channel": pd.Series([r[1] for r in self._rows], dtype=object),
                "year": pd.array([r[2] for r in self._rows], dtype="Int64"),
                "patch_row": pd.array([r[3] for r in self._rows], dtype="Int64"),
                "patch_col": pd.array([r[4] for r in self._rows], dtype="Int64"),
            }
        )

    @property
    def table(self) -> pd.DataFrame:
        """One row per token (a fresh copy).

        Columns: ``token`` (int64), ``name``, ``modality``, ``kind``, ``channel``
        (channel, band or variable name; ``None`` for an embedding), ``year``,
        ``patch_row``, ``patch_col`` (nullable ``Int64``, ``<NA>`` where it does not apply).
        """
        return self._table.copy()

    # ---- groupings ---------------------------------------------------------------------

    @property
    def grouping_names(self) -> list[str]:
        """Every grouping of this schema: the built-in ones, then the user ones."""
        return list(self._groupings)

    @property
    def builtin_groupings(self) -> list[str]:
        """The built-in groupings of this schema (those that exist for this data)."""
        return list(self._builtin_names)

    @property
    def user_groupings(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """The user groupings as given: ``{name: {member: (selector, ...)}}``."""
        return {name: dict(members) for name, members in self._user_spec.items()}

    def grouping(self, name: str) -> dict[str, np.ndarray]:
        """Members (aliases excluded) of one grouping and their token indices.

        Args:
            name: A grouping name.

        Returns:
            ``{member: int64[k]}`` in the grouping's natural order; the arrays are sorted and read-only.

        Raises:
            SchemaError: unknown grouping.
        """
        return dict(self._get_grouping(name, selector=None))

    def members(self, grouping: str) -> list[str]:
        """Member names of a grouping (the players; aliases excluded), in natural order.

        Raises:
            SchemaError: unknown grouping.
        """
        return list(self._get_grouping(grouping, selector=None))

    def aliases(self, grouping: str) -> dict[str, str]:
        """``{alias: member}`` of a grouping (e.g. ``{"center": "r2c2"}`` for ``patches``).

        Raises:
            SchemaError: unknown grouping.
        """
        self._get_grouping(grouping, selector=None)
        return dict(self._aliases.get(grouping, {}))

    def players(self, grouping: str) -> Players:
        """The players of a grouping (no aliases) and their token indices.

        Args:
            grouping: A grouping name.

        Returns:
            A :class:`Players` with ``names`` and ``indices`` aligned.

        Raises:
            SchemaError: unknown grouping.
        """
        members = self._get_grouping(grouping, selector=None)
        return Players(
            grouping=grouping,
            names=tuple(members),
            indices=tuple(members.values()),
            n_tokens=self._n_tokens,
        )

    # ---- selectors ---------------------------------------------------------------------

    def select(self, selectors: str | Sequence[str]) -> TokenIndices:
        """Token indices named by a union of selectors.

        Args:
            selectors: One selector string or a list of them. A selector is
                ``grouping:member`` (split on the first colon, so ``tokens:climate:tas:2003``
                works), a bare ``grouping`` (all its members), ``all`` or ``none``. A
                string may hold several selectors separated by commas.

        Returns:
            ``int64[k]``: the sorted union of the selected token indices.

        Raises:
            SchemaError: an unknown grouping or member, or a malformed selector.

        Example:
            >>> schema.select(["years:2003", "modalities:tabular"])  # doctest: +SKIP
        """
        parts = self._split_selectors(selectors)
        if not parts:
            return _empty_indices()
        chunks = [self._resolve(part) for part in parts]
        return np.unique(np.concatenate(chunks)).astype(np.int64, copy=False)

    def keep_vector(self, selectors: str | Sequence[str]) -> np.ndarray:
        """``bool[T]``: ``True`` (visible) for the tokens named by ``selectors`` (see :meth:`select`)."""
        keep = np.zeros(self._n_tokens, dtype=bool)
        keep[self.select(selectors)] = True
        return keep

    def _split_selectors(self, selectors: Any) -> list[str]:
        if isinstance(selectors, str):
            items: list[Any] = [selectors]
        elif isinstance(selectors, Iterable) and not isinstance(selectors, (bytes, Mapping)):
            items = list(selectors)
        else:
            raise SchemaError(f"selectors must be a string or a list of strings, got {type(selectors).__name__}; {_SELECTOR_SYNTAX}")
        parts: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise SchemaError(f"selector {item!r} is a {type(item).__name__}, not a string; {_SELECTOR_SYNTAX}")
            whole = item.strip()
            # A member name may itself contain a comma: take the whole string when it resolves as one selector.
            if "," in whole and self._is_known(whole):
                parts.append(whole)
            else:
                parts.extend(piece.strip() for piece in item.split(","))
        return parts

    def _is_known(self, selector: str) -> bool:
        grouping, sep, member = selector.partition(":")
        grouping, member = grouping.strip(), member.strip()
        if not sep:
            return grouping in self._groupings
        return grouping in self._groupings and (
            member in self._groupings[grouping] or member in self._aliases.get(grouping, {})
        )

    def _resolve(self, selector: str) -> np.ndarray:
        """Token indices of one selector (already split on commas and stripped)."""
        if selector == "all":
            return np.arange(self._n_tokens, dtype=np.int64)
        if selector == "none":
            return _empty_indices()
        grouping, sep, member = selector.partition(":")
        grouping, member = grouping.strip(), member.strip()
        if not grouping or (sep and not member):
            raise SchemaError(f"malformed selector {selector!r}; {_SELECTOR_SYNTAX}")
        if grouping in _SPECIAL_SELECTORS:
            raise SchemaError(f"malformed selector {selector!r}: {grouping!r} takes no member; {_SELECTOR_SYNTAX}")
        members = self._get_grouping(grouping, selector=selector)
        if not sep:
            return np.concatenate([_empty_indices(), *members.values()])
        if member in members:
            return members[member]
        aliases = self._aliases.get(grouping, {})
        if member in aliases:
            return members[aliases[member]]
        alias_note = f" (aliases: {', '.join(aliases)})" if aliases else ""
        raise SchemaError(
            f"unknown member {member!r} of grouping {grouping!r} in selector {selector!r}; "
            f"{_did_you_mean(member, [*members, *aliases])}"
            f"valid members: {_name_list(list(members))}{alias_note}"
        )

    def _get_grouping(self, name: str, *, selector: str | None) -> dict[str, np.ndarray]:
        if isinstance(name, str) and name in self._groupings:
            return self._groupings[name]
        where = f" in selector {selector!r}" if selector is not None else ""
        raise SchemaError(
            f"unknown grouping {name!r}{where}; {_did_you_mean(str(name), self.grouping_names)}"
            f"valid groupings: {_name_list(self.grouping_names)}"
        )

    # ---- comparison --------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenSchema):
            return NotImplemented
        return self._layouts == other._layouts

    def __hash__(self) -> int:
        return hash(self._layouts)

    def diff(self, other: TokenSchema, *, labels: tuple[str, str] = ("this schema", "the other")) -> str:
        """The first difference between the tokens of two schemas, in words.

        Args:
            other: The schema to compare with.
            labels: How to call ``self`` and ``other`` in the sentence, e.g.
                ``("the checkpoint", "the data")``.

        Returns:
            One line such as ``"modality landsat: 126 tokens in the checkpoint, 84 in the data
            (landsat_year has 21 entries in the checkpoint, 14 in the data)"``, or ``""``
            when the schemas are equal.
        """
        a_name, b_name = labels
        a_mods, b_mods = self.modalities, other.modalities
        for m in a_mods:
            if m not in b_mods:
                return f"modality {m} is in {a_name} but not in {b_name} (which has {', '.join(b_mods)})"
        for m in b_mods:
            if m not in a_mods:
                return f"modality {m} is in {b_name} but not in {a_name} (which has {', '.join(a_mods)})"
        if a_mods != b_mods:
            return f"the modalities are in a different order: {', '.join(a_mods)} in {a_name}, {', '.join(b_mods)} in {b_name}"
        for a, b in zip(self._layouts, other._layouts):
            text = _layout_diff(a, b, a_name, b_name)
            if text:
                return text
        return ""

    def __repr__(self) -> str:
        mods = ", ".join(f"{layout.name} ({layout.kind}, {layout.n_tokens})" for layout in self._layouts)
        return f"TokenSchema({self._n_tokens} tokens: {mods}; groupings: {', '.join(self._groupings)})"

    # ---- grouping construction ---------------------------------------------------------

    def _build_builtin(self) -> None:
        layouts = self._layouts
        groupings: list[tuple[str, dict[str, np.ndarray]]] = []

        groupings.append(("modalities", {lay.name: np.arange(lay.start, lay.stop) for lay in layouts}))

        images = [lay for lay in layouts if lay.kind == "image"]
        series = [lay for lay in layouts if lay.kind == "timeseries"]
        tables = [lay for lay in layouts if lay.kind == "tabular"]

        bands: dict[str, list[np.ndarray]] = {}
        for lay in images:
            per_band = lay.grid * lay.grid
            for b, band in enumerate(lay.labels):
                bands.setdefault(band, []).append(lay.start + b * per_band + np.arange(per_band))
        if bands:
            groupings.append(("spectral_bands", {k: np.concatenate(v) for k, v in bands.items()}))

        patches: dict[tuple[int, int], list[np.ndarray]] = {}
        for lay in images:
            g = lay.grid
            band_offsets = lay.start + np.arange(len(lay.labels)) * g * g
            for r in range(g):
                for c in range(g):
                    patches.setdefault((r, c), []).append(band_offsets + r * g + c)
        if patches:
            groupings.append(
                ("patches", {f"r{r}c{c}": np.concatenate(patches[(r, c)]) for (r, c) in sorted(patches)})
            )
            grids = {lay.grid for lay in images}
            if len(grids) == 1 and (g := grids.pop()) % 2 == 1:
                self._aliases["patches"] = {"center": f"r{g // 2}c{g // 2}"}

        years: dict[int, list[np.ndarray]] = {}
        per_series_years: list[tuple[str, dict[str, np.ndarray]]] = []
        per_series_bands: list[tuple[str, dict[str, np.ndarray]]] = []
        per_series_channels: list[tuple[str, dict[str, np.ndarray]]] = []
        for lay in series:
            n_channels, n_years = len(lay.labels), len(lay.years)
            own = {year: lay.start + np.arange(n_channels) * n_years + y for y, year in enumerate(lay.years)}
            for year, idx in own.items():
                years.setdefault(year, []).append(idx)
            per_series_years.append((f"{lay.name}_years", {str(year): own[year] for year in sorted(own)}))
            per_channel = {ch: lay.start + c * n_years + np.arange(n_years) for c, ch in enumerate(lay.labels)}
            if lay.channel_kind == "band":
                per_series_bands.append((f"{lay.name}_bands", per_channel))
            per_series_channels.append((f"{lay.name}_channels", per_channel))
        if years:
            groupings.append(("years", {str(year): np.concatenate(years[year]) for year in sorted(years)}))
        groupings.extend([*per_series_years, *per_series_bands, *per_series_channels])

        variables: dict[str, list[np.ndarray]] = {}
        var_groups: dict[str, list[np.ndarray]] = {}
        for lay in tables:
            index = {v: lay.start + i for i, v in enumerate(lay.labels)}
            for v, t in index.items():
                variables.setdefault(v, []).append(np.array([t]))
            grouped: set[str] = set()
            for group, members in lay.groups:
                var_groups.setdefault(group, []).append(np.array([index[v] for v in members]))
                grouped.update(members)
            rest = [t for v, t in index.items() if v not in grouped]
            if rest:
                var_groups.setdefault("other", []).append(np.array(rest))
        if variables:
            groupings.append(("variables", {k: np.concatenate(v) for k, v in variables.items()}))
        if var_groups:
            if "other" in var_groups:  # "other" last, even when a modality names a group so
                var_groups["other"] = var_groups.pop("other")
            groupings.append(("variable_groups", {k: np.concatenate(v) for k, v in var_groups.items()}))

        groupings.append(("tokens", {name: np.array([t]) for t, name in enumerate(self._token_names)}))

        for name, members in groupings:
            if name in self._groupings:
                raise DataError(
                    f"two built-in groupings are both named {name!r} (a modality name clashes with a built-in "
                    "grouping); rename the modality"
                )
            self._groupings[name] = {member: _frozen(idx) for member, idx in members.items()}

    def _add_user_grouping(self, name: str, members: Mapping[str, tuple[str, ...]]) -> None:
        if name in self._builtin_names or name in BUILTIN_GROUPINGS or name in _SPECIAL_SELECTORS:
            raise SchemaError(
                f"user grouping {name!r} would redefine a built-in grouping; choose another name "
                f"(built-in: {_name_list([*self._builtin_names, *_SPECIAL_SELECTORS])})"
            )
        if name in self._groupings:
            raise SchemaError(f"user grouping {name!r} is defined twice; choose another name")
        resolved: dict[str, np.ndarray] = {}
        for member, selectors in members.items():
            try:
                indices = self.select(list(selectors))
            except SchemaError as exc:
                raise SchemaError(f"user grouping {name!r}, member {member!r}: {exc}") from None
            if indices.size == 0:
                raise SchemaError(f"user grouping {name!r}, member {member!r} selects no tokens; give it at least one selector that names tokens")
            resolved[member] = _frozen(indices)
        self._groupings[name] = resolved
        self._user_spec[name] = dict(members)


def _layout_diff(a: ModalityLayout, b: ModalityLayout, a_name: str, b_name: str) -> str:
    """First difference between two layouts of the same modality, in words ("" if none)."""
    m = a.name
    if a.kind != b.kind:
        return f"modality {m}: kind {a.kind} in {a_name}, {b.kind} in {b_name}"
    roles = KIND_ROLES[a.kind]
    if a.n_tokens != b.n_tokens or a.shape != b.shape:
        detail = ""
        for role, na, nb in zip(roles, a.shape, b.shape):
            if na != nb:
                detail = f"{dim_name(m, role)} has {na} entries in {a_name}, {nb} in {b_name}"
                break
        if a.n_tokens != b.n_tokens:
            if a.grid != b.grid and not detail:
                detail = f"grid {a.grid} in {a_name}, {b.grid} in {b_name}"
            return f"modality {m}: {a.n_tokens} tokens in {a_name}, {b.n_tokens} in {b_name}" + (f" ({detail})" if detail else "")
        return f"modality {m}: {detail}"
    if a.grid != b.grid:
        return f"modality {m}: grid {a.grid} in {a_name}, {b.grid} in {b_name}"
    if a.labels != b.labels:
        role = roles[0]
        for i, (la, lb) in enumerate(zip(a.labels, b.labels)):
            if la != lb:
                return f"modality {m}: {role} {i} is {la!r} in {a_name}, {lb!r} in {b_name}"
    if a.years != b.years:
        for i, (ya, yb) in enumerate(zip(a.years, b.years)):
            if ya != yb:
                return f"modality {m}: year {i} is {ya} in {a_name}, {yb} in {b_name}"
    if a.channel_kind != b.channel_kind:
        return f"modality {m}: channel_kind {a.channel_kind!r} in {a_name}, {b.channel_kind!r} in {b_name}"
    if a.groups != b.groups:
        ga, gb = dict(a.groups), dict(b.groups)
        for group in [*ga, *gb]:
            if ga.get(group) != gb.get(group):
                va = ", ".join(ga[group]) if group in ga else "absent"
                vb = ", ".join(gb[group]) if group in gb else "absent"
                return f"modality {m}: variable group {group!r} is [{va}] in {a_name}, [{vb}] in {b_name}"
        return f"modality {m}: the variable groups are in a different order in {a_name} and {b_name}"
    return ""


# --------------------------------------------------------------------------------------------
# User groupings
# --------------------------------------------------------------------------------------------


def _load_groupings(groupings: str | os.PathLike | GroupingSpec | None) -> GroupingSpec | None:
    """A TOML path becomes its ``groupings`` table; a mapping or ``None`` passes through."""
    if groupings is None or isinstance(groupings, Mapping):
        return groupings
    if not isinstance(groupings, (str, os.PathLike)):
        raise SchemaError(
            f"groupings must be a path to a TOML file or a mapping {{name: {{member: [selectors]}}}}, "
            f"got {type(groupings).__name__}"
        )
    document = read_toml(groupings, what="groupings file", hint="pass a TOML file with [groupings.NAME] tables")
    path = Path(groupings)
    table = document.get("groupings")
    if not isinstance(table, Mapping) or not table:
        raise SchemaError(
            f"groupings file {str(path)!r} has no [groupings.NAME] tables; write e.g. "
            "[groupings.ndvi] with ndvi = [\"spectral_bands:red\", \"spectral_bands:nir\"]"
        )
    return table


def _toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it can be, else a quoted (escaped, one-line) string."""
    return name if name and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in name) else json.dumps(name)


def _normalize_spec(groupings: GroupingSpec | None) -> dict[str, dict[str, tuple[str, ...]]]:
    """Check the shape of a user grouping mapping; selectors become tuples of strings."""
    if groupings is None:
        return {}
    if not isinstance(groupings, Mapping):
        raise SchemaError(f"groupings must be a mapping {{name: {{member: [selectors]}}}}, got {type(groupings).__name__}")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, members in groupings.items():
        if not isinstance(name, str) or not name.strip() or name != name.strip() or any(ch in name for ch in ":,"):
            raise SchemaError(f"user grouping name {name!r} is not valid; use a non-empty name without ':', ',' or surrounding spaces")
        if not isinstance(members, Mapping) or not members:
            raise SchemaError(
                f"user grouping {name!r} must be a table of members, e.g. [groupings.{_toml_key(name)}] with "
                "member = [\"spectral_bands:red\"]"
            )
        normalized: dict[str, tuple[str, ...]] = {}
        for member, selectors in members.items():
            if not isinstance(member, str) or not member.strip() or member != member.strip():
                raise SchemaError(f"user grouping {name!r}: member name {member!r} is not valid; use a non-empty name without surrounding spaces")
            if isinstance(selectors, str):
                selectors = (selectors,)
            elif isinstance(selectors, Mapping) or not isinstance(selectors, Sequence) or not all(isinstance(s, str) for s in selectors):
                hint = " (pass the [groupings] table itself, not the whole TOML document)" if name == "groupings" else ""
                raise SchemaError(
                    f"user grouping {name!r}, member {member!r} must be a list of selector strings, "
                    f"got {type(selectors).__name__}{hint}"
                )
            normalized[member] = tuple(selectors)
        out[name] = normalized
    return out
