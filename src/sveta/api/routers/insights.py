"""`/api/events/click` and `/api/insights`: clicks on results, and what shoppers searched (no address, no user id)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["insights"])
