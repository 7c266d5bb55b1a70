"""ms per photo for `sveta look` at ~1 megapixel once models are loaded, against plain photo search in the same run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PIL import Image

from sveta.catalog.store import open_catalog
from sveta.engines.look import Looker
from sveta.engines.search import Searcher
from sveta.settings import Settings

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "photos" / "person-tank-top-jeans.jpg"


def main(photo: Path = PHOTO, runs: int = 10) -> None:
    settings = Settings()
    searcher = Searcher(settings, open_catalog(settings.catalog_url))
    looker = Looker(searcher)
    image = Image.open(photo).convert("RGB")
    scale = (1_000_000 / (image.width * image.height)) ** 0.5
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    one_mp = Path("/tmp/bench-look-1mp.jpg")
    image.save(one_mp, quality=92)
    looker.warm_up()
    searcher.search_photo(one_mp, 5)
    timings = {}
    for name, call in (
        ("search (baseline)", lambda: searcher.search_photo(one_mp, 5)),
        ("look", lambda: looker.look(one_mp, 5)),
    ):
        start = time.perf_counter()
        for _ in range(runs):
            call()
        timings[name] = 1000 * (time.perf_counter() - start) / runs
    print(f"{image.width}x{image.height} photo, {runs} runs each")
    for name, ms in timings.items():
        print(f"{name:>18}: {ms:7.1f} ms/photo")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else PHOTO)
