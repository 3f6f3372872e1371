"""Selectors: the one syntax that names a set of tokens, ``grouping:member``.

A selector is ``grouping:member`` (split on the first colon, so
``tokens:climate:tas:2003`` works), a range ``grouping:start..end`` over an
*ordered* grouping, a bare ``grouping`` (all its members), ``all`` or ``none``;
a string may hold several, separated by commas. Subsets, user groupings and
evaluation tables all use it. The functions here resolve selectors against the
groupings of a :class:`~miam_explain.data.schema.token_schema.TokenSchema`
(:meth:`~miam_explain.data.schema.token_schema.TokenSchema.select` is the public face).

A grouping is ordered in one of three ways (:data:`ORDERINGS`):

* ``value``: every member is a whole number (the year groupings ``years`` and
  ``<m>_years``, or a user grouping such as decades); ``2000..2004`` takes the
  members from 2000 to 2004 inclusive;
* ``position``: the bands of images and band series (``spectral_bands``,
  ``<m>_bands``), in data order; ``green..nir`` takes every band from green to nir;
* ``grid``: ``patches``; ``r1c1..r3c3`` takes the rectangle of rows 1 to 3 and
  columns 1 to 3.

Both ends must be members (or aliases) and the end may not come before the start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from miam_explain.data.schema.messages import did_you_mean, name_list
from miam_explain.errors import SchemaError

__all__ = [
    "ORDERINGS",
    "RANGE_SYNTAX",
    "SELECTOR_SYNTAX",
    "SPECIAL_SELECTORS",
    "Groupings",
    "empty_indices",
    "grouping_ordering",
    "lookup_grouping",
    "select_tokens",
]

#: Selectors that are not groupings: every token, and no token.
SPECIAL_SELECTORS = ("all", "none")
SELECTOR_SYNTAX = (
    "write GROUPING:MEMBER (e.g. 'spectral_bands:nir', 'years:2003'), a bare GROUPING for all its members, "
    "'all' or 'none'; separate several selectors with commas"
)

#: How the members of an ordered grouping follow each other (see the module docstring).
ORDERINGS = ("value", "position", "grid")
RANGE_SYNTAX = (
    "write GROUPING:START..END with two members of an ordered grouping (years, bands, patches or whole-number "
    "members), e.g. 'climate_years:2000..2004' or 'patches:r1c1..r3c3'"
)
_WHOLE = re.compile(r"[+-]?[0-9]+")
_PATCH = re.compile(r"r([0-9]+)c([0-9]+)")

#: ``{grouping: {member: int64[k]}}``: the resolved groupings of a schema.
Groupings = Mapping[str, Mapping[str, np.ndarray]]


def empty_indices() -> np.ndarray:
    """``int64[0]``: no token."""
    return np.zeros(0, dtype=np.int64)


def lookup_grouping(groupings: Groupings, name: str, *, selector: str | None) -> Mapping[str, np.ndarray]:
    """The members of grouping ``name``.

    Args:
        groupings: Every grouping of the schema.
        name: The grouping asked for.
        selector: The selector it comes from, named in the error message (``None``: a direct call).

    Raises:
        SchemaError: unknown grouping; the message lists the valid ones.
    """
    if isinstance(name, str) and name in groupings:
        return groupings[name]
    where = f" in selector {selector!r}" if selector is not None else ""
    raise SchemaError(
        f"unknown grouping {name!r}{where}; {did_you_mean(str(name), list(groupings))}"
        f"valid groupings: {name_list(list(groupings))}"
    )


def grouping_ordering(name: str, members: Sequence[str], orderings: Mapping[str, str]) -> str | None:
    """How the members of a grouping are ordered, for ranges: ``value``, ``position``, ``grid`` or ``None``.

    Args:
        name: The grouping.
        members: Its member names.
        orderings: ``{grouping: ordering}`` the schema declares (bands: ``position``, patches: ``grid``).

    Returns:
        The declared ordering; else ``value`` when every member is a whole number; else ``None`` (unordered).

    Example:
        >>> grouping_ordering("climate_years", ["2000", "2001"], {}), grouping_ordering("modalities", ["climate"], {})
        ('value', None)
    """
    if name in orderings:
        return orderings[name]
    if members and all(_WHOLE.fullmatch(m) for m in members):
        return "value"
    return None


def select_tokens(
    selectors: Any,
    *,
    groupings: Groupings,
    aliases: Mapping[str, Mapping[str, str]],
    n_tokens: int,
    orderings: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Token indices named by a union of selectors.

    Args:
        selectors: One selector string or a list of them (see the module docstring).
        groupings: Every grouping of the schema.
        aliases: ``{grouping: {alias: member}}``.
        n_tokens: Number of tokens ``T`` (for ``all``).
        orderings: ``{grouping: ordering}`` declared by the schema (see :func:`grouping_ordering`).

    Returns:
        ``int64[k]``: the sorted union of the selected token indices.

    Raises:
        SchemaError: an unknown grouping or member, a malformed selector, or a range that is
            not valid (an unordered grouping, an unknown end, an end before the start).

    Example:
        >>> years = {"y": {str(y): np.array([y - 2000]) for y in range(2000, 2006)}}
        >>> select_tokens("y:2001..2003", groupings=years, aliases={}, n_tokens=6)
        array([1, 2, 3])
    """
    parts = _split(selectors, groupings, aliases)
    if not parts:
        return empty_indices()
    chunks = [_resolve(part, groupings, aliases, n_tokens, orderings or {}) for part in parts]
    return np.unique(np.concatenate(chunks)).astype(np.int64, copy=False)


def _split(selectors: Any, groupings: Groupings, aliases: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Single selectors, stripped: a string or list split on commas (unless the whole string is one selector)."""
    if isinstance(selectors, str):
        items: list[Any] = [selectors]
    elif isinstance(selectors, Iterable) and not isinstance(selectors, (bytes, Mapping)):
        items = list(selectors)
    else:
        raise SchemaError(f"selectors must be a string or a list of strings, got {type(selectors).__name__}; {SELECTOR_SYNTAX}")
    parts: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise SchemaError(f"selector {item!r} is a {type(item).__name__}, not a string; {SELECTOR_SYNTAX}")
        whole = item.strip()
        # A member name may itself contain a comma: take the whole string when it resolves as one selector.
        if "," in whole and _is_known(whole, groupings, aliases):
            parts.append(whole)
        else:
            parts.extend(piece.strip() for piece in item.split(","))
    return parts


def _is_known(selector: str, groupings: Groupings, aliases: Mapping[str, Mapping[str, str]]) -> bool:
    grouping, sep, member = selector.partition(":")
    grouping, member = grouping.strip(), member.strip()
    if not sep:
        return grouping in groupings
    return grouping in groupings and (member in groupings[grouping] or member in aliases.get(grouping, {}))


def _resolve(
    selector: str, groupings: Groupings, aliases: Mapping[str, Mapping[str, str]], n_tokens: int, orderings: Mapping[str, str]
) -> np.ndarray:
    """Token indices of one selector (already split on commas and stripped)."""
    if selector == "all":
        return np.arange(n_tokens, dtype=np.int64)
    if selector == "none":
        return empty_indices()
    grouping, sep, member = selector.partition(":")
    grouping, member = grouping.strip(), member.strip()
    if not grouping or (sep and not member):
        raise SchemaError(f"malformed selector {selector!r}; {SELECTOR_SYNTAX}")
    if grouping in SPECIAL_SELECTORS:
        raise SchemaError(f"malformed selector {selector!r}: {grouping!r} takes no member; {SELECTOR_SYNTAX}")
    members = lookup_grouping(groupings, grouping, selector=selector)
    if not sep:
        return np.concatenate([empty_indices(), *members.values()])
    if member in members:
        return members[member]
    own_aliases = aliases.get(grouping, {})
    if member in own_aliases:
        return members[own_aliases[member]]
    if ".." in member:
        return _resolve_range(selector, grouping, member, members, own_aliases, orderings)
    alias_note = f" (aliases: {', '.join(own_aliases)})" if own_aliases else ""
    raise SchemaError(
        f"unknown member {member!r} of grouping {grouping!r} in selector {selector!r}; "
        f"{did_you_mean(member, [*members, *own_aliases])}"
        f"valid members: {name_list(list(members))}{alias_note}"
    )


def _resolve_range(
    selector: str, grouping: str, member: str, members: Mapping[str, np.ndarray], aliases: Mapping[str, str],
    orderings: Mapping[str, str],
) -> np.ndarray:
    """Token indices of a range ``grouping:start..end`` (both ends inclusive)."""
    start, _, end = member.partition("..")
    start, end = start.strip(), end.strip()
    if not start or not end or ".." in end:
        raise SchemaError(f"malformed range {selector!r}; {RANGE_SYNTAX}")
    names = list(members)
    ordering = grouping_ordering(grouping, names, orderings)
    if ordering is None:
        raise SchemaError(
            f"grouping {grouping!r} is not ordered, so {selector!r} is not a range; list its members instead, "
            f"e.g. '{grouping}:{names[0]},{grouping}:{names[-1]}' (ranges work over years, bands, patches and "
            "whole-number members)"
        )
    ends = []
    for which, name in (("start", start), ("end", end)):
        name = aliases.get(name, name)
        if name not in members:
            raise SchemaError(
                f"unknown {which} {name!r} of range {selector!r}; {did_you_mean(name, names)}the ends of a range "
                f"must be members of {grouping!r}: {name_list(names)}"
            )
        ends.append(name)
    first, last = ends
    where = f"lies above or left of {first!r}" if ordering == "grid" else f"comes before {first!r} in {grouping!r}"
    backwards = f"range {selector!r} ends before it starts ({last!r} {where}); "
    if ordering == "value":
        low, high = int(first), int(last)
        if high < low:
            raise SchemaError(backwards + f"write the smaller end first, e.g. '{grouping}:{last}..{first}'")
        chosen = [m for m in names if low <= int(m) <= high]
    elif ordering == "position":
        i, j = names.index(first), names.index(last)
        if j < i:
            raise SchemaError(backwards + f"write the ends in the grouping's order, e.g. '{grouping}:{last}..{first}'")
        chosen = names[i : j + 1]
    else:
        cells = {name: _patch(name, selector) for name in names}
        (r0, c0), (r1, c1) = cells[first], cells[last]
        if r1 < r0 or c1 < c0:
            fix = f"r{min(r0, r1)}c{min(c0, c1)}..r{max(r0, r1)}c{max(c0, c1)}"
            raise SchemaError(backwards + f"write the top-left patch first, e.g. '{grouping}:{fix}'")
        chosen = [name for name, (r, c) in cells.items() if r0 <= r <= r1 and c0 <= c <= c1]
    return np.concatenate([empty_indices(), *(members[m] for m in chosen)])


def _patch(name: str, selector: str) -> tuple[int, int]:
    """``(row, col)`` of a patch member ``r{row}c{col}``."""
    match = _PATCH.fullmatch(name)
    if match is None:
        raise SchemaError(f"member {name!r} in range {selector!r} is not a patch rRcC; {RANGE_SYNTAX}")
    return int(match.group(1)), int(match.group(2))
