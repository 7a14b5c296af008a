"""The main console pages in real Chromium: no Content-Security-Policy violation, and no serious or
critical accessibility problem that axe-core (vendored in tests/console/vendor/) finds; keyboard use."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.console.conftest import PASSWORD
from tests.console.test_browser import CHROMIUM, browser, logged_in, post_lead, stack  # noqa: F401

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
BLOCKING = ("serious", "critical")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"
)


def watch_csp(page) -> list[str]:  # noqa: ANN001
    """Every CSP violation the page reports on its console from now on."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    return seen


def axe_problems(page) -> list[str]:  # noqa: ANN001
    """axe-core's serious and critical violations on the page as it stands, one line each."""
    # Evaluated through the DevTools protocol, which the page's CSP does not govern; no tag is added.
    page.evaluate(AXE + "\n;0")
    found = page.evaluate(
        """async (blocking) => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter(v => blocking.includes(v.impact))
             .map(v => `${v.impact} ${v.id}: ${v.help} at ` +
                       v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "))""",
        list(BLOCKING),
    )
    return found


def rep_link_for_new_handoff(stack) -> str:  # noqa: ANN001
    """A rep's lead page link for a fresh SMS handoff (signed here; the worker's text is not awaited)."""
    from bot.runtime.replinks import rep_link
    from bot.runtime.services import build_services
    from bot.store.handoff_tables import Handoff
    from tests.handoff.live import sms_handoff

    svc = build_services(stack.settings)
    try:
        lead_id = sms_handoff(svc, service="kitchen remodel", name="Maria Lopez")
        with svc.sessions() as s:
            hid = s.scalars(select(Handoff.id).where(Handoff.lead_id == lead_id)).one()
    finally:
        svc.close()
    return rep_link(stack.url, stack.settings.secret_key, hid)


def test_the_listener_sees_a_csp_violation(browser, stack):  # noqa: F811
    page = browser.new_page()
    violations = watch_csp(page)
    page.goto(stack.url + "/console/login")
    page.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.ran = 1";
                             document.body.append(s); }""")
    page.wait_for_function("() => true")
    assert page.evaluate("window.ran") is None and violations


def test_main_pages_have_no_csp_violation_or_serious_accessibility_problem(browser, stack):  # noqa: F811
    lead_id = post_lead(stack, service="kitchen remodel", source="google")
    pages = {
        "login": "/console/login",
        "board": "/console/",
        "lead": f"/console/leads/{lead_id}",
        "flows": "/console/flows",
        "flow editor": "/console/flows/prequal",
        "try it": "/console/try",
        "reports": "/console/reports",
        "health": "/console/health",
        "roster": "/console/roster",
        "roster rep form": "/console/roster/reps/0",
        "roster team form": "/console/roster/teams/new",
        "users": "/console/users",
        "rep page": rep_link_for_new_handoff(stack).removeprefix(stack.url),
        "rep link not valid": "/console/r/not-a-link",
    }
    anonymous = browser.new_page()
    page = logged_in(browser, stack)
    problems: dict[str, list[str]] = {}
    for name, path in pages.items():
        tab = anonymous if name in ("login", "rep page", "rep link not valid") else page
        violations = watch_csp(tab)
        tab.goto(stack.url + path)
        tab.wait_for_load_state("networkidle")
        found = violations + axe_problems(tab)
        if found:
            problems[name] = found
    assert problems == {}


def test_log_in_and_reach_the_content_with_the_keyboard_only(browser, stack):  # noqa: F811
    page = browser.new_page()
    page.goto(stack.url + "/console/login")
    assert page.evaluate("document.activeElement.id") == "email"  # focused on arrival
    page.keyboard.type("admin@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(stack.url + "/console/")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
    page.keyboard.press("Tab")
    inside = page.evaluate("document.activeElement.closest('main') !== null")
    assert inside, "after skipping the navigation the next stop is in the page's content"


def test_the_flow_editor_takes_tab_for_indenting_and_lets_the_keyboard_out(browser, stack):  # noqa: F811
    page = logged_in(browser, stack)
    page.goto(stack.url + "/console/flows/prequal")
    editor = page.locator("#source")
    editor.focus()
    page.keyboard.press("Control+Home")
    before = editor.input_value()
    page.keyboard.press("Tab")
    assert editor.input_value() == "  " + before
    assert page.evaluate("document.activeElement.id") == "source"
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") != "source"
