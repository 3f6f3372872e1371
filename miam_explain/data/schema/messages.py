"""Wording of the token schema's error messages: bounded name lists and "did you mean" hints."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["MAX_LISTED", "did_you_mean", "name_list"]

#: How many valid names an error message lists before "... and N more".
MAX_LISTED = 30


def name_list(names: Sequence[str], limit: int = MAX_LISTED) -> str:
    """``'a, b, c'`` or ``'a, b, ... and 12 more'``."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... and {len(names) - limit} more"


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """``"did you mean 'x'? "`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""
