"""The error tree; the CLI and the API map each class once to a message and an exit code.

SvetaError                 anything sveta reports to a user (message + hint)
├── ConfigError            a setting or argument is wrong or missing
├── InputError             a file, feed or photo the user gave cannot be read
├── BlockedURLError        a URL is refused by the SSRF guard
├── SourceError            a remote store or feed failed (HTTP status, wrong content, robots)
├── CatalogError           the catalog database is unreachable or inconsistent
└── StorageError           the disk is full, read-only or refuses a write (nothing live was changed)
"""

from __future__ import annotations


class SvetaError(Exception):
    """An error a user can act on: ``message`` says what, ``hint`` says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(SvetaError):
    exit_code = 2


class InputError(SvetaError):
    exit_code = 3


class BlockedURLError(SvetaError):
    exit_code = 4


class SourceError(SvetaError):
    exit_code = 5


class CatalogError(SvetaError):
    exit_code = 6


class StorageError(SvetaError):
    exit_code = 7


# errno values by name, so this base module needs no import of errno's platform table at call sites
_NO_SPACE = {"ENOSPC", "EDQUOT", "EFBIG"}
_READ_ONLY = {"EROFS"}
_DENIED = {"EACCES", "EPERM"}


def storage_error(exc: OSError) -> StorageError | None:
    """A full disk, a read-only file system or a refused permission, as an error that names it and the fix.

    None for other OSErrors (a missing file the user named, for one), which keep their own wording.
    """
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    where = f" ({exc.filename})" if exc.filename else ""
    if name in _NO_SPACE:
        return StorageError(
            f"the disk is full{where}: {exc.strerror}",
            "free some space on that disk (or point SVETA_DATA_DIR at a larger one) and run it again; "
            "the live index, models and catalog were left as they were",
        )
    if name in _READ_ONLY:
        return StorageError(
            f"the data home is on a read-only file system{where}",
            "mount it read-write, or point SVETA_DATA_DIR at a writable folder; nothing was changed",
        )
    if name in _DENIED:
        return StorageError(
            f"permission denied{where}",
            "check the folder's owner and permissions (ls -ld), or point SVETA_DATA_DIR at a folder you own",
        )
    return None


_FREE_SPACE = "free some space on that disk and run it again; committed rows are kept, none is half-written"
_SQLITE_STORAGE = {  # SQLite's words -> (what the user reads, how to fix it)
    "database or disk is full": ("the disk is full: the catalog database cannot grow", _FREE_SPACE),
    "attempt to write a readonly database": (
        "the catalog database is read-only",
        "mount the data home read-write, or point SVETA_DATA_DIR at a writable folder",
    ),
    "unable to open database file": (
        "the catalog database file cannot be opened or created",
        "check that SVETA_DATA_DIR exists and is writable (ls -ld), and that the disk is not full",
    ),
    "disk i/o error": ("the disk failed while reading or writing the catalog database", _FREE_SPACE),
}


def database_storage_error(exc: BaseException) -> StorageError | None:
    """SQLite's words for a full disk, a read-only file or a folder it may not write, as a StorageError."""
    text = str(exc).lower()
    return next((StorageError(m, hint) for words, (m, hint) in _SQLITE_STORAGE.items() if words in text), None)
