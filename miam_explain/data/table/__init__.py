"""Bring your own data: a table of sites and species (and gridded cubes) -> a consolidated dataset.

``miam-explain data from-table TABLE --out DATA.zarr`` runs :func:`from_table`;
``docs/data.md`` ("Your own data") has a worked example.
"""

from miam_explain.data.table.build import TableReport, from_table
from miam_explain.data.table.cube import open_cube, sample_cube
from miam_explain.data.table.read import read_table, site_coordinates
from miam_explain.data.table.spec import TableSpec

__all__ = ["TableReport", "TableSpec", "from_table", "open_cube", "read_table", "sample_cube", "site_coordinates"]
