"""Files written whole or not at all: a temp file beside the target, fsync, one rename; a full disk keeps the old."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[IO[bytes]]:
    """A binary handle on a temp file that becomes ``path`` when the block ends without an error.

    On any error (a full disk, a kill's KeyboardInterrupt) the temp file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:40]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write names no file: the user's error message should
        raise


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as handle:
        handle.write(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def copy_file(source: Path, path: Path) -> None:
    with replacing(path) as handle, source.open("rb") as read:
        shutil.copyfileobj(read, handle, 1 << 20)


def write_npz(path: Path, arrays: Mapping[str, Any]) -> None:
    """``np.savez`` into ``path`` atomically."""
    with replacing(path) as handle:
        npz_into(handle, arrays)


def npz_into(handle: IO[bytes], arrays: Mapping[str, Any]) -> None:
    """What ``np.savez`` writes, but the zip is closed on failure too: numpy's own leaves it open, and its
    finaliser then writes to a closed file and prints a traceback after sveta's clean error."""
    import numpy as np

    with zipfile.ZipFile(handle, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
