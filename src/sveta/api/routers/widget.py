"""`GET /widget.js`: the storefront widget's web components, for a shop's theme (CORS by SVETA_CORS_ORIGINS)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["widget"])
