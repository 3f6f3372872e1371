"""Every command that writes files turns an unwritable folder or a full disk into one line, and leaves nothing.

The read-only folder refuses ``mkdir`` and writable ``open`` calls (for root too, see ``conftest``); the full
disk makes every write of a file below the output raise ``ENOSPC`` once the command has started writing.
"""

from __future__ import annotations

import builtins
import errno
import io
import os

import pytest

from miam_explain.cli import main
from miam_explain.explain import save_result, shapley
from miam_explain.training.config import RunConfig, to_toml
from tiny import TINY



@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


@pytest.fixture(scope="module")
def result(run, synth_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("outerr_result") / "r.nc"
    save_result(shapley(run, synth_data, group="spectral_bands", target="richness", method="exact", device="cpu"), path)
    return path


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("outerr_config") / "tiny.toml"
    path.write_text(to_toml(RunConfig.from_dict(TINY)))  # the same tiny model, as a --config file
    return path


def _commands(run, result, config, synth_raw, synth_data, out):
    """One command line per writer, each writing below ``out``."""
    return {
        "data synth": ["data", "synth", "--out", str(out / "raw"), "--sites", "20", "--species", "6", "--quiet"],
        "data prepare": ["data", "prepare", str(synth_raw), "--out", str(out / "d.zarr"), "--quiet"],
        "train": ["train", "--data", str(synth_data), "--config", str(config), "--out", str(out / "run"), "--quiet"],
        "evaluate": ["evaluate", "--model", str(run), "--data", str(synth_data), "--device", "cpu",
                     "--out", str(out / "t.csv"), "--quiet"],
        "map": ["map", str(result), "--player", "red", "--out", str(out / "m.png")],
        "masks": ["masks", "--strategy", "miam", "--samples", "200", "--out", str(out / "masks.png")],
        "report": ["report", "ndvi", "--model", str(run), "--data", str(synth_data), "--device", "cpu",
                   "--n-boot", "20", "--out", str(out / "ndvi"), "--quiet"],
        "demo": ["demo", "--out", str(out / "demo"), "--sites", "120", "--config", str(config), "--device", "cpu",
                 "--quiet"],
    }


WRITERS = ["data synth", "data prepare", "train", "evaluate", "map", "masks", "report", "demo"]


@pytest.mark.parametrize("name", WRITERS)
def test_read_only_folder_is_a_one_line_error(name, run, result, config, synth_raw, synth_data, read_only_folder,
                                              one_line_error):
    argv = _commands(run, result, config, synth_raw, synth_data, read_only_folder)[name]
    assert main(argv) == 2
    line = one_line_error()
    assert "cannot write" in line and "Permission denied" in line and "choose a folder you can write to" in line, line
    assert list(read_only_folder.iterdir()) == []


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A folder on a 'full disk': opening any file below it for writing fails with ENOSPC."""
    folder = tmp_path / "full"
    folder.mkdir()
    real_open = builtins.open
    inside = str(folder)

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and inside in os.fspath(file) and any(c in mode for c in "wax+"):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)  # pathlib writes through io.open
    yield folder


@pytest.mark.parametrize("name", ["data synth", "evaluate", "map", "masks", "report", "train"])
def test_full_disk_is_a_one_line_error_and_leaves_nothing(name, run, result, config, synth_raw, synth_data, full_disk,
                                                          one_line_error):
    argv = _commands(run, result, config, synth_raw, synth_data, full_disk)[name]
    assert main(argv) == 2
    line = one_line_error()
    assert "No space left on device" in line and "free some disk space" in line, line
    assert list(full_disk.iterdir()) == []
