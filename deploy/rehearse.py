"""The compose topology rehearsed without a container engine: Postgres, two `sveta serve` replicas, nginx in front.

    .venv/bin/python deploy/rehearse.py            # ~1 min; needs PostgreSQL's server binaries and nginx

It runs deploy/nginx.conf as it is (only the replicas' addresses and the listen port rewritten to local ones) over
two replicas that share one PostgreSQL catalog and one data home, as in deploy/compose.yaml. The index is FAISS in
the shared data home: Milvus standalone needs Docker, and Milvus Lite serves one process only. Prints one JSON
report and exits 1 if a check fails.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.pg_server import postgres_server  # noqa: E402

MYNTRA = ROOT.parent / "shared" / "datasets" / "myntra-small"
SVETA = str(Path(sys.executable).with_name("sveta"))
KEY = "rehearsal-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill_catalog(home: Path, env: dict[str, str], rows: int) -> str:
    """A feed of the first ROWS shared products, ingested into Postgres and indexed, as `docker compose run` would."""
    with (MYNTRA / "styles.csv").open(encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f))[: rows + 1]
    feed = home / "feed.csv"
    with feed.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(lines)
    for args in (["ingest", "csv", str(feed), "--images", str(MYNTRA / "images")], ["index", "build"]):
        subprocess.run([SVETA, *args], env=env, check=True, capture_output=True, text=True)
    return lines[1][0]  # the first product's id in the feed


@contextmanager
def replica(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([SVETA, "serve", "--port", str(port)], env=env, stdout=out, stderr=out)
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, f"replica :{port}")
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def nginx(ports: list[int], listen: int, root: Path) -> Iterator[None]:
    """deploy/nginx.conf inside a minimal main config whose files all live under ROOT."""
    site = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    for name, port in zip(("sveta-1", "sveta-2"), ports, strict=True):
        site = site.replace(f"{name}:8000", f"127.0.0.1:{port}")
    site = re.sub(r"listen 80;", f"listen 127.0.0.1:{listen};", site)
    root.mkdir(mode=0o777)
    (root / "site.conf").write_text(site, encoding="utf-8")
    temp = " ".join(f"{k}_temp_path {root}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = (
        f"daemon off; pid {root}/nginx.pid; error_log {root}/error.log; "
        + ("user root; " if os.geteuid() == 0 else "")
        + f"events {{}} http {{ access_log {root}/access.log; {temp} include {root}/site.conf; }}"
    )
    (root / "main.conf").write_text(main, encoding="utf-8")
    subprocess.run(["nginx", "-t", "-q", "-c", str(root / "main.conf")], check=True, capture_output=True)
    proc = subprocess.Popen(["nginx", "-c", str(root / "main.conf")])
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{listen}/healthz").status_code == 200, "nginx")
        yield
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(10)


def wait_until(ready: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up in {timeout_s} s")


def served_by(port: int) -> int:
    """How many similar-item searches this replica answered, from its own /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    route = 'method="GET",route="/api/products/{ref}/similar",status="200"'
    hits = re.findall(r"sveta_http_requests_total\{" + re.escape(route) + r"\} (\d+)", text)
    return sum(int(h) for h in hits)


def same_answer(a: httpx.Response, b: httpx.Response) -> bool:
    strip = lambda r: {k: v for k, v in r.json().items() if k not in {"took_ms", "ms", "search_id"}}  # noqa: E731
    return bool(strip(a) == strip(b))


def rss_mb(proc: subprocess.Popen[bytes]) -> int:
    status = Path(f"/proc/{proc.pid}/status").read_text(encoding="utf-8")
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) // 1024  # type: ignore[union-attr]


def upload(proxy: str, size: int) -> httpx.Response:
    return httpx.post(f"{proxy}/api/search/photo", files={"file": ("big.jpg", b"\xff" * size, "image/jpeg")})


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def checks(proxy: str, ports: list[int], replicas: list[subprocess.Popen[bytes]], ref: str) -> dict[str, Any]:
    similar = f"/api/products/{ref}/similar?k=10"
    answers = [httpx.get(proxy + similar) for _ in range(40)]
    direct = [httpx.get(f"http://127.0.0.1:{p}{similar}") for p in ports]
    big, under = (upload(proxy, size) for size in (20_500_000, 19_000_000))
    source = httpx.post(
        f"{proxy}/api/sources",
        headers={"X-API-Key": KEY},
        json={"kind": "csv", "location": str(MYNTRA / "styles.csv"), "name": "through-the-proxy"},
    )
    seen = [[s["name"] for s in httpx.get(f"http://127.0.0.1:{p}/api/sources").json()] for p in ports]
    rss, served = [rss_mb(r) for r in replicas], [served_by(p) for p in ports]
    replicas[0].terminate()
    replicas[0].wait(10)
    after = [httpx.get(proxy + similar).status_code for _ in range(20)]
    return {
        "40 searches through the proxy: all 200": all(r.status_code == 200 for r in answers),
        "both replicas served some": served,
        "both replicas give the same answer": same_answer(*direct),
        "a 20.5 MB upload: 413, sveta's JSON shape": big.status_code == 413 and error_code(big) == "payload_too_large",
        "a 19 MB non-photo reaches sveta: 415": under.status_code == 415 and error_code(under) == "not_an_image",
        "a write through the proxy: status": source.status_code,
        "both replicas see it (shared Postgres)": all("through-the-proxy" in names for names in seen),
        "replica 1 stopped, 20 searches: all 200": all(code == 200 for code in after),
        "replicas' RSS MB": rss,
    }


def passed(report: dict[str, Any]) -> bool:
    served = report["both replicas served some"]
    flags = [v for k, v in report.items() if isinstance(v, bool)]
    return all(flags) and min(served) > 0 and report["a write through the proxy: status"] == 201


def main(rows: int = 300) -> int:
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sveta-rehearse-")))
        env = os.environ | {
            "SVETA_DATA_DIR": str(home / "data"),
            "SVETA_DATABASE_URL": stack.enter_context(postgres_server()),
            "SVETA_API_KEY": KEY,
        }
        ref = fill_catalog(home, env, rows)
        ports, listen = [free_port(), free_port()], free_port()
        envs = [env, env | {"SVETA_SYNC_EVERY": "0"}]  # one writer for background work, as in the compose file
        logs = [home / f"replica-{i}.log" for i in (1, 2)]
        replicas = [stack.enter_context(replica(*args)) for args in zip(envs, ports, logs, strict=True)]
        stack.enter_context(nginx(ports, listen, home / "nginx"))
        report = checks(f"http://127.0.0.1:{listen}", ports, replicas, ref)
    report = {"products": rows, **report}
    print(json.dumps(report, indent=2))
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
