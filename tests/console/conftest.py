"""Console fixtures: users of each role and a logged-in test client."""

from __future__ import annotations

import re

import pytest

from bot.store import staff

PASSWORD = "correct horse battery"


def make_user(services, email: str, role: str) -> str:  # noqa: ANN001
    with services.sessions() as s:
        staff.add_user(s, email, PASSWORD, role)
        s.commit()
    return email


def csrf_of(html: str) -> str:
    """The CSRF token a console page carries."""
    return re.search(r'name="csrf[-_]token" (?:content|value)="([^"]+)"', html).group(1)


def login(client, email: str, password: str = PASSWORD):  # noqa: ANN001, ANN201
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    return client.post("/console/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def admin(services):  # noqa: ANN001, ANN201
    return make_user(services, "boss@example.com", "admin")


@pytest.fixture
def staff_client(app, services, admin):  # noqa: ANN001, ANN201
    """A client logged in as an admin; .csrf holds its token."""
    client = app.test_client()
    assert login(client, admin).status_code == 302
    client.csrf = csrf_of(client.get("/console/").get_data(as_text=True))
    return client


@pytest.fixture
def settings(tmp_path, db_url, redis_url, emulator):  # noqa: ANN001, ANN201
    """Test settings with a private copy of the flows and the roster, which the console's editors write."""
    import shutil

    from bot.settings import ROOT
    from tests.conftest import make_settings

    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "ivr_flows", flows)
    roster = tmp_path / "roster.yaml"
    shutil.copy(ROOT / "handoff" / "roster.yaml", roster)
    return make_settings(
        tmp_path, db_url, redis_url, emulator.url, FLOWS_DIR=str(flows), ROSTER_PATH=str(roster)
    )
