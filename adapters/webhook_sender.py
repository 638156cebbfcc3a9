"""Sends one webhook: a POST signed per Standard Webhooks (the `standardwebhooks` library).

The answer is classified, never raised: 2xx delivered; 410 Gone means the receiver wants no
more; anything else (another status, a timeout, a refused connection, a target that now
resolves to a forbidden address) is a failed attempt to be retried later.

Outside development the connection goes to an address the SSRF check has just approved
(`webhook_urls.delivery_addresses`), with the URL's name for the Host header, SNI and the
certificate: a DNS answer that changes between the check and the connect is not followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
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
         allow_private: bool, timeout: float = TIMEOUT, resolver=None,
         ca_bundle: str | None = None) -> Outcome:
    """`ca_bundle`: the certificate authorities receivers are verified against (a file of PEM
    certificates; by default the same bundle as `requests`, certifi's)."""
    try:
        # Checked again now: the name may resolve elsewhere than when the endpoint was made.
        addresses = webhook_urls.delivery_addresses(url, development=development,
                                                    allow_private=allow_private, resolver=resolver)
    except webhook_urls.UrlRefused as exc:
        return Outcome(False, error=f"refused: {exc}")
    headers = signed_headers(secret, message_id, body)
    if addresses is None:  # development: any target, resolved as usual
        try:
            response = requests.post(url, data=body.encode(), timeout=timeout,
                                     allow_redirects=False, headers=headers)
        except requests.Timeout:
            return Outcome(False, error=f"timeout after {timeout:g}s")
        except requests.RequestException as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
        return _outcome(response.status_code, response.text)
    return _post_pinned(url, addresses, body, headers, timeout, ca_bundle or certifi.where())


def _post_pinned(url: str, addresses: list[str], body: str, headers: dict, timeout: float,
                 ca_bundle: str) -> Outcome:
    """POST over HTTPS to one of `addresses` (the first that accepts a connection), with the
    URL's host name in the Host header, in the TLS handshake (SNI) and as the name its
    certificate must carry: the checked address is the one connected to."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {**headers, "Host": parts.netloc}
    error = "no address to connect to"
    for address in addresses:
        pool = urllib3.HTTPSConnectionPool(
            address, parts.port or 443, server_hostname=parts.hostname,
            assert_hostname=parts.hostname, cert_reqs="CERT_REQUIRED", ca_certs=ca_bundle,
            timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False, maxsize=1)
        try:
            response = pool.urlopen("POST", path, body=body.encode(), headers=headers,
                                    redirect=False, retries=False)
        except urllib3.exceptions.NewConnectionError as exc:  # not there: the next address
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            continue
        except urllib3.exceptions.TimeoutError:
            return Outcome(False, error=f"timeout after {timeout:g}s")
        except urllib3.exceptions.HTTPError as exc:  # TLS (certificate, name), protocol
            return Outcome(False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
        finally:
            pool.close()
        return _outcome(response.status, response.data.decode("utf-8", "replace"))
    return Outcome(False, error=error)


def _outcome(status: int, text: str) -> Outcome:
    if 200 <= status < 300:
        return Outcome(True, status_code=status)
    return Outcome(False, gone=status == 410, status_code=status,
                   error=f"answered {status}: {text[:200]}")
