"""The merchandising rules' bodies: a rule as added, as listed (state, contradictions) and as removed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from sveta.api.schemas import Schema


class RuleIn(BaseModel):
    """A rule to add, as `sveta rules add` takes it."""

    action: Literal["pin", "boost", "bury", "hide"] = Field(description="What the rule does to its target.")
    target: str = Field(
        ..., min_length=1, max_length=512, description="A product (catalog id, source id or handle), brand or category."
    )
    target_kind: Literal["product", "brand", "category"] = Field("product", description="What target is.")
    scope_kind: Literal["query", "category", "everywhere"] = Field(
        "everywhere", description="Where it applies: for some words, in a category, or everywhere."
    )
    scope: str | None = Field(
        None, max_length=512, description="The words (scope_kind query) or the category (scope_kind category)."
    )
    position: int | None = Field(None, description="pin: the place, 1 the top (default 1).")
    weight: float | None = Field(None, description="boost / bury: the places to move (default 5).")
    starts_at: str | None = Field(None, max_length=40, description="YYYY-MM-DD or an ISO time; UTC without a zone.")
    ends_at: str | None = Field(
        None, max_length=40, description="YYYY-MM-DD (through that day) or an ISO time; UTC without a zone."
    )
    note: str | None = Field(None, max_length=2000, description="Why the rule is there.")


class Rule(Schema):
    id: int = Field(description="Its id: a later (higher) rule wins over one it contradicts.")
    action: str
    target_kind: str
    target: str = Field(description="A product's catalog id, a brand as the catalog spells it, or a category.")
    scope_kind: str
    scope: str | None = Field(description="The words (normalised: lower case, no punctuation) or the category.")
    position: int | None
    weight: float | None
    starts_at: datetime | None
    ends_at: datetime | None
    note: str | None
    created_at: datetime


class ListedRule(Rule):
    state: str = Field(description="active, scheduled (not started yet) or expired.")
    overridden_by: int | None = Field(
        description="A later rule on the same target and scope with another effect, at overlapping times: it wins."
    )
    overrides: list[int] = Field(description="The earlier rules this one wins over.")
    target_title: str | None = Field(description="A product target's source id and title.")
    says: str = Field(description="The rule in words, with the contradiction it is part of.")


class RuleList(Schema):
    rules: list[ListedRule]
