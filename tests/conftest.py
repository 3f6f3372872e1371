"""Fixtures only the tests use: the real GeoPlant samples, an unwritable folder, the CLI's error line.

The synthetic data and the tiny trained model are session fixtures of the root ``conftest.py``
(shared with the package's doctests).
"""

from __future__ import annotations

import errno
import os
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


@pytest.fixture
def read_only_folder(tmp_path, monkeypatch):
    """A folder nothing can be written to (for root too: its mkdir and open calls are refused)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    probe = folder / "probe"
    try:
        probe.mkdir()
    except PermissionError:
        pass
    else:  # root ignores the mode bits: refuse writes the way a read-only mount does
        probe.rmdir()
        real_mkdir, real_open = os.mkdir, os.open

        def mkdir(path, *args, **kwargs):
            if str(folder) in os.fspath(path):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return real_mkdir(path, *args, **kwargs)

        def open_(path, flags, *args, **kwargs):
            if str(folder) in os.fspath(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(os, "open", open_)
    yield folder
    folder.chmod(0o755)


@pytest.fixture
def one_line_error(capsys):
    """Read the captured stderr and return its one ``miam-explain ...: error: ...`` line (asserting there is one)."""

    def read() -> str:
        err = capsys.readouterr().err.strip()
        lines = [line for line in err.splitlines() if line.startswith("miam-explain") and ": error: " in line]
        assert len(lines) == 1 and "Traceback" not in err, err
        return lines[0]

    return read
