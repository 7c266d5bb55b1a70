"""The `sveta` command line as a user runs it: JSON outputs, stats, plots, clean errors, kill and rerun."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sveta.cli import _common, app


def _last_json(output: str) -> dict:  # type: ignore[type-arg]
    return json.loads(output.strip().splitlines()[-1])


def _subset(myntra: Path, tmp_path: Path, n: int) -> Path:
    lines = (myntra / "styles.csv").read_text(encoding="utf-8").splitlines()[: n + 1]
    (tmp_path / "feed").mkdir(exist_ok=True)
    target = tmp_path / "feed" / "styles.csv"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def test_ingest_csv_json_then_rerun_changes_nothing(cli: CliRunner, myntra: Path, tmp_path: Path) -> None:
    feed = _subset(myntra, tmp_path, 120)
    first = cli.invoke(app, ["ingest", "csv", str(feed), "--images", str(myntra / "images"), "--json"])
    assert first.exit_code == 0, first.output
    assert {k: _last_json(first.stdout)[k] for k in ("new", "changed", "gone")} == {
        "new": 120,
        "changed": 0,
        "gone": 0,
    }
    again = cli.invoke(app, ["ingest", "csv", str(feed), "--images", str(myntra / "images"), "--json"])
    assert {k: _last_json(again.stdout)[k] for k in ("new", "changed", "unchanged")} == {
        "new": 0,
        "changed": 0,
        "unchanged": 120,
    }


def test_catalog_stats_json_and_plots(cli: CliRunner, myntra: Path, tmp_path: Path) -> None:
    feed = _subset(myntra, tmp_path, 200)
    assert cli.invoke(app, ["ingest", "csv", str(feed), "--images", str(myntra / "images")]).exit_code == 0
    result = cli.invoke(app, ["catalog", "stats", "--json", "--plot", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    stats = _last_json(result.stdout)
    assert {"products", "by_category", "by_gender", "by_colour", "sources", "top_title_words"} <= set(stats)
    assert stats["products"] == 200 and sum(stats["by_gender"].values()) == 200
    assert stats["sources"]["csv:feed/styles.csv"]["products"] == 200
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == [
        "by_category.png",
        "by_colour.png",
        "by_gender.png",
        "colour_by_category.png",
        "gender_by_category.png",
        "top_title_words.png",
    ]
    assert all((tmp_path / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["ingest", "csv", "/nonexistent/feed.csv"], 3, "feed file not found"),
        (["ingest", "csv", "README.md", "--map", "title"], 2, "not FIELD=COLUMN"),
        (["ingest", "folder", "/nonexistent"], 3, "is not a folder"),
        (["demo", "--data", "/nonexistent", "--no-serve"], 3, "Fashion Product Images (Small)"),
    ],
)
def test_user_errors_are_one_clean_line(cli: CliRunner, args: list[str], code: int, words: str) -> None:
    result = cli.invoke(app, args)
    assert result.exit_code == code, result.output
    assert words in result.output and "Traceback" not in result.output
    assert "error:" in result.output


def test_help_reads_well(cli: CliRunner) -> None:
    result = cli.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "images", "catalog", "demo"):
        assert command in result.output
    assert "shopify" in cli.invoke(app, ["ingest", "--help"]).output


def _products(db: Path) -> list[str]:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return [r[0] for r in conn.execute("SELECT external_id FROM products")]
    except sqlite3.OperationalError:  # not created yet
        return []


@pytest.mark.slow
def test_killed_ingest_reruns_without_duplicates_or_loss(myntra: Path, tmp_path: Path) -> None:
    """SIGKILL an ingest of the real 9,583-row feed mid-way, rerun it: every product exactly once."""
    env = {**os.environ, "SVETA_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "sveta", "ingest", "csv", str(myntra / "styles.csv"), "--json"]
    db = tmp_path / "data" / "catalog.db"
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(_products(db)) < 1000 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(_products(db))
    assert 0 < written < 9583, f"the kill should land mid-way, {written} products were written"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    report = _last_json(rerun.stdout)
    assert report["new"] == 9583 - written and report["unchanged"] == written
    ids = _products(db)
    assert len(ids) == len(set(ids)) == 9583
    with sqlite3.connect(db) as conn:
        statuses = [r[0] for r in conn.execute("SELECT status FROM crawl_runs ORDER BY id")]
    assert statuses == ["interrupted", "ok"]


@pytest.mark.slow
def test_ctrl_c_stops_promptly_and_the_rerun_finishes(myntra: Path, tmp_path: Path) -> None:
    env = {**os.environ, "SVETA_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "sveta", "ingest", "csv", str(myntra / "styles.csv"), "--json"]
    db = tmp_path / "data" / "catalog.db"
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell that runs the suite in the background ignores SIGINT, and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while len(_products(db)) < 500 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)  # no 30 s lock wait, no hang
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT status FROM crawl_runs")] == ["interrupted"]
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert len(set(_products(db))) == 9583


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the whole main job: ingest, train, tag and index 9,583 products (~4.5 min on 2 cores)
def test_demo_builds_the_whole_catalog(myntra: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVETA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SVETA_WEAK_LABEL_PHOTOS")  # the demo as a user runs it: sleeve lengths from photos included
    _common._state.clear()
    result = CliRunner().invoke(app, ["demo", "--data", str(myntra), "--no-serve", "--json"])
    _common._state.clear()
    assert result.exit_code == 0, result.output
    payload = _last_json(result.stdout)
    assert payload["stats"]["products"] == 9583 and payload["ingest"]["new"] == 9583
    assert payload["stats"]["by_gender"]["Men"] > 4000
    assert payload["train"]["n_train"] + payload["train"]["n_test"] == 9583 and payload["train"]["text_map"]
    assert payload["train"]["metrics"]["sharp/category_wf1"] > 0.8
    assert payload["train"]["metrics"]["sharp/sleeve_length_wf1"] > 0.8  # a head learned from weak labels
    assert payload["index"]["embedder"] == "tuned:catalog" and payload["index"]["count"] == 9583
    steps = payload["steps"]  # each step's seconds, in build order, adding up to the whole build
    names = list(steps)
    assert names[0] == "ingest" and names[-1] == "index" and "features" in names
    assert abs(sum(steps.values()) - payload["build_seconds"]) < 0.05 * payload["build_seconds"]
