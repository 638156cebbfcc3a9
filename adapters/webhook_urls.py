"""Where a webhook may point: the SSRF guard, at registration and again before each delivery.

Outside development an endpoint must be `https://` and every address its host resolves to must
be public: no private, loopback, link-local, reserved, multicast or unspecified address (a cloud
metadata service, the database, the gateway itself). `allow_private` lifts the address rule for
deployments whose internal systems live on private networks.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UrlRefused(ValueError):
    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def resolve(host: str) -> list[str]:
    """Every address the host resolves to (an IP literal resolves to itself)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0] for info in infos})


def _forbidden(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None


def check(url: str, *, development: bool, allow_private: bool, resolver=None) -> None:
    """Raises UrlRefused with a stable reason; returns quietly for an acceptable target."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UrlRefused("A webhook URL is an absolute http(s) URL.", "not_http")
    if parts.username or parts.password:
        raise UrlRefused("A webhook URL may not carry credentials.", "credentials_in_url")
    if development:
        return
    if parts.scheme != "https":
        raise UrlRefused("Outside development a webhook URL must use https://.", "not_https")
    if allow_private:
        return
    try:
        addresses = (resolver or resolve)(parts.hostname)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"The host {parts.hostname!r} does not resolve: {exc}.", "unresolvable") from exc
    for address in addresses:
        kind = _forbidden(address)
        if kind:
            raise UrlRefused(f"The host {parts.hostname!r} resolves to a {kind} address ({address}).",
                             kind)
