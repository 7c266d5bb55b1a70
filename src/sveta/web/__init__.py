"""The web page: plain HTML, one ES module and a stylesheet in static/, served by the API app (no build step)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

STATIC = Path(str(files(__name__) / "static"))
