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
``tokens`` ...; see :mod:`~miam_explain.data.schema.groupings`); users add more
from TOML. A *selector* ``grouping:member`` names a set of tokens
(:mod:`~miam_explain.data.schema.selectors`); :meth:`TokenSchema.select` takes a
union of them.

Example:
    >>> import miam_explain
    >>> ds = miam_explain.open_dataset(data_path)
    >>> schema = miam_explain.TokenSchema.from_dataset(ds)
    >>> schema.select("spectral_bands:red,spectral_bands:nir").shape  # two bands of 25 patches
    (50,)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from miam_explain.data.format import modality_names
from miam_explain.data.schema.groupings import (
    BUILTIN_GROUPINGS,
    GroupingSpec,
    GroupingsInput,
    Players,
    builtin_groupings,
    builtin_orderings,
    check_disjoint,
    frozen_indices,
    grouping_definition,
    load_groupings,
    normalize_groupings,
)
from miam_explain.data.schema.layout import (
    ModalityLayout,
    layout_diff,
    layout_from_dataset,
)
from miam_explain.data.schema.messages import did_you_mean, name_list
from miam_explain.data.schema.selectors import (
    SPECIAL_SELECTORS,
    grouping_ordering,
    lookup_grouping,
    select_tokens,
)
from miam_explain.errors import DataError, SchemaError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import xarray as xr

    from miam_explain.typing import TokenIndices

__all__ = ["SCHEMA_FORMAT", "TokenSchema"]

#: Value of the ``format`` key of :meth:`TokenSchema.to_dict`.
SCHEMA_FORMAT = "miam-explain token schema v1"


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
        >>> from miam_explain import open_dataset
        >>> schema = TokenSchema.from_dataset(open_dataset(data_path))
        >>> schema.members("patches")[:3]
        ['r0c0', 'r0c1', 'r0c2']
        >>> players = schema.players("spectral_bands")
        >>> players.names, [len(i) for i in players.indices]
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

        rows = [row for layout in placed for row in layout.token_rows()]
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

        self._groupings: dict[str, dict[str, np.ndarray]]
        self._aliases: dict[str, dict[str, str]]
        self._groupings, self._aliases = builtin_groupings(placed, self._token_names)
        self._builtin_names: tuple[str, ...] = tuple(self._groupings)
        self._orderings: dict[str, str] = builtin_orderings(placed)
        self._user_spec: dict[str, dict[str, tuple[str, ...]]] = {}
        for name, members in normalize_groupings(groupings).items():
            self._add_user_grouping(name, members)

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, *, groupings: GroupingsInput = None) -> TokenSchema:
        """Read the token schema of a consolidated dataset.

        Only attributes, dims and coordinates are read; the data arrays are never loaded.

        Args:
            ds: A consolidated dataset (see :mod:`miam_explain.data.format`); its
                ``x_<modality>`` variables define the tokens.
            groupings: Extra user groupings: a path to a TOML file with
                ``[groupings.NAME]`` tables, such TOML text (a string with a newline or an ``=``),
                or the mapping ``{NAME: {member: selectors}}`` (i.e. the ``groupings`` table itself). ``selectors`` is a list of selector
                strings (or one, possibly comma-separated, string); it may name built-in
                groupings and user groupings defined before it.

        Returns:
            The schema.

        Raises:
            DataError: a modality variable breaks the consolidated format.
            ConfigError: the TOML file cannot be read.
            SchemaError: a user grouping redefines a built-in one or uses an unknown selector.
        """
        layouts = [layout_from_dataset(ds, modality) for modality in modality_names(ds)]
        return cls(layouts, groupings=load_groupings(groupings))

    def with_groupings(self, groupings: GroupingsInput) -> TokenSchema:
        """A copy of this schema with user ``groupings`` added to the ones it has.

        Args:
            groupings: As in :meth:`from_dataset`.

        Raises:
            SchemaError: a name is already taken, or a selector is unknown.
        """
        spec: dict[str, Any] = {name: dict(members) for name, members in self._user_spec.items()}
        for name, members in normalize_groupings(load_groupings(groupings)).items():
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
            f"unknown modality {modality!r}; {did_you_mean(str(modality), self.modalities)}"
            f"valid modalities: {name_list(self.modalities)}"
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
            A :class:`Players` with ``names`` and ``indices`` aligned, and the ``definition`` of a user grouping.

        Raises:
            SchemaError: unknown grouping, or members that share a token (players may not overlap).
        """
        members = self._get_grouping(grouping, selector=None)
        check_disjoint(grouping, members, self._token_names)
        definition = grouping_definition(grouping, self._user_spec)
        return Players(
            grouping=grouping,
            names=tuple(members),
            indices=tuple(members.values()),
            n_tokens=self._n_tokens,
            definition=json.dumps(definition) if definition else "",
        )

    def ordering(self, grouping: str) -> str | None:
        """How a range ``grouping:start..end`` orders the members: ``value``, ``position``, ``grid`` or ``None``.

        Whole-number members (years) are ordered by ``value``, bands by ``position`` in the data,
        ``patches`` on the ``grid`` (a range is a rectangle); other groupings are not ordered.

        Raises:
            SchemaError: unknown grouping.
        """
        return grouping_ordering(grouping, list(self._get_grouping(grouping, selector=None)), self._orderings)

    # ---- selectors ---------------------------------------------------------------------

    def select(self, selectors: str | Sequence[str]) -> TokenIndices:
        """Token indices named by a union of selectors.

        Args:
            selectors: One selector string or a list of them. A selector is
                ``grouping:member`` (split on the first colon, so ``tokens:climate:tas:2003``
                works), a range ``grouping:start..end`` over an ordered grouping (see
                :meth:`ordering`), a bare ``grouping`` (all its members), ``all`` or ``none``.
                A string may hold several selectors separated by commas.

        Returns:
            ``int64[k]``: the sorted union of the selected token indices.

        Raises:
            SchemaError: an unknown grouping or member, or a malformed selector.

        Example:
            >>> from miam_explain import open_dataset
            >>> schema = TokenSchema.from_dataset(open_dataset(data_path))
            >>> schema.select(["years:2003", "modalities:tabular"])[:5]  # sorted token indices
            array([ 3, 22, 41, 60, 79])
            >>> len(schema.select("climate_years:2000..2004"))  # 5 years x 4 climate channels
            20
        """
        return select_tokens(
            selectors, groupings=self._groupings, aliases=self._aliases, n_tokens=self._n_tokens, orderings=self._orderings
        )

    def keep_vector(self, selectors: str | Sequence[str]) -> np.ndarray:
        """``bool[T]``: ``True`` (visible) for the tokens named by ``selectors`` (see :meth:`select`)."""
        keep = np.zeros(self._n_tokens, dtype=bool)
        keep[self.select(selectors)] = True
        return keep

    def _get_grouping(self, name: str, *, selector: str | None) -> dict[str, np.ndarray]:
        return lookup_grouping(self._groupings, name, selector=selector)

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
            text = layout_diff(a, b, a_name, b_name)
            if text:
                return text
        return ""

    def __repr__(self) -> str:
        mods = ", ".join(f"{layout.name} ({layout.kind}, {layout.n_tokens})" for layout in self._layouts)
        return f"TokenSchema({self._n_tokens} tokens: {mods}; groupings: {', '.join(self._groupings)})"

    # ---- user groupings ----------------------------------------------------------------

    def _add_user_grouping(self, name: str, members: Mapping[str, tuple[str, ...]]) -> None:
        if name in self._builtin_names or name in BUILTIN_GROUPINGS or name in SPECIAL_SELECTORS:
            raise SchemaError(
                f"user grouping {name!r} would redefine a built-in grouping; choose another name "
                f"(built-in: {name_list([*self._builtin_names, *SPECIAL_SELECTORS])})"
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
            resolved[member] = frozen_indices(indices)
        self._groupings[name] = resolved
        self._user_spec[name] = dict(members)
