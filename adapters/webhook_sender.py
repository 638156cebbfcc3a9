"""Sends one webhook: a POST signed per Standard Webhooks (the `standardwebhooks` library).

The answer is classified, never raised: 2xx delivered; 410 Gone means the receiver wants no
more; anything else (another status, a timeout, a refused connection, a target that now
resolves to a forbidden address) is a failed attempt to be retried later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from standardwebhooks import Webhook

from adapters import webhook_urls

TIMEOUT = 10.0


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    gone: bool = False
    status_code: int | None = None
    error: str | None = None


def signed_headers(secret: str, message_id: str, body: str, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, now, body),
            "content-type": "application/json", "user-agent": "billing-gateway-webhooks/1"}


def send(url: str, secret: str, message_id: str, body: str, *, development: bool,
         allow_private: bool, timeout: float = TIMEOUT, resolver=None) -> Outcome:
    try:
        # Checked again now: the name may resolve elsewhere than when the endpoint was made.
        webhook_urls.check(url, development=development, allow_private=allow_private,
                           resolver=resolver)
    except webhook_urls.UrlRefused as exc:
        return Outcome(False, error=f"refused: {exc}")
    try:
        response = requests.post(url, data=body.encode(), timeout=timeout, allow_redirects=False,
                                 headers=signed_headers(secret, message_id, body))
    except requests.Timeout:
        return Outcome(False, error=f"timeout after {timeout:g}s")
    except requests.RequestException as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True, status_code=status)
    return Outcome(False, gone=status == 410, status_code=status,
                   error=f"answered {status}: {response.text[:200]}")
