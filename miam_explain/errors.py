"""Project error types.

Every error a user can cause by bad input is a :class:`MiamError` (a
``ValueError``) whose message names the problem *and* the fix. The command line
prints such errors as one line and exits non-zero, never with a traceback.
"""

from __future__ import annotations

__all__ = ["MiamError", "DataError", "SchemaError", "ConfigError", "CheckpointError", "OutputExistsError", "OutputError"]


class MiamError(ValueError):
    """Base class of every user-facing error of miam-explain."""


class DataError(MiamError):
    """Raw or consolidated data that cannot be read, or that breaks the format."""


class SchemaError(MiamError):
    """An unknown grouping, member or selector of the token schema."""


class ConfigError(MiamError):
    """A configuration value or command-line option that is not valid."""


class CheckpointError(MiamError):
    """A checkpoint that cannot be loaded, or that does not fit the data."""


class OutputExistsError(MiamError):
    """An output path that already exists and would be overwritten."""


class OutputError(MiamError):
    """An output that cannot be written: a read-only folder, a full disk, a damaged store."""
