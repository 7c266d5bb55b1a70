"""Weak labels from photos of people: sleeve and dress length by pose + skin on real demo photos, and abstaining."""

from __future__ import annotations

from pathlib import Path

import pytest

from sveta.images.body_cover import cover_end
from sveta.learn import weak_labels as weak
from sveta.learn.labels import Example, examples_from_folder
from sveta.settings import Settings

# demo photos (myntra-small) whose answer a person can see at a glance
SHORT_TEE = 10854  # a man in a short-sleeved polo T-shirt
LONG_SHIRT = 16355  # a man in a long-sleeved shirt, cuffs at the wrists
SLEEVELESS_TOP = 21113  # a woman in a sleeveless top
KNEE_DRESS = 10360  # a woman in a sleeveless, knee-length dress, seen head to feet
NO_PERSON = 10028  # a T-shirt on its own, no one wearing it
GHOSTS = (13835, 17912, 18176)  # jackets and a hoodie on their own, in which the pose model imagines a person
NOT_APPAREL = 10098  # a watch: neither attribute applies
EXPECTED = {
    SHORT_TEE: {"sleeve_length": "Short Sleeves"},
    LONG_SHIRT: {"sleeve_length": "Long Sleeves"},
    SLEEVELESS_TOP: {"sleeve_length": "Sleeveless"},
    KNEE_DRESS: {"sleeve_length": "Sleeveless", "length": "Knee"},
}


@pytest.mark.parametrize(
    ("states", "end"),
    [
        ("GGGGGSSSSSSSSSSSSSSS", 0.5),  # a short sleeve: the garment stops mid upper arm
        ("GGGGGGGGGGGGGGGGGGGG", 2.0),  # covered to the wrist
        ("GSSSSSSSSSSSSSSSSSSS", 0.1),  # bare from the shoulder (its first sample may be the strap)
        ("GGGGGGGGGGGGGGSSSSSS", 1.4),  # a three-quarter sleeve
        ("GGGGGGGGSSSSSSSGGGGG", 0.8),  # the hand in front of the body at the line's end is left out
        ("GGGGGSSGGGGGGGGGGGGG", None),  # garment, skin, garment again: the line lies across the body
        ("GGGGOOOOOOSSSSSSSSSS", None),  # something else under the sleeve: unclear
        ("GGGG????????????????", None),  # most of the line unseen
    ],
)
def test_cover_end_is_where_the_garment_stops_for_good(states: str, end: float | None) -> None:
    assert cover_end(list(states)) == end


def test_attributes_apply_to_their_categories_in_any_spelling() -> None:
    assert weak.applicable("Tshirts") == weak.applicable("T-Shirt") == ("sleeve_length",)
    assert weak.applicable("Dresses") == ("sleeve_length", "length")
    assert weak.applicable("Skirts") == ("length",)
    assert weak.applicable("Jeans") == weak.applicable("") == ()
    both = {"sleeve_length": "Short Sleeves", "length": "Knee"}
    assert weak.for_category("Tshirts", both) == {"sleeve_length": "Short Sleeves"}
    assert weak.for_category("Skirts", both) == {"length": "Knee"}
    # what a photo can not tell: rolled-up long sleeves, a sleeveless jacket over a T-shirt
    assert weak.for_category("Shirts", {"sleeve_length": "Three-Quarter Sleeves"}) == {}
    assert weak.for_category("Kurtas", {"sleeve_length": "Three-Quarter Sleeves"}) != {}
    assert weak.for_category("Jackets", {"sleeve_length": "Short Sleeves"}) == {}
    assert set(weak.SLEEVE_CLASSES) >= {v for _, _, v in weak.SLEEVE_ENDS}
    assert set(weak.LENGTH_CLASSES) >= {v for _, _, v in weak.LENGTH_ENDS}


@pytest.fixture(scope="module")
def photos(myntra: Path) -> list[Example]:
    pytest.importorskip("mediapipe", reason="weak labels need the people extra: pip install 'sveta[people]'")
    wanted = {*EXPECTED, NO_PERSON, *GHOSTS, NOT_APPAREL}
    chosen = [e for e in examples_from_folder(myntra) if e.key in wanted]
    assert {e.key for e in chosen} == wanted
    return chosen


def test_real_photos_read_as_a_person_sees_them_and_abstain_without_one(photos: list[Example], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    progress: list[tuple[int, int | None]] = []
    labels = weak.weak_labels(photos, settings, on_progress=lambda done, total: progress.append((done, total)))
    assert labels == EXPECTED  # product shots abstain (no face, no hands: no skin); the watch is not looked at
    assert progress[-1] == (len(photos) - 1, len(photos) - 1)
    assert (tmp_path / "weak_labels" / f"{weak.VERSION}.json").is_file()


def test_cached_labels_need_no_pose_model(
    photos: list[Example], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path)
    first = weak.weak_labels(photos, settings)

    def no_pose() -> None:
        raise AssertionError("MediaPipe ran again for a cached photo")

    monkeypatch.setattr(weak, "PoseFinder", no_pose)
    assert weak.weak_labels(photos, settings) == first == EXPECTED
