"""Every script on the console's pages carries the response's CSP nonce; none loads from elsewhere."""

from __future__ import annotations

import re

import pytest

PAGES = ["/console/", "/console/flows", "/console/flows/prequal", "/console/try", "/console/reports",
         "/console/health", "/console/roster", "/console/users"]


@pytest.mark.parametrize("path", PAGES)
def test_scripts_carry_the_nonce_and_come_from_this_site(staff_client, path):
    resp = staff_client.get(path)
    assert resp.status_code == 200
    nonce = resp.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    scripts = re.findall(r"<script\b[^>]*>", resp.get_data(as_text=True))
    assert scripts, "every console page loads console.js"
    for tag in scripts:
        assert f'nonce="{nonce}"' in tag, tag
        src = re.search(r'src="([^"]+)"', tag)
        assert src is None or src.group(1).startswith("/console/static/"), tag


def test_the_login_page_too(client):
    resp = client.get("/console/login")
    nonce = resp.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}" src="/console/static/console.js"' in resp.get_data(as_text=True)
