"""One modality's place in the token order: :class:`ModalityLayout`, read from a dataset's attributes.

:func:`layout_from_dataset` reads a modality's kind, shape, names, years, grid
and variable groups from the attributes, dims and coordinates of ``x_<modality>``
(never its values) and checks them against the consolidated format;
:func:`layout_diff` says in words how two layouts of one modality differ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from miam_explain.data.format import KIND_ROLES, dim_name
from miam_explain.data.schema.messages import name_list
from miam_explain.errors import DataError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import xarray as xr

__all__ = ["ModalityLayout", "layout_diff", "layout_from_dataset"]


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
                    f"{name_list(unknown)}; fix the 'groups' attribute"
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

    def token_rows(self) -> list[tuple[str, str | None, int | None, int | None, int | None]]:
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


def layout_from_dataset(ds: xr.Dataset, modality: str) -> ModalityLayout:
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


def layout_diff(a: ModalityLayout, b: ModalityLayout, a_name: str, b_name: str) -> str:
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
