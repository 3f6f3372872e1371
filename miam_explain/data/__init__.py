"""Data: the consolidated format, raw readers, the synthetic generator, splits and the token schema.

Example:
    >>> from miam_explain.data import from_table  # bring your own data (docs/data.md, "Your own data")
    >>> from_table.__module__
    'miam_explain.data.table.build'
"""

from __future__ import annotations

__all__ = ["from_table"]


def __getattr__(name: str):
    """Import :func:`from_table` on first use, so ``import miam_explain`` stays light (no geopandas, no verde)."""
    if name == "from_table":
        from miam_explain.data.table import from_table

        return from_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
