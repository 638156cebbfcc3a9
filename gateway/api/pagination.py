"""Pagination of list endpoints: `limit` (1-200, default 50) and `after` (the last id seen),
the same JSON array as before, and an RFC 8288 `Link: <...>; rel="next"` while more remain.

    @blp.route("/things")
    class Things(MethodView):
        @blp.response(200, ThingSchema(many=True))
        @paginated(blp)                       # or paginated(blp, ThingsQuery) with a filter
        def get(self):
            return things.list(session())     # the whole list, in its stable order

Ids are random (`new_id`), so `after` is a position in the list's own stable order (each list
is ordered by a unique key: created_at then id, code, due time then id), not a comparison of
ids. A view over a large table pages in the database instead: `keyset=True` passes `after`
and `limit + 1` to the view, which answers the rows after that id (see the events feed).
"""

from __future__ import annotations

import functools
from urllib.parse import urlencode

from flask import request
from marshmallow import fields, validate

from gateway.api.schemas import Strict
from gateway.errors import GatewayError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
LINK_DOC = {"Link": {"description": 'RFC 8288 `<...?after=...&limit=...>; rel="next"` while more '
                                   "remain", "schema": {"type": "string"}}}


class PageQuery(Strict):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, MAX_LIMIT),
                           metadata={"description": "At most this many items (1-200)."})
    after = fields.String(validate=validate.Length(1, 40),
                          metadata={"description": "The last id seen: items after it."})


def paginated(blp, query_schema=None, *, keyset: bool = False, key: str = "id"):
    """Wraps a list view (below `@blp.response`). With `query_schema`, the view still gets its
    own query arguments (without limit/after), as with `@blp.arguments(..., location="query")`."""
    schema = PageQuery if query_schema is None else type(
        f"{query_schema.__name__}Page", (query_schema, PageQuery), {})

    def decorator(view):
        @functools.wraps(view)
        def wrapper(self, query, *args, **kwargs):
            query = dict(query)
            limit, after = query.pop("limit"), query.pop("after", None)
            own = (query,) if query_schema is not None else ()
            if keyset:
                items = list(view(self, dict(query, after=after, limit=limit + 1), *args, **kwargs))
            else:
                items = _after(list(view(self, *own, *args, **kwargs)), after, key)
            page = items[:limit]
            if len(items) <= limit:
                return page
            return page, {"Link": _next_link(_id(page[-1], key), limit)}

        wrapper = blp.arguments(schema, location="query")(wrapper)
        return blp.doc(responses={200: {"headers": LINK_DOC}})(wrapper)

    return decorator


def _id(item, key: str) -> str:
    return str(item[key] if isinstance(item, dict) else getattr(item, key))


def _after(items: list, after: str | None, key: str) -> list:
    if after is None:
        return items
    for n, item in enumerate(items):
        if _id(item, key) == after:
            return items[n + 1:]
    raise GatewayError(422, "validation_error", "The query string is not valid.",
                       errors={"after": ["Not the id of an item of this list."]})


def _next_link(last_id: str, limit: int) -> str:
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("after", "limit")]
    query = urlencode(args + [("after", last_id), ("limit", limit)])
    return f'<{request.path}?{query}>; rel="next"'
