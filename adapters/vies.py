"""The EU VAT registry (VIES): is a VAT number registered? An embedded stand-in by default.

`check` answers True (registered) or False (not registered), or raises `ViesUnavailable` when
the registry (or the member state's system behind it) cannot answer now: the caller keeps the
number as `unverified` and asks again later.
"""

from __future__ import annotations

from collections.abc import Iterable


class ViesUnavailable(Exception):
    pass


def split(number: str) -> tuple[str, str]:
    """A normalised VAT number (`DE136695976`) as VIES wants it: country code and the rest.
    The prefix is the VAT prefix (`EL` for Greece, `XI` for Northern Ireland), not ISO 3166."""
    return number[:2], number[2:]


class EmbeddedVies:
    """A registry in memory, for demos and tests: every number that passes the offline check
    is registered unless listed as unregistered; `down` makes it unavailable."""

    def __init__(self, unregistered: Iterable[str] = (), down: bool = False):
        self.unregistered = set(unregistered)
        self.down = down

    def check(self, number: str) -> bool:
        if self.down:
            raise ViesUnavailable("the embedded registry is down")
        return number not in self.unregistered
