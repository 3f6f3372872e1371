"""The synthetic tabular files: the environmental CSVs and the long-format metadata.

Values come from the site state (:class:`~miam_explain.data.synth.world.Sites`);
file names and columns from :mod:`miam_explain.data.glc.layout`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from miam_explain.data.glc.layout import TABULAR_FILES
from miam_explain.data.glc.writer import metadata_frame, survey_table
from miam_explain.data.synth.params import TABULAR_NAN_RATE
from miam_explain.data.synth.world import Sites

__all__ = ["metadata_table", "tabular_tables"]


def _with_nans(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """A float copy of ``values`` with about :data:`TABULAR_NAN_RATE` of its cells set to NaN."""
    out = values.astype(np.float64).copy()
    out[rng.random(out.shape) < TABULAR_NAN_RATE] = np.nan
    return out


def tabular_tables(rng: np.random.Generator, sites: Sites) -> dict[str, pd.DataFrame]:
    """The environmental CSVs (relative path -> table keyed by surveyId), with a few NaN cells.

    Args:
        rng: The ``tabular_nan`` stream.
        sites: All sites.

    Returns:
        One table per file of :data:`~miam_explain.data.glc.layout.TABULAR_FILES`, in its order.
    """
    blocks = {
        "bioclimatic": np.round(sites.bio, 3),
        "elevation": sites.elevation[:, None],
        "soilgrids": sites.soil,
        "human_footprint": sites.footprint,
        "landcover": sites.landcover,
    }
    tables = {}
    for name, values in blocks.items():
        rel, columns = TABULAR_FILES[name]
        tables[rel] = survey_table(sites.survey_id, columns, _with_nans(rng, values))
    return tables


def _region_country(lat: np.ndarray, lon: np.ndarray, elevation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosmetic biogeographic region and country names from coarse boxes (not used by any effect)."""
    region = np.select(
        [elevation > 1500, lat < 44.0, (lon < 3.0) | (lat > 52.0), (lon > 16.0) & (lat < 49.0)],
        ["ALPINE", "MEDITERRANEAN", "ATLANTIC", "PANNONIAN"], default="CONTINENTAL",
    )
    names = np.array([
        ["Spain", "France", "Italy", "Italy"],
        ["France", "Switzerland", "Austria", "Hungary"],
        ["France", "Germany", "Czechia", "Poland"],
        ["United Kingdom", "Netherlands", "Germany", "Poland"],
    ])
    row = np.clip(np.searchsorted([44.0, 48.0, 52.0], lat, side="right"), 0, 3)
    col = np.clip(np.searchsorted([3.0, 10.0, 15.0], lon, side="right"), 0, 3)
    return region, names[row, col]


def metadata_table(rng: np.random.Generator, sites: Sites, presence: np.ndarray,
                   species_ids: np.ndarray) -> pd.DataFrame:
    """The long-format metadata: one row per (survey, present species).

    Args:
        rng: The ``metadata`` stream.
        sites: All sites.
        presence: ``(n, K)`` bool.
        species_ids: ``(K,)`` int species ids.
    """
    n = len(sites.survey_id)
    year = rng.integers(2017, 2022, size=n)
    uncertainty = rng.choice([1.0, 5.0, 10.0, 25.0, 50.0, 100.0], size=n)
    area = rng.choice([1.0, 4.0, 10.0, 16.0, 25.0, 50.0, 79.0, 100.0, 200.0, 400.0], size=n)
    region, country = _region_country(sites.lat, sites.lon, sites.elevation)
    site, sp = np.nonzero(presence)
    return metadata_frame({
        "lon": sites.lon[site], "lat": sites.lat[site], "year": year[site],
        "geoUncertaintyInM": uncertainty[site], "areaInM2": area[site],
        "region": region[site], "country": country[site],
        "speciesId": species_ids[sp].astype(np.float64), "surveyId": sites.survey_id[site],
    })
