"""The HTTP adapters against a real loopback server that behaves like the outside systems."""

from __future__ import annotations

import pickle
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest

from adapters.billing_center_http import HttpBillingCenter
from adapters.corporate_portal_http import HttpCorporatePortal
from adapters.errors import AdapterError, PermanentAdapterError, TransientAdapterError
from adapters.http_client import ServiceClient
from adapters.notifications import FolderNotifier, SmtpNotifier
from tests.integration.fake_external import CHANGES_PATH, QUOTES_PATH, TOKEN_PATH, FakeExternal

ITEM = {"subscription_id": None, "product": "crm", "plan": "enterprise", "licenses": 25,
        "billing_period": "annual", "period_start": "2025-03-01", "period_end": "2026-03-01"}


def change(key: str, order_id: str) -> dict:
    return {"order_id": order_id, "idempotency_key": key, "account_id": "acc_1", "tenant_id": "t_1",
            "currency": "EUR", "items": [dict(ITEM)], "balance_applied": "0.00", "credit_added": "12.50",
            "total_due": "1187.50"}


def quote(key: str, order_id: str) -> dict:
    return {"order_id": order_id, "idempotency_key": key, "account_id": "acc_1", "items": [dict(ITEM)],
            "total_due": "1187.50", "currency": "EUR", "expires_at": "2025-03-31T00:00:00Z"}


@dataclass
class System:
    """One outside system as the tests drive it: how to build its adapter and send one order."""

    name: str
    path: str

    def adapter(self, client: ServiceClient):
        return HttpBillingCenter(client) if self.name == "billing_center" else HttpCorporatePortal(client)

    def send(self, adapter, key: str, order_id: str = "ord_1") -> dict:
        if self.name == "billing_center":
            return adapter.apply(change(key, order_id))
        return adapter.create_quote(quote(key, order_id))


SYSTEMS = [System("billing_center", CHANGES_PATH), System("corporate_portal", QUOTES_PATH)]


@pytest.fixture
def external():
    server = FakeExternal().start()
    yield server
    server.stop()


@pytest.fixture(params=SYSTEMS, ids=lambda s: s.name)
def system(request) -> System:
    return request.param


def make_client(external: FakeExternal, **overrides) -> ServiceClient:
    settings = {"token_endpoint": external.token_url, "client_id": external.client_id,
                "client_secret": external.client_secret, "timeout": 2.0, "retries": 2, "backoff": 0.01}
    return ServiceClient(external.url, **(settings | overrides))


def new_key() -> str:
    return f"idem-{uuid.uuid4().hex}"


def assert_every_call_keyed(external: FakeExternal, path: str, key: str, count: int) -> None:
    seen = external.requests_to(path)
    assert len(seen) == count
    assert [r.headers.get("idempotency-key") for r in seen] == [key] * count


# -- the five cases, for both clients -----------------------------------------------------------
def test_success(external, system):
    key = new_key()
    answer = system.send(system.adapter(make_client(external)), key)

    if system.name == "billing_center":
        assert answer["status"] == "applied"
        assert answer["subscriptions"][0]["subscription_id"] == "sub_1"
        assert answer["subscriptions"][0]["licenses"] == 25
    else:
        assert answer == {"id": "q_1", "status": "open"}
    assert external.applied_count(key) == 1
    assert_every_call_keyed(external, system.path, key, 1)
    assert external.requests_to(system.path)[0].headers["authorization"].startswith("Bearer ")


def test_5xx_then_success_is_retried_and_applied_once(external, system):
    key = new_key()
    external.fail_next(2, status=503)

    answer = system.send(system.adapter(make_client(external)), key)

    assert answer["status"] in ("applied", "open")
    assert [r.status for r in external.requests_to(system.path)] == [503, 503, 201]
    assert external.applied_count(key) == 1
    assert external.applied_for_order("ord_1") == 1
    assert_every_call_keyed(external, system.path, key, 3)


def test_5xx_that_persists_raises_retryable_and_a_later_retry_applies_once(external, system):
    key = new_key()
    adapter = system.adapter(make_client(external))
    external.fail_next(3, status=502)

    with pytest.raises(AdapterError) as failure:
        system.send(adapter, key)
    assert failure.value.retryable is True and failure.value.status == 502
    assert external.applied_count(key) == 0

    system.send(adapter, key)  # the job queue's retry, same order, same key
    assert external.applied_count(key) == 1
    assert_every_call_keyed(external, system.path, key, 4)


@pytest.mark.parametrize("after_apply", [False, True], ids=["slow-call", "answer-lost"])
def test_timeout_then_retry_applies_once(external, system, after_apply):
    key = new_key()
    external.delay_next(1, 0.7, after_apply=after_apply)

    answer = system.send(system.adapter(make_client(external, timeout=0.3)), key)
    external.wait_idle()  # the timed-out call has finished on the server too

    assert answer["status"] in ("applied", "open")
    assert external.applied_count(key) == 1
    assert external.applied_for_order("ord_1") == 1
    assert_every_call_keyed(external, system.path, key, 2)


def test_timeout_that_persists_raises_retryable_and_applies_at_most_once(external, system):
    key = new_key()
    adapter = system.adapter(make_client(external, timeout=0.3))
    external.delay_next(3, 0.6)

    with pytest.raises(AdapterError) as failure:
        system.send(adapter, key)
    assert failure.value.retryable is True and failure.value.status is None
    external.wait_idle()
    # All three slow calls completed after the client gave up; the first applied, the rest replayed.
    assert external.applied_count(key) == 1

    first = system.send(adapter, key)
    assert first["status"] in ("applied", "open")
    assert external.applied_for_order("ord_1") == 1


def test_connection_refused_is_retryable_and_works_once_the_system_is_back(external, system):
    key = new_key()
    adapter = system.adapter(make_client(external))
    external.stop()

    with pytest.raises(AdapterError) as failure:
        system.send(adapter, key)
    assert failure.value.retryable is True and failure.value.status is None

    external.start()  # same port
    system.send(adapter, key)
    assert external.applied_count(key) == 1


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_permanent_4xx_is_not_retried(external, system, status):
    key = new_key()
    external.permanent_failure(status)

    with pytest.raises(AdapterError) as failure:
        system.send(system.adapter(make_client(external)), key)

    assert isinstance(failure.value, PermanentAdapterError)
    assert failure.value.retryable is False and failure.value.status == status
    assert_every_call_keyed(external, system.path, key, 1)
    assert external.applied_count(key) == 0


@pytest.mark.parametrize("status", [408, 429])
def test_408_and_429_are_retried(external, system, status):
    key = new_key()
    external.fail_next(1, status=status)

    system.send(system.adapter(make_client(external)), key)

    assert [r.status for r in external.requests_to(system.path)] == [status, 201]
    assert external.applied_count(key) == 1


# -- idempotency ----------------------------------------------------------------------------------
def test_replay_of_the_same_key_applies_once_and_gets_the_first_answer(external, system):
    key = new_key()
    adapter = system.adapter(make_client(external))

    first = system.send(adapter, key)
    second = system.send(adapter, key)

    assert second == first
    assert external.applied_count(key) == 1
    assert_every_call_keyed(external, system.path, key, 2)


def test_a_key_reused_for_a_different_request_is_refused_permanently(external, system):
    key = new_key()
    adapter = system.adapter(make_client(external))
    system.send(adapter, key, order_id="ord_1")

    with pytest.raises(AdapterError) as failure:
        system.send(adapter, key, order_id="ord_2")

    assert failure.value.retryable is False and failure.value.status == 422
    assert external.applied_for_order("ord_2") == 0


def test_backoff_grows_between_in_call_retries(external):
    external.fail_next(2, status=503)
    client = make_client(external, backoff=0.1)

    started = time.monotonic()
    client.post(CHANGES_PATH, change("k-backoff", "ord_1"), idempotency_key="k-backoff")

    assert time.monotonic() - started >= 0.1 + 0.2


def test_a_post_without_an_idempotency_key_is_refused_before_sending(external):
    with pytest.raises(ValueError):
        make_client(external).post(CHANGES_PATH, change("", "ord_1"), idempotency_key="")
    assert external.requests == []


# -- OAuth client credentials -------------------------------------------------------------------
def test_token_is_fetched_lazily_once_and_reused(external, system):
    adapter = system.adapter(make_client(external))
    assert external.token_requests == 0

    for n in range(3):
        system.send(adapter, new_key(), order_id=f"ord_{n}")

    assert external.tokens_issued == 1
    assert len({r.headers["authorization"] for r in external.requests_to(system.path)}) == 1


def test_token_is_refetched_once_after_a_401(external, system):
    adapter = system.adapter(make_client(external))
    system.send(adapter, new_key(), order_id="ord_1")
    external.revoke_tokens()

    key = new_key()
    system.send(adapter, key, order_id="ord_2")

    assert external.tokens_issued == 2
    assert [r.status for r in external.requests_to(system.path)] == [201, 401, 201]
    assert external.applied_count(key) == 1


def test_a_second_401_after_a_new_token_is_permanent(external, system):
    external.fail_next(2, status=401)

    with pytest.raises(AdapterError) as failure:
        system.send(system.adapter(make_client(external)), new_key())

    assert failure.value.retryable is False and failure.value.status == 401
    assert external.tokens_issued == 2
    assert len(external.requests_to(system.path)) == 2


def test_token_is_refetched_when_it_expires(external):
    external.token_ttl = 1
    client = make_client(external, leeway=0)
    client.post(CHANGES_PATH, change("k-1", "ord_1"), idempotency_key="k-1")
    # authlib keeps whole seconds: the token counts as expired once the next second has passed.
    time.sleep(max(0.0, int(time.time()) + 1.05 - time.time()))

    client.post(CHANGES_PATH, change("k-2", "ord_2"), idempotency_key="k-2")

    assert external.tokens_issued == 2
    assert [r.status for r in external.requests_to(CHANGES_PATH)] == [201, 201]


def test_wrong_client_secret_is_permanent_and_not_retried(external):
    client = make_client(external, client_secret="wrong")

    with pytest.raises(AdapterError) as failure:
        client.post(CHANGES_PATH, change("k", "ord_1"), idempotency_key="k")

    assert failure.value.retryable is False
    assert external.token_requests == 1 and external.tokens_issued == 0
    assert external.requests == []


def test_token_endpoint_5xx_is_retried(external):
    external.fail_next(1, status=503, path=TOKEN_PATH)

    make_client(external).post(CHANGES_PATH, change("k", "ord_1"), idempotency_key="k")

    assert external.token_requests == 2 and external.tokens_issued == 1
    assert external.applied_count("k") == 1


def test_without_a_token_endpoint_no_authorization_header_is_sent():
    external = FakeExternal(require_auth=False).start()
    try:
        client = ServiceClient(external.url, timeout=2.0, backoff=0.01)
        HttpBillingCenter(client).apply(change("k", "ord_1"))
        assert "authorization" not in external.requests[0].headers
        assert external.token_requests == 0
    finally:
        external.stop()


# -- the corporate portal's quote lifecycle (polled) ----------------------------------------------
def test_quote_status_is_polled_until_decided(external):
    portal = HttpCorporatePortal(make_client(external))
    created = portal.create_quote(quote(new_key(), "ord_1"))
    assert portal.quote_status(created["id"]) == {"id": created["id"], "status": "open", "order_id": "ord_1"}

    external.set_quote_status(created["id"], "accepted", note="PO 4711")
    assert portal.quote_status(created["id"])["status"] == "accepted"
    assert portal.quote_status(created["id"])["note"] == "PO 4711"

    other = portal.create_quote(quote(new_key(), "ord_2"))
    external.set_quote_status(other["id"], "rejected")
    assert portal.quote_status(other["id"])["status"] == "rejected"


def test_status_of_an_unknown_quote_is_a_permanent_404(external):
    with pytest.raises(AdapterError) as failure:
        HttpCorporatePortal(make_client(external)).quote_status("q_404")
    assert failure.value.retryable is False and failure.value.status == 404


# -- configuration and errors ---------------------------------------------------------------------
def test_adapters_build_from_the_app_settings(external):
    settings = {"BILLING_CENTER_URL": external.url, "CORPORATE_PORTAL_URL": external.url,
                "ADAPTER_TOKEN_URL": external.token_url, "ADAPTER_CLIENT_ID": external.client_id,
                "ADAPTER_CLIENT_SECRET": external.client_secret, "ADAPTER_TIMEOUT": 1.5}
    billing = HttpBillingCenter.from_config(settings)
    portal = HttpCorporatePortal.from_config(settings)

    assert billing.client.timeout == 1.5 and billing.client.retries == 2 and billing.client.backoff == 0.2
    billing.apply(change("k-1", "ord_1"))
    portal.create_quote(quote("k-2", "ord_2"))
    assert external.applied_count("k-1") == external.applied_count("k-2") == 1

    with pytest.raises(ValueError):
        HttpBillingCenter.from_config({"BILLING_CENTER_URL": None})


def test_adapter_errors_classify_and_survive_pickling():
    assert AdapterError.for_status(503, "x").retryable is True
    assert AdapterError.for_status(429, "x").retryable is True
    assert AdapterError.for_status(408, "x").retryable is True
    assert AdapterError.for_status(422, "x").retryable is False
    error = pickle.loads(pickle.dumps(TransientAdapterError("down", status=503, system="billing_center")))
    assert (type(error), str(error), error.retryable, error.status, error.system) == (
        TransientAdapterError, "down", True, 503, "billing_center")


# -- notifications --------------------------------------------------------------------------------
def test_folder_notifier_writes_one_readable_message_per_send(tmp_path):
    notifier = FolderNotifier(tmp_path / "mail")
    notifier.send("billing@example.com", "Your quote Q-1 is ready", "Total due: 1,187.50 EUR\nThanks.")
    notifier.send("ops@example.com", "Second", "Zweite Nachricht: Größe ✓")
    french = "Votre modification d'abonnement est terminée (commande ord_01JQ7ZC5X9T3M4N8P2R6V0W1YB)"
    long_line = "Webinar : Standard, 2 licences, facturation mensuelle, du 10 mars 2026 au 9 avril 2026"
    notifier.send("zoé@example.com", french, f"Bonjour Zoé,\n{long_line}\nTotal à payer : 17,00\xa0€")

    files = sorted((tmp_path / "mail").iterdir())
    assert len(files) == 3 and all(f.suffix == ".eml" for f in files)  # no temporary files left
    messages = [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]
    by_subject = {m["Subject"]: m for m in messages}
    first = by_subject["Your quote Q-1 is ready"]
    assert first["To"] == "billing@example.com" and first["From"] and first["Message-ID"]
    assert first["Date"].datetime.utcoffset() == timedelta(0)
    assert first.get_content() == "Total due: 1,187.50 EUR\nThanks.\n"
    assert by_subject["Second"].get_content() == "Zweite Nachricht: Größe ✓\n"
    # Accents in the subject travel as RFC 2047 words: the file's headers are ASCII.
    assert french in by_subject and all(f.read_bytes().partition(b"\n\n")[0].isascii() for f in files)
    assert by_subject[french]["To"] == "zoé@example.com"
    assert by_subject[french].get_content() == f"Bonjour Zoé,\n{long_line}\nTotal à payer : 17,00\xa0€\n"


class TinySmtp:
    """Just enough of an SMTP server on loopback to accept (or refuse) a message."""

    def __init__(self, refuse_recipient: int | None = None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.refuse_recipient = refuse_recipient
        self.messages: list[tuple[str, list[str], bytes]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as lines:
                self._session(conn, lines)

    def _session(self, conn: socket.socket, lines) -> None:
        conn.sendall(b"220 tiny ESMTP\r\n")
        sender, recipients = "", []
        while line := lines.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-tiny\r\n250 8BITMIME\r\n")
            elif verb == b"MAIL":
                sender, recipients = line[10:].strip().decode(), []
                conn.sendall(b"250 ok\r\n")
            elif verb == b"RCPT" and self.refuse_recipient:
                conn.sendall(f"{self.refuse_recipient} no such user\r\n".encode())
            elif verb == b"RCPT":
                recipients.append(line[8:].strip().decode())
                conn.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                data = b"".join(iter(lambda: lines.readline(), b".\r\n"))
                self.messages.append((sender, recipients, data))
                conn.sendall(b"250 queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")


def test_smtp_notifier_delivers_to_a_loopback_smtp_server():
    server = TinySmtp()
    try:
        SmtpNotifier(f"smtp://127.0.0.1:{server.port}", timeout=2).send(
            "billing@example.com", "Quote accepted", "Your upgrade is applied.")
    finally:
        server.close()

    [(sender, recipients, data)] = server.messages
    assert recipients == ["<billing@example.com>"]
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert message["Subject"] == "Quote accepted"
    assert message.get_content().splitlines() == ["Your upgrade is applied."]  # CRLF on the wire


@pytest.mark.parametrize(("code", "retryable"), [(550, False), (451, True)])
def test_smtp_refusals_are_classified(code, retryable):
    server = TinySmtp(refuse_recipient=code)
    try:
        with pytest.raises(AdapterError) as failure:
            SmtpNotifier(f"smtp://127.0.0.1:{server.port}", timeout=2).send("x@example.com", "s", "b")
    finally:
        server.close()
    assert failure.value.retryable is retryable


def test_smtp_connection_refused_is_retryable():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(AdapterError) as failure:
        SmtpNotifier(f"smtp://127.0.0.1:{port}", timeout=1).send("x@example.com", "s", "b")
    assert failure.value.retryable is True
