"""Streaming writer: append site chunks of a consolidated dataset to a zarr store.

Memory stays bounded by one chunk of sites: readers build a small
:class:`xarray.Dataset` per chunk and hand it to :class:`SiteChunkWriter`, which
creates the store on the first chunk and appends along ``site`` afterwards.
For a netCDF output the chunks go to a scratch zarr store first, converted at
the end.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["SiteChunkWriter", "as_text"]


def as_text(values) -> np.ndarray:
    """Strings as an object array, so chunks of different lengths append safely."""
    return np.asarray([str(v) for v in values], dtype=object)


class SiteChunkWriter:
    """Append chunks of sites to a zarr store at ``path``.

    Args:
        path: Target ``.zarr`` folder (must not exist yet).
        site_chunk: Zarr chunk length along ``site``.
    """

    def __init__(self, path: str | os.PathLike, *, site_chunk: int = 256) -> None:
        self.path = Path(path)
        self.site_chunk = int(site_chunk)
        self.n_sites = 0

    def append(self, chunk: xr.Dataset) -> None:
        """Write one chunk of sites (a dataset with dim ``site``)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.n_sites == 0:
                encoding = {
                    name: {"chunks": (self.site_chunk, *chunk[name].shape[1:])}
                    for name in chunk.data_vars
                    if chunk[name].dims[:1] == ("site",)
                }
                chunk.to_zarr(self.path, mode="w", encoding=encoding, zarr_format=2, consolidated=True)
            else:
                chunk.to_zarr(self.path, append_dim="site", zarr_format=2, consolidated=True)
        self.n_sites += chunk.sizes["site"]

    def set_attrs(self, attrs: dict) -> None:
        """Add or replace global attributes after the data is written."""
        import zarr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            group = zarr.open_group(str(self.path), mode="r+", zarr_format=2)
            group.attrs.update(attrs)
            zarr.consolidate_metadata(str(self.path))

    @staticmethod
    def to_netcdf(zarr_path: Path, nc_path: Path) -> None:
        """Convert a finished zarr store into one netCDF file."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with xr.open_zarr(zarr_path) as ds:
                ds.load().to_netcdf(nc_path, engine="h5netcdf")
