"""Where a webhook may point: the SSRF guard, at registration and again before each delivery.

Outside development an endpoint must be `https://` and every address its host resolves to must
be public: no private, loopback, link-local, reserved, multicast or unspecified address (a cloud
metadata service, the database, the gateway itself). `allow_private` lifts the address rule for
deployments whose internal systems live on private networks. A delivery connects to an address
its check returned (`delivery_addresses`), not to whatever the name resolves to a moment later.
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
    """Every address the host resolves to (an IP literal resolves to itself), in the system's
    order of preference."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _forbidden(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None


def check(url: str, *, development: bool, allow_private: bool, resolver=None) -> list[str] | None:
    """Raises UrlRefused with a stable reason; for an acceptable target, the addresses it
    checked (None when no address rule applied: development, `allow_private`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UrlRefused("A webhook URL is an absolute http(s) URL.", "not_http")
    if parts.username or parts.password:
        raise UrlRefused("A webhook URL may not carry credentials.", "credentials_in_url")
    if development:
        return None
    if parts.scheme != "https":
        raise UrlRefused("Outside development a webhook URL must use https://.", "not_https")
    if allow_private:
        return None
    addresses = _resolved(parts.hostname, resolver)
    for address in addresses:
        kind = _forbidden(address)
        if kind:
            raise UrlRefused(f"The host {parts.hostname!r} resolves to a {kind} address ({address}).",
                             kind)
    return addresses


def delivery_addresses(url: str, *, development: bool, allow_private: bool,
                       resolver=None) -> list[str] | None:
    """Checks `url` for a delivery and returns the addresses to connect to, in order: those
    just checked, so that the connection goes where the check looked (a DNS answer that
    changes between the check and the connect, DNS rebinding, is not followed). None in
    development, where any target is allowed and the name is resolved as usual."""
    addresses = check(url, development=development, allow_private=allow_private,
                      resolver=resolver)
    if development:
        return None
    if addresses is None:  # `allow_private`: no address is refused, but the one used is pinned
        addresses = _resolved(urlsplit(url).hostname, resolver)
    if not addresses:
        raise UrlRefused(f"The host of {url!r} resolves to no address.", "unresolvable")
    return addresses


def _resolved(host: str, resolver) -> list[str]:
    try:
        return list((resolver or resolve)(host))
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"The host {host!r} does not resolve: {exc}.", "unresolvable") from exc
