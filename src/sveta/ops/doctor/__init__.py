"""`sveta doctor`: what the settings point at (catalog, index, embedder, Ray), whether it answers, and how to fix it."""

from __future__ import annotations

from collections.abc import Callable

from sveta.ops.doctor.catalog import _reason, check_catalog, check_data_home, check_image_cache
from sveta.ops.doctor.check import Check, all_ok
from sveta.ops.doctor.engines import (
    check_embedder,
    check_extras,
    check_index,
    check_outfit_model,
    check_ray,
    check_trained_model,
)
from sveta.settings import Settings

__all__ = ["Check", "all_ok", "run_checks"]


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a user would fix them; a check that breaks is a failed line, never a traceback."""
    checks = _safely("data home", lambda: [check_data_home(settings)])
    store, catalog_checks = check_catalog(settings)
    try:
        checks += catalog_checks
        checks += _safely("image cache", lambda: [check_image_cache(settings)])
        checks += _safely("embedder", lambda: [check_embedder(settings)])
        checks += _safely("index", lambda: check_index(settings, store))
        checks += _safely("trained model", lambda: [check_trained_model(settings)])
        checks += _safely("outfit model", lambda: [check_outfit_model(settings)])
        checks += _safely("ray", lambda: [check_ray(settings)])
        checks += check_extras()
    finally:
        if store is not None:
            store.engine.dispose()
    return checks


def _safely(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    try:
        return run()
    except Exception as exc:  # a doctor reports; it does not crash
        return [Check(name, False, f"the check itself failed: {type(exc).__name__}: {_reason(exc)}", "")]
