"""A real local HTTP server for image tests: scripted replies per path, request log, in-flight counter."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """One scripted answer; ``length=False`` sends no Content-Length (the body ends at close)."""

    body: bytes = b""
    content_type: str | None = "image/jpeg"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True
    delay_s: float = 0.0


class ImageServer:
    """Routes map a path to a list of replies, served in order; the last one repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.base = ""

    def add(self, path: str, *replies: Reply) -> str:
        self.routes[path] = list(replies)
        return self.base + path

    def url(self, path: str) -> str:
        return self.base + path

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            self.hits.append(path)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            replies = self.routes.get(path) or [Reply(b"not found", "text/plain", 404)]
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1


def _handler(server: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply = server.next_reply(self.path)
            released = threading.Event()

            def release() -> None:  # once: a request stops counting as in flight when its last bytes go out
                if not released.is_set():
                    released.set()
                    server.done()

            try:
                time.sleep(reply.delay_s)
                self._send(reply, release)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on purpose (size limit)
            finally:
                release()

        def _send(self, reply: Reply, release: Callable[[], None]) -> None:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            if reply.length:
                self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            starts = range(0, len(reply.body), 16384)
            for start in starts:
                if start == starts[-1]:
                    # before the last bytes: the client may ask again the moment they arrive, before this thread
                    # would count the request done, and the in-flight count would then exceed the client's bound
                    release()
                self.wfile.write(reply.body[start : start + 16384])

        def log_message(self, *_args: object) -> None:
            pass

    return Handler


@contextmanager
def image_server() -> Iterator[ImageServer]:
    """Serve on 127.0.0.1 on a free port, in a thread, for the duration of the block."""
    state = ImageServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
