"""The one clock: what "today" is, frozen for tests and demos where the settings say so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from flask import current_app


def from_settings(cfg) -> Callable[[], date]:
    if cfg.get("FROZEN_TODAY"):
        frozen = date.fromisoformat(cfg["FROZEN_TODAY"])
        return lambda: frozen
    return lambda: datetime.now(UTC).date()


def today() -> date:
    return current_app.extensions["gateway.clock"]()
