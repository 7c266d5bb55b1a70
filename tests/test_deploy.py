"""The compose topology without a container engine: deploy/nginx.conf over two replicas sharing a real Postgres."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.pg_server import find_bin_dir

REHEARSE = Path(__file__).resolve().parents[1] / "deploy" / "rehearse.py"


@pytest.mark.slow
def test_two_replicas_behind_the_proxy_share_the_catalog_and_survive_one_stopping(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if shutil.which("nginx") is None or find_bin_dir() is None:
        reason = "needs nginx and PostgreSQL's server binaries (apt-get install nginx postgresql)"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    spec = importlib.util.spec_from_file_location("rehearse", REHEARSE)
    assert spec and spec.loader
    rehearse = importlib.util.module_from_spec(spec)
    sys.modules["rehearse"] = rehearse
    spec.loader.exec_module(rehearse)
    code = rehearse.main(rows=120)
    assert code == 0, capsys.readouterr().out
