"""Outfit rules (data/outfit_slots.yaml): each category's slot, which slots complete which, pairings."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from sveta.errors import ConfigError
from sveta.vocab.attributes import vocabulary

ADULT_GENDERS = ("Men", "Women", "Unisex")
KID_GENDERS = ("Boys", "Girls")


@dataclass(frozen=True)
class OutfitRules:
    """outfit_slots.yaml: each category's slot, which slots complete which, occasion and season pairings."""

    slot_of: dict[str, str | None]
    completes: dict[str, list[str]]
    occasions: dict[str, Any]
    seasons: dict[str, Any]
    neutral_colours: list[str]
    quiet_patterns: list[str]

    def slot(self, category: str | None) -> str | None:
        return self.slot_of.get(category) if category else None


@functools.lru_cache(maxsize=1)
def outfit_rules() -> OutfitRules:
    """The outfit rules, loaded once."""
    data = yaml.safe_load(resources.files("sveta.vocab").joinpath("data/outfit_slots.yaml").read_text())
    groups = vocabulary().attributes["category"].groups
    slot_of = {c: data["groups"].get(g) for c, g in groups.items()}
    slot_of.update(data.get("categories") or {})
    for slot, others in data["completes"].items():
        if slot in others:  # the same slot is never suggested: a data file saying so is a bug
            raise ConfigError(f"outfit_slots.yaml: slot {slot} completes itself", "remove it from its own list")
    return OutfitRules(
        slot_of,
        data["completes"],
        data["occasions"],
        data["seasons"],
        data["neutral_colours"],
        data["quiet_patterns"],
    )
