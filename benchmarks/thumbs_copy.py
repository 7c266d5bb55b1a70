"""Make a copy of a Myntra-style folder whose photos are its 60x80 thumbnails resized to 224x224.

That is how the held-out evaluation set is made (blurry, squashed catalog photos):

    .venv/bin/python benchmarks/thumbs_copy.py ../shared/datasets/myntra-small /tmp/myntra-thumbs
    .venv/bin/sveta eval retrieval /tmp/myntra-thumbs --json
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image


def thumbs_copy(source: Path, target: Path, size: int = 224) -> int:
    (target / "images").mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "styles.csv", target / "styles.csv")
    count = 0
    for thumb in sorted((source / "thumbs").glob("*.jpg")):
        with Image.open(thumb) as img:
            img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC).save(target / "images" / thumb.name)
        count += 1
    return count


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: thumbs_copy.py SOURCE_FOLDER TARGET_FOLDER")
    print(f"{thumbs_copy(Path(sys.argv[1]), Path(sys.argv[2]))} thumbnails written to {sys.argv[2]}")
