"""The analysis notebooks in ``analyses/`` run end to end on tiny data.

Each synthetic-data notebook synthesises data, prepares it and trains a small model (cached in a
work folder that the three share, so the first one pays for it), then computes and draws its
analysis. The real-data walkthrough builds its dataset from elapid's ``ariolimax.gpkg`` with
``from_table`` and trains its own small model in the same folder. Any cell error fails the test.
The notebooks are stored with outputs cleared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"
#: Each notebook, and the figures it writes to MIAM_NB_FIGURES.
NOTEBOOKS = {
    "ndvi_bands.ipynb": ["ndvi_band_shapley", "ndvi_band_combinations", "ndvi_bands_by_role"],
    "heatwave_windows.ipynb": ["heatwave_year_shapley", "heatwave_expanding_window", "heatwave_year_map"],
    "contribution_maps.ipynb": [
        "maps_modalities_richness", "maps_red_nir", "maps_gradients_richness", "maps_cli_red_nir", "maps_cli_climate_bio1",
    ],
    "real_data_walkthrough.ipynb": [
        "walkthrough_sites", "walkthrough_performance_shapley", "walkthrough_beeswarm", "walkthrough_contribution_map",
        "walkthrough_gradients",
    ],
}
#: Tiny settings: 240 sites, 12 species, a width-16 one-block model for 2 epochs (the walkthrough:
#: 240 sites explained one by one).
TINY_ENV = {
    "MIAM_NB_SITES": "240",
    "MIAM_NB_SPECIES": "12",
    "MIAM_NB_EPOCHS": "2",
    "MIAM_NB_WIDTH": "16",
    "MIAM_NB_DEPTH": "1",
    "MIAM_NB_COALITIONS": "200",
    "MIAM_NB_BOOT": "40",
}


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory):
    """Environment of the notebooks' kernels: tiny settings and one shared work folder."""
    root = tmp_path_factory.mktemp("notebooks")
    env = {**TINY_ENV, "MIAM_NB_WORKDIR": str(root / "work"), "MIAM_NB_FIGURES": str(root / "figures")}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)  # the kernel is a child process: it inherits os.environ
        yield root


def test_notebooks_are_stored_without_outputs():
    assert sorted(p.name for p in ANALYSES.glob("*.ipynb")) == sorted(NOTEBOOKS)
    for name in NOTEBOOKS:
        nb = nbformat.read(ANALYSES / name, as_version=4)
        nbformat.validate(nb)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert code and all(not cell.outputs and cell.execution_count is None for cell in code), name
        assert (ANALYSES / name).stat().st_size < 300_000


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_runs_end_to_end(name, shared_env):
    nb = nbformat.read(ANALYSES / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ANALYSES)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"]
    assert not errors
    images = sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert images >= len(NOTEBOOKS[name])
    for figure in NOTEBOOKS[name]:
        path = shared_env / "figures" / f"{figure}.png"
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
