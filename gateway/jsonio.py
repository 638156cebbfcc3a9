"""JSON as api.md writes it: ISO dates, ISO 8601 UTC timestamps, decimals as strings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from flask.json.provider import DefaultJSONProvider


def _default(o):
    if isinstance(o, datetime):
        return o.replace(tzinfo=o.tzinfo or UTC).isoformat().replace("+00:00", "Z")
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return str(o)
    return DefaultJSONProvider.default(o)


class JSONProvider(DefaultJSONProvider):
    default = staticmethod(_default)
    sort_keys = False


def dumps(obj) -> str:
    """The same encoding without an app (use cases run outside Flask in the fast tests)."""
    import json

    return json.dumps(obj, default=_default)
