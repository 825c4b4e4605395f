"""Atomic file and directory writes: nothing half-written when a run, a sweep or a report fails.

A file is written to a temporary name in its own directory, flushed to disk, given the permissions a plain
``open()`` would have given it (``0o666`` less the umask; ``tempfile`` would leave ``0o600``), then renamed over
its target. A results directory is filled under a temporary name and renamed into place the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from infersim.core.errors import InfersimError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
DIR_MODE = 0o777 & ~_umask()


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` via ``write(tmp)`` on a temporary file next to it, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``atomic_write`` of UTF-8 text."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def temp_dir_for(out: str | Path) -> Path:
    """A new empty directory next to ``out`` (same file system) to fill before ``replace_dir``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, DIR_MODE)
    return tmp


def check_out_dir(out: str | Path, *, marker: str, flag: str = "--out") -> Path:
    """Refuse, before anything runs, an output directory that ``replace_dir`` could not fill: a path through a
    file, a directory that is not an earlier result (no ``marker``), or a place this process cannot create
    files in (probed by creating and removing an empty directory, which also catches read-only file systems
    and running as root, where permission bits say nothing). Writes nothing that stays."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise InfersimError(f"{flag} {out}: exists and is not a directory; expected a directory to write into")
        if any(out.iterdir()) and not (out / marker).exists():
            raise InfersimError(f"{out}: exists and is not an infersim results directory (no {marker}); "
                                f"choose another {flag} or remove it")
    anchor = out.parent
    while not anchor.exists():
        anchor = anchor.parent
    if not anchor.is_dir():
        raise InfersimError(f"{flag} {out}: {anchor} is a file, not a directory; expected a writable directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.probe.", dir=anchor))
    except OSError as exc:
        raise InfersimError(f"{flag} {out}: cannot write in {anchor} ({(exc.strerror or str(exc)).lower()}); "
                            "expected a writable directory") from None
    return out


def replace_dir(tmp: Path, out: str | Path, *, marker: str) -> Path:
    """Move the filled directory ``tmp`` to ``out``. An existing ``out`` is replaced only when it is empty or
    holds ``marker`` (an earlier result of the same kind); anything else is refused, so a mistyped ``--out``
    never deletes unrelated files (``InfersimError``; ``tmp`` is removed)."""
    out = Path(out)
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / marker).exists()):
            shutil.rmtree(tmp, ignore_errors=True)
            raise InfersimError(f"{out}: exists and is not an infersim results directory (no {marker}); "
                                "choose another --out or remove it")
        backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, backup / "old")
        os.replace(tmp, out)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp, out)
    return out


def json_default(o):
    """``json.dumps(..., default=json_default)`` for numpy scalars and other values: integers stay integers,
    NaN becomes ``null`` (valid JSON), other numbers floats, anything else its ``str``."""
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.floating):
        return None if np.isnan(o) else float(o)
    return str(o)
