"""Fuzzing the REST API: schemathesis cases from create_app's OpenAPI against the small real catalog of the tests,
in process; the requests and cases tried, server errors, schema and status violations, in results/fuzz.json.

The fuzzing is tests/test_fuzz_api.py's (the same schema, checks and bounds); this runs its full pass and reports:
    .venv/bin/python benchmarks/fuzz_api.py [pytest options, e.g. -x]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fuzz.json"
TEST = ROOT / "tests" / "test_fuzz_api.py"


def main(extra: list[str]) -> int:
    RESULTS.unlink(missing_ok=True)
    code = pytest.main([str(TEST), "-m", "slow", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), *extra])
    if not RESULTS.is_file():
        print(f"no results: the full fuzzing pass did not run (pytest exit code {code})", file=sys.stderr)
        return int(code) or 1
    found = json.loads(RESULTS.read_text())
    print(
        f"Fuzzing: {found['requests']} requests and {found['cases']} cases tried, {found['server_errors']} server "
        f"errors, {found['schema_violations']} schema violations, {found['status_code_violations']} undeclared "
        f"statuses or headers ({found['seconds']} s; {RESULTS.relative_to(ROOT)})"
    )
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
