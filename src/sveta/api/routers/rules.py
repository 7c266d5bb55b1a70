"""`/api/rules`: merchandising rules (pin, boost, bury, hide), read by anyone, written with the API key."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from sveta.api.deps import RowId, get_catalog, require_read, require_write
from sveta.api.errors import API, ApiError, documented
from sveta.api.schemas_rules import ListedRule, Rule, RuleIn, RuleList
from sveta.catalog import rules
from sveta.catalog.store import CatalogStore
from sveta.errors import InputError

router = APIRouter(prefix="/api", tags=["rules"], responses=documented(*API))


@router.get(
    "/rules",
    summary="The rules in force and scheduled, and which wins where two contradict",
    dependencies=[Depends(require_read)],
)
def list_rules(
    show_all: bool = Query(False, alias="all", description="Expired rules too."),
    catalog: CatalogStore = Depends(get_catalog),
) -> RuleList:
    return RuleList(rules=[ListedRule.model_validate(r.as_dict()) for r in rules.list_rules(catalog, expired=show_all)])


@router.post(
    "/rules",
    status_code=201,
    summary="Add a rule (the write key); a later rule wins over one it contradicts",
    dependencies=[Depends(require_write)],
    responses=documented(400, 413, 422, 507),
)
def add_rule(body: RuleIn, catalog: CatalogStore = Depends(get_catalog)) -> ListedRule:
    spec = rules.RuleSpec(**body.model_dump())
    rule = rules.add_rule(catalog, spec)
    listed = next(r for r in rules.list_rules(catalog, expired=True) if r.rule.id == rule.id)
    return ListedRule.model_validate(listed.as_dict())


@router.delete(
    "/rules/{rule_id}",
    summary="Remove a rule (the write key)",
    dependencies=[Depends(require_write)],
    responses=documented(404, 507),
)
def remove_rule(rule_id: RowId, catalog: CatalogStore = Depends(get_catalog)) -> Rule:
    try:
        return Rule.model_validate(rules.remove_rule(catalog, rule_id).as_dict())
    except InputError as exc:
        raise ApiError(404, exc.message, exc.hint) from None
