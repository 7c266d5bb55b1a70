"""Fuzzing the REST API: schemathesis cases from create_app's OpenAPI, in process, over a real catalog with an index:
no 5xx, statuses, bodies and headers as declared, every error is the JSON envelope, no write passes without the key."""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sveta.api import create_app
from sveta.settings import Settings
from tests.conftest import reset_postgres
from tests.test_api import KEY, build_catalog

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "fuzz.json"
EXAMPLES = 12  # per operation and phase: the whole module stays under 2 minutes on 2 busy cores
SMOKE_EXAMPLES = 6
WRITES = {
    ("POST", "/api/sources"),
    ("POST", "/api/sources/{source_id}/crawl"),
    ("POST", "/api/rules"),
    ("DELETE", "/api/rules/{rule_id}"),
}
# What the fast smoke run fuzzes over an empty catalog: the operations that need no index (the rest answer 503).
SMOKE_PATHS = r"^/(healthz|metrics|api/(products|products/\{ref\}|images/.*|sources.*|crawl-runs.*|stats))$"


def _schema_app() -> Any:
    """An app for its OpenAPI document only (its data home is never opened: each test fuzzes an app of its own)."""
    home = Path(tempfile.gettempdir()) / "sveta-fuzz-schema-only"
    return create_app(Settings(data_dir=home, api_key=KEY, sync_every="0"))


SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", _schema_app())
SMOKE = schemathesis.openapi.from_asgi(
    "/openapi.json",
    _schema_app(),
    config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}}),
).include(path_regex=SMOKE_PATHS)


@dataclass
class Tally:
    """What the fuzzing tried and found, by operation."""

    cases: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)  # a status (or a header) the operation does not declare
    contained: int = 0  # server paths in write bodies moved into the sandbox folder

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cases": sum(self.cases.values()),
            "server_errors": len(self.server_errors),
            "schema_violations": len(self.violations),
            "status_code_violations": len(self.undeclared),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "cases_by_operation": dict(sorted(self.cases.items())),
            "server_paths_contained": self.contained,
            "first_server_errors": self.server_errors[:5],
            "first_schema_violations": self.violations[:5],
            "first_status_code_violations": self.undeclared[:5],
        }


@dataclass
class Fuzzed:
    """One test's app over a module's catalog; the tally is the module's."""

    app: Any
    sandbox: Path  # the only folder a fuzzed feed, folder or images path may name
    tally: Tally


@dataclass
class Home:
    settings: Settings
    sandbox: Path
    tally: Tally = field(default_factory=Tally)
    fuzzed: Fuzzed | None = None

    def app(self) -> Fuzzed:
        """One app for the module: schemathesis ends its ASGI lifespan after every test, and it starts again."""
        if self.fuzzed is None:
            # no background sync, and a crawl of a public address the fuzzer made up gives up fast (nothing answers)
            quick = {"sync_every": "0", "http_timeout_s": 2.0, "crawl_max_retries": 0, "crawl_delay_s": 0.0}
            self.fuzzed = Fuzzed(create_app(self.settings.model_copy(update=quick)), self.sandbox, self.tally)
        return self.fuzzed


@pytest.fixture(scope="module")
def full_home(myntra: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """The small real catalog of tests/test_api.py (ingested, trained, indexed) on SQLite."""
    root = tmp_path_factory.mktemp("fuzz")
    started = time.monotonic()
    settings, catalog, _ = build_catalog(myntra, root)
    home = Home(settings, _sandbox(root))
    yield home
    catalog.engine.dispose()
    print(_line(home.tally))
    if len(home.tally.cases) < len(list(SCHEMA.get_all_operations())):
        return  # a partial run (-k, -x) keeps the last full one's results
    summary = home.tally.as_dict() | {"examples_per_phase": EXAMPLES, "seconds": round(time.monotonic() - started)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")


@pytest.fixture(scope="module")
def empty_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """An empty catalog (no index): the smoke run's."""
    root = tmp_path_factory.mktemp("fuzz-smoke")
    home = Home(Settings(data_dir=root / "data", api_key=KEY), _sandbox(root))
    yield home
    print(_line(home.tally))


def _sandbox(root: Path) -> Path:
    (root / "server").mkdir()
    return root / "server"


@pytest.fixture
def full(full_home: Home) -> Iterator[Fuzzed]:
    fuzzed = full_home.app()
    yield fuzzed
    fuzzed.app.state.sveta.crawls.join(10)


@pytest.fixture
def empty(empty_home: Home) -> Iterator[Fuzzed]:
    fuzzed = empty_home.app()
    yield fuzzed
    fuzzed.app.state.sveta.crawls.join(10)


def _line(tally: Tally) -> str:
    t = tally.as_dict()
    return (
        f"Fuzzing: {t['requests']} requests and {t['cases']} cases tried, {t['server_errors']} server errors, "
        f"{t['schema_violations']} schema violations."
    )


# -- one case ---------------------------------------------------------------------------------------


def exercise(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    """Send the case as generated (no key or a made-up one); a write is sent again with the key."""
    fuzzed.tally.cases[case.operation.label] += 1
    write = (case.method.upper(), case.path) in WRITES
    if write:
        _contain(case, fuzzed)
    response = _send(case, fuzzed, {})
    if write:
        assert not 200 <= response.status_code < 300, f"a write passed without the key: {response.text[:300]}"
        _send(case, fuzzed, {"X-API-Key": KEY})


def _send(case: schemathesis.Case, fuzzed: Fuzzed, headers: dict[str, str]) -> Any:
    response = case.call(app=fuzzed.app, headers=headers or None)
    tally = fuzzed.tally
    tally.requests += 1
    tally.statuses[response.status_code] += 1
    where = f"{case.operation.label} -> {response.status_code}: {response.content[:200].decode(errors='replace')}"
    checks = (
        (not_a_server_error, tally.server_errors),
        (response_schema_conformance, tally.violations),
        (status_code_conformance, tally.undeclared),
        (response_headers_conformance, tally.undeclared),
    )
    for check, found in checks:
        try:
            case.validate_response(response, checks=[check])
        except FailureGroup:
            found.append(where)
            raise
    if response.status_code >= 400:
        _envelope(response, where)
    return response


def _envelope(response: Any, where: str) -> None:
    """Every error is {"error": {"code", "message", "hint"}}: never HTML, never a traceback."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"an error without the JSON envelope: {where}") from None
    assert set(error) == {"code", "message", "hint"} and error["message"], where
    assert "Traceback" not in response.text, where


def _contain(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    """Server paths a write names (a feed, a folder of photos, an images folder) moved under the sandbox: a fuzzed
    "/" must not have the crawler read the whole disk. Store URLs are left as they are (nothing is reachable)."""
    body = case.body
    if not isinstance(body, dict):
        return
    for key in ("location", "images"):
        value = body.get(key)
        if isinstance(value, str) and (key == "images" or body.get("kind", "shopify") != "shopify"):
            inside = value.replace("..", "__").lstrip("/~") or "."  # a NUL stays: the API refuses it (a 422)
            body[key] = str(fuzzed.sandbox / inside)
            fuzzed.tally.contained += 1


# -- the runs ---------------------------------------------------------------------------------------


@SMOKE.parametrize()
@settings(max_examples=SMOKE_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_smoke_over_an_empty_catalog(case: schemathesis.Case, empty: Fuzzed) -> None:
    exercise(case, empty)


@pytest.mark.slow
@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_every_operation_over_a_real_catalog(case: schemathesis.Case, full: Fuzzed) -> None:
    exercise(case, full)


# -- what the fuzzing found, fixed: each pinned ------------------------------------------------------

NUL_PATHS = [
    {"kind": "csv", "location": "feed\x00.csv"},
    {"kind": "folder", "location": "\x00"},
]


@pytest.mark.parametrize("body", NUL_PATHS, ids=["feed", "folder"])
def test_a_server_path_with_a_nul_is_refused_with_a_422(body: dict[str, str], empty: Fuzzed) -> None:
    with TestClient(empty.app) as client:
        response = client.post("/api/sources", json=body, headers={"X-API-Key": KEY})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == "the location has a NUL character (\\x00)"


NUL_READS = [
    "/api/products?brand=a%00b",
    "/api/products?source=%00",
    "/api/crawl-runs?source=%00",
    "/api/products/a%00b",
    "/api/products/a%00b/similar",
    "/api/complete/a%00b",
]


@pytest.fixture(scope="module")
def postgres_app(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    reset_postgres(postgres_url)
    settings = Settings(data_dir=tmp_path_factory.mktemp("fuzz-pg") / "data", database_url=postgres_url, sync_every="0")
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("path", NUL_READS)
def test_a_nul_in_a_string_parameter_is_no_500_on_postgres(path: str, postgres_app: TestClient) -> None:
    response = postgres_app.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == {
        "code": "input_error",
        "message": "the request has a NUL character (%00)",
        "hint": "remove it from the address",
    }


def test_every_error_status_is_declared_with_the_error_envelope(empty: Fuzzed) -> None:
    operation = SCHEMA["/api/products/{ref}"]["GET"]
    case = operation.Case(path_parameters={"ref": "no-such-product"})
    response = case.call(app=empty.app)
    assert response.status_code == 404
    case.validate_response(response, checks=[status_code_conformance, response_schema_conformance])
    declared = SCHEMA.raw_schema["paths"]["/api/products/{ref}"]["get"]["responses"]["422"]
    assert declared["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody"), declared
