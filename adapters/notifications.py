"""Notifications: e-mail to billing contacts, sent over SMTP or written to a folder.

The folder is the embedded default: each message is one .eml file, readable by any mail client
and by tests, so the gateway needs no mail server to run. Files are written under a temporary
name and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import os
import smtplib
import time
import uuid
from datetime import UTC, datetime
from email import policy
from email.contentmanager import raw_data_manager
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from adapters.errors import AdapterError, PermanentAdapterError, TransientAdapterError

DEFAULT_SENDER = "billing-gateway@localhost"


class Notifier(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


def build_message(to: str, subject: str, body: str, sender: str = DEFAULT_SENDER) -> EmailMessage:
    # compat32 keeps header values as given and encodes them (RFC 2047) only when the message
    # is written; the default policy parses every header through `email.headerregistry` as it
    # is set, which cost more than writing and syncing the file. A non-ASCII address keeps the
    # default policy: compat32 would encode it whole (no longer an address), and smtplib sends
    # to one (SMTPUTF8) through the policy's `utf8` option, which compat32 lacks.
    ascii_only = to.isascii() and sender.isascii()
    message = EmailMessage(policy=policy.compat32 if ascii_only else policy.default)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    # The default policy's content manager (compat32 has none): the same transfer encodings.
    message.set_content(body, content_manager=raw_data_manager)
    return message


class FolderNotifier:
    def __init__(self, path: str | os.PathLike[str], sender: str = DEFAULT_SENDER) -> None:
        self.path = Path(path)
        self.sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        data = bytes(build_message(to, subject, body, self.sender))
        # The timestamp sorts messages by time; the uuid keeps names unique across processes.
        name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex}.eml"
        temporary = self.path / f".{name}.tmp"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path / name)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise TransientAdapterError(f"cannot write mail to {self.path}: {exc}",
                                        system="notifications") from exc


class SmtpNotifier:
    """Sends through `smtp://[user:password@]host[:port][?starttls=1]` or `smtps://...`."""

    def __init__(self, url: str, sender: str = DEFAULT_SENDER, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"not an smtp:// or smtps:// URL: {url!r}")
        self.ssl = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.ssl else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.starttls = parse_qs(parts.query).get("starttls", ["0"])[0] in ("1", "true", "yes")
        self.sender = sender
        self.timeout = timeout

    def send(self, to: str, subject: str, body: str) -> None:
        message = build_message(to, subject, body, self.sender)
        connect = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        try:
            with connect(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _smtp_error(min(codes) if codes else 550, str(exc)) from exc
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(exc.smtp_code, str(exc)) from exc
        except (OSError, smtplib.SMTPException) as exc:  # refused, timed out, dropped
            raise TransientAdapterError(f"SMTP {self.host}:{self.port}: {exc}",
                                        system="notifications") from exc


def _smtp_error(code: int, message: str) -> AdapterError:
    # In SMTP, 4xx means "try again later" and 5xx means "never".
    if 400 <= code < 500:
        return TransientAdapterError(f"SMTP {code}: {message}", system="notifications")
    return PermanentAdapterError(f"SMTP {code}: {message}", system="notifications")
