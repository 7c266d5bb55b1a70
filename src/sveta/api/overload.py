"""Overload: heavy requests through a bounded pool of their own threads (else 503), and a per-client rate limit."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from sveta.api.errors import ApiError, error_body
from sveta.api.metrics import Metrics
from sveta.api.uploads import MULTIPART_SLACK, drain

T = TypeVar("T")
WINDOW_S = 60.0  # the rate limit is per minute
LIMITED_PREFIX = "/api"  # health checks, metrics and the web page are outside it
TICKET_KEY = "sveta.heavy_ticket"  # where HeavyGate leaves a heavy request's ticket in its ASGI scope


class HeavyPool:
    """At most ``workers`` heavy requests run at once, each in one of this pool's own threads; ``queue`` more are let
    in to upload and wait for one, first come first served, at most ``timeout_s``; any other is a 503 with
    Retry-After at once, before its body is read.

    A request gets its worker only once its upload has arrived, so slow uploads hold no worker. The event loop and
    Starlette's default threadpool (where ``/healthz`` and ``/readyz`` run) never run the heavy work, so they never
    wait behind it; only the upload check (a fast, reduced decode) of a request holding a worker runs there.
    """

    def __init__(self, workers: int, queue: int, timeout_s: float, metrics: Metrics | None = None) -> None:
        self.workers, self.queue, self.timeout_s, self.metrics = workers, queue, timeout_s, metrics
        self._threads: ThreadPoolExecutor | None = None  # made by start(): an app may be started again after close()
        self._lock = threading.Lock()
        self._admitted = 0  # let in: uploading, waiting for a worker or running
        self._free = workers
        self._waiters: deque[_Waiter] = deque()
        self._mean_s = 1.0  # a moving mean of the work's duration, for Retry-After

    def start(self) -> None:
        """Threads for the work (the app's startup); a pool closed by the app's shutdown gets new ones."""
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sveta-heavy")

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """``work()`` in one of the pool's threads (started on first use when the app's startup did not run)."""
        self.start()
        assert self._threads is not None
        return self._threads.submit(self.timed, work)

    def admit(self) -> Ticket:
        """Let a request in (it may upload, then wait for a worker), or a 503 when ``workers + queue`` are in."""
        with self._lock:
            if self._admitted >= self.workers + self.queue:
                busy = self.workers - self._free
                waiting = self._admitted - busy
                why = f"every place for heavy requests is taken ({busy} running, {waiting} let in to wait)"
                raise self._overloaded("queue_full", why, self._retry_after_locked())
            self._admitted += 1
        return Ticket(self)

    def let_out(self) -> None:
        with self._lock:
            self._admitted -= 1

    async def slot(self) -> Slot:
        """A worker for an admitted request: one that is free, else the first to be freed within the timeout."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return Slot(self)
            waiter = _Waiter(loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            await asyncio.wait([waiter.woken], timeout=self.timeout_s)
        except asyncio.CancelledError:
            if not self._leave(waiter):
                self.give_back()  # granted just as the client went away: pass it on
            raise
        if self._leave(waiter):
            why = f"no worker was free within {self.timeout_s:g} s"
            raise self._overloaded("queue_timeout", why, self.retry_after())
        return Slot(self)

    def _leave(self, waiter: _Waiter) -> bool:
        """Take a waiter out of the queue; False when it was granted a worker first (then it holds one)."""
        with self._lock:
            if waiter.granted:
                return False
            self._waiters.remove(waiter)
            return True

    def give_back(self) -> None:
        """A worker is free again: to the longest waiter, or to the free count. Any thread may call it."""
        with self._lock:
            if not self._waiters:
                self._free += 1
                return
            waiter = self._waiters.popleft()
            waiter.granted = True
        try:
            waiter.loop.call_soon_threadsafe(_wake, waiter.woken)
        except RuntimeError:  # its event loop is closed (the app is stopping): nobody will use it, pass it on
            self.give_back()

    def timed(self, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return work()
        finally:
            with self._lock:
                self._mean_s += 0.2 * (time.perf_counter() - started - self._mean_s)

    def retry_after(self) -> int:
        """Whole seconds until the requests running and waiting now are likely done, at the pace seen so far (at
        least 1, at most the wait timeout: a request admitted later waits no longer than that anyway)."""
        with self._lock:
            return self._retry_after_locked()

    def _retry_after_locked(self) -> int:
        backlog = max(self._admitted, self.workers - self._free) + 1
        return max(1, min(math.ceil(self._mean_s * backlog / self.workers), math.ceil(self.timeout_s)))

    def _overloaded(self, reason: str, why: str, seconds: int) -> ApiError:
        if self.metrics is not None:
            self.metrics.reject(reason)
        return ApiError(
            503,
            f"the server is busy: {why}",
            f"retry in {seconds} s (Retry-After); the server admits SVETA_API_HEAVY_WORKERS photo searches, looks, "
            "tags, photo completions and maps at once and SVETA_API_HEAVY_QUEUE more waiting",
            "overloaded",
            headers={"Retry-After": str(seconds)},
        )

    def gauges(self) -> dict[str, tuple[str, float]]:
        with self._lock:
            busy, waiting, admitted = self.workers - self._free, len(self._waiters), self._admitted
        return {
            "sveta_heavy_busy": ("Heavy requests holding a worker of the heavy pool.", float(busy)),
            "sveta_heavy_waiting": ("Heavy requests waiting for a worker.", float(waiting)),
            "sveta_heavy_admitted": ("Heavy requests let in: uploading, waiting or running.", float(admitted)),
        }

    def close(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=False, cancel_futures=True)


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    woken: asyncio.Future[None]
    granted: bool = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(eq=False)
class Ticket:
    """A heavy request let in: it uploads, then takes a worker; closed (worker and place given back) when it ends."""

    pool: HeavyPool
    slot: Slot | None = None

    async def worker(self) -> Slot:
        if self.slot is None:
            self.slot = await self.pool.slot()
        return self.slot

    def close(self) -> None:
        if self.slot is not None:
            self.slot.close()
        self.pool.let_out()


@dataclass(eq=False)
class Slot:
    """One worker of the pool, held by one request: given back when its work ends, or unused when the request does."""

    pool: HeavyPool
    state: str = field(default="held")

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` in one of the pool's threads. The worker is given back when the thread is done with it, not
        when the request is, so the pool never runs more than its workers (a thread cannot be stopped)."""
        if self.state != "held":
            raise RuntimeError("a slot runs one piece of work")
        future = self.pool.submit(work)
        self.state = "running"
        future.add_done_callback(self._done)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        if self.state == "held":
            self.state = "done"
            self.pool.give_back()

    def _done(self, _future: Future[Any]) -> None:
        self.state = "done"
        self.pool.give_back()


class HeavyGate:
    """ASGI middleware: a request for a heavy route (an endpoint that takes ``Heavy``) is let into the pool before
    anything else is done with it, or answered 503 with Retry-After, its body not even parsed: turning one away
    costs next to nothing. The endpoint's ``Heavy`` parameter then waits for a worker, once the body is in."""

    def __init__(self, app: ASGIApp, pool: HeavyPool, routes: Sequence[BaseRoute], max_body: int) -> None:
        self.app, self.pool, self.routes = app, pool, routes
        self.heavy = [route for route in routes if _takes_heavy(route)]
        self.drain_most = max_body + MULTIPART_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._heavy_route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        try:
            ticket = self.pool.admit()
        except ApiError as error:
            scope["route"] = route  # counted under its route in the metrics
            await drain(receive, self.drain_most)  # a client that sent Connection: close would see a reset otherwise
            await send_error(send, error)
            return
        scope[TICKET_KEY] = ticket
        try:
            await self.app(scope, receive, send)
        finally:
            ticket.close()

    def _heavy_route(self, scope: Scope) -> BaseRoute | None:
        """The route the router will pick for this request (the first full match), when it is a heavy one."""
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIX + "/"):
            return None
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.drain_most:
            return None  # too large to run at all: the body limit answers 413 at once, no worker needed
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                return route if route in self.heavy else None
        return None


def _takes_heavy(route: BaseRoute) -> bool:
    return isinstance(route, APIRoute) and any(d.call is heavy_slot for d in route.dependant.dependencies)


async def heavy_slot(request: Request) -> Slot:
    """A worker for the request HeavyGate let in, once its body is in (503 after the wait timeout)."""
    ticket: Ticket | None = request.scope.get(TICKET_KEY)
    if ticket is None:
        raise RuntimeError("a heavy endpoint ran without the HeavyGate middleware (see create_app)")
    return await ticket.worker()


# The parameter that makes an endpoint heavy; first, so that the upload check runs once the worker is there.
Heavy = Annotated[Slot, Depends(heavy_slot)]


# -- the per-client rate limit ----------------------------------------------------------------------


class TokenBuckets:
    """A token bucket per client address: a burst of ``per_minute`` requests, then one every 60/per_minute s.

    An address idle for a minute has a full bucket again, so it is forgotten: none is kept past the window.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate, self.clock = float(per_minute), per_minute / WINDOW_S, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, when), oldest first
        self._lock = threading.Lock()

    def take(self, address: str) -> float:
        """0 when ``address`` may make a request now (one token taken), else the seconds until it may."""
        now = self.clock()
        with self._lock:
            self._forget_idle(now)
            tokens, when = self._buckets.pop(address, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
            return 0.0 if allowed else (1.0 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        while self._buckets:
            _address, (_tokens, when) = next(iter(self._buckets.items()))
            if now - when < WINDOW_S:
                return
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimit:
    """ASGI middleware: requests to /api beyond a client's bucket get 429 with Retry-After.

    The client is the connection's peer address, which uvicorn has already replaced by the first X-Forwarded-For
    address when the peer is a trusted proxy (``--forwarded-allow-ips``, 127.0.0.1 by default), as deploy/nginx.conf
    sends it.
    """

    def __init__(self, app: ASGIApp, per_minute: int, max_body: int, metrics: Metrics | None = None) -> None:
        self.app, self.buckets, self.metrics = app, TokenBuckets(per_minute), metrics
        self.per_minute, self.drain_most = per_minute, max_body + MULTIPART_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == LIMITED_PREFIX or path.startswith(LIMITED_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(client_address(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        if self.metrics is not None:
            self.metrics.reject("rate_limited")
        await drain(receive, self.drain_most)  # a client that sent Connection: close would see a reset, not the 429
        await send_error(send, self._error(math.ceil(wait)))

    def _error(self, seconds: int) -> ApiError:
        return ApiError(
            429,
            f"too many requests: this server allows {self.per_minute} API requests a minute from one address",
            f"retry in {seconds} s (Retry-After), or ask the operator to raise SVETA_API_RATE_LIMIT",
            "rate_limited",
            headers={"Retry-After": str(seconds)},
        )


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def send_error(send: Send, error: ApiError) -> None:
    """An ApiError as the JSON answer, from a middleware (outside the app's exception handlers)."""
    body = json.dumps(error_body(error.code, error.message, error.hint)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
