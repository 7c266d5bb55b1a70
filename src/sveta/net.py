"""HTTP for sveta: an httpx client whose every request (redirects included) passes the SSRF guard."""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from sveta.errors import BlockedURLError
from sveta.settings import Settings

MAX_HOST = 253  # characters of a DNS name, without its final dot (RFC 1035)
MAX_LABEL = 63  # characters of one dot-separated label
_LABEL = re.compile(r"[a-z0-9_-]+")
_HOST_HINT = "check the URL: a host name is dot-separated labels of 1-63 letters, digits or hyphens, 253 at most"


def check_url(url: str, allowed_hosts: Iterable[str] = ()) -> None:
    """Refuse non-HTTP URLs, malformed hosts and ports, and hosts that resolve to private, loopback, link-local or
    reserved addresses; nothing is fetched or resolved before the URL's form is checked."""
    scheme, host, port = _split(url)
    if host in {h.lower() for h in allowed_hosts}:
        return
    for address in _resolve(host, port or (443 if scheme == "https" else 80)):
        if not _is_public(address):
            raise BlockedURLError(
                f"refusing to fetch {_short(url)}: {host} resolves to {address}, a private, loopback or link-local "
                "address",
                "if you trust this host, add it to SVETA_ALLOWED_PRIVATE_HOSTS (comma-separated)",
            )


def _split(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of an http(s) URL whose host and port are well formed, else a BlockedURLError."""
    try:
        parts = urlsplit(url)
        scheme, hostname, port = parts.scheme, parts.hostname, parts.port
    except ValueError as exc:  # an unclosed [IPv6 literal, a port that is no number or out of range
        raise BlockedURLError(f"malformed URL {_short(url)!r}: {exc}", "check the URL's host and port") from None
    if scheme not in ("http", "https") or not hostname:
        raise BlockedURLError(f"not an http(s) URL: {_short(url)!r}", "give a URL starting with https://")
    host = hostname.lower()
    problem = host_problem(host)
    if problem is not None:
        raise BlockedURLError(f"bad host name {_short(host)!r} in the URL: {problem}", _HOST_HINT)
    return scheme, host, port


def host_problem(host: str) -> str | None:
    """What is wrong with a URL's host (an IP literal or a DNS name, IDNA allowed), or None when it is well formed."""
    if ":" in host:  # only an IPv6 literal has colons in a host
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "not a valid IPv6 address"
        return None
    name = host[:-1] if host.endswith(".") else host
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")  # the encoding getaddrinfo would apply
        except UnicodeError:
            return "not a valid internationalised (IDNA) name"
    if len(name) > MAX_HOST:
        return f"{len(name):,} characters long, at most {MAX_HOST} are allowed"
    return next((problem for label in name.split(".") if (problem := _label_problem(label))), None)


def _label_problem(label: str) -> str | None:
    if not label:
        return "an empty label (two dots in a row, or a leading dot)"
    if len(label) > MAX_LABEL:
        return f"a label {len(label):,} characters long, at most {MAX_LABEL} are allowed"
    if not _LABEL.fullmatch(label):
        return f"the label {_short(label)!r} has characters other than letters, digits, '-' and '_'"
    return None


def _short(text: str, most: int = 80) -> str:
    """Text for a message: a URL or host the client sent may be thousands of characters long."""
    return text if len(text) <= most else f"{text[: most - 1]}…"


def _resolve(host: str, port: int) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})
    except socket.gaierror as exc:
        raise BlockedURLError(f"cannot resolve host {host!r}: {exc.strerror}", "check the URL's spelling") from exc
    except UnicodeError as exc:  # the IDNA codec refused a name host_problem let through
        raise BlockedURLError(f"bad host name {_short(host)!r} in the URL: {exc}", _HOST_HINT) from None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if embedded is not None and not _is_public(str(embedded)):
        return False  # an IPv6 spelling of a private IPv4 address still reaches it
    return ip.is_global and not ip.is_multicast


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside IPv4-mapped, 6to4, NAT64 or IPv4-compatible IPv6 addresses."""
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def retry_after_s(value: str | None) -> float | None:
    """A Retry-After header in seconds, from a number or an HTTP date; None when absent or unreadable (not a
    number float() reads, "²" passes str.isdigit(), nor a date: then the caller's own backoff applies)."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds: float | None = float(text)
    except ValueError:
        seconds = _seconds_until(text)
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def _seconds_until(date: str) -> float | None:
    try:
        when = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


class GuardedTransport(httpx.HTTPTransport):
    """Checks each outgoing request, so a redirect to an internal address is refused too."""

    def __init__(self, allowed_hosts: Iterable[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.allowed_hosts = tuple(allowed_hosts)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_url(str(request.url), self.allowed_hosts)
        return super().handle_request(request)


def make_client(settings: Settings, **kwargs: object) -> httpx.Client:
    """The client sveta uses for stores, feeds and images: identifying User-Agent, timeouts, SSRF guard."""
    return httpx.Client(
        transport=GuardedTransport(settings.allowed_private_hosts),
        headers={"User-Agent": settings.user_agent},
        timeout=httpx.Timeout(settings.http_timeout_s),
        follow_redirects=True,
        max_redirects=5,
        **kwargs,  # type: ignore[arg-type]
    )
