"""Text attributes of a listing as catalog attribute records (origin "text"), read with the vocabulary."""

from __future__ import annotations

from collections.abc import Sequence

from sveta.catalog.records import AttributeRecord
from sveta.vocab.attributes import vocabulary
from sveta.vocab.reading import read_attributes

ORIGIN = "text"


def extract_text_attributes(
    title: str | None,
    product_type: str | None = None,
    tags: Sequence[str] = (),
    description: str | None = None,
) -> list[AttributeRecord]:
    """Attributes named by the listing's words: one record per value, with the words that produced it."""
    version = vocabulary().version
    return [
        AttributeRecord(
            r.name, r.value, origin=ORIGIN, confidence=r.confidence, evidence=r.evidence, model_version=version
        )
        for r in read_attributes(title, product_type, tags, description)
    ]
