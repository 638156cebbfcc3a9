"""JSON as api.md writes it: ISO dates, ISO 8601 UTC timestamps, decimals as strings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask.json.provider import DefaultJSONProvider


def _default(o):
    if isinstance(o, datetime):
        return o.replace(microsecond=o.microsecond).isoformat() + ("Z" if o.tzinfo is None else "")
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return str(o)
    return DefaultJSONProvider.default(o)


class JSONProvider(DefaultJSONProvider):
    default = staticmethod(_default)
    sort_keys = False
