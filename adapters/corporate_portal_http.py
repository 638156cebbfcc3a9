"""The corporate portal reached over HTTP: enterprise changes become price quotes there.

An enterprise upgrade or license addition is sent as a quote (created once per idempotency key);
the billing contact accepts or rejects it in the portal. The gateway learns the outcome by
polling: the worker periodically calls `quote_status` for each open quote and moves the order
on when it reads "accepted" or "rejected". Polling needs no inbound route, no shared signing
secret and survives a gateway that was down when the decision was made; a signed callback from
the portal is a later option that would only shorten the delay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote as urlquote

from adapters.errors import PermanentAdapterError
from adapters.http_client import ServiceClient, client_from_config

QUOTES_PATH = "/v1/quotes"
PURCHASE_ORDERS_PATH = "/v1/purchase-orders"
QUOTE_STATUSES = frozenset({"open", "accepted", "rejected", "withdrawn"})


class HttpCorporatePortal:
    system = "corporate_portal"
    remote = True  # quotes are sent from the outbox and their outcome polled

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HttpCorporatePortal:
        return cls(client_from_config(config, "CORPORATE_PORTAL_URL", cls.system))

    def create_quote(self, quote: dict) -> dict:
        """POST the quote; returns {"id": ..., "status": "open"} (the same answer on a replay)."""
        answer = self.client.post(QUOTES_PATH, quote, idempotency_key=quote["idempotency_key"])
        return self._checked(answer, f"quote for order {quote.get('order_id')}")

    def apply(self, change: dict, db=None) -> dict:
        """An enterprise change an advisor approved, kept in the portal as a purchase order."""
        return self.client.post(PURCHASE_ORDERS_PATH, change, idempotency_key=change["idempotency_key"])

    def withdraw_quote(self, quote_id: str, idempotency_key: str) -> dict:
        """POST /v1/quotes/{id}/withdraw: the buyer withdrew the order in the gateway; the quote
        can no longer be accepted in the portal (the same answer on a replay)."""
        answer = self.client.post(f"{QUOTES_PATH}/{urlquote(str(quote_id), safe='')}/withdraw", {},
                                  idempotency_key=idempotency_key)
        return self._checked(answer, f"withdrawal of quote {quote_id}")

    def quote_status(self, quote_id: str) -> dict:
        """GET the quote; returns {"id", "status": "open"|"accepted"|"rejected", "note"?}."""
        answer = self.client.get(f"{QUOTES_PATH}/{urlquote(str(quote_id), safe='')}")
        return self._checked(answer, f"quote {quote_id}")

    def _checked(self, answer: dict, what: str) -> dict:
        if not answer.get("id") or answer.get("status") not in QUOTE_STATUSES:
            raise PermanentAdapterError(f"corporate portal answered {what} with {answer!r}",
                                        system=self.system)
        return answer
