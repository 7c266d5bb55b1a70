"""benchmarks/readme_assets.py: the README's tables rendered from real answers, rewritten between their markers,
idempotently; every picture the README shows has a command that draws it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sveta.catalog.store import CatalogStore, open_catalog
from sveta.engines.complete import Completer
from sveta.engines.look import Looker, LookResult
from sveta.engines.search import Searcher
from sveta.settings import Settings
from tests.test_complete import _first, built, completer  # noqa: F401  (built and completer are fixtures)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "readme_assets.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_assets", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_assets"] = module
    spec.loader.exec_module(module)
    return module


assets = _load()


def _marked(name: str, inside: str = "| an old | table |\n") -> str:
    return f"before\n\n<!-- readme-assets:{name} -->\n{inside}<!-- /readme-assets:{name} -->\n\nafter\n"


def test_the_readme_has_each_tables_markers_once_and_a_maker_for_each_picture() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("complete", "look"):
        assert len(assets.block(name).findall(readme)) == 1, name
    names = assets.image_names(readme)
    assert "look-person.png" in names and assets.complete_refs(names)
    assert "complete-ID.png" not in names  # the command's template in the prose is a mention, not a picture
    for name in names:
        assets.drawer(name)  # raises SystemExit for a picture no command draws


def test_markers_missing_or_twice_are_refused_and_the_text_around_them_is_kept() -> None:
    with pytest.raises(SystemExit, match="readme-assets:complete"):
        assets.replace_block("no markers here\n", "complete", "| a |")
    with pytest.raises(SystemExit):
        assets.replace_block(_marked("complete") * 2, "complete", "| a |")
    out = assets.replace_block(_marked("complete"), "complete", "| new |\n")
    assert out == "before\n\n<!-- readme-assets:complete -->\n\n| new |\n\n<!-- /readme-assets:complete -->\n\nafter\n"


def test_the_complete_table_from_real_answers_is_rewritten_idempotently(
    completer: Completer,  # noqa: F811  (the fixture imported above)
    built: tuple[Settings, CatalogStore],  # noqa: F811
    myntra: Path,
) -> None:
    refs = [_first(myntra, "Men", "Formal", "Shirts", built[1]), _first(myntra, "Women", "Sports", "Tshirts", built[1])]
    answers = [(ref, completer.complete(completer.piece_of_product(ref), assets.COMPLETE_K)) for ref in refs]
    once = assets.replace_block(_marked("complete"), "complete", assets.complete_table(answers))
    assert "an old" not in once and once.startswith("before\n") and once.endswith("after\n")
    rows = [line for line in once.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(refs)
    for row, (ref, result) in zip(rows, answers, strict=True):
        assert row.startswith(f"| {result.piece.gender.lower()}'s ") and f", {ref} |" in row
        assert row.endswith(f"| [complete-{ref}.png](docs/images/complete-{ref}.png) |")
        for item in result.items:
            assert f"{item.slot}: " in row and (item.card.category or "?") in row and (item.card.colour or "") in row
    assert "bottom: " in rows[0] and "footwear: " in rows[0]  # the formal shirt gets trousers and shoes
    assert assets.replace_block(once, "complete", assets.complete_table(answers)) == once


@pytest.fixture(scope="module")
def look_answer(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> LookResult:
    pytest.importorskip("mediapipe", reason="sveta look needs the people extra: pip install 'sveta[people]'")
    from tests.test_look import PERSON, build_look_home

    settings = build_look_home(myntra, tmp_path_factory)  # test_look's trained catalog of tops and bottoms
    return Looker(Searcher(settings, open_catalog(settings.catalog_url))).look(PERSON, assets.LOOK_K)


@pytest.mark.slow
def test_the_look_table_from_a_real_answer_is_rewritten_idempotently(look_answer: LookResult) -> None:
    body = assets.look_table("person.jpg", look_answer)
    once = assets.replace_block(_marked("look", ""), "look", body)
    assert "`sveta look person.jpg --k 5`" in once and "the wearer was taken for Women" in once
    for garment in look_answer.garments:
        row = next(line for line in once.splitlines() if line.startswith(f"| {garment.region} |"))
        assert f"| {garment.category} ({garment.confidence:.2f}) | {garment.colour} |" in row
        matches = row.rsplit(" | ", 1)[1]
        assert all(f"{m.card.colour} {m.card.category} ({m.card.gender})" in matches for m in garment.matches)
    assert {"upper", "lower"} <= {g.region for g in look_answer.garments}
    assert assets.replace_block(once, "look", body) == once
