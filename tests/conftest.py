"""Shared test fixtures: paths to the real GeoPlant samples and small synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Real GLC24/GLC25 sample files, shipped beside the project (never copied into it).
GEOPLANT_FIXTURES = ROOT.parent / "shared" / "fixtures" / "geoplant"


@pytest.fixture(scope="session")
def geoplant_fixtures() -> Path:
    """The real sample folder; tests using it skip when it is absent."""
    if not GEOPLANT_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures/geoplant is not present")
    return GEOPLANT_FIXTURES


@pytest.fixture(scope="session")
def synth_raw(tmp_path_factory) -> Path:
    """A small synthetic GeoPlant raw folder (GLC25 layout), made once per session."""
    from miam_explain.data.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("synth") / "raw", n_sites=240, n_species=12, seed=3, progress=False)


@pytest.fixture(scope="session")
def synth_data(synth_raw, tmp_path_factory) -> Path:
    """The consolidated dataset prepared from :func:`synth_raw`."""
    from miam_explain.data.geoplant import prepare_geoplant

    out = tmp_path_factory.mktemp("prepared") / "data.zarr"
    prepare_geoplant(synth_raw, out, progress=False, chunk_size=100)
    return out
