"""JSON as api.md writes it (ISO dates, UTC timestamps, decimals as strings), and the one
strict loader every request body and token payload goes through."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 64
MAX_INT_DIGITS = 30
# A string token or one bracket: the depth is counted before the (recursive) parser runs.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
# NUL and lone (unpaired) surrogates: no column and no UTF-8 encoder takes them.
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


class InvalidJSON(ValueError):
    """Not JSON we accept; the message says why (shown to the caller)."""


def _default(o):
    if isinstance(o, datetime):
        return o.replace(tzinfo=o.tzinfo or UTC).isoformat().replace("+00:00", "Z")
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return str(o)
    return DefaultJSONProvider.default(o)


def _object(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise InvalidJSON(f"The body names {key[:60]!r} twice.")
        out[key] = value
    return out


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidJSON(f"An integer literal has more than {MAX_INT_DIGITS} digits.")
    return int(text)


def _constant(name: str):
    raise InvalidJSON(f"{name} is not JSON.")


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    if text.count("[") + text.count("{") <= limit:
        return  # fewer openings in all (strings' included) than the limit: cannot nest deeper
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                raise InvalidJSON(f"The JSON nests deeper than {limit} levels.")
        elif token in "]}":
            depth -= 1


def strict_loads(data: str | bytes):
    """json.loads that refuses duplicate keys, deep nesting, huge integers, NaN/Infinity."""
    if isinstance(data, bytes | bytearray):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON("The body is not UTF-8.") from exc
    if "[" in data or "{" in data:
        check_depth(data)
    try:
        return json.loads(data, object_pairs_hook=_object, parse_int=_int,
                          parse_constant=_constant)
    except InvalidJSON:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidJSON(f"The body is not valid JSON: {exc}.") from exc


def bad_strings(value, path: str = "") -> list[str]:
    """Where a parsed value holds a NUL or a lone surrogate (keys included), as field paths."""
    if isinstance(value, str):
        return [path or "_schema"] if _FORBIDDEN.search(value) else []
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{path}.{k}" if path else str(k)
            if _FORBIDDEN.search(k):
                found.append(path or "_schema")
            found += bad_strings(v, here)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += bad_strings(v, f"{path}.{i}" if path else str(i))
    return found


def has_forbidden(text: str) -> bool:
    return bool(_FORBIDDEN.search(text))


class JSONProvider(DefaultJSONProvider):
    default = staticmethod(_default)
    sort_keys = False

    def loads(self, s, **kwargs):
        return strict_loads(s)

def dumps(obj) -> str:
    """The same encoding without an app (use cases run outside Flask in the fast tests)."""
    import json

    return json.dumps(obj, default=_default)
