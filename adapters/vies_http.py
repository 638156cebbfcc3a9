"""VIES over HTTP, the EU's REST shape: `POST {base}/check-vat-number` with
`{"countryCode", "vatNumber"}` answering `{"valid", "name", "address", ..., "userError"}`.

The registry answers `"valid": false` also when a member state's system is down, and says so
in `userError`; those answers, 5xx, timeouts and refused connections are "unavailable", never
"not registered".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.errors import AdapterError
from adapters.http_client import ServiceClient
from adapters.vies import ViesUnavailable, split

PATH = "/check-vat-number"
UNAVAILABLE = frozenset({"MS_UNAVAILABLE", "SERVICE_UNAVAILABLE", "TIMEOUT", "MS_MAX_CONCURRENT_REQ",
                         "GLOBAL_MAX_CONCURRENT_REQ", "SERVER_BUSY", "IP_BLOCKED"})


class HttpVies:
    system = "vies"

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HttpVies:
        # A public service: no OAuth; short, few in-call retries (the worker re-checks later).
        return cls(ServiceClient(config["VIES_URL"], timeout=float(config.get("VIES_TIMEOUT") or 5),
                                 retries=1, system=cls.system))

    def check(self, number: str) -> bool:
        country, rest = split(number)
        try:
            answer = self.client.post(PATH, {"countryCode": country, "vatNumber": rest},
                                      idempotency_key=f"vies-{number}")
        except AdapterError as exc:
            raise ViesUnavailable(str(exc)) from exc
        errors = {str(answer.get("userError") or "")} | {
            str(e.get("error")) for e in answer.get("errorWrappers") or () if isinstance(e, dict)}
        if errors & UNAVAILABLE:
            raise ViesUnavailable(f"VIES: {', '.join(sorted(errors & UNAVAILABLE))}")
        valid = answer.get("valid")
        if not isinstance(valid, bool):
            raise ViesUnavailable(f"VIES answered without a verdict: {answer!r}"[:300])
        return valid
