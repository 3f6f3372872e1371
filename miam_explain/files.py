"""Files: atomic output (write to a temporary sibling, then rename into place), output checks, TOML input.

A reader never sees a half-written file or folder: either the previous content
(or nothing) is there, or the complete new one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from miam_explain.errors import DataError, OutputError, OutputExistsError

__all__ = ["check_output_path", "atomic_path", "output_errors", "remove_path", "read_toml", "parse_toml", "start_folder"]

#: ``OSError`` numbers that mean "this output cannot be written here" (full disk, quota, permissions).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS})


def check_output_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse an output that exists (unless ``overwrite``) or whose folder is missing.

    Args:
        path: File or folder that is about to be written.
        overwrite: Allow replacing an existing output.

    Returns:
        The path as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        DataError: the parent folder does not exist.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output {str(path)!r} already exists; choose another path or pass --overwrite")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DataError(f"output folder {str(parent)!r} does not exist; create it first")
    return path


@contextlib.contextmanager
def output_errors(
    path: str | os.PathLike, hint: str = "", *, only: frozenset[int] | None = None, resumes: bool = False
) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into a one-line :class:`~miam_explain.errors.OutputError`.

    Args:
        path: The output being written (named in the message).
        hint: What the user can do besides freeing space or fixing permissions (starts with ``", "``).
        only: Convert only these ``errno`` values and let other ``OSError`` through (``None``: all).
        resumes: The output is resumable: the message says a rerun resumes.
    """
    try:
        yield
    except OSError as exc:
        if only is not None and exc.errno not in only:
            raise
        reason = exc.strerror or str(exc) or type(exc).__name__
        rerun = "rerun the same command to resume" if resumes else "rerun the same command"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            fix = f"free some disk space, then {rerun}{hint}"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = "choose a folder you can write to"
        else:
            fix = f"check the folder, then {rerun}{hint}"
        raise OutputError(f"cannot write {str(path)!r} ({reason}); {fix}") from None


def start_folder(path: Path, write_first: Callable[[], None], *, exist_ok: bool) -> None:
    """Create the output folder ``path`` and write its first file with ``write_first()``.

    When the folder cannot be created, or its first file cannot be written, the error is a one-line
    :class:`~miam_explain.errors.OutputError`, and a folder that this call created is removed again
    (an empty folder would block the same command).
    """
    created = not path.exists()
    with output_errors(path, only=WRITE_ERRNOS):
        path.mkdir(parents=True, exist_ok=exist_ok)
        try:
            write_first()
        except BaseException:
            if created:
                remove_path(path)
            raise


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree, if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary path does not exist when yielded, so the body may create
    either a file or a folder (a zarr store) there. On error it is removed and
    ``path`` is left untouched.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_path(folder / "table.csv") as tmp:
        ...     _ = tmp.write_text("site,value")
        >>> (folder / "table.csv").read_text()
        'site,value'
        >>> [p.name for p in folder.iterdir()]  # nothing left behind
        ['table.csv']
    """
    path = check_output_path(path, overwrite=overwrite)
    parent = path.parent if str(path.parent) else Path(".")
    with output_errors(path):
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    tmp = tmp_dir / path.name
    try:
        with output_errors(path, only=WRITE_ERRNOS):
            yield tmp
        if not tmp.exists():
            raise DataError(f"nothing was written to {str(path)!r}")
        if tmp.is_file():  # some writers create private (0600) files; give the usual permissions
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        if path.exists():
            if not overwrite:
                raise OutputExistsError(f"output {str(path)!r} appeared while writing; choose another path or pass --overwrite")
            backup = tmp_dir / (path.name + ".old")
            with output_errors(path):
                os.replace(path, backup)
        with output_errors(path):
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def read_toml(path: str | os.PathLike, *, what: str, hint: str) -> dict:
    """Parse a TOML file, or raise a one-line :class:`~miam_explain.errors.ConfigError`.

    Args:
        path: The file.
        what: What the file is, for the message (``"config file"``, ``"subsets file"`` …).
        hint: What the user should pass instead when it is missing.
    """
    from miam_explain.errors import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist; {hint}")
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{what} {path.name} is not valid TOML ({exc})") from None
    return parse_toml(text, what=f"{what} {path.name}")


def parse_toml(text: str, *, what: str) -> dict:
    """Parse TOML text, or raise a one-line :class:`~miam_explain.errors.ConfigError` naming ``what``.

    Example:
        >>> parse_toml('[groupings.g]\\na = ["years:2003"]', what="groupings")
        {'groupings': {'g': {'a': ['years:2003']}}}
    """
    from miam_explain.errors import ConfigError

    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} is not valid TOML ({' '.join(str(exc).split())})") from None
