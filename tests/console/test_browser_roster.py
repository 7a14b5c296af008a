"""The roster form in real headless Chromium, on a phone-sized screen: an inline error, the fix, the audit.

Uses test_browser.py's stack (gunicorn + worker, a private roster with Rita Reyes) and browser.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from bot.settings import ROOT
from handoff.roster import load_roster
from tests.console.test_browser import CHROMIUM, browser, logged_in, shot, stack  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"
)
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def test_edit_a_rep_see_the_error_inline_fix_it_and_find_it_audited(browser, stack, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    page = logged_in(browser, stack, **PHONE)
    page.get_by_role("link", name="Roster").click()
    expect(page.get_by_role("heading", name="Roster")).to_be_visible()
    page.get_by_role("link", name="Edit Rita Reyes").click()
    phone, weight = page.get_by_label("Phone"), page.get_by_label("Weight")
    expect(phone).to_have_value("+15125550199")
    phone.fill("555")
    weight.fill("two")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#f-phone-error")).to_have_text("not a valid phone number '555'")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-weight-error")).to_contain_text("expected a whole number >= 1, got 'two'")
    expect(page.get_by_role("alert")).to_contain_text("2 problem(s)")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    shot(page, tmp_path, "roster-form-error")
    assert load_roster(stack.settings.roster_path).rep("Rita Reyes").phone == "+15125550199"  # nothing saved

    phone.fill("+1 512 555 0177")
    weight.fill("2")
    page.get_by_label("Works set hours").check()
    page.get_by_label("Time zone").fill("America/Chicago")
    page.get_by_label("Monday").fill("08:00-17:00")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Saved Rita Reyes \(roster version \d+\)"))
    row = page.locator("#reps tr", has_text="Rita Reyes")
    expect(row).to_contain_text("+15125550177")
    expect(row.locator("td").nth(6)).to_have_text("2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the tables scroll, not the page
    rita = load_roster(stack.settings.roster_path).rep("Rita Reyes")
    assert (rita.phone, rita.weight, rita.hours.to_dict()) == (
        "+15125550177", 2, {"timezone": "America/Chicago", "mon": "08:00-17:00"})

    page.get_by_role("button", name="Deactivate Rita Reyes").click()
    expect(page.locator("#reps tr", has_text="Rita Reyes")).to_contain_text("inactive")
    page.goto(stack.url + "/console/users")
    audit = page.locator("#audit")
    expect(audit.locator("tr", has_text="roster_rep_deactivated")).to_contain_text("Rita Reyes")
    saved = audit.locator("tr", has_text="roster_rep_saved")
    expect(saved).to_contain_text("Rita Reyes")
    expect(saved).to_contain_text("admin@example.com")
    expect(saved).to_contain_text("'phone': ['+15125550199', '+1 512 555 0177']")
    page.close()

    desk = logged_in(browser, stack)
    desk.goto(stack.url + "/console/roster")
    expect(desk.locator("#versions")).to_contain_text("form: edited rep Rita Reyes")
    if os.environ.get("CONSOLE_SCREENSHOTS"):  # the README's picture: the shipped sample roster
        shutil.copy(ROOT / "handoff" / "roster.yaml", stack.settings.roster_path)
        desk.reload()
    shot(desk, tmp_path, "roster")
