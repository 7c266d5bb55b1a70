"""The error tree; the CLI and the API map each class once to a message and an exit code.

SvetaError                 anything sveta reports to a user (message + hint)
├── ConfigError            a setting or argument is wrong or missing
├── InputError             a file, feed or photo the user gave cannot be read
├── BlockedURLError        a URL is refused by the SSRF guard
├── SourceError            a remote store or feed failed (HTTP status, wrong content, robots)
└── CatalogError           the catalog database is unreachable or inconsistent
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
