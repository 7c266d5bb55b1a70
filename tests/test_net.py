"""The SSRF guard: every spelling of a private, loopback or link-local address is refused."""

from __future__ import annotations

import pytest

from sveta.errors import BlockedURLError
from sveta.net import check_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8000/x",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[::127.0.0.1]/",
        "http://[fe80::1]/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://127.1/",
        "http://100.64.0.1/",
    ],
)
def test_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(BlockedURLError, match=r"SVETA_ALLOWED_PRIVATE_HOSTS|resolve"):
        check_url(url)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd", "gopher://x/", "http:///nohost"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(BlockedURLError, match="not an http"):
        check_url(url)


def test_public_literals_pass_and_allowed_hosts_are_let_through() -> None:
    check_url("https://8.8.8.8/")
    check_url("http://[2606:4700:4700::1111]/")
    check_url("http://127.0.0.1:9/", ["127.0.0.1"])
    with pytest.raises(BlockedURLError):
        check_url("http://127.0.0.2:9/", ["127.0.0.1"])
