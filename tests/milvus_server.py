"""A throwaway Milvus standalone server for tests: PyPI's `milvus` 2.3.5 (`milvus-server`), its data in a temp dir."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypeVar

import pytest

Test = TypeVar("Test")

ROOT = Path(__file__).resolve().parents[1]
READY = "Ctrl+C to exit"  # the last line of milvus-server's banner, printed once /healthz answers OK
FAILED = ("timeout", "already stopped")
START_TIMEOUT_S = 180.0
START_LOCK = Path(tempfile.gettempdir()) / "sveta-milvus-server-start.lock"


def find_milvus_server() -> Path | None:
    """`milvus-server` beside this Python (the dev extra installs it), in .venv-milvus, or on PATH."""
    on_path = shutil.which("milvus-server")
    candidates = [Path(sys.executable).parent / "milvus-server", ROOT / ".venv-milvus" / "bin" / "milvus-server"]
    found = [p for p in candidates if p.is_file()] + ([Path(on_path)] if on_path else [])
    return found[0] if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MilvusServer:
    """``milvus-server --data DIR --proxy-port PORT`` as a process group: ``start`` waits until it serves."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sveta-milvus-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0  # how long the start took

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def start(self) -> None:
        """Start it and wait until it answers; RuntimeError with the reason when it cannot run here."""
        exe = find_milvus_server()
        if exe is None:
            raise RuntimeError("no milvus-server (pip install 'milvus==2.3.5', in the dev extra)")
        began = time.monotonic()
        command = [str(exe), "--data", str(self.root / "data"), "--proxy-port", str(self.port)]
        env = os.environ | {"PYTHONUNBUFFERED": "1"}  # the banner must reach the log as it is printed
        # milvus-server picks its other ports (etcd, the coordinators, /healthz) as the first free ones from fixed
        # defaults: two starting at once would pick the same. One start at a time on this machine, then.
        with START_LOCK.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with self.log.open("wb") as log:
                self.proc = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            try:
                self._wait()
            except RuntimeError:
                self.stop()
                raise
        self.started_s = time.monotonic() - began

    def _wait(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if READY in text and _accepts(self.port):
                return
            if self.proc.poll() is not None or any(word in text for word in FAILED):
                raise RuntimeError(f"milvus-server did not start: {self._tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"milvus-server did not answer within {START_TIMEOUT_S:.0f} s: {self._tail()}")

    def _tail(self) -> str:
        """The end of what milvus-server and the milvus binary wrote, for the failure's message."""
        logs = [
            self.log,
            self.root / "data" / "logs" / "milvus-stdout.log",
            self.root / "data" / "logs" / "milvus-stderr.log",
        ]
        return " | ".join(p.read_text(errors="replace").strip()[-400:] for p in logs if p.is_file())

    def stop(self) -> None:
        """Kill the server's process group (milvus-server and the milvus binary it runs) and remove its data."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):  # throwaway data: nothing to shut down gracefully
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def unique(prefix: str) -> str:
    """A collection name no other test on the session's server uses."""
    return f"{prefix}_{secrets.token_hex(4)}"


# The marks of the tests on the real server. It starts once per session in 8 to 12 s on 2 cores, but its cases add
# 2.5 to 3 minutes in all: they run in the whole suite (CI), and Milvus Lite runs the same code in the fast one.
SERVER: list[pytest.MarkDecorator] = [pytest.mark.slow]


def on_server(test: Test) -> Test:
    """A test that needs the real server, marked as SERVER says."""
    for mark in SERVER:
        test = mark(test)
    return test
