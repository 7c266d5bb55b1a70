"""Lazy imports of heavy optional dependencies, with the `pip install 'sveta[extra]'` that brings them."""

from __future__ import annotations

import importlib
from types import ModuleType

from sveta.errors import ConfigError


def require(module: str, extra: str | None) -> ModuleType:
    """Import ``module`` or raise a ConfigError naming the extra to install (None: a core dependency)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # a core dependency can still be missing from a broken or hand-made environment
        fix = f"run: pip install 'sveta[{extra}]'" if extra else "reinstall sveta: pip install --force-reinstall sveta"
        raise ConfigError(
            f"this needs the Python package {module.split('.')[0]!r}, which is not installed ({exc})", fix
        ) from exc
