"""The app's clock, chosen from the settings; use cases get it through gateway.composition."""

from __future__ import annotations

from datetime import date, datetime

from flask import current_app

from tenants.clock import SYSTEM, Clock, FrozenDateClock


def from_settings(cfg) -> Clock:
    if cfg.get("CLOCK") is not None:
        return cfg["CLOCK"]
    if cfg.get("FROZEN_TODAY"):
        return FrozenDateClock(date.fromisoformat(cfg["FROZEN_TODAY"]))
    return SYSTEM


def current() -> Clock:
    return current_app.extensions["gateway.clock"]


def today() -> date:
    return current().today()


def now() -> datetime:
    return current().now()
