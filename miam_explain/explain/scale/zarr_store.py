"""A resumable zarr store for chunked Shapley runs: chunks stream in, a restart reuses them.

Layout (zarr format 2, one folder):

```
result.zarr/
  .zgroup .zattrs .zmetadata   the finished result: written at the end, absent while the run is going
  shapley/ shapley_se/ ...     its variables and coords (DESIGN §4), the same as an in-memory result
  _run/                        the work area, a zarr group
    .zattrs                    {"format": ..., "config": {...}, "complete": false|true}
    records/                   int64[n_chunks, 4] (done, n_evaluations, converged, coalition hash), one
                               file per chunk: the chunk's completion marker, written after its data
    shapley/ shapley_se/ ...   prediction game: the per-site arrays, one zarr chunk per site chunk
    values/                    performance game: float64[n_chunks, chunk_size] coalition values
```

Every file is written to a temporary name and renamed into place (zarr's local store does
this for each chunk and metadata file), and a chunk counts as written only once its record
exists, so a run killed at any moment leaves either a complete chunk or one that is computed
again. The store is created in a temporary sibling folder and renamed into place, so it
either exists with its configuration or not at all. A restart whose configuration differs
from the recorded one is refused with the first differing key. While the run is going the
folder has no root group, so nothing opens it as a result; :meth:`ZarrStore.finish`
writes the result's variables and marks the run complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from miam_explain.files import output_errors
from miam_explain.errors import ConfigError, DataError, OutputError, OutputExistsError
from miam_explain.explain.scale.records import COUNT, DONE, FLAG, HASH, ArraySpec

__all__ = ["STORE_FORMAT", "ZarrStore", "DONE", "COUNT", "FLAG", "HASH"]

#: Format tag recorded in the work area; a store of another format is refused.
STORE_FORMAT = "miam-explain chunk store v1"
_RUN = "_run"
_RECORDS = "records"


def _normalise(config: Mapping) -> dict:
    """The configuration as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(dict(config)))


def _first_difference(recorded: Mapping, wanted: Mapping) -> str | None:
    for key in list(wanted) + [k for k in recorded if k not in wanted]:
        if recorded.get(key, "<unset>") != wanted.get(key, "<unset>"):
            return key
    return None


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


class ZarrStore:
    """The zarr store of one chunked run (open it with :meth:`open`); a rerun resumes it.

    Attributes:
        path: The store folder.
        config: The run configuration recorded at creation.
    """

    #: A rerun reuses the chunks written here.
    resumable = True

    def __init__(self, path: Path, hint: str) -> None:
        self.path = path
        self._hint = hint
        self._group = zarr.open_group(str(path / _RUN), mode="r+", zarr_format=2)
        self.config = dict(self._group.attrs["config"])

    # ------------------------------------------------------------------------------------------------------------------
    # opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        config: Mapping,
        arrays: Mapping[str, ArraySpec],
        n_chunks: int,
        overwrite: bool = False,
        hint: str = "",
    ) -> ZarrStore:
        """Resume the store at ``path`` if it holds this configuration, or create it.

        Args:
            path: The store folder (``.zarr``).
            config: The run configuration (JSON-compatible); compared key by key with a recorded one.
            arrays: The work arrays to create (name -> spec); float64, filled with NaN.
            n_chunks: Number of chunk records to create (grown later with :meth:`grow`).
            overwrite: Delete whatever is at ``path`` first.
            hint: Appended to error messages (e.g. how to choose another output).

        Returns:
            The store.

        Raises:
            ConfigError: the store holds another configuration (names the first differing key).
            OutputExistsError: ``path`` exists and is not a chunk store.
            OutputError: the store cannot be written or is damaged.
            DataError: the parent folder does not exist.
        """
        path = Path(path)
        config = _normalise(config)
        if path.exists() or path.is_symlink():
            if overwrite:
                with output_errors(path, hint, resumes=True):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
            else:
                store = cls._existing(path, hint)
                key = _first_difference(store.config, config)
                if key is not None:
                    raise ConfigError(
                        f"{str(path)!r} holds a run with another {key} ({_short(store.config.get(key))}, now "
                        f"{_short(config.get(key))}); pass --overwrite (overwrite=True) to start it again{hint}"
                    )
                return store
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise DataError(f"output folder {str(parent)!r} does not exist; create it first")
        with output_errors(path, hint, resumes=True):
            tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
            try:
                tmp = tmp_dir / path.name
                group = zarr.open_group(str(tmp / _RUN), mode="w", zarr_format=2)
                for name, spec in arrays.items():
                    group.create_array(
                        name,
                        shape=spec.shape,
                        chunks=(max(1, spec.chunk), *spec.shape[1:]),
                        dtype="float64",
                        fill_value=np.nan,
                        attributes={"_ARRAY_DIMENSIONS": list(spec.dims)},
                    )
                group.create_array(
                    _RECORDS, shape=(n_chunks, 4), chunks=(1, 4), dtype="int64", fill_value=0,
                    attributes={"_ARRAY_DIMENSIONS": ["chunk", "record"]},
                )
                group.attrs.update({"format": STORE_FORMAT, "config": config, "complete": False})
                os.rename(tmp, path)
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
        return cls(path, hint)

    @classmethod
    def _existing(cls, path: Path, hint: str) -> ZarrStore:
        run = path / _RUN
        if not (path.is_dir() and (run / ".zattrs").is_file()):
            raise OutputExistsError(
                f"output {str(path)!r} already exists and is not a resumable store; pass --overwrite or choose another path"
            )
        try:
            group = zarr.open_group(str(run), mode="r", zarr_format=2)
            attrs = dict(group.attrs)
        except Exception as exc:  # noqa: BLE001 - any damage means the same to the user
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise OutputError(f"store {str(path)!r} is damaged ({reason}); pass --overwrite to start again{hint}") from None
        if attrs.get("format") != STORE_FORMAT or not isinstance(attrs.get("config"), dict):
            raise OutputError(
                f"store {str(path)!r} is from another version ({attrs.get('format')!r}); pass --overwrite to start again{hint}"
            )
        return cls(path, hint)

    # ------------------------------------------------------------------------------------------------------------------
    # chunks

    @property
    def complete(self) -> bool:
        """Whether :meth:`finish` has written the result."""
        return bool(self._group.attrs.get("complete", False))

    @property
    def n_chunks(self) -> int:
        """Number of chunk records (written or not)."""
        return int(self._group[_RECORDS].shape[0])

    def records(self) -> np.ndarray:
        """``int64[n_chunks, 4]``: (done, n_evaluations or rows, converged, coalition hash) per chunk; 0 when not written."""
        return np.asarray(self._group[_RECORDS][:])

    def record(self, index: int) -> np.ndarray:
        """``int64[4]``: the record of one chunk (zeros when not written)."""
        if index >= self.n_chunks:
            return np.zeros(4, dtype=np.int64)
        return np.asarray(self._group[_RECORDS][index])

    def read(self, name: str, index: int) -> np.ndarray:
        """Row ``index`` of a work array (performance game: one chunk's values)."""
        return np.asarray(self._group[name][index])

    def grow(self, n_chunks: int) -> None:
        """Make room for at least ``n_chunks`` chunks, in the records and in the chunk-per-row arrays (``values``)."""
        if n_chunks <= self.n_chunks:
            return
        size = max(n_chunks, 2 * self.n_chunks)
        with output_errors(self.path, self._hint, resumes=True):
            for name in ("values", _RECORDS):
                if name in self._group:
                    array = self._group[name]
                    array.resize((size, *array.shape[1:]))

    def write(self, index: int, data: Mapping[str, tuple[slice | int, np.ndarray]], record: Sequence[int]) -> None:
        """Write one chunk's arrays, then its record (the marker that makes it count).

        Args:
            index: The chunk.
            data: ``name -> (region along axis 0, values)``.
            record: ``(n_evaluations or rows, converged, coalition hash)``; ``done`` is set here.
        """
        with output_errors(self.path, self._hint, resumes=True):
            for name, (region, values) in data.items():
                self._group[name][region] = values
            self._group[_RECORDS][index] = np.asarray([1, *record], dtype=np.int64)

    def array(self, name: str):
        """A work array, read lazily (a dask array over its zarr chunks)."""
        import dask.array as da

        return da.from_zarr(self._group[name])

    # ------------------------------------------------------------------------------------------------------------------
    # the result

    def finish(self, result: xr.Dataset, *, drop: Sequence[str] = ()) -> None:
        """Write the result's variables at the root, mark the run complete, then drop spent work arrays.

        Idempotent: a run killed in here writes the result again on restart.

        Args:
            result: The labelled result (numpy or dask-backed; dask arrays stream chunk by chunk).
            drop: Work arrays to delete once the result is written (their data now lives in it).
        """
        import dask

        with output_errors(self.path, self._hint, resumes=True), dask.config.set(scheduler="synchronous"):
            if not self.complete:
                clean = result.copy()
                for name in clean.variables:
                    clean[name].encoding = {}
                clean.to_zarr(self.path, mode="a", zarr_format=2, consolidated=False)
                self._group.attrs["complete"] = True
            for name in drop:
                if name in self._group:
                    del self._group[name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                zarr.consolidate_metadata(str(self.path), zarr_format=2)

    def result(self) -> xr.Dataset:
        """The finished result, backed by the store (lazy)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return xr.open_zarr(self.path, consolidated=True)
