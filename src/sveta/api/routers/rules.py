"""`/api/rules`: merchandising rules (pin, boost, bury, hide), read by anyone, written with the API key."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["rules"])
