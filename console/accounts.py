"""`leadbot users add`, and the development admin `leadbot run` creates on the embedded defaults."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from pathlib import Path

from bot.settings import Settings
from bot.store import database as db
from bot.store import staff

DEV_ADMIN = "admin@localhost"
DEV_PASSWORD_FILE = "console_admin_password"


def _sessions(settings: Settings):  # noqa: ANN202
    engine = db.make_engine(settings.db_url)
    db.init_db(engine)
    return engine, db.make_sessionmaker(engine)


def add_user(settings: Settings, email: str, password: str, role: str, actor: str = "cli") -> str:
    """Create a user and audit it; StaffError says what is wrong."""
    engine, sessions = _sessions(settings)
    try:
        with sessions() as s:
            user = staff.add_user(s, email, password, role)
            staff.audit(s, actor, "user_added", user.email, role=role)
            s.commit()
            return user.email
    finally:
        engine.dispose()


def ensure_dev_admin(settings: Settings) -> tuple[str, str] | None:
    """On the embedded defaults, an admin whose random password is kept in var/; never in production."""
    if settings.production:
        return None
    secret = Path(settings.data_dir) / DEV_PASSWORD_FILE
    if not secret.exists():
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.write_text(secrets.token_urlsafe(15))
        secret.chmod(0o600)
    password = secret.read_text().strip()
    engine, sessions = _sessions(settings)
    try:
        with sessions() as s:
            if staff.verify(s, DEV_ADMIN, password) is None:
                try:
                    staff.add_user(s, DEV_ADMIN, password, "admin")
                    staff.audit(s, "leadbot run", "user_added", DEV_ADMIN, role="admin", dev=True)
                    s.commit()
                except staff.StaffError:  # someone changed its password: leave their account alone
                    return None
    finally:
        engine.dispose()
    return DEV_ADMIN, password


def cmd_users(args: argparse.Namespace) -> int:
    """`leadbot users add EMAIL --role ROLE [--password-stdin]`."""
    settings = Settings()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.email}: ")
        if getpass.getpass("Again: ") != password:
            print("leadbot users: the passwords differ", file=sys.stderr)
            return 2
    try:
        email = add_user(settings, args.email, password, args.role)
    except staff.StaffError as exc:
        print(f"leadbot users: {exc}", file=sys.stderr)
        return 2
    print(f"added {email} ({args.role}); log in at {settings.base_url}/console/login")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The `users` subcommand."""
    users = sub.add_parser("users", help="manage console users")
    verbs = users.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", help="create a console user")
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=["admin", "editor", "manager"])
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=cmd_users)
