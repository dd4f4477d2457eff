"""The web dashboard through aiohttp's test client: signing in with a DMed link, every page, every download read
back, and every refusal (reused, expired or forged link, missing, forged, altered or old cookie, another trainer's
cohort) answered with a polite page that names nothing of what it protects."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook
from PIL import Image

from bot.core.dashboard import DashboardAccess
from bot.demo import DemoResult
from bot.documents.verify import heads
from tests.dashboard_world import ORGANISATION, DashboardWorld, dashboard_world, seed_demo
from tests.integration.conftest import pdf_text


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return seed_demo(tmp_path_factory.mktemp("dashboard-demo"))


@pytest.fixture
async def world(demo: DemoResult, tmp_path: Path) -> AsyncIterator[DashboardWorld]:
    made = await dashboard_world(demo, tmp_path)
    yield made
    await made.close()


@pytest.fixture
async def client(world: DashboardWorld) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(world.http.web)) as test_client:
        yield test_client


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def open_link(client: TestClient[object, object], link: str) -> ClientResponse:
    """What a click on the link does: its page (a "Sign in" button), then the button (a POST of the token)."""
    page = await client.get(path_of(link), allow_redirects=False)
    if page.status != 200:
        return page
    assert 'method="post" action="/dashboard/login"' in await page.text()
    token = parse_qs(urlsplit(link).query)["token"][0]
    return await client.post("/dashboard/login", data={"token": token}, allow_redirects=False)


async def sign_in(client: TestClient[object, object], world: DashboardWorld, user: object = None) -> None:
    response = await open_link(client, await world.link(user))  # type: ignore[arg-type]
    assert response.status == 303 and response.headers["Location"] == "/dashboard/"


async def cohort_id(client: TestClient[object, object], name: str) -> str:
    """The id in the link of cohort `name` on the cohorts page."""
    page = await (await client.get("/dashboard/")).text()
    marker = f'">{name}</a>'
    assert marker in page, page
    return page.split(marker)[0].rsplit("/dashboard/cohorts/", 1)[1]


async def test_sign_in_sets_a_secure_session_cookie_and_the_link_is_single_use(
    world: DashboardWorld, client: TestClient[object, object]
) -> None:
    link = await world.link()
    assert link.startswith("http://127.0.0.1:3000/dashboard/login?token=")  # PEERBOT_PUBLIC_URL unset: host:port
    for _preview in range(3):  # a chat app fetching the link for a preview does not spend it
        page = await client.get(path_of(link), allow_redirects=False)
        assert page.status == 200 and "Set-Cookie" not in page.headers
    response = await open_link(client, link)
    assert response.status == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
    assert "Max-Age=28800" in cookie
    assert response.headers["Referrer-Policy"] == "no-referrer"
    again = await client.get(path_of(link), allow_redirects=False)
    assert again.status == 403
    assert "already been used" in await again.text()
    token = parse_qs(urlsplit(link).query)["token"][0]
    replay = await client.post("/dashboard/login", data={"token": token}, allow_redirects=False)
    assert replay.status == 403 and "Set-Cookie" not in replay.headers
    # The database keeps only the nonce's hash: the token appears nowhere in it.
    token = link.split("token=")[1]
    raw = (Path(world.app.settings.database_url.split("///")[1])).read_bytes()
    assert token.encode() not in raw and token.split(".")[0].encode() not in raw


async def test_a_sign_in_posted_from_another_site_is_refused_and_spends_nothing(
    world: DashboardWorld, client: TestClient[object, object]
) -> None:
    """Login CSRF: another site posting its own valid link's token from the victim's browser would sign the
    victim in as someone else. Browsers tell where a form comes from; the dashboard's own page passes
    (Sec-Fetch-Site same-origin, or Origin null as our no-referrer policy makes browsers send)."""
    token = parse_qs(urlsplit(await world.link()).query)["token"][0]
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        response = await client.post("/dashboard/login", data={"token": token}, headers=headers, allow_redirects=False)
        assert response.status == 403 and "Set-Cookie" not in response.headers
        assert "only be sent from the dashboard itself" in await response.text()
    signed = await client.post(
        "/dashboard/login",
        data={"token": token},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"},
        allow_redirects=False,
    )
    assert signed.status == 303 and "Set-Cookie" in signed.headers  # the refused posts did not spend the link
    logout = await client.post("/dashboard/logout", headers={"Origin": "https://evil.example"})
    assert logout.status == 403
    assert (await client.get("/dashboard/")).status == 200  # still signed in


async def test_every_page_shows_the_databases_figures(
    world: DashboardWorld, client: TestClient[object, object]
) -> None:
    await sign_in(client, world)
    home = await client.get("/dashboard/")
    assert home.status == 200
    text = await home.text()
    assert '<html lang="en">' in text and "python" in text and "other" not in text.split("<main")[1]
    python = await cohort_id(client, "python")

    cohort = await (await client.get(f"/dashboard/cohorts/{python}")).text()
    short = world.demo.session
    attendance = list(csv.DictReader((world.demo.out_dir / "attendance.csv").open(encoding="utf-8")))
    present = sum(r["status"] in {"on_time", "late"} for r in attendance)
    assert "Testing with pytest" in cohort and f"({present}/{len(attendance)})" in cohort
    assert f"{round(100 * present / len(attendance))}%" in cohort
    for row in attendance:
        assert row["learner"] in cohort
    assert f"/dashboard/cohorts/{python}/trends.png" in cohort
    assert '<th scope="col">' in cohort and "<caption>" in cohort

    session = await (await client.get(f"/dashboard/sessions/{short}")).text()
    assert "Attendance list" in session and "Medical appointment" in session  # the excused learner's reason
    [head] = (await heads(world.app.db, [short])).values()
    assert head and head in session and "The chain is intact." in session
    feedback = list(csv.DictReader((world.demo.out_dir / "feedback.csv").open(encoding="utf-8")))
    answered = sum(r["answered"] == "yes" for r in feedback)
    delivered = sum(r["delivery"] == "sent" for r in feedback)
    assert f"({answered} of {delivered} delivered questionnaires answered)" in session
    retention = list(csv.DictReader((world.demo.out_dir / "retention.csv").open(encoding="utf-8")))
    for row in retention:
        if row["answered"] == "yes":
            assert f"{row['score']}/{row['max_score']}" in session

    learner = next(r for r in attendance if r["status"] == "late")
    page = await client.get(f"/dashboard/cohorts/{python}/learners/{learner['learner_id']}")
    assert page.status == 200
    body = await page.text()
    assert f"Learner file — {learner['learner']}" in body and "Testing with pytest" in body

    for png in (f"/dashboard/cohorts/{python}/trends.png", f"/dashboard/sessions/{short}/chart.png"):
        response = await client.get(png)
        assert response.status == 200 and response.content_type == "image/png"
        image = Image.open(io.BytesIO(await response.read())).convert("L")
        assert image.size[0] >= 800 and image.getextrema()[0] < 100  # drawn, not blank


async def test_every_download_is_the_export_of_the_cli(
    world: DashboardWorld, client: TestClient[object, object]
) -> None:
    await sign_in(client, world)
    python = await cohort_id(client, "python")
    short = world.demo.session

    async def download(path: str) -> tuple[bytes, str]:
        response = await client.get(path)
        assert response.status == 200, await response.text()
        return await response.read(), response.headers["Content-Disposition"]

    data, disposition = await download(f"/dashboard/cohorts/{python}/export/csv.zip")
    assert disposition == 'attachment; filename="python-evidence.csv.zip"'
    archive = zipfile.ZipFile(io.BytesIO(data))
    for name in ("attendance.csv", "feedback.csv", "retention.csv"):
        assert archive.read(name) == (world.demo.out_dir / name).read_bytes()
    data, _ = await download(f"/dashboard/cohorts/{python}/export/xlsx")
    assert load_workbook(io.BytesIO(data)).sheetnames == [f"{short} attendance", "feedback", "retention"]
    data, _ = await download(f"/dashboard/sessions/{short}/export/pdf")
    assert "Attendance sheet" in pdf_text(data) and ORGANISATION in pdf_text(data)
    data, _ = await download(f"/dashboard/sessions/{short}/export/csv.zip")
    assert (
        zipfile.ZipFile(io.BytesIO(data)).read("attendance.csv") == (world.demo.out_dir / "attendance.csv").read_bytes()
    )
    data, disposition = await download(f"/dashboard/cohorts/{python}/export/audit-pack.zip")
    assert "python-audit-pack.zip" in disposition
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert {"index.html", "index.pdf", "evidence.xlsx", f"sessions/{short}/chart.png"} <= names
    data, _ = await download(f"/dashboard/cohorts/{python}/learners/L1/learner-file.pdf")
    assert "Learner file — Alice" in pdf_text(data)
    data, _ = await download(f"/dashboard/cohorts/{python}/learners/L1/certificate.pdf")
    assert "Certificate of attendance" in pdf_text(data)
    assert (await client.get(f"/dashboard/cohorts/{python}/export/docx")).status == 404
    assert (await client.get(f"/dashboard/sessions/{short}/export/audit-pack.zip")).status == 404
    assert (await client.get(f"/dashboard/cohorts/{python}/learners/NOBODY")).status == 404


async def test_another_trainers_cohort_is_refused_without_naming_it(
    world: DashboardWorld, client: TestClient[object, object]
) -> None:
    other_client = TestClient(TestServer(world.http.web))
    async with other_client:
        await sign_in(other_client, world, world.other)
        theirs = await cohort_id(other_client, "other")
    await sign_in(client, world)
    python = await cohort_id(client, "python")
    refusals = [
        f"/dashboard/cohorts/{theirs}",
        f"/dashboard/cohorts/{theirs}/trends.png",
        f"/dashboard/cohorts/{theirs}/export/csv.zip",
        f"/dashboard/cohorts/{theirs}/export/audit-pack.zip",
        f"/dashboard/cohorts/{theirs}/learners/L20",
        f"/dashboard/sessions/{world.other_session}",
        f"/dashboard/sessions/{world.other_session}/chart.png",
        f"/dashboard/sessions/{world.other_session}/export/xlsx",
    ]
    bodies = set()
    for path in refusals:
        response = await client.get(path)
        assert response.status == 403, path
        body = await response.text()
        assert "Secret plans" not in body and ">other<" not in body and "L20" not in body
        bodies.add(body)
    missing = await client.get("/dashboard/cohorts/999999")
    assert missing.status == 403 and bodies == {await missing.text()}  # as if it did not exist
    assert (await client.get("/dashboard/sessions/nosuch")).status == 403
    assert (await client.get(f"/dashboard/cohorts/{python}")).status == 200
    # An admin of the workspace sees both.
    async with TestClient(TestServer(world.http.web)) as admin_client:
        await sign_in(admin_client, world, world.admin)
        assert await cohort_id(admin_client, "other") == theirs
        assert (await admin_client.get(f"/dashboard/cohorts/{python}")).status == 200


async def test_expired_forged_links_and_bad_cookies_are_refused(
    world: DashboardWorld, client: TestClient[object, object]
) -> None:
    link = await world.link()
    world.clock.advance(timedelta(minutes=15, seconds=1))
    expired = await client.get(path_of(link), allow_redirects=False)
    assert expired.status == 401 and "expired" in await expired.text()
    token = parse_qs(urlsplit(link).query)["token"][0]
    posted = await client.post("/dashboard/login", data={"token": token}, allow_redirects=False)
    assert posted.status == 401 and "Set-Cookie" not in posted.headers

    fresh = path_of(await world.link())
    forged = fresh[:-3] + ("AAA" if not fresh.endswith("AAA") else "BBB")
    for bad in (forged, "/dashboard/login?token=", "/dashboard/login", "/dashboard/login?token=x.y"):
        response = await client.get(bad, allow_redirects=False)
        assert response.status == 401 and "not valid" in await response.text(), bad
        token = bad.partition("token=")[2]
        posted = await client.post("/dashboard/login", data={"token": token}, allow_redirects=False)
        assert posted.status == 401 and "Set-Cookie" not in posted.headers

    nobody = await client.get("/dashboard/")
    assert nobody.status == 401 and "sign in" in (await nobody.text()).lower()

    await sign_in(client, world)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/dashboard/"))["peerbot_dashboard"].value
    client.session.cookie_jar.clear()  # from here on, the cookie sent is the one in the header only
    payload, signature = cookie.rsplit(".", 1)
    for altered in (payload + "." + signature[::-1], "e30." + signature, cookie + "x"):
        response = await client.get("/dashboard/", headers={"Cookie": f"peerbot_dashboard={altered}"})
        assert response.status == 401 and "not valid" in await response.text()
    # A cookie signed with another key (another deployment) is refused too.
    other = DashboardAccess(world.app.core.ctx)
    other._key = "k" * 64
    viewer = await world.app.core.dashboard.viewer(cookie)
    foreign = await other.cookie(viewer)
    response = await client.get("/dashboard/", headers={"Cookie": f"peerbot_dashboard={foreign}"})
    assert response.status == 401
    mine = {"Cookie": f"peerbot_dashboard={cookie}"}
    assert (await client.get("/dashboard/", headers=mine)).status == 200
    world.clock.advance(timedelta(hours=8))
    ended = await client.get("/dashboard/", headers=mine)
    assert ended.status == 401 and "8 hours" in await ended.text()


async def test_the_command_is_for_trainers_and_says_when_the_dashboard_is_off(
    world: DashboardWorld, demo: DemoResult, tmp_path: Path
) -> None:
    refused = await world.learner.command("dashboard")
    assert not refused.ok and "Only trainers" in refused.text
    assert not world.platform.dms_to("L1") or "dashboard" not in world.platform.dms_to("L1")[-1].message.text
    reply = await world.trainer.command("dashboard")
    assert reply.ok and "by DM" in reply.text
    extra = await world.trainer.command("dashboard now")
    assert not extra.ok and "Usage: `/peer dashboard`" in extra.text
    off = await dashboard_world(demo, tmp_path / "off", PEERBOT_DASHBOARD="off")
    try:
        answer = await off.trainer.command("dashboard")
        assert not answer.ok and "PEERBOT_DASHBOARD=on" in answer.text
        assert "/dashboard/" not in {r.canonical for r in off.http.web.router.resources()}
    finally:
        await off.close()


async def test_french_pages_and_the_public_url(demo: DemoResult, tmp_path: Path) -> None:
    world = await dashboard_world(demo, tmp_path, PEERBOT_LOCALE="fr", PEERBOT_PUBLIC_URL="https://bot.example.org/")
    try:
        link = await world.link()
        assert link.startswith("https://bot.example.org/dashboard/login?token=")
        assert "Votre tableau de bord" in world.platform.dms_to("T1")[-1].message.text
        async with TestClient(TestServer(world.http.web)) as client:
            page = await client.get(path_of(link), headers={"Accept-Language": "fr-FR,fr;q=0.9"})
            assert "Se connecter au tableau de bord" in await page.text()
            response = await open_link(client, link)
            assert "Secure" in response.headers["Set-Cookie"]  # an https public URL: the cookie never goes in clear
            cookie = response.cookies["peerbot_dashboard"].value
            home = await client.get("/dashboard/", headers={"Cookie": f"peerbot_dashboard={cookie}"})
            text = await home.text()
            assert '<html lang="fr">' in text and "Vos cohortes" in text
            refused = await client.get("/dashboard/cohorts/999999", headers={"Cookie": f"peerbot_dashboard={cookie}"})
            assert refused.status == 403 and "autre cohorte" in await refused.text()
    finally:
        await world.close()


async def test_replicas_share_the_key_and_refuse_a_link_another_one_accepted(
    world: DashboardWorld, client: TestClient[object, object], tmp_path: Path
) -> None:
    """Two processes on one database (PEERBOT_SECRET_KEY unset): a link spent on one is refused by the other, and
    the cookie one signs is accepted by the other."""
    from bot.app import build

    second = await build(world.app.settings, {"local": world.platform}, clock=world.clock, with_scheduler=False)
    try:
        link = await world.link()
        token = link.split("token=")[1]
        viewer = await second.core.dashboard.redeem(token)
        assert viewer.user_id == "T1"
        response = await client.get(path_of(link), allow_redirects=False)
        assert response.status == 403
        cookie = await second.core.dashboard.cookie(viewer)
        home = await client.get("/dashboard/", headers={"Cookie": f"peerbot_dashboard={cookie}"})
        assert home.status == 200
    finally:
        await second.close()


async def test_a_planned_session_and_a_cohort_without_sessions_read_politely(
    world: DashboardWorld, client: TestClient[object, object]
) -> None:
    """Nothing recorded yet: the pages still answer (rates shown as "—"), files are made from what exists, and a
    cohort with no session says so instead of offering empty files."""
    assert (await world.other.command("cohort create empty")).ok
    await sign_in(client, world, world.other)
    theirs, empty = await cohort_id(client, "other"), await cohort_id(client, "empty")
    cohort = await client.get(f"/dashboard/cohorts/{theirs}")
    assert cohort.status == 200 and "Secret plans of T2" in await cohort.text()
    session = await client.get(f"/dashboard/sessions/{world.other_session}")
    text = await session.text()
    assert session.status == 200 and "not yet" in text and "—" in text
    sheet = await client.get(f"/dashboard/sessions/{world.other_session}/export/pdf")
    assert sheet.status == 200 and "Secret plans of T2" in pdf_text(await sheet.read())
    chart = await client.get(f"/dashboard/sessions/{world.other_session}/chart.png")
    assert chart.status == 200 and Image.open(io.BytesIO(await chart.read())).size[0] >= 800
    page = await client.get(f"/dashboard/cohorts/{empty}")
    body = await page.text()
    assert page.status == 200 and "No session planned yet." in body and "/export/" not in body
    refused = await client.get(f"/dashboard/cohorts/{empty}/export/audit-pack.zip")
    assert refused.status == 404 and "has no session yet" in await refused.text()
    # Taken off the cohort's trainers: the next page is refused, although the cookie is still valid.
    assert (await world.other.command("cohort trainers add other <@T3>")).ok
    assert (await world.user_in("T3").command("cohort trainers remove other <@T2>")).ok
    assert (await client.get(f"/dashboard/cohorts/{theirs}")).status == 403


NASTY = [
    "/dashboard/login?token=" + "A" * 5000,
    "/dashboard/login?token=%00%ff",
    "/dashboard/login?token=eyJuIjpudWxsfQ.x",
    "/dashboard/cohorts/0",
    "/dashboard/cohorts/123456789",
    "/dashboard/cohorts/1/learners/%00",
    "/dashboard/cohorts/1/learners/..%2F..%2Fetc",
    "/dashboard/cohorts/1/learners/L1/passwd.pdf",
    "/dashboard/sessions/%E2%80%AE",
    "/dashboard/sessions/" + "s" * 300 + "/chart.png",
    "/dashboard/static/../../bot/settings.py",
    "/dashboard/nope",
    "/dashboard",
]


async def test_odd_requests_get_polite_pages_never_a_500(
    world: DashboardWorld, client: TestClient[object, object]
) -> None:
    headers = [
        {},
        {"Cookie": "peerbot_dashboard=" + "x" * 3000, "Accept-Language": "*;q=0.1, zz, -"},
        {"Cookie": 'peerbot_dashboard="\\""', "Accept-Language": "fr-CA"},
    ]
    for extra in headers:
        for path in NASTY:
            response = await client.get(path, headers=extra, allow_redirects=False)
            assert response.status in {301, 308, 401, 403, 404}, (path, extra, response.status)
            if response.status >= 400 and response.url.path.startswith("/dashboard/"):  # not `..` resolved away
                assert "<h1>" in await response.text()
    await sign_in(client, world)
    for path in NASTY:
        response = await client.get(path, allow_redirects=False)
        assert response.status in {301, 308, 401, 403, 404}, (path, response.status)
    odd = await client.post(
        "/dashboard/login", data=b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert odd.status == 401
    wrong_method = await client.post("/dashboard/")
    assert wrong_method.status == 405 and "<h1>" in await wrong_method.text()
