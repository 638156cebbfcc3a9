"""An HTTP client for one outside system: OAuth client credentials, timeouts, bounded retries.

Every call carries the order's idempotency key, so a retry after a lost answer (a timeout, a
dropped connection, a 5xx from a proxy after the system applied the change) is answered by the
system with its first answer instead of being applied again. The in-call retries are few and
short on purpose: the job queue retries again later with a longer backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from adapters.errors import AdapterError, PermanentAdapterError, TransientAdapterError

log = logging.getLogger(__name__)

_TRANSIENT = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


class ServiceClient:
    def __init__(
        self,
        base_url: str,
        *,
        token_endpoint: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        leeway: int = 60,
        system: str = "",
    ) -> None:
        if token_endpoint and not (client_id and client_secret):
            raise ValueError("a token endpoint needs a client id and a client secret")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.system = system or urlsplit(base_url).netloc
        self.uses_oauth = bool(token_endpoint)
        self.session = OAuth2Session(
            client_id, client_secret, scope=scope, token_endpoint=token_endpoint,
            grant_type="client_credentials", leeway=leeway, default_timeout=timeout,
        )
        # Worker threads share one client; only one of them should fetch a new token.
        self._token_lock = threading.Lock()

    def post(self, path: str, json: Mapping[str, Any], idempotency_key: str) -> dict:
        if not idempotency_key:
            raise ValueError("a POST to an outside system needs an idempotency key")
        return self._call("POST", path, json=dict(json), idempotency_key=idempotency_key)

    def get(self, path: str, idempotency_key: str | None = None) -> dict:
        return self._call("GET", path, idempotency_key=idempotency_key)

    def close(self) -> None:
        self.session.close()

    # -- internals --------------------------------------------------------------------------
    def _call(self, method: str, path: str, json: dict | None = None,
              idempotency_key: str | None = None) -> dict:
        url = f"{self.base_url}/{path.lstrip('/')}"
        headers = {"Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        reauthenticated = False
        attempt = 0
        while True:
            try:
                sent_token = self._ensure_token()
                response = self._send(method, url, headers, json)
                if response.status_code == 401 and self.uses_oauth and not reauthenticated:
                    # The token may have been revoked or rotated before its expiry: one new token,
                    # one more try, and a second 401 is a real refusal.
                    reauthenticated = True
                    self._ensure_token(stale=sent_token)
                    response = self._send(method, url, headers, json)
                return self._answer(method, url, response)
            except AdapterError as exc:
                if not exc.retryable or attempt >= self.retries:
                    raise
                delay = self.backoff * 2 ** attempt
                attempt += 1
                log.warning("%s %s %s failed (%s); retry %d/%d in %.2fs", self.system, method, path,
                            exc, attempt, self.retries, delay)
                time.sleep(delay)

    def _ensure_token(self, stale: str | None = None) -> str | None:
        """Fetch a token when there is none, it is about to expire, or `stale` was rejected."""
        if not self.uses_oauth:
            return None
        with self._token_lock:
            token = self.session.token
            if (token is None or token.is_expired(leeway=self.session.leeway)
                    or (stale is not None and token.get("access_token") == stale)):
                self._guard(lambda: self.session.fetch_token(timeout=self.timeout), "token endpoint")
            return self.session.token["access_token"]

    def _send(self, method: str, url: str, headers: dict, json: dict | None) -> requests.Response:
        return self._guard(
            lambda: self.session.request(method, url, json=json, headers=headers, timeout=self.timeout,
                                         withhold_token=not self.uses_oauth),
            f"{method} {url}",
        )

    def _guard(self, call, what: str):
        """Run one HTTP exchange, turning every failure into a classified AdapterError."""
        try:
            return call()
        except _TRANSIENT as exc:
            raise TransientAdapterError(f"{what}: {type(exc).__name__}: {exc}", system=self.system) from exc
        except requests.HTTPError as exc:  # authlib raises these for a token endpoint's 5xx / non-JSON
            status = exc.response.status_code if exc.response is not None else None
            if status is None:
                raise TransientAdapterError(f"{what}: {exc}", system=self.system) from exc
            raise AdapterError.for_status(status, f"{what}: {exc}", self.system) from exc
        except OAuthError as exc:  # the token endpoint refused our credentials: retrying won't help
            raise PermanentAdapterError(f"{what}: {exc}", status=401, system=self.system) from exc
        except requests.RequestException as exc:  # a malformed URL or the like: a configuration error
            raise PermanentAdapterError(f"{what}: {exc}", system=self.system) from exc

    def _answer(self, method: str, url: str, response: requests.Response) -> dict:
        status = response.status_code
        if not 200 <= status < 300:
            raise AdapterError.for_status(
                status, f"{method} {url} answered {status}: {response.text[:200]}", self.system)
        if not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise PermanentAdapterError(f"{method} {url} answered {status} without a JSON object",
                                        status=status, system=self.system)
        return answer


def client_from_config(config: Mapping[str, Any], url_key: str, system: str) -> ServiceClient:
    """Build a client from the app's settings (the GATEWAY_-prefixed environment, prefix dropped)."""
    base_url = config.get(url_key)
    if not base_url:
        raise ValueError(f"{url_key} is not configured")
    return ServiceClient(
        base_url,
        token_endpoint=config.get("ADAPTER_TOKEN_URL") or None,
        client_id=config.get("ADAPTER_CLIENT_ID") or None,
        client_secret=config.get("ADAPTER_CLIENT_SECRET") or None,
        scope=config.get("ADAPTER_SCOPE") or None,
        timeout=float(_setting(config, "ADAPTER_TIMEOUT", 5.0)),
        retries=int(_setting(config, "ADAPTER_RETRIES", 2)),
        backoff=float(_setting(config, "ADAPTER_BACKOFF", 0.2)),
        system=system,
    )


def _setting(config: Mapping[str, Any], key: str, default: float) -> Any:
    value = config.get(key)
    return default if value is None or value == "" else value
