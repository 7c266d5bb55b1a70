"""The README's pictures and tables of model output, made again from the current trained model on the demo catalog.

    ./scripts/demo --no-serve
    SVETA_DATA_DIR=sveta-data .venv/bin/python benchmarks/readme_assets.py [--check]

Every docs/images/*.png the README links to is drawn as its command's `--sheet` draws it:
`complete-ID.png` is `sveta complete ID --k 3`, `look-person.png` is `sveta look` on the shared person photo
(`look-NAME.png`: the fixture photo NAME*.jpg), `similar-ID.png` is `sveta similar ID --k 8`, and
`text-SOME-WORDS.png` is `sveta search --text "some words"`. The tables between `<!-- readme-assets:NAME -->` and
`<!-- /readme-assets:NAME -->` are rewritten from the same answers. The diff of the README is printed; `--check`
writes nothing and exits 1 when a table differs from what the model gives now.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from pathlib import Path

import sveta
from sveta.engines.complete import CompleteResult, Piece, Suggestion
from sveta.engines.look import Garment, LookResult
from sveta.engines.search import Match

ROOT = Path(__file__).resolve().parents[1]
IMAGES = "docs/images"
IMAGE_REF = re.compile(r"\]\(docs/images/([A-Za-z0-9_.-]+\.png)\)")  # a link or picture, not a mention
COMPLETE_K, LOOK_K, SIMILAR_K, TEXT_K = 3, 5, 8, 10
LOOK_PHOTOS = {"person": "person-tank-top-jeans.jpg"}  # look-NAME.png -> the fixture photo it shows
OWNERS = {"Men": "men's", "Women": "women's", "Boys": "boys'", "Girls": "girls'", "Unisex": "unisex"}
WIDTH = 120  # the README's prose lines


# --- the README's markers -------------------------------------------------------------------------------------------


def block(name: str) -> re.Pattern[str]:
    """The text between a table's two marker comments (the markers kept)."""
    return re.compile(rf"(<!-- readme-assets:{name} -->\n)(.*?)(<!-- /readme-assets:{name} -->)", re.S)


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with what lies between NAME's markers replaced by `body`: a blank line, the body, a blank line."""
    pattern = block(name)
    if len(pattern.findall(text)) != 1:
        raise SystemExit(f"README needs exactly one <!-- readme-assets:{name} --> ... <!-- /readme-assets:{name} -->")
    return pattern.sub(lambda m: f"{m[1]}\n{body.strip()}\n\n{m[3]}", text)


def image_names(text: str) -> list[str]:
    """The docs/images pictures the README links to or shows, each once, in the order they first appear."""
    return list(dict.fromkeys(IMAGE_REF.findall(text)))


def complete_refs(names: Iterable[str]) -> list[str]:
    """The product ids of the README's complete-ID.png pictures: the rows of the complete table."""
    return [m[1] for n in names if (m := re.fullmatch(r"complete-(.+)\.png", n))]


def look_names(names: Iterable[str]) -> list[str]:
    return [m[1] for n in names if (m := re.fullmatch(r"look-(.+)\.png", n))]


# --- tables ---------------------------------------------------------------------------------------------------------


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cell(c) for c in line) + " |" for line in lines)


def ordered(values: Iterable[str | None]) -> list[str]:
    """The values given, each once, in first-seen order, blanks left out."""
    return list(dict.fromkeys(v for v in values if v))


def describe_piece(piece: Piece, ref: str) -> str:
    """'men's formal blue shirt, 10381': who it is for, the occasion, the colour and the category, lower case."""
    words = [OWNERS.get(piece.gender or "", piece.gender), piece.occasion, piece.colour, piece.category]
    return " ".join(w.lower() for w in words if w) + f", {ref}"


def slot_summary(slot: str, items: Sequence[Suggestion]) -> str:
    """'footwear: Black/Brown Formal Shoes (Red Tape, Enroute), Brown Casual Shoes (Red Tape)': per category
    in the slot, in the order they came back, its colours and its brands."""
    groups = []
    for category in ordered(s.card.category or "?" for s in items):
        same = [s.card for s in items if (s.card.category or "?") == category]
        colours, brands = "/".join(ordered(c.colour for c in same)), ", ".join(ordered(c.brand for c in same))
        groups.append(" ".join(filter(None, [colours, category, f"({brands})" if brands else ""])))
    return f"{slot}: " + ", ".join(groups)


def complete_row(ref: str, result: CompleteResult) -> list[str]:
    filled = [slot for slot in result.slots if any(s.slot == slot for s in result.items)]
    summary = "; ".join(slot_summary(slot, [s for s in result.items if s.slot == slot]) for slot in filled)
    name = f"complete-{ref}.png"
    return [describe_piece(result.piece, ref), summary or "nothing", f"[{name}]({IMAGES}/{name})"]


def complete_table(answers: Sequence[tuple[str, CompleteResult]]) -> str:
    """One row per asked product: what it is, then per slot what came back first, and its sheet."""
    header = ["asked", f"came back first (per slot, {COMPLETE_K} items: colours, category, brands)", "sheet"]
    return table(header, [complete_row(ref, result) for ref, result in answers])


def match_summary(matches: Sequence[Match]) -> str:
    """'White T-Shirt (Women) x2, Grey T-Shirt (Boys)': each kind of match once, in order, with its count."""
    kinds = [" ".join(filter(None, [m.card.colour, m.card.category])) + f" ({m.card.gender or '?'})" for m in matches]
    return ", ".join(k + (f" x{kinds.count(k)}" if kinds.count(k) > 1 else "") for k in ordered(kinds)) or "none"


def garment_row(garment: Garment) -> list[str]:
    found = f"{garment.category or '?'} ({garment.confidence:.2f})"
    return [garment.region, found, garment.colour, match_summary(garment.matches)]


def look_table(photo: str, result: LookResult) -> str:
    """A line on who the wearer was taken for, then one row per garment: category, colour, its first matches."""
    assumed = result.assumed
    wearer = (
        f"the wearer was taken for {assumed['gender']}, {assumed.get('age_group') or '?'} "
        f"(confidence {assumed['confidence']:.2f})"
        if assumed
        else "no wearer assumed"
    )
    intro = f"`sveta look {photo} --k {LOOK_K}`: {result.message}; {wearer}."
    intro = textwrap.fill(intro, WIDTH, break_long_words=False, break_on_hyphens=False)
    header = ["garment", "category (confidence)", "colour", f"first {LOOK_K} matches: colour, category (gender)"]
    return intro + "\n\n" + table(header, [garment_row(g) for g in result.garments])


# --- the model's answers, each computed once -------------------------------------------------------------------------


class Answers:
    """The engines over the demo catalog in SVETA_DATA_DIR, loaded on first use, and their answers, kept."""

    def __init__(self, settings: sveta.Settings) -> None:
        self.settings = settings
        self._complete: dict[str, CompleteResult] = {}
        self._look: dict[str, LookResult] = {}

    @cached_property
    def searcher(self) -> sveta.Searcher:
        return sveta.Searcher(self.settings, sveta.open_catalog(self.settings.catalog_url))

    @cached_property
    def completer(self) -> sveta.Completer:
        completer = sveta.Completer(self.searcher.catalog, self.searcher.index, self.settings)
        if completer.learned is None:
            print("note: no trained outfit model in the data home; complete scores without it", file=sys.stderr)
        return completer

    def complete(self, ref: str) -> CompleteResult:
        if ref not in self._complete:
            self._complete[ref] = self.completer.complete(self.completer.piece_of_product(ref), COMPLETE_K)
        return self._complete[ref]

    def look_photo(self, name: str) -> Path:
        shared = self.settings.shared_dir
        folder = (shared or ROOT.parent / "shared") / "fixtures" / "photos"
        found = [folder / LOOK_PHOTOS[name]] if name in LOOK_PHOTOS else sorted(folder.glob(f"{name}*.jpg"))
        if not found or not found[0].is_file():
            raise SystemExit(f"look-{name}.png: no photo {LOOK_PHOTOS.get(name, name + '*.jpg')} in {folder}")
        return found[0]

    def look(self, name: str) -> LookResult:
        if name not in self._look:
            self._look[name] = sveta.Looker(self.searcher).look(self.look_photo(name), LOOK_K)
        return self._look[name]


# --- what the README shows -------------------------------------------------------------------------------------------


def shown_photo(answers: Answers, name: str) -> str:
    """The look photo as the README names it: relative to the checkout (../shared/...) where it can be."""
    photo = answers.look_photo(name).resolve()
    return str(Path("..") / photo.relative_to(ROOT.parent)) if photo.is_relative_to(ROOT.parent) else str(photo)


def tables(text: str, answers: Answers) -> dict[str, str]:
    """Each marked table's new body: `complete` always; `look` for the first look-NAME.png the README shows."""
    names = image_names(text)
    out = {"complete": complete_table([(ref, answers.complete(ref)) for ref in complete_refs(names)])}
    if looks := look_names(names):
        out["look"] = look_table(shown_photo(answers, looks[0]), answers.look(looks[0]))
    return out


def rewritten(text: str, answers: Answers) -> str:
    for name, body in tables(text, answers).items():
        text = replace_block(text, name, body)
    return text


# --- pictures -------------------------------------------------------------------------------------------------------


def draw_complete(answers: Answers, ref: str, out: Path) -> None:
    from sveta.cli.complete import _write_sheet  # the sheet `sveta complete --sheet` draws

    _write_sheet(answers.complete(ref), answers.searcher, out)


def draw_look(answers: Answers, name: str, out: Path) -> None:
    from sveta.cli.look import write_sheet

    write_sheet(answers.look(name), answers.look_photo(name), out)


def draw_similar(answers: Answers, ref: str, out: Path) -> None:
    from sveta.catalog.queries import product_cards, resolve_product
    from sveta.cli.search import _write_sheet

    product_id = resolve_product(answers.searcher.catalog, ref)
    card = product_cards(answers.searcher.catalog, [product_id]).get(product_id)
    _write_sheet(answers.searcher.similar(ref, SIMILAR_K), card.image_path if card else None, out)


def draw_text(answers: Answers, slug: str, out: Path) -> None:
    from sveta.cli.search import _write_sheet

    _write_sheet(answers.searcher.search_text(slug.replace("-", " "), TEXT_K), None, out)


DRAWERS: dict[str, Callable[[Answers, str, Path], None]] = {
    r"complete-(.+)\.png": draw_complete,
    r"look-(.+)\.png": draw_look,
    r"similar-(.+)\.png": draw_similar,
    r"text-(.+)\.png": draw_text,
}


def drawer(name: str) -> tuple[Callable[[Answers, str, Path], None], str]:
    """What draws docs/images/NAME, and the id, photo or words it is drawn for."""
    for pattern, draw in DRAWERS.items():
        if m := re.fullmatch(pattern, name):
            return draw, m[1]
    raise SystemExit(f"docs/images/{name}: no command known to draw it (known: {', '.join(DRAWERS)})")


def draw_all(names: Iterable[str], answers: Answers, folder: Path) -> None:
    plans = [(name, *drawer(name)) for name in names]  # every name known before anything is drawn
    for name, draw, what in plans:
        draw(answers, what, folder / name)


# --- the command ----------------------------------------------------------------------------------------------------


def diff(old: str, new: str, path: Path) -> str:
    lines = difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path.name}", f"b/{path.name}")
    return "".join(lines)


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a table is out of date")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md", help="the README to rewrite")
    parser.add_argument("--images", type=Path, default=ROOT / IMAGES, help="where the pictures go")
    parser.add_argument("--no-images", action="store_true", help="rewrite the tables only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    old = args.readme.read_text(encoding="utf-8")
    answers = Answers(sveta.Settings())
    new = rewritten(old, answers)
    sys.stdout.write(diff(old, new, args.readme) or "README tables: up to date\n")
    if args.check:
        return int(new != old)
    if not args.no_images:
        draw_all(image_names(old), answers, args.images)
    if new != old:
        args.readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
