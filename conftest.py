"""Session fixtures shared by the tests and by the package's doctests.

They live here, at the root, because pytest shows a doctest of ``miam_explain/`` only the
fixtures of conftest files at or above the package; ``tests/conftest.py`` keeps the fixtures
that only tests use. Everything is built once per session from ``tests/tiny.py``: the synthetic
GeoPlant data (240 sites) and the one tiny trained model (``TINY``) that explain, report, map,
CLI and distributed tests all share.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))  # the same `tiny` module the tests import
from tiny import PREPARE_CHUNK, SYNTH, TINY  # noqa: E402


@pytest.fixture(scope="session")
def synth_raw(tmp_path_factory) -> Path:
    """A small synthetic GeoPlant raw folder (GLC25 layout), made once per session."""
    from miam_explain.data.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("synth") / "raw", **SYNTH, progress=False)


@pytest.fixture(scope="session")
def synth_data(synth_raw, tmp_path_factory) -> Path:
    """The consolidated dataset prepared from :func:`synth_raw`."""
    from miam_explain.data.glc import prepare_geoplant

    out = tmp_path_factory.mktemp("prepared") / "data.zarr"
    prepare_geoplant(synth_raw, out, progress=False, chunk_size=PREPARE_CHUNK)
    return out


@pytest.fixture(scope="session")
def tiny_run(synth_data, tmp_path_factory) -> Path:
    """The run folder of the one tiny model (``tests/tiny.py``'s TINY) trained on :func:`synth_data`."""
    from miam_explain.training.config import RunConfig
    from miam_explain.training.trainer import train

    out = tmp_path_factory.mktemp("tiny") / "run"
    train(synth_data, RunConfig.from_dict(TINY), out, progress=False)
    return out


@pytest.fixture(autouse=True)
def _doctest_names(request, doctest_namespace) -> None:
    """Give the package's doctests ``run_folder`` (the tiny run) and ``data_path`` (its dataset).

    Only doctests that use one of the names pay for building it.
    """
    from _pytest.doctest import DoctestItem

    if isinstance(request.node, DoctestItem):
        source = "".join(example.source for example in request.node.dtest.examples)
        if "run_folder" in source or "data_path" in source:
            doctest_namespace["run_folder"] = request.getfixturevalue("tiny_run")
            doctest_namespace["data_path"] = request.getfixturevalue("synth_data")
