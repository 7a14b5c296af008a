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
