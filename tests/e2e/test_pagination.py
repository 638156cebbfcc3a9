"""Every list pages with `limit` and `after`, the same JSON array, and a Link rel="next"."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Http, TestIssuer, make_world, service_token

NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def walk(http: Http, path: str) -> tuple[list, int]:
    """Follows rel="next" from the first page; returns every item and the number of pages."""
    items, pages, url = [], 0, path
    while url:
        r = http.get(url)
        assert r.status_code == 200, r.get_json()
        items += r.get_json()
        pages += 1
        link = r.headers.get("Link")
        url = NEXT.match(link).group("url") if link else None
    return items, pages


@pytest.fixture
def world(any_app):
    admin = Http(any_app.test_client(), service_token(any_app))
    w = make_world(admin, TestIssuer.new(), "pages", country="US", currency="USD")
    for n in range(5):
        r = admin.post(f"/api/v1/accounts/{w.account_id}/users",
                       json={"name": f"u{n}", "email": f"u{n}@x.example"})
        assert r.status_code == 201
    return admin, w


def test_pages_follow_link_next_and_add_up_to_the_whole_list(world):
    admin, w = world
    path = f"/api/v1/accounts/{w.account_id}/users"
    everything = admin.get(path).get_json()
    assert len(everything) == 5 and "Link" not in admin.get(path).headers
    first = admin.get(path + "?limit=2")
    assert [u["id"] for u in first.get_json()] == [u["id"] for u in everything[:2]]
    assert first.headers["Link"] == (f'<{path}?after={everything[1]["id"]}&limit=2>; rel="next"')
    items, pages = walk(admin, path + "?limit=2")
    assert items == everything and pages == 3


@pytest.mark.parametrize("query, field", [("limit=0", "limit"), ("limit=201", "limit"),
                                          ("limit=x", "limit"), ("after=usr_nope", "after")])
def test_bad_page_arguments_are_422(world, query, field):
    admin, w = world
    r = admin.get(f"/api/v1/accounts/{w.account_id}/users?{query}")
    assert r.status_code == 422 and r.get_json()["error"] == "validation_error"
    assert field in r.get_json()["errors"]
    assert r.get_json()["message"] == "The query string is not valid."


@pytest.mark.parametrize("path", ["/api/v1/catalog/products", "/api/v1/tenants",
                                  "/api/v1/tenants/{tenant}/accounts",
                                  "/api/v1/accounts/{account}/subscriptions",
                                  "/api/v1/accounts/{account}/orders",
                                  "/api/v1/accounts/{account}/portal-quotes", "/api/v1/events"])
def test_every_list_takes_limit_and_after(world, path):
    admin, w = world
    path = path.format(tenant=w.tenant_id, account=w.account_id)
    everything = admin.get(path).get_json()
    items, _ = walk(admin, path + ("&" if "?" in path else "?") + "limit=1")
    assert items == everything
