"""Tables of the staff console: users, the audit log, and every published version of a flow or roster."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.tables import Base, utcnow


class Role(str, Enum):
    """What a staff member may do: admins run users and the roster, editors flows, managers read."""

    ADMIN = "admin"
    EDITOR = "editor"
    MANAGER = "manager"


class StaffUser(Base):
    """Someone who logs in to the console; the password is a werkzeug hash, never the text."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuditEntry(Base):
    """One login (or failed one) or one change made in the console: who, when, what."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(254))  # an email, or "cli"
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(254))
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Publication(Base):
    """One published text of a flow file or the roster; never deleted, so any can be rolled back to."""

    __tablename__ = "publications"
    __table_args__ = (Index("ix_publications_kind_name", "kind", "name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # "flow" | "roster"
    name: Mapped[str] = mapped_column(String(120))  # the flow's file name, or "roster"
    source: Mapped[str] = mapped_column(Text)
    published_by: Mapped[str] = mapped_column(String(254))
    published_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
