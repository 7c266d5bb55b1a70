"""One line of the doctor's report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Check:
    """One line of the report: ``ok`` is True, False, or None for skipped / not configured."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""
    required: bool = True  # a failed optional check warns; it does not fail the doctor

    @property
    def status(self) -> str:
        if self.ok is None:
            return "skip"
        if self.ok:
            return "OK"
        return "FAIL" if self.required else "warn"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def all_ok(checks: list[Check]) -> bool:
    """True when no required check failed."""
    return not any(c.ok is False and c.required for c in checks)
