"""The search answers' bodies: matches with why they matched, and what the words were understood as."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sveta.api.schemas import PhotoLabel, ProductCard, RuleNote, Schema


class Match(ProductCard):
    score: float
    image_id: int = Field(description="The photo that matched (image_path is its file).")
    why: list[str] = Field(default_factory=list, description='Why it matched: "title: nike", "colour: Red (seller)".')
    rule: RuleNote | None = Field(None, description="The merchandising rule that moved it, if one did.")


class SearchAnswer(Schema):
    query: str
    category: str | None = Field(description="The category searched (given, or predicted with 'auto').")
    category_predicted: bool
    filters: dict[str, Any] = Field(description="The filters applied, by name.")
    understood: dict[str, Any] = Field(
        default_factory=dict,
        description="What the words were read as: category, colour, gender, brand, prices, excluded, and the "
        "spans (key, value, words, start, end) that produced each part; start and end index the words as sent "
        "(code points), so cutting a span out of them drops that part. Empty for a photo without words.",
    )
    matches: list[Match]
    search_id: int | None = Field(
        None, description="This answer's record in the search insights (send it with a click); null when not kept."
    )


class PhotoSearchAnswer(SearchAnswer):
    photo: PhotoLabel = Field(description="The (first) photo searched.")
    photos: list[PhotoLabel] = Field(
        default_factory=list, description="Every photo searched, in the order sent: results look like any of them."
    )
