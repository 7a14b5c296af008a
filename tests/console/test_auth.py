"""Console access: the login, sessions, CSRF, lockout, roles, the audit log and `leadbot users add`."""

from __future__ import annotations

import io
import sys

import pytest

from bot.store import staff
from console import accounts
from console.auth import ACCOUNT_FAILURES, IP_FAILURES
from tests.console.conftest import PASSWORD, csrf_of, login, make_user

PAGES = [
    "/console/",
    "/console/board/rows",
    "/console/leads/x",
    "/console/reports",
    "/console/reports/speed.csv",
    "/console/flows",
    "/console/flows/roofing",
    "/console/roster",
    "/console/roster.yaml",
    "/console/try",
    "/console/health",
    "/console/users",
]


@pytest.mark.parametrize("path", PAGES)
def test_logged_out_every_page_redirects_to_login(client, path):
    resp = client.get(path)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/console/login?next=")


def test_login_sets_a_hardened_session_and_logout_ends_it(client, services, admin):
    resp = login(client, admin)
    assert resp.status_code == 302 and resp.headers["Location"] == "/console/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/console/")
    assert page.status_code == 200 and b"boss@example.com" in page.data
    client.post("/console/logout", data={"csrf_token": csrf_of(page.get_data(as_text=True))})
    assert client.get("/console/").status_code == 302


def test_wrong_password_is_refused_and_audited(client, services, admin):
    resp = login(client, admin, "wrong password!")
    assert resp.status_code == 401 and b"Wrong email or password" in resp.data
    assert client.get("/console/").status_code == 302
    with services.sessions() as s:
        assert [(a.action, a.target) for a in staff.audit_log(s)] == [("login_failed", admin)]


def test_next_only_goes_to_console_paths(client, admin):
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    for target, expected in (
        ("/console/reports", "/console/reports"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console/", "/console/"),
    ):
        resp = client.post(
            "/console/login", data={"email": admin, "password": PASSWORD, "csrf_token": token, "next": target}
        )
        assert resp.headers["Location"] == expected
        token = csrf_of(client.get("/console/login").get_data(as_text=True))


def test_form_without_csrf_token_is_refused(client, admin):
    assert client.post("/console/login", data={"email": admin, "password": PASSWORD}).status_code == 400
    assert login(client, admin).status_code == 302
    resp = client.post(
        "/console/users", data={"email": "x@example.com", "password": "x" * 12, "role": "admin"}
    )
    assert resp.status_code == 400


def test_account_locks_after_repeated_failures_even_with_the_right_password(client, services, admin):
    for _ in range(ACCOUNT_FAILURES):
        assert login(client, admin, "nope nope nope").status_code == 401
    locked = login(client, admin)
    assert locked.status_code == 429 and b"Too many failed logins" in locked.data
    assert client.get("/console/").status_code == 302
    other = make_user(services, "other@example.com", "manager")
    assert login(client, other).status_code == 302  # the lock is per account...
    with services.sessions() as s:
        assert "login_locked" in [a.action for a in staff.audit_log(s)]


def test_address_locks_after_failures_across_accounts(client, services, admin):
    for i in range(IP_FAILURES):
        login(client, f"guess{i}@example.com", "nope nope nope")
    assert login(client, admin).status_code == 429  # ...and per address


def test_manager_is_refused_the_flow_editor_and_admin_pages(app, services):
    manager = make_user(services, "m@example.com", "manager")
    client = app.test_client()
    login(client, manager)
    assert client.get("/console/").status_code == 200
    assert client.get("/console/reports").status_code == 200
    for path in (
        "/console/flows",
        "/console/flows/roofing",
        "/console/try",
        "/console/roster",
        "/console/users",
    ):
        resp = client.get(path)
        assert resp.status_code == 403 and b"Not allowed" in resp.data, path
    token = csrf_of(client.get("/console/").get_data(as_text=True))
    resp = client.post("/console/flows/roofing/publish", data={"source": "x", "csrf_token": token})
    assert resp.status_code == 403


def test_admin_adds_a_user_and_the_audit_log_shows_who_did_it(staff_client, services, admin):
    resp = staff_client.post(
        "/console/users",
        data={
            "email": "New@Example.com",
            "password": "long enough pw",
            "role": "editor",
            "csrf_token": staff_client.csrf,
        },
    )
    assert resp.status_code == 302
    page = staff_client.get("/console/users").get_data(as_text=True)
    assert "new@example.com" in page
    with services.sessions() as s:
        entry = staff.audit_log(s)[0]
        assert (entry.actor, entry.action, entry.target, entry.details) == (
            admin,
            "user_added",
            "new@example.com",
            {"role": "editor"},
        )


def test_cli_users_add_reads_the_password_from_stdin(settings, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", settings.db_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    assert main(["users", "add", "Ed@Example.com", "--role", "editor", "--password-stdin"]) == 0
    assert "added ed@example.com (editor)" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["users", "add", "x@example.com", "--role", "admin", "--password-stdin"]) == 2
    from bot.store import database as db

    engine = db.make_engine(settings.db_url)
    with db.make_sessionmaker(engine)() as s:
        assert staff.verify(s, "ed@example.com", "a long password").role == "editor"
        assert [u.email for u in staff.list_users(s)] == ["ed@example.com"]
    engine.dispose()


def test_dev_admin_only_on_the_embedded_defaults(settings):
    email, password = accounts.ensure_dev_admin(settings)
    assert email == "admin@localhost" and len(password) >= 16
    assert (settings.data_dir / accounts.DEV_PASSWORD_FILE).read_text() == password
    assert accounts.ensure_dev_admin(settings) == (email, password)  # idempotent
    prod = settings.model_copy(update={"env": "production"})
    assert accounts.ensure_dev_admin(prod) is None


@pytest.mark.parametrize("proxies", [0, 1])
def test_behind_a_trusted_proxy_the_lockout_is_per_client_not_per_proxy(settings, proxies):
    """Every request comes from the proxy's address: unless TRUSTED_PROXIES says so, one guesser locks all."""
    from app import create_app

    application = create_app(settings.model_copy(update={"trusted_proxies": proxies}))
    try:
        services = application.extensions["leadbot"]
        admin = make_user(services, "boss@example.com", "admin")
        guesser, boss = application.test_client(), application.test_client()
        guesser.environ_base.update(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7")
        boss.environ_base.update(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.2")
        for i in range(IP_FAILURES):
            login(guesser, f"guess{i}@example.com", "nope nope nope")
        assert login(guesser, admin).status_code == 429
        assert login(boss, admin).status_code == (302 if proxies else 429)
    finally:
        application.extensions["leadbot"].close()
