"""The billing center reached over HTTP: self-serve changes are applied there.

The change is one order's worth of items; the billing center applies all of them or none, and
answers a replay of the same idempotency key with its first answer, so the job queue may retry
`apply` freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.errors import PermanentAdapterError
from adapters.http_client import ServiceClient, client_from_config

CHANGES_PATH = "/v1/subscription-changes"


class HttpBillingCenter:
    system = "billing_center"

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HttpBillingCenter:
        return cls(client_from_config(config, "BILLING_CENTER_URL", cls.system))

    def apply(self, change: dict, db=None) -> dict:
        """POST the change; returns the billing center's answer, {"status": "applied", ...}."""
        answer = self.client.post(CHANGES_PATH, change, idempotency_key=change["idempotency_key"])
        if answer.get("status") != "applied":
            # Anything else means the change did not land, and asking again will not change that.
            raise PermanentAdapterError(f"billing center did not apply order {change.get('order_id')}: "
                                        f"{answer!r}", system=self.system)
        return answer
