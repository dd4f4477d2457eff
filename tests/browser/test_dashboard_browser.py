"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright, JavaScript off): a trainer
signs in through the link `/peer dashboard` DMed on the local platform, opens every page, downloads an export and
reads it, moves with the keyboard; a reused or expired link, another trainer's cohort and a forged cookie are
refused. Screenshots of the main pages go to tests/browser/screenshots/ (git-ignored).

Skipped when Chromium or Playwright is missing, except in CI (CI=true), where it fails instead.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.demo import DemoResult
from bot.documents.verify import heads
from tests.dashboard_world import DashboardWorld, dashboard_world, seed_demo

CHROMIUM = os.environ.get("PEERBOT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"


def _need_browser() -> None:
    missing = []
    if shutil.which(CHROMIUM) is None:
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("the browser test must run in CI; missing: " + ", ".join(missing))
        pytest.skip("missing: " + ", ".join(missing))


# The lowest WCAG contrast ratio between a text element's colour and the background it sits on (page scripts are
# off; Playwright's evaluate runs in its own world).
LOWEST_CONTRAST = """() => {
  const rgb = (c) => (c.match(/[0-9.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  let lowest = 21, where = "";
  for (const el of document.querySelectorAll("h1,h2,p,a,th,td,caption,dt,dd,li,button,figcaption,code,span")) {
    if (!el.textContent.trim() || !el.getClientRects().length) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < lowest) { lowest = ratio; where = el.tagName + ": " + el.textContent.trim().slice(0, 40); }
  }
  return [lowest, where];
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    _need_browser()
    return seed_demo(tmp_path_factory.mktemp("browser-demo"))


@pytest.fixture
async def served(demo: DemoResult, tmp_path: Path) -> AsyncIterator[DashboardWorld]:
    """The dashboard on a real port; the DMed links point at it (PEERBOT_PUBLIC_URL unset)."""
    world = await dashboard_world(demo, tmp_path, PEERBOT_HTTP_PORT=str(free_port()))
    await world.http.start()
    yield world
    await world.close()


async def test_a_trainer_reads_the_dashboard_in_chromium(served: DashboardWorld, demo: DemoResult) -> None:
    from playwright.async_api import async_playwright, expect

    SCREENSHOTS.mkdir(exist_ok=True)
    world = served
    base = f"http://127.0.0.1:{world.http.port}"
    link = await world.link()
    assert link.startswith(f"{base}/dashboard/login?token=")
    attendance = list(csv.DictReader((demo.out_dir / "attendance.csv").open(encoding="utf-8")))

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = await browser.new_context(java_script_enabled=False, accept_downloads=True, locale="en-GB")
            page = await context.new_page()

            # Sign in: the link lands on the cohorts page with a session cookie the page's scripts cannot read.
            await page.goto(link)
            await expect(page.locator("h1")).to_have_text("Sign in to the dashboard")
            await page.screenshot(path=str(SCREENSHOTS / "sign-in.png"), full_page=True)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(f"{base}/dashboard/")
            await expect(page.locator("h1")).to_have_text("Your cohorts")
            [cookie] = await context.cookies()
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/dashboard"
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            await page.screenshot(path=str(SCREENSHOTS / "cohorts.png"), full_page=True)
            assert await page.get_by_role("link", name="other").count() == 0  # T2's cohort is not listed

            # Keyboard: the first Tab reaches the skip link, the next ones the navigation and the cohort's link.
            await page.keyboard.press("Tab")
            await expect(page.locator(":focus")).to_have_text("Skip to the content")
            ring = await page.locator(":focus").evaluate(
                "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]"
            )
            assert ring[0] != "none" and float(ring[1].removesuffix("px")) >= 2  # a focus ring one can see
            await page.keyboard.press("Tab")
            await expect(page.locator(":focus")).to_have_text("Your cohorts")

            # The cohort: sessions with their rates, the trend chart, the learners, the downloads.
            await page.get_by_role("link", name="python").click()
            await expect(page.locator("h1")).to_have_text("Cohort python")
            present = sum(r["status"] in {"on_time", "late"} for r in attendance)
            await expect(page.get_by_role("table").first).to_contain_text(f"({present}/{len(attendance)})")
            trends = page.get_by_role("img", name="Chart: attendance, retention and satisfaction", exact=False)
            src = await trends.get_attribute("src")
            chart = await context.request.get(f"{base}{src}")
            assert chart.ok and chart.headers["content-type"] == "image/png" and len(await chart.body()) > 10_000
            assert await page.locator("img:not([alt])").count() == 0
            assert await page.locator("th:not([scope])").count() == 0
            lowest, where = await page.evaluate(LOWEST_CONTRAST)
            assert lowest >= 4.5, (lowest, where)  # WCAG AA for body text
            await page.wait_for_load_state("load")
            await page.screenshot(path=str(SCREENSHOTS / "cohort.png"), full_page=True)

            async with page.expect_download() as waiting:
                await page.get_by_role("link", name="CSV files (attendance, feedback, retention) in a ZIP").click()
            download = await waiting.value
            assert download.suggested_filename == "python-evidence.csv.zip"
            archive = zipfile.ZipFile(io.BytesIO(Path(await download.path()).read_bytes()))
            rows = list(csv.DictReader(io.StringIO(archive.read("attendance.csv").decode())))
            assert rows == attendance
            cohort_url = page.url

            # The session: the attendance list, the questionnaire chart, retention scores, the chain head.
            await page.get_by_role("link", name="Testing with pytest").click()
            await expect(page.locator("h1")).to_contain_text("Testing with pytest")
            listing = page.get_by_role("table", name="Attendance list")
            assert await listing.locator("tbody tr").count() == len(attendance)
            late = next(r for r in attendance if r["status"] == "late")
            await expect(listing.locator("tr", has_text=late["learner"])).to_contain_text("late")
            [head] = (await heads(world.app.db, [demo.session])).values()
            await expect(page.locator("code")).to_have_text(head)
            await expect(page.get_by_text("The chain is intact.")).to_be_visible()
            chart = await context.request.get(f"{base}/dashboard/sessions/{demo.session}/chart.png")
            assert chart.ok and chart.headers["content-type"] == "image/png"
            lowest, where = await page.evaluate(LOWEST_CONTRAST)
            assert lowest >= 4.5, (lowest, where)
            await page.wait_for_load_state("load")  # the chart drawn before the picture is taken
            await page.screenshot(path=str(SCREENSHOTS / "session.png"), full_page=True)

            # A learner's file, from the session's list.
            await listing.get_by_role("link", name=late["learner"]).click()
            await expect(page.locator("h1")).to_have_text(f"Learner file — {late['learner']}")
            await page.screenshot(path=str(SCREENSHOTS / "learner.png"), full_page=True)

            # Another trainer's cohort and session: refused, named nowhere.
            async with world.app.db.transaction() as tx:
                from sqlmodel import select

                from storage.models import Cohort

                theirs = (await tx.exec(select(Cohort.id).where(Cohort.name == "other"))).one()
            for path in (f"/dashboard/cohorts/{theirs}", f"/dashboard/sessions/{world.other_session}"):
                response = await page.goto(f"{base}{path}")
                assert response is not None and response.status == 403
                assert "Secret plans" not in await page.content()
            await page.screenshot(path=str(SCREENSHOTS / "refused-other-cohort.png"), full_page=True)
            assert (await page.goto(cohort_url)) is not None  # still signed in for our own

            # The same link again, in a fresh browser: refused.
            fresh = await browser.new_context(java_script_enabled=False)
            other_page = await fresh.new_page()
            response = await other_page.goto(link)
            assert response is not None and response.status == 403
            await expect(other_page.locator("h1")).to_have_text("This sign-in link has already been used.")
            assert await fresh.cookies() == []

            # A forged cookie: refused.
            forged = {
                **cookie,
                "value": cookie["value"][:-4] + ("AAAA" if not cookie["value"].endswith("AAAA") else "BBBB"),
            }
            await fresh.add_cookies([forged])  # type: ignore[list-item]
            response = await other_page.goto(f"{base}/dashboard/")
            assert response is not None and response.status == 401
            await expect(other_page.locator("h1")).to_have_text("Your dashboard session is not valid.")

            # An expired link: refused.
            late_link = await world.link()
            world.clock.advance(timedelta(minutes=16))
            response = await other_page.goto(late_link)
            assert response is not None and response.status == 401
            await expect(other_page.locator("h1")).to_contain_text("expired")
            await other_page.screenshot(path=str(SCREENSHOTS / "refused-expired-link.png"), full_page=True)
            await fresh.close()

            # Signing out clears the cookie.
            await page.goto(cohort_url)
            await page.get_by_role("button", name="Sign out").click()
            await expect(page.locator("h1")).to_have_text("You are signed out.")
            assert await context.cookies() == []
            await context.close()
        finally:
            await browser.close()
