"""Selectors: the one syntax that names a set of tokens, ``grouping:member``.

A selector is ``grouping:member`` (split on the first colon, so
``tokens:climate:tas:2003`` works), a bare ``grouping`` (all its members),
``all`` or ``none``; a string may hold several, separated by commas. Subsets,
user groupings and evaluation tables all use it. The functions here resolve
selectors against the groupings of a
:class:`~miam_explain.data.schema.token_schema.TokenSchema`
(:meth:`~miam_explain.data.schema.token_schema.TokenSchema.select` is the public face).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from miam_explain.data.schema.messages import did_you_mean, name_list
from miam_explain.errors import SchemaError

__all__ = [
    "SELECTOR_SYNTAX",
    "SPECIAL_SELECTORS",
    "Groupings",
    "empty_indices",
    "lookup_grouping",
    "select_tokens",
]

#: Selectors that are not groupings: every token, and no token.
SPECIAL_SELECTORS = ("all", "none")
SELECTOR_SYNTAX = (
    "write GROUPING:MEMBER (e.g. 'spectral_bands:nir', 'years:2003'), a bare GROUPING for all its members, "
    "'all' or 'none'; separate several selectors with commas"
)

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


def select_tokens(
    selectors: Any, *, groupings: Groupings, aliases: Mapping[str, Mapping[str, str]], n_tokens: int
) -> np.ndarray:
    """Token indices named by a union of selectors.

    Args:
        selectors: One selector string or a list of them (see the module docstring).
        groupings: Every grouping of the schema.
        aliases: ``{grouping: {alias: member}}``.
        n_tokens: Number of tokens ``T`` (for ``all``).

    Returns:
        ``int64[k]``: the sorted union of the selected token indices.

    Raises:
        SchemaError: an unknown grouping or member, or a malformed selector.
    """
    parts = _split(selectors, groupings, aliases)
    if not parts:
        return empty_indices()
    chunks = [_resolve(part, groupings, aliases, n_tokens) for part in parts]
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


def _resolve(selector: str, groupings: Groupings, aliases: Mapping[str, Mapping[str, str]], n_tokens: int) -> np.ndarray:
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
    alias_note = f" (aliases: {', '.join(own_aliases)})" if own_aliases else ""
    raise SchemaError(
        f"unknown member {member!r} of grouping {grouping!r} in selector {selector!r}; "
        f"{did_you_mean(member, [*members, *own_aliases])}"
        f"valid members: {name_list(list(members))}{alias_note}"
    )
