"""Groupings of tokens: the built-in ones a schema derives from its layouts, user ones from TOML, and players.

A grouping maps member names to token indices (``int64``, sorted, read-only).
:func:`builtin_groupings` derives ``modalities``, ``spectral_bands``,
``patches``, ``years``, ``<m>_years``, ``<m>_bands``, ``<m>_channels``,
``variables``, ``variable_groups`` and ``tokens`` from the modality layouts, and
:func:`builtin_orderings` says which of them ranges (``GROUPING:START..END``) may span;
:func:`load_groupings` and :func:`normalize_groupings` read and check user
groupings (``{name: {member: selectors}}``), which
:class:`~miam_explain.data.schema.token_schema.TokenSchema` resolves;
:func:`read_groupings` does both, for options that take groupings.
:class:`Players` is one grouping as the players of a game (:func:`check_disjoint`:
no token in two players).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from miam_explain.files import parse_toml, read_toml
from miam_explain.data.schema.layout import ModalityLayout
from miam_explain.data.schema.messages import name_list
from miam_explain.errors import DataError, SchemaError

__all__ = [
    "BUILTIN_GROUPINGS",
    "GroupingSpec",
    "Players",
    "GroupingsInput",
    "builtin_groupings",
    "builtin_orderings",
    "check_disjoint",
    "frozen_indices",
    "grouping_definition",
    "load_groupings",
    "normalize_groupings",
    "read_groupings",
]

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

#: ``{grouping: {member: selectors}}``, where selectors is one string or a list of strings.
GroupingSpec = Mapping[str, Mapping[str, Union[str, Sequence[str]]]]
#: What a ``groupings=`` option takes: a TOML file path, TOML text, a :data:`GroupingSpec`, or ``None``.
GroupingsInput = Union[str, os.PathLike, GroupingSpec, None]


def frozen_indices(indices: np.ndarray) -> np.ndarray:
    """Sorted, unique, read-only ``int64`` copy of ``indices``."""
    out = np.unique(np.asarray(indices, dtype=np.int64))
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Players:
    """The players of one grouping: its members (aliases excluded) and their tokens.

    Attributes:
        grouping: Name of the grouping.
        names: Member names, ``P`` of them, in the grouping's natural order.
        indices: Token indices of each member (``int64[k_p]``, sorted), aligned with ``names``.
        n_tokens: Number of tokens ``T`` of the schema.
        definition: A user grouping's definition as JSON, ``{grouping: {member: [selector, ...]}}`` for it and
            the user groupings it refers to (loadable again as ``groupings=``); ``""`` for a built-in grouping.
    """

    grouping: str
    names: tuple[str, ...]
    indices: tuple[np.ndarray, ...]
    n_tokens: int
    definition: str = ""

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


def builtin_groupings(
    layouts: Sequence[ModalityLayout], token_names: Sequence[str]
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, str]]]:
    """The built-in groupings of placed modality layouts (their ``start`` set), in their fixed order.

    Args:
        layouts: The modalities, in token order, with ``start`` set.
        token_names: The name of every token, ``T`` of them.

    Returns:
        ``(groupings, aliases)``: ``{grouping: {member: int64[k]}}`` (sorted, read-only
        indices) and ``{grouping: {alias: member}}`` (``patches:center`` for an odd grid).

    Raises:
        DataError: two built-in groupings get the same name (a modality name clashes).
    """
    groupings: list[tuple[str, dict[str, np.ndarray]]] = []
    aliases: dict[str, dict[str, str]] = {}

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
            aliases["patches"] = {"center": f"r{g // 2}c{g // 2}"}

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

    groupings.append(("tokens", {name: np.array([t]) for t, name in enumerate(token_names)}))

    built: dict[str, dict[str, np.ndarray]] = {}
    for name, members in groupings:
        if name in built:
            raise DataError(
                f"two built-in groupings are both named {name!r} (a modality name clashes with a built-in "
                "grouping); rename the modality"
            )
        built[name] = {member: frozen_indices(idx) for member, idx in members.items()}
    return built, aliases


def _is_toml_text(groupings: str) -> bool:
    """A string is TOML text when it holds a newline, or an ``=`` and names no file; else it is a path."""
    return "\n" in groupings or ("=" in groupings and not Path(groupings).is_file())


def load_groupings(groupings: GroupingsInput) -> GroupingSpec | None:
    """A TOML path or TOML text becomes its ``groupings`` table; a mapping or ``None`` passes through.

    Raises:
        ConfigError: a missing file, or TOML that does not parse.
        SchemaError: no ``[groupings.NAME]`` table, or a value of another type.
    """
    if groupings is None or isinstance(groupings, Mapping):
        return groupings
    if not isinstance(groupings, (str, os.PathLike)):
        raise SchemaError(
            f"groupings must be a path to a TOML file or a mapping {{name: {{member: [selectors]}}}} (or TOML text), "
            f"got {type(groupings).__name__}"
        )
    if isinstance(groupings, str) and _is_toml_text(groupings):
        document, where = parse_toml(groupings, what="groupings text"), "groupings text"
    else:
        document = read_toml(groupings, what="groupings file", hint="pass a TOML file with [groupings.NAME] tables")
        where = f"groupings file {str(Path(groupings))!r}"
    table = document.get("groupings")
    if not isinstance(table, Mapping) or not table:
        raise SchemaError(
            f"{where} has no [groupings.NAME] tables; write e.g. "
            "[groupings.ndvi] with ndvi = [\"spectral_bands:red\", \"spectral_bands:nir\"]"
        )
    return table


def read_groupings(groupings: GroupingsInput) -> dict[str, dict[str, tuple[str, ...]]] | None:
    """A ``groupings=`` option read and checked for shape (the selectors are resolved by a schema later).

    Args:
        groupings: A TOML file path, TOML text (a string with a newline or an ``=``), the
            mapping ``{name: {member: selectors}}``, or ``None``.

    Returns:
        ``{name: {member: (selector, ...)}}``, or ``None`` when there is none.

    Raises:
        ConfigError: a missing file, or TOML that does not parse.
        SchemaError: a grouping or member of the wrong shape.

    Example:
        >>> read_groupings('[groupings.late]\\nlate = "climate_years:2015..2018"')
        {'late': {'late': ('climate_years:2015..2018',)}}
    """
    return normalize_groupings(load_groupings(groupings)) or None


def grouping_definition(name: str, spec: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, dict[str, list[str]]]:
    """The definition of user grouping ``name`` with the user groupings it refers to, in definition order.

    Args:
        name: A grouping.
        spec: Every user grouping ``{name: {member: selectors}}``, in definition order.

    Returns:
        ``{grouping: {member: [selector, ...]}}``, loadable again as ``groupings=``; ``{}`` when
        ``name`` is not a user grouping (a built-in one is defined by the data).

    Example:
        >>> spec = {"pairs": {"rn": ["spectral_bands:red,spectral_bands:nir"]}, "big": {"img": ["pairs:rn"]}}
        >>> list(grouping_definition("big", spec))
        ['pairs', 'big']
    """
    needed, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in spec and current not in needed:
            needed.add(current)
            for selectors in spec[current].values():
                todo.extend(part.partition(":")[0].strip() for selector in selectors for part in selector.split(","))
    return {g: {m: list(s) for m, s in members.items()} for g, members in spec.items() if g in needed}


def check_disjoint(grouping: str, members: Mapping[str, np.ndarray], token_names: Sequence[str]) -> None:
    """Refuse a grouping whose members share a token: players of a game must not overlap.

    Args:
        grouping: The grouping's name.
        members: ``{member: int64[k]}``.
        token_names: The name of every token (for the message).

    Raises:
        SchemaError: a token is in two members (names the grouping, both members and the token).
    """
    if not members:
        return
    owner = np.full(len(token_names), -1, dtype=np.int64)
    names = list(members)
    for p, indices in enumerate(members.values()):
        taken = indices[owner[indices] >= 0]
        if taken.size:
            shared = [str(token_names[t]) for t in taken]
            other = names[int(owner[taken[0]])]
            raise SchemaError(
                f"grouping {grouping!r} cannot be the players of a game: member {names[p]!r} shares "
                f"{len(shared)} token(s) with {other!r} ({name_list(shared, 3)}); give each token to one member "
                f"(e.g. narrow the selectors of {names[p]!r}), since a token in two players has no single owner"
            )
        owner[indices] = p


def builtin_orderings(layouts: Sequence[ModalityLayout]) -> dict[str, str]:
    """The built-in groupings whose member order a range may span, besides whole-number ones.

    Returns:
        ``{"spectral_bands": "position", "<m>_bands": "position", "patches": "grid"}``, for the
        groupings this data has (the year groupings are ordered by value, being whole numbers).
    """
    orderings: dict[str, str] = {}
    if any(lay.kind == "image" for lay in layouts):
        orderings.update({"spectral_bands": "position", "patches": "grid"})
    for lay in layouts:
        if lay.kind == "timeseries" and lay.channel_kind == "band":
            orderings[f"{lay.name}_bands"] = "position"
    return orderings


def _toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it can be, else a quoted (escaped, one-line) string."""
    return name if name and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in name) else json.dumps(name)


def normalize_groupings(groupings: GroupingSpec | None) -> dict[str, dict[str, tuple[str, ...]]]:
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
