"""The audit's rules without a model: gender weighed by the listing's type, thresholds chosen on held-out data."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from sveta.engines.audit import Finding
from sveta.engines.audit_rules import GENDERLESS_TYPES, MIN_TYPE_LISTINGS, RULES, Candidate, Rule, type_witnesses
from sveta.errors import InputError
from sveta.eval.audit import GRID, MARGIN, TARGET_PRECISION, Condition, calibrate


def _candidate(
    attribute: str = "gender",
    stated: str = "Unisex",
    photo: str = "Men",
    *,
    key: int = 1,
    confidence: float = 0.99,
    stated_probability: float = 1e-6,
    agrees: str | None = "photo",
    witnesses: tuple[float, float] = (1.0, 0.0),
) -> Candidate:
    finding = Finding(key, "", "", attribute, stated, "seller", attribute, stated_probability, photo, confidence)
    return Candidate(finding, confidence, stated_probability, agrees, 0.0, *witnesses)


def _catalog(kind: str, n: int, unisex: int, wrong: int) -> tuple[list[str | None], list[str], list[str]]:
    """``n`` listings of one type: ``unisex`` of them filed Unisex, the photo reading ``wrong`` of the rest wrong."""
    stated: list[str | None] = ["Unisex"] * unisex + ["Men"] * (n - unisex)
    photo = ["Men"] * unisex + ["Women"] * wrong + ["Men"] * (n - unisex - wrong)
    return stated, photo, [kind] * n


def test_a_unisex_watch_is_not_a_gender_error_where_the_catalog_files_watches_unisex() -> None:
    stated, photo, types = _catalog("Watch", 30, unisex=9, wrong=0)
    witnesses = type_witnesses("gender", stated, photo, types)
    assert witnesses[0][1] == pytest.approx(8 / 29)  # the listing itself is left out
    watch = _candidate(witnesses=witnesses[0])
    assert Rule().accepts(watch)  # without the type's witness the photo would have flagged it
    assert not RULES["gender"].accepts(watch)
    # A men's watch the photo reads as a woman's: not judged either, the type is filed Unisex too often.
    men = _candidate(stated="Men", photo="Women", witnesses=witnesses[20])
    assert not RULES["gender"].accepts(men)


def test_gender_is_still_judged_where_the_type_shows_it() -> None:
    stated, photo, types = _catalog("T-Shirt", 40, unisex=0, wrong=1)
    witnesses = type_witnesses("gender", stated, photo, types)
    assert witnesses[5] == (pytest.approx(38 / 39), 0.0)
    assert RULES["gender"].accepts(_candidate(stated="Women", photo="Men", witnesses=witnesses[5]))


def test_gender_is_not_judged_where_the_photo_does_not_read_it() -> None:
    stated, photo, types = _catalog("Belt", 30, unisex=0, wrong=12)  # the photo agrees on 60% of belts
    witnesses = type_witnesses("gender", stated, photo, types)
    assert witnesses[-1][0] == pytest.approx(17 / 29)
    assert not RULES["gender"].accepts(_candidate(stated="Women", photo="Men", witnesses=witnesses[-1]))


def test_a_type_with_few_listings_falls_back_on_the_list_and_the_catalog() -> None:
    few = MIN_TYPE_LISTINGS // 2
    stated = ["Men"] * 40 + ["Men"] * few + ["Women"] * few
    photo = ["Men"] * 36 + ["Women"] * 4 + ["Men"] * (2 * few)
    types = ["T-Shirt"] * 40 + ["Sunglasses"] * few + ["Kurta"] * few
    assert "Sunglasses" in GENDERLESS_TYPES and "Kurta" not in GENDERLESS_TYPES
    witnesses = type_witnesses("gender", stated, photo, types)
    overall = (36 + few) / (40 + 2 * few)
    assert witnesses[40] == (pytest.approx(overall), 1.0)  # sunglasses: gender not judged
    assert witnesses[-1] == (pytest.approx(overall), 0.0)  # a kurta: the catalog's agreement, no Unisex
    assert type_witnesses("colour", ["Red"] * 3, ["Red"] * 3, ["Watch"] * 3)[0] == (1.0, 0.0)


def _condition(name: str, rows: list[tuple[float, bool]], titled: bool = True) -> Condition:
    """Title-backed category candidates: (the stated value's probability, whether it was corrupted)."""
    found = [
        _candidate("category", "Shirt", "T-Shirt", key=i, stated_probability=p, confidence=0.95)
        for i, (p, _) in enumerate(rows)
    ]
    truth = {i: "category" for i, (_, corrupted) in enumerate(rows) if corrupted}
    return Condition.of(name, titled, found, truth)


def test_the_thresholds_are_chosen_on_held_out_data_with_a_margin() -> None:
    # Sharp photos alone would take the loosest stated probability (its false flags sit at 0.05); the thumbnails
    # have false flags at 0.01 too, so the calibration must stop below them.
    sharp = _condition("val", [(0.001, True)] * 20 + [(0.01, True)] * 10 + [(0.05, False)] * 2)
    thumbs = _condition("val-thumbs", [(0.001, True)] * 20 + [(0.01, True)] * 10 + [(0.01, False)] * 4)
    alone = calibrate([sharp])["rules"]["category"]
    assert alone.corroborated_max_stated == 0.02
    chosen = calibrate([sharp, thumbs])
    assert chosen["rules"]["category"].corroborated_max_stated == 0.005
    assert min(chosen["precision"].values()) >= TARGET_PRECISION + MARGIN
    assert chosen["true_flags_per_run"] == {"val": 20.0, "val-thumbs": 20.0}
    hopeless = _condition("val", [(0.001, True)] * 3 + [(0.001, False)] * 3)
    with pytest.raises(InputError):
        calibrate([hopeless])


def test_the_vectorised_rule_is_rule_accepts() -> None:
    rng = np.random.default_rng(0)
    found = [
        _candidate(
            str(rng.choice(["category", "colour", "gender"])),
            key=i,
            confidence=float(rng.uniform(0.4, 1.0)),
            stated_probability=float(10 ** rng.uniform(-5, -0.5)),
            agrees=[None, "photo", "stated"][int(rng.integers(3))],
            witnesses=(float(rng.uniform(0.5, 1.0)), float(rng.uniform(0, 0.3))),
        )
        for i in range(300)
    ]
    condition = Condition.of("val", True, found, {})
    grid = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())][::7]
    for attribute, values in itertools.product(("category", "gender"), grid):
        rule = dataclasses.replace(RULES[attribute], **values)
        expected = [c.finding.attribute == attribute and rule.accepts(c) for c in found]
        assert condition.accepted(attribute, rule).tolist() == expected
