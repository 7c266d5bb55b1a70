"""HTTP for sveta: an httpx client whose every request (redirects included) passes the SSRF guard."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from sveta.errors import BlockedURLError
from sveta.settings import Settings


def check_url(url: str, allowed_hosts: Iterable[str] = ()) -> None:
    """Refuse non-HTTP URLs and hosts that resolve to private, loopback, link-local or reserved addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedURLError(f"not an http(s) URL: {url!r}", "give a URL starting with https://")
    host = parts.hostname.lower()
    if host in {h.lower() for h in allowed_hosts}:
        return
    for address in _resolve(host, parts.port or (443 if parts.scheme == "https" else 80)):
        if not _is_public(address):
            raise BlockedURLError(
                f"refusing to fetch {url}: {host} resolves to {address}, a private, loopback or link-local address",
                "if you trust this host, add it to SVETA_ALLOWED_PRIVATE_HOSTS (comma-separated)",
            )


def _resolve(host: str, port: int) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})
    except socket.gaierror as exc:
        raise BlockedURLError(f"cannot resolve host {host!r}: {exc.strerror}", "check the URL's spelling") from exc


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
