"""Every operation of the published OpenAPI document, fuzzed by schemathesis against the served
gateway on PostgreSQL with a service token, a contact's token and an advisor's token (of the
account's dedicated advisor): no 5xx, and every answer's
status, content type and body are the ones the document declares.

Bounded for CI: a fixed seed (derandomized), a few examples per operation.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text
from werkzeug.serving import make_server

from tests import conftest
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 6


@pytest.fixture(scope="module")
def served(postgres_server, tmp_path_factory):
    name = f"gw_fuzz_{uuid.uuid4().hex[:12]}"
    with postgres_server.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_server.url.set(database=name).render_as_string(hide_password=False)
    tmp = tmp_path_factory.mktemp("fuzz")
    app = build_app(url, tmp, FROZEN_TODAY="2026-03-10")
    conftest._apps.remove(app)  # serves the whole module
    admin = Http(app.test_client(), service_token(app))
    staff = TestIssuer.new("fuzz-staff")
    assert admin.post("/api/v1/staff-issuers", json=staff.spec()).status_code == 201
    advisor = admin.post("/api/v1/advisors", json={
        "issuer": staff.url, "subject": "ada", "name": "Ada", "email": "ada@vendor.example"})
    assert advisor.status_code == 201, advisor.get_json()
    w = make_world(admin, TestIssuer.new("fuzz"), "fuzz", country="US", currency="USD",
                   advisor_id=advisor.get_json()["id"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fuzz-http", daemon=True)
    thread.start()
    try:
        yield (f"http://127.0.0.1:{server.server_port}", admin.token, w.billing.token,
               staff.token("ada"))
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        app.extensions["gateway.queue"].stop()
        app.extensions["gateway.db"].dispose()
        with postgres_server.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def operations(served):
    base = served[0]
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def fuzz(operations, base: str, token: str) -> dict:
    """Runs each operation's generated cases; returns {operation: failure} for those that fail."""
    failures = {}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def run(case):
            case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                   checks=CHECKS, timeout=30)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # one operation fails; the others still run
            failures[operation.label] = str(exc)[:3000]
    return failures


def test_every_operation_with_a_service_token(operations, served):
    base, service = served[:2]
    assert len(operations) > 30
    failures = fuzz(operations, base, service)
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())


def test_every_operation_with_a_contacts_token(operations, served):
    base, contact = served[0], served[2]
    failures = fuzz(operations, base, contact)
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())


def test_every_operation_with_an_advisors_token(operations, served):
    base, advisor = served[0], served[3]
    queue = requests.get(f"{base}/api/v1/advisor/cases", timeout=10,
                         headers={"Authorization": f"Bearer {advisor}"})
    assert queue.status_code == 200, queue.text  # the token is an advisor's, not refused at the door
    failures = fuzz(operations, base, advisor)
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())


def test_the_run_reports_a_server_error(operations, served, monkeypatch):
    """The checks are live: an operation made to fail is reported, and only that one."""
    base, service = served[:2]

    def broken():
        raise RuntimeError("injected")

    monkeypatch.setattr("gateway.api.ops.readiness", broken)
    ready = [op for op in operations if op.path in ("/readyz", "/healthz")]
    assert list(fuzz(ready, base, service)) == ["GET /readyz"]
