"""The held-out split the learning numbers are measured on: a deterministic split of a Myntra-style folder.

    .venv/bin/python benchmarks/make_split.py ../shared/datasets/myntra-small /tmp/split
    .venv/bin/sveta eval attributes /tmp/split/train /tmp/split/test --json
    .venv/bin/sveta eval attributes /tmp/split/train /tmp/split/test-thumbs --json   # shares the training

Writes OUT/train and OUT/test (styles.csv + symlinked photos; sveta.learn.labels.split, stratified by
articleType) and OUT/test-thumbs: the same test items with their 60x80 thumbnails resized to 224x224, which
is how the hidden held-out set is made.

With ``--three`` it writes the 60/20/20 split of ``sveta eval queries`` instead: OUT/train, OUT/val (every choice
of settings is made on it, sharp and OUT/val-thumbs) and OUT/test (+ OUT/test-thumbs), looked at once, at the end:

    .venv/bin/python benchmarks/make_split.py ../shared/datasets/myntra-small /tmp/split3 --three
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

from PIL import Image

from sveta.learn.labels import examples_from_folder, split


def make_split(source: Path, out: Path) -> tuple[int, int]:
    train, test = split(examples_from_folder(source))
    with (source / "styles.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = {r[0]: r for r in reader if len(r) == len(header)}
    write(source, out / "train", header, [rows[str(e.key)] for e in train])
    write(source, out / "test", header, [rows[str(e.key)] for e in test])
    write(source, out / "test-thumbs", header, [rows[str(e.key)] for e in test], thumbs=True)
    return len(train), len(test)


def make_three(source: Path, out: Path) -> dict[str, int]:
    from sveta.eval.queries import split_parts

    parts = split_parts(examples_from_folder(source))
    with (source / "styles.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = {r[0]: r for r in reader if len(r) == len(header)}
    for name, members in parts.items():
        chosen = [rows[str(e.key)] for e in members]
        write(source, out / name, header, chosen)
        if name != "train":
            write(source, out / f"{name}-thumbs", header, chosen, thumbs=True)
    return {name: len(members) for name, members in parts.items()}


def write(source: Path, folder: Path, header: list[str], rows: list[list[str]], thumbs: bool = False) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    with (folder / "styles.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    for row in rows:
        target = folder / "images" / f"{row[0]}.jpg"
        if target.exists() or target.is_symlink():
            continue
        if thumbs:
            with Image.open(source / "thumbs" / f"{row[0]}.jpg") as img:
                img.convert("RGB").resize((224, 224), Image.Resampling.BICUBIC).save(target)
        else:
            os.symlink((source / "images" / f"{row[0]}.jpg").resolve(), target)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[3] == "--three":
        print(make_three(Path(sys.argv[1]), Path(sys.argv[2])), "items in", sys.argv[2])
        sys.exit(0)
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n_train, n_test = make_split(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{n_train} train, {n_test} test items in {sys.argv[2]}")
