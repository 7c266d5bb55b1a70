"""`GET /api/audit`: listings the photo model confidently contradicts, paged; computed once per model and index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query

from sveta.api.deps import AppState, Offset, app_state, require_read
from sveta.api.errors import API, documented
from sveta.api.schemas import AuditPage

if TYPE_CHECKING:
    from sveta.engines.audit import AuditReport

router = APIRouter(prefix="/api", tags=["audit"], dependencies=[Depends(require_read)], responses=documented(*API))


@router.get("/audit", summary="Listings whose category / colour / gender / occasion the photos contradict")
def audit(
    limit: int = Query(20, ge=1, le=500, description="Findings per page, most certain first."),
    offset: Offset = 0,
    state: AppState = Depends(app_state),
) -> AuditPage:
    report = _report(state)
    page = report.findings[offset : offset + limit]
    paging = {"total": len(report.findings), "limit": limit, "offset": offset}
    return AuditPage.model_validate(report.as_dict(0) | paging | {"findings": [f.as_dict() for f in page]})


def _report(state: AppState) -> AuditReport:
    """The cached audit while the model, the index version and the catalog's size are the same."""
    from sveta.engines.audit import run_audit

    key = _key(state)
    with state.audit_lock:
        cached = state.cache.get("audit")
        if cached is None or cached[0] != key:
            cached = (key, run_audit(state.catalog(), state.settings))
            state.cache["audit"] = cached
        report: AuditReport = cached[1]
        return report


def _key(state: AppState) -> tuple[Any, ...]:
    from sveta.index.versions import read_current
    from sveta.learn.store import DEFAULT_NAME, model_dir

    model = model_dir(state.settings, DEFAULT_NAME) / "model.npz"
    mtime = model.stat().st_mtime_ns if model.is_file() else None
    return mtime, read_current(state.settings.index_dir), state.catalog().count_products()
