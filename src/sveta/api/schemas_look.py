"""The answer of `POST /api/look`: the garments a person wears in a photo and their top matches."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sveta.api.schemas import PhotoLabel, Schema


class LookMatch(Schema):
    product_id: int
    title: str
    score: float
    source_id: str
    category: str | None
    colour: str | None
    image_path: str | None
    gender: str | None = None


class Garment(Schema):
    region: str
    box: list[int] = Field(description="[left, top, right, bottom] in the photo's pixels.")
    person: int | None
    category: str | None
    confidence: float
    colour: str | None
    colour_rgb: list[int]
    plausible: float
    searched_categories: list[str]
    matches: list[LookMatch]


class LookAnswer(Schema):
    """Route it with response_model_exclude_unset=True: `filters` is there only when filters were given."""

    photo: str
    kind: str = Field(description="person | product | none")
    people: int
    size: list[int]
    message: str
    garments: list[Garment]
    upload: PhotoLabel
    filters: dict[str, Any] | None = None
    assumed: dict[str, Any] | None = Field(
        None, description="Who the wearer seems to be (gender, age_group, confidence, from), preferred in results."
    )
