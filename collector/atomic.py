"""The one way Librarian writes a file: readers see the old one or the whole new one.

A temporary file in the same folder, flushed to disk, then `os.replace`; a
failure leaves the old file and no temporary behind. Snapshots, the job
store, the status and limits files and the plots all use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomic(path: Path, write: Callable[[IO[bytes]], object], mode: int = 0o644) -> None:
    """Write `path` through `write(fh)`; mode 0644 by default (web servers serve
    these files, and mkstemp makes them private)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

