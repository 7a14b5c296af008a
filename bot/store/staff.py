"""Staff users, the audit log and published versions: the console reads and writes only through these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from bot.store.staff_tables import AuditEntry, Publication, Role, StaffUser
from bot.store.tables import utcnow

MIN_PASSWORD = 10
# Checked against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = generate_password_hash("not-a-password-at-all")


class StaffError(ValueError):
    """A user cannot be created or changed; the message says why."""


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively."""
    return (email or "").strip().lower()


def add_user(session: Session, email: str, password: str, role: str) -> StaffUser:
    """Create a user (the caller commits); StaffError on a bad email, role or short password."""
    email = normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise StaffError(f"not an email address: {email!r}")
    if role not in {r.value for r in Role}:
        raise StaffError(f"role must be one of {', '.join(r.value for r in Role)}, not {role!r}")
    if len(password or "") < MIN_PASSWORD:
        raise StaffError(f"the password must be at least {MIN_PASSWORD} characters")
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise StaffError(f"{email} already exists")
    user = StaffUser(email=email, password_hash=generate_password_hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def verify(session: Session, email: str, password: str) -> StaffUser | None:
    """The active user with this email and password, else None (same work either way)."""
    user = session.scalar(select(StaffUser).where(StaffUser.email == normalize_email(email)))
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    return user if ok and user is not None and user.active else None


def touch_login(user: StaffUser) -> None:
    """Note a successful login (the caller commits)."""
    user.last_login_at = utcnow()


def get_user(session: Session, user_id: int) -> StaffUser | None:
    """A user by id."""
    return session.get(StaffUser, user_id)


def list_users(session: Session) -> list[StaffUser]:
    """Every user, by email."""
    return list(session.scalars(select(StaffUser).order_by(StaffUser.email)))


def count_users(session: Session) -> int:
    """How many users exist."""
    return int(session.scalar(select(func.count()).select_from(StaffUser)) or 0)


def audit(
    session: Session,
    actor: str,
    action: str,
    target: str | None = None,
    ip: str | None = None,
    **details: Any,
) -> None:
    """Add one audit entry (the caller's transaction commits it)."""
    session.add(AuditEntry(actor=actor, action=action, target=target, ip=ip, details=details, at=utcnow()))


def audit_log(session: Session, limit: int = 200, before_id: int | None = None) -> list[AuditEntry]:
    """Newest audit entries first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query))


def publish(
    session: Session,
    kind: str,
    name: str,
    source: str,
    who: str,
    note: str | None = None,
    at: datetime | None = None,
) -> Publication:
    """Record one published version (the caller writes the file and commits)."""
    row = Publication(
        kind=kind, name=name, source=source, published_by=who, note=note, published_at=at or utcnow()
    )
    session.add(row)
    session.flush()
    return row


def publications(session: Session, kind: str, name: str) -> list[Publication]:
    """Every published version of one flow file or the roster, newest first."""
    return list(
        session.scalars(
            select(Publication)
            .where(Publication.kind == kind, Publication.name == name)
            .order_by(Publication.id.desc())
        )
    )


def publication(session: Session, pub_id: int) -> Publication | None:
    """One published version."""
    return session.get(Publication, pub_id)
