"""Signed-in browser sessions: the cookie names one, so sign-out really ends it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from tenants.db import Base, stamped


class WebSession(Base):
    __tablename__ = "web_sessions"
    # A random 256-bit value; the cookie (signed) carries it, the row says whether it still counts.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "contact" | "advisor"
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    tenant_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = stamped()
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
