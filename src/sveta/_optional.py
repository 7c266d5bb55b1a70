"""Lazy imports of heavy optional dependencies, with the `pip install 'sveta[extra]'` that brings them."""

from __future__ import annotations

import importlib
from types import ModuleType

from sveta.errors import ConfigError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise a ConfigError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"this needs the Python package {module.split('.')[0]!r}, which is not installed ({exc})",
            f"run: pip install 'sveta[{extra}]'",
        ) from exc
