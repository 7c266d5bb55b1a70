"""Request counts and latency histograms per route, written by hand in the Prometheus text format."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED = "<unmatched>"  # any path no route knows: one label, so scanners cannot grow the series
Gauges = dict[str, tuple[str, float]]  # name -> (help, value)


class Metrics:
    """Thread-safe counters: requests by (method, route, status), latency by (method, route), requests turned away
    by reason (overload, rate limit); and the gauges of whoever registered some (the heavy pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.rejected: dict[str, int] = defaultdict(int)
        self.gauge_sources: list[Callable[[], Gauges]] = []

    def reject(self, reason: str) -> None:
        """One request turned away before any work: queue_full, queue_timeout or rate_limited."""
        with self._lock:
            self.rejected[reason] += 1

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.buckets.setdefault((method, route), [0] * (len(BUCKETS) + 1))
            counts[bisect_left(BUCKETS, seconds)] += 1
            self.sums[(method, route)] += seconds

    def render(self, gauges: Gauges | None = None) -> str:
        """The exposition text; ``gauges`` adds name -> (help, value) lines."""
        lines = [
            "# HELP sveta_http_requests_total HTTP requests by method, route and status.",
            "# TYPE sveta_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(f'sveta_http_requests_total{{{_labels(method, route)},status="{status}"}} {n}')
            lines += _histogram(self.buckets, self.sums)
            lines += _rejected(self.rejected)
        gauges = dict(gauges or {})
        for source in self.gauge_sources:
            gauges.update(source())
        for name, (help_text, value) in gauges.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_number(value)}"]
        return "\n".join(lines) + "\n"


def _histogram(buckets: dict[tuple[str, str], list[int]], sums: dict[tuple[str, str], float]) -> list[str]:
    name = "sveta_http_request_duration_seconds"
    lines = [f"# HELP {name} Time to answer a request, by method and route.", f"# TYPE {name} histogram"]
    for key, counts in sorted(buckets.items()):
        labels = _labels(*key)
        total = 0
        for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
            total += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{name}_bucket{{{labels},le="{le}"}} {total}')
        lines += [f"{name}_sum{{{labels}}} {sums[key]:.6f}", f"{name}_count{{{labels}}} {total}"]
    return lines


def _rejected(rejected: dict[str, int]) -> list[str]:
    name = "sveta_http_rejected_total"
    lines = [f"# HELP {name} Requests turned away before any work, by reason.", f"# TYPE {name} counter"]
    return lines + [f'{name}{{reason="{_escape(reason)}"}} {n}' for reason, n in sorted(rejected.items())]


def _labels(method: str, route: str) -> str:
    return f'method="{_escape(method)}",route="{_escape(route)}"'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class MetricsMiddleware:
    """Times every HTTP request and records it under its route template (``/api/products/{ref}``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.observe(scope["method"], route, status[0], time.perf_counter() - started)
