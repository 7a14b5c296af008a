"""The console in real headless Chromium (Debian's), against gunicorn + a worker on the built-in simulator.

Set CONSOLE_SCREENSHOTS=1 to also save the main pages under docs/screenshots/ for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
import requests

from bot.settings import ROOT, Settings
from console.accounts import add_user
from tests.conftest import API_KEY, lead_body
from tests.console.conftest import PASSWORD
from tests.procs import Stack

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = ROOT / "docs" / "screenshots"
REP = "+15125550199"
ROSTER = f"""\
managers:
  - {{name: Mona Manager, email: mona@example.com}}
salespeople:
  - {{name: Rita Reyes, phone: "{REP}", email: rita@example.com, services: [kitchen remodel, roofing]}}
"""
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"
)


@pytest.fixture
def stack(tmp_path, db_url, redis_url, monkeypatch):  # noqa: ANN001, ANN201
    """gunicorn + worker on embedded telephony, with private flows and roster, an admin and a manager."""
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_BASE_URL", "SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "ivr_flows", flows)
    (tmp_path / "roster.yaml").write_text(ROSTER)
    env = {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "LEAD_API_KEYS": API_KEY,
        "SECRET_KEY": "browser-test",
        "LEADBOT_DATA_DIR": str(tmp_path / "var"),
        "CALLING_HOURS": "00:00-23:59:59",
        "FLOWS_DIR": str(flows),
        "ROSTER_PATH": str(tmp_path / "roster.yaml"),
    }
    settings = Settings(**env)
    add_user(settings, "admin@example.com", PASSWORD, "admin")
    add_user(settings, "manager@example.com", PASSWORD, "manager")
    s = Stack(env, tmp_path).start()
    s.settings = settings
    yield s
    s.stop()


@pytest.fixture
def browser():  # noqa: ANN201
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def shot(page, tmp_path: Path, name: str, full: bool = True) -> None:  # noqa: ANN001
    """A screenshot for the test's record, and for the README when asked."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=full)
    if os.environ.get("CONSOLE_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def logged_in(browser, stack, email: str = "admin@example.com", **context):  # noqa: ANN001, ANN201
    page = browser.new_page(**context)
    page.goto(stack.url + "/console/")
    assert "/console/login" in page.url
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(stack.url + "/console/")
    return page


def post_lead(stack, **kw) -> str:  # noqa: ANN001
    resp = requests.post(
        stack.url + "/leads", json=lead_body(**kw), headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    assert resp.status_code == 202
    return resp.json()["id"]


def test_login_board_shows_new_lead_live_and_its_timeline(browser, stack, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(stack.url + "/console/")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Wrong email or password.")).to_be_visible()
    shot(page, tmp_path, "login")
    page.close()
    page = logged_in(browser, stack)
    expect(page.get_by_role("heading", name="Live board")).to_be_visible()
    lead_id = post_lead(
        stack, name="<script>window.pwned=1</script> {{7*7}}", service="kitchen remodel", source="google"
    )
    row = page.locator(f'tr[data-lead="{lead_id}"]')
    expect(row).to_be_visible(timeout=10000)  # arrived by polling, no reload
    expect(row.get_by_role("link")).to_have_text("<script>window.pwned=1</script> {{7*7}}")
    assert page.evaluate("window.pwned") is None
    expect(row.locator(".age")).to_have_text(re.compile(r"^\d+s$"))
    shot(page, tmp_path, "board")
    row.get_by_role("link").click()
    expect(page.locator("#timeline")).to_contain_text("received")
    expect(page.locator("#timeline li").first).to_contain_text("start")
    shot(page, tmp_path, "lead")


def test_flow_editor_inline_error_then_publish_and_walk_it_to_a_warm_transfer(browser, stack, tmp_path):
    from playwright.sync_api import expect

    page = logged_in(browser, stack)
    page.goto(stack.url + "/console/flows/prequal")
    editor = page.get_by_label(re.compile("YAML"))
    text = editor.input_value()
    broken = text.replace("      next: timing", "      next: timng", 1)
    line = text[: text.index("      next: timing")].count("\n") + 1
    editor.fill(broken)
    mine = page.locator("#errors li").filter(has_text="timng")
    expect(mine).to_contain_text(f"Line {line}: steps.budget.on.next", timeout=5000)
    expect(page.locator(f"#gutter div:nth-child({line})")).to_have_class("err")
    expect(page.locator("#diff")).to_contain_text("+      next: timng")
    expect(page.locator(".inline-err").filter(has_text="timng")).to_be_visible()  # on the line itself
    mine.get_by_role("button").click()  # jumps to the line
    shot(page, tmp_path, "flow-editor")
    fixed = text.replace("Roughly what budget do you have in mind?", "What budget are you working with?")
    editor.fill(fixed)
    expect(page.locator("#status")).to_have_text("No errors.", timeout=5000)
    page.get_by_label("Note (optional)").fill("shorter budget question")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text(re.compile("Published prequal"))).to_be_visible()
    expect(page.get_by_text("shorter budget question")).to_be_visible()

    page.goto(stack.url + "/console/try")
    page.get_by_label("Service").fill("kitchen remodel")
    page.get_by_role("button", name="Start a test lead").click()
    prospect, rep = page.locator("#phone-prospect"), page.locator("#phone-rep")
    prospect.get_by_role("button", name="Answer").click(timeout=15000)
    screen = prospect.locator(".screen")
    expect(screen).to_contain_text("Are you looking for kitchen remodel", timeout=10000)
    say = prospect.get_by_placeholder("say an answer…")
    for answer, next_prompt in (
        ("yes", "What budget are you working with?"),
        ("about 20000 dollars", "started"),
        ("right away", "Who makes the decision"),
    ):
        say.fill(answer)
        say.press("Enter")
        expect(screen).to_contain_text(next_prompt, timeout=10000)
    prospect.get_by_role("button", name="key 1").click()
    expect(screen).to_contain_text("connect you with a specialist", timeout=10000)
    rep.get_by_role("button", name="Answer").click(timeout=15000)
    expect(rep.locator(".screen")).to_contain_text("Press 1 to take the call", timeout=10000)
    shot(page, tmp_path, "phone")
    rep.get_by_role("button", name="key 1").click()
    expect(rep.locator(".screen")).to_contain_text("[pressed 1]", timeout=10000)
    lead_id = page.url.split("lead=")[1].split("&")[0]
    page.goto(f"{stack.url}/console/leads/{lead_id}")
    expect(page.locator("#timeline")).to_contain_text("transfer_accepted", timeout=10000)
    expect(page.get_by_role("heading", name="Handoff")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Rita Reyes")


def test_report_chart_renders_with_data(browser, stack, tmp_path):
    from playwright.sync_api import expect

    lead_id = post_lead(stack, service="kitchen remodel", source="facebook")
    page = logged_in(browser, stack)
    page.goto(f"{stack.url}/console/leads/{lead_id}")
    for _ in range(80):  # the worker dials within a second (20 s on a loaded machine); the chart needs it
        if "dialing" in page.locator("#timeline").inner_text():
            break
        page.wait_for_timeout(250)
        page.reload()
    page.goto(stack.url + "/console/reports")
    label = re.compile("^Form to first dial: 1 leads")
    expect(page.locator("#chart-speed-0")).to_have_attribute("aria-label", label)
    drawn = page.evaluate(DRAWN, "chart-speed-0")
    assert sum(drawn["data"]) == 1 and drawn["marks"] == ["p50", "p90"]
    tall = [bar for bar in drawn["bars"] if bar["height"] > 0]
    assert len(tall) == 1 and tall[0]["height"] > 50
    assert tall[0]["pixel"] == [18, 60, 105, 255]  # painted in the series' colour, #123c69
    conversion = page.evaluate(DRAWN, "chart-source")
    assert conversion["labels"] == ["facebook"] and conversion["data"][0] == 100  # contacted: 1 of 1
    expect(page.locator("#table-source")).to_contain_text("facebook")
    shot(page, tmp_path, "reports")
    if os.environ.get("CONSOLE_SCREENSHOTS"):  # the README's pictures: a week of a busy call center
        demo_data(stack)
        page.reload()
        shot(page, tmp_path, "reports")
        page.goto(stack.url + "/console/")
        shot(page, tmp_path, "board", full=False)
    page.goto(stack.url + "/console/health")
    expect(page.locator("#workers")).not_to_have_text("0")
    shot(page, tmp_path, "health")


# What a Chart.js chart holds and has drawn: its first series, its bars and the colour at each bar's middle.
DRAWN = """(id) => {
  const canvas = document.getElementById(id), chart = Chart.getChart(canvas);
  const ctx = canvas.getContext("2d"), ratio = window.devicePixelRatio;
  const colour = b => Array.from(
    ctx.getImageData(Math.round(b.x * ratio), Math.round((b.y + b.base) / 2 * ratio), 1, 1).data);
  return {
    labels: chart.data.labels, data: chart.data.datasets[0].data,
    marks: (chart.options.plugins.percentiles?.marks || []).map(m => m.name),
    bars: chart.getDatasetMeta(0).data.map(b => ({height: b.height, pixel: colour(b)})),
  };
}"""


def demo_data(stack) -> None:  # noqa: ANN001
    """A week of seeded leads (the bench's generator), with the report cache emptied."""
    import redis

    from bench.console_seed import seed
    from bot.store import database as db

    engine = db.make_engine(stack.settings.db_url)
    seed(engine, 3000, 7)
    engine.dispose()
    conn = redis.Redis.from_url(stack.settings.redis_url)
    for key in conn.scan_iter("console:*"):
        conn.delete(key)


def test_rep_lead_page_acknowledges_the_handoff(browser, stack, tmp_path):
    from playwright.sync_api import expect

    from bot.runtime.services import build_services
    from tests.handoff.live import sms_handoff

    svc = build_services(stack.settings)
    try:
        lead_id = sms_handoff(svc, service="kitchen remodel", name="Maria Lopez")
    finally:
        svc.close()
    link = None
    deadline = time.monotonic() + 20  # a worker sends it within a second; a loaded machine is slower
    while link is None and time.monotonic() < deadline:
        msgs = requests.get(stack.url + "/simulator/state", timeout=5).json()["messages"]
        found = [m["body"] for m in msgs if m["to"] == REP]
        if found:
            link = re.search(r"(http://\S+/console/r/\S+)", found[0]).group(1)
        else:
            time.sleep(0.1)  # polling for the text, not waiting for time to pass
    assert link, "the handoff text never reached the rep"
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(link)
    expect(page.get_by_role("heading", name="Maria Lopez")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"Call \+15125550100"))).to_have_attribute(
        "href", "tel:+15125550100"
    )
    shot(page, tmp_path, "rep-page")
    page.get_by_role("button", name="I called them").click()
    expect(page.get_by_role("status")).to_contain_text("Marked as called")
    admin = logged_in(browser, stack)
    admin.goto(f"{stack.url}/console/leads/{lead_id}")
    expect(admin.locator("#timeline")).to_contain_text("handoff_acked")
    expect(admin.locator("#timeline")).to_contain_text("via=link")


def test_manager_is_refused_the_flow_editor(browser, stack):
    from playwright.sync_api import expect

    page = logged_in(browser, stack, "manager@example.com")
    expect(page.get_by_role("link", name="Flows")).to_have_count(0)
    resp = page.goto(stack.url + "/console/flows/prequal")
    assert resp.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
