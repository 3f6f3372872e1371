"""Package version, read from the installed metadata."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("miam-explain")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
