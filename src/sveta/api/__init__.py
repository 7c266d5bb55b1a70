"""The REST API: ``create_app(settings)`` builds the FastAPI app (OpenAPI at /docs)."""

from __future__ import annotations

from sveta.api.app import create_app

__all__ = ["create_app"]
