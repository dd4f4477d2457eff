"""The read-only web dashboard, mounted under /dashboard on the process's HTTP server when PEERBOT_DASHBOARD=on.

An adapter like the chat ones: a request becomes a core call (`DashboardAccess` for who may see what,
`bot.documents.dashboard` for what there is to see), and the answer a page rendered by Jinja2 (autoescaped, in
the trainer's language, no JavaScript) or a file. Refusals are polite pages with a 401 or 403 status; no
exception reaches aiohttp.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader

from bot.clock import Clock
from bot.core.dashboard import SESSION_TTL, DashboardAccess, Refused, Viewer
from bot.documents import dashboard as pages
from bot.documents.learner import LearnerFile
from bot.documents.sheet import METHOD_WORDS, STATUS_WORDS
from bot.errors import PeerError
from bot.i18n import LOCALES, SESSION_STATES, _, label, supported, t
from bot.settings import Settings
from storage.db import Database

log = logging.getLogger("peerbot.dashboard")

HERE = Path(__file__).parent
COOKIE = "peerbot_dashboard"
PREFIX = "/dashboard"
ACCESS_KEY = web.AppKey("access", DashboardAccess)
VIEWER = web.RequestKey("viewer", Viewer)
LOCALE = web.RequestKey("locale", str)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the sign-in link's token never leaves in a Referer
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}
CSV_ZIP, XLSX, PDF, PACK = "csv.zip", "xlsx", "pdf", "audit-pack.zip"
TYPES = {
    CSV_ZIP: "application/zip",
    PACK: "application/zip",
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    PDF: "application/pdf",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def environment(locale: str, settings: Settings) -> Environment:
    """One Jinja2 environment per language: `_("…", name=value)` is `bot.i18n.t` in that language (Babel's jinja2
    extractor finds these calls), and the filters print numbers, dates and times the way that language does, in
    the organisation's time zone."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True)
    zone = settings.zone

    def local(moment: datetime) -> datetime:
        return moment.astimezone(zone)

    env.globals.update(
        _=lambda message, **values: t(locale, message, **values),
        locale=locale,
        zone=settings.timezone,
        organisation=settings.organisation,
    )
    env.filters.update(
        percent=lambda v: "—" if v is None else format_percent(v, locale=locale),
        score=lambda v: "—" if v is None else format_decimal(round(v, 1), format="0.0", locale=locale),
        date=lambda m: format_date(local(m).date(), format="medium", locale=locale),
        time=lambda m: "" if m is None else format_time(local(m), "HH:mm", locale=locale),
        datetime=lambda m: format_datetime(local(m), format="medium", locale=locale),
        status=lambda code: label(locale, STATUS_WORDS, code),
        method=lambda code: label(locale, METHOD_WORDS, code) if code else "",
        state=lambda code: label(locale, SESSION_STATES, code),
        ratio=lambda pair: "—" if not pair[1] else format_percent(pair[0] / pair[1], locale=locale),
    )
    return env


class Dashboard:
    """The routes; every page checks the session cookie, then that the viewer trains the cohort it shows."""

    def __init__(self, access: DashboardAccess, db: Database, settings: Settings, clock: Clock) -> None:
        self.access, self.db, self.settings, self.clock = access, db, settings, clock
        self.envs = {locale: environment(locale, settings) for locale in LOCALES}
        self.secure = settings.dashboard_base_url.startswith("https://")

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app[ACCESS_KEY] = self.access
        app.router.add_get("/login", self.confirm)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/", self.cohorts)
        app.router.add_get("/cohorts/{cohort:[0-9]{1,9}}", self.cohort)
        app.router.add_get("/cohorts/{cohort:[0-9]{1,9}}/trends.png", self.trends)
        app.router.add_get("/cohorts/{cohort:[0-9]{1,9}}/export/{fmt}", self.cohort_export)
        app.router.add_get("/cohorts/{cohort:[0-9]{1,9}}/learners/{learner}", self.learner)
        app.router.add_get("/cohorts/{cohort:[0-9]{1,9}}/learners/{learner}/{kind}.pdf", self.learner_pdf)
        app.router.add_get("/sessions/{short}", self.session)
        app.router.add_get("/sessions/{short}/chart.png", self.chart)
        app.router.add_get("/sessions/{short}/export/{fmt}", self.session_export)
        app.router.add_static("/static", HERE / "static")
        return app

    # ------------------------------------------------------------------ plumbing

    def _request_locale(self, request: web.Request) -> str:
        """Before anyone is signed in: the browser's language when peerbot speaks it, else PEERBOT_LOCALE."""
        for part in request.headers.get("Accept-Language", "").split(",")[:20]:
            code = supported(part.split(";")[0].strip()[:3].lower().rstrip("-_"))  # "fr-FR;q=0.9" → "fr"
            if code:
                return code
        return self.settings.locale

    def _locale(self, viewer: Viewer) -> str:
        return supported(viewer.locale) or self.settings.locale

    def page(self, locale: str, template: str, status: int = 200, **values: Any) -> web.Response:
        html = self.envs[locale].get_template(template).render(**values)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A refusal or an error becomes a page in the reader's language; nothing escapes to aiohttp."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            locale = self._request_locale(request)
            message = t(locale, "There is no such page.") if exc.status == 404 else exc.reason
            return self.page(locale, "message.html", exc.status, title=message, hint="")
        except Refused as exc:
            locale = request.get(LOCALE) or self._request_locale(request)
            log.info("dashboard refused %s %s: %s (%d)", request.method, request.path, exc.message, exc.status)
            return self.page(
                locale,
                "message.html",
                exc.status,
                title=exc.message_text.render(locale),
                hint=exc.hint_text.render(locale) if exc.hint_text else "",
                signed_in=VIEWER in request,
            )
        except PeerError as exc:
            locale = request.get(LOCALE) or self._request_locale(request)
            return self.page(
                locale,
                "message.html",
                404,
                title=exc.message_text.render(locale),
                hint=exc.hint_text.render(locale) if exc.hint_text else "",
                signed_in=VIEWER in request,
            )
        except Exception:
            log.exception("dashboard page %s failed", request.path)
            locale = self._request_locale(request)
            title = t(locale, "Something went wrong on our side; the error is logged.")
            return self.page(locale, "message.html", 500, title=title, hint="")

    async def viewer(self, request: web.Request) -> tuple[Viewer, str]:
        viewer = await self.access.viewer(request.cookies.get(COOKIE))
        request[VIEWER], request[LOCALE] = viewer, self._locale(viewer)
        return viewer, request[LOCALE]

    def file(self, data: bytes, name: str, content_type: str, *, inline: bool = False) -> web.Response:
        disposition = "inline" if inline else f'attachment; filename="{name}"'
        headers = {**HEADERS, "Content-Disposition": disposition}
        return web.Response(body=data, content_type=content_type, headers=headers)

    # ------------------------------------------------------------------ signing in and out

    async def confirm(self, request: web.Request) -> web.StreamResponse:
        """The link's page: a button that signs in (a preview bot fetching the link spends nothing)."""
        token = request.query.get("token", "")
        await self.access.peek(token)
        return self.page(self._request_locale(request), "signin.html", token=token)

    async def login(self, request: web.Request) -> web.StreamResponse:
        _refuse_cross_site(request)
        try:
            token = (await request.post()).get("token")
        except ValueError:  # a body that is not a form (undecodable bytes): the same as no token
            token = None
        viewer = await self.access.redeem(token if isinstance(token, str) else "")
        response = web.HTTPSeeOther(f"{PREFIX}/", headers=HEADERS)
        response.set_cookie(
            COOKIE,
            await self.access.cookie(viewer),
            max_age=int(SESSION_TTL.total_seconds()),
            path=PREFIX,
            httponly=True,
            samesite="Lax",  # sent on the redirect that follows a click in the chat app; never on a cross-site POST
            secure=self.secure,
        )
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        _refuse_cross_site(request)
        locale = self._request_locale(request)
        response = self.page(
            locale,
            "message.html",
            200,
            title=t(locale, "You are signed out."),
            hint=t(locale, "Type `/peer dashboard` to sign in again."),
        )
        response.del_cookie(COOKIE, path=PREFIX)
        return response

    # ------------------------------------------------------------------ pages

    async def cohorts(self, request: web.Request) -> web.StreamResponse:
        viewer, locale = await self.viewer(request)
        found = [(c, len(await pages.shorts_of(self.db, c.id or 0))) for c in await self.access.cohorts(viewer)]
        return self.page(locale, "cohorts.html", cohorts=found, signed_in=True)

    async def cohort(self, request: web.Request) -> web.StreamResponse:
        viewer, locale = await self.viewer(request)
        cohort = await self.access.cohort(viewer, int(request.match_info["cohort"]))
        data = await pages.cohort_page(self.db, self.settings, cohort)
        formats = [CSV_ZIP, XLSX, PDF, PACK]
        return self.page(locale, "cohort.html", page=data, formats=formats, signed_in=True)

    async def session(self, request: web.Request) -> web.StreamResponse:
        viewer, locale = await self.viewer(request)
        cohort, peer_session = await self.access.session(viewer, request.match_info["short"])
        data = await pages.session_page(self.db, self.settings, cohort, peer_session)
        return self.page(locale, "session.html", page=data, formats=[CSV_ZIP, XLSX, PDF], signed_in=True)

    async def learner(self, request: web.Request) -> web.StreamResponse:
        viewer, locale = await self.viewer(request)
        cohort = await self.access.cohort(viewer, int(request.match_info["cohort"]))
        file = await self._learner_file(cohort.id or 0, request.match_info["learner"])
        return self.page(locale, "learner.html", cohort=cohort, file=file, signed_in=True)

    async def _learner_file(self, cohort_id: int, learner_id: str) -> LearnerFile:
        file = await pages.learner_file(self.db, self.settings, cohort_id, learner_id)
        if file is None:
            raise web.HTTPNotFound()
        return file

    # ------------------------------------------------------------------ charts and files

    async def trends(self, request: web.Request) -> web.StreamResponse:
        viewer, locale = await self.viewer(request)
        cohort = await self.access.cohort(viewer, int(request.match_info["cohort"]))
        return self.file(await pages.trends_png(self.db, self.settings, cohort, locale), "", "image/png", inline=True)

    async def chart(self, request: web.Request) -> web.StreamResponse:
        viewer, locale = await self.viewer(request)
        _cohort, peer_session = await self.access.session(viewer, request.match_info["short"])
        png = await pages.session_chart_png(self.db, peer_session.short_id, locale)
        return self.file(png, "", "image/png", inline=True)

    async def cohort_export(self, request: web.Request) -> web.StreamResponse:
        viewer, locale = await self.viewer(request)
        cohort = await self.access.cohort(viewer, int(request.match_info["cohort"]))
        fmt = request.match_info["fmt"]
        shorts = await pages.shorts_of(self.db, cohort.id or 0)
        if fmt not in TYPES:
            raise web.HTTPNotFound()
        if not shorts:
            raise PeerError(pages.no_session(cohort.name))
        if fmt == PACK:
            data = await pages.pack(self.settings, cohort, shorts, self.clock.now(), locale)
        else:
            data = await self._export(shorts, fmt, locale)
        return self.file(data, f"{cohort.name}-{fmt if fmt == PACK else 'evidence.' + fmt}", TYPES[fmt])

    async def session_export(self, request: web.Request) -> web.StreamResponse:
        viewer, locale = await self.viewer(request)
        _cohort, peer_session = await self.access.session(viewer, request.match_info["short"])
        fmt = request.match_info["fmt"]
        if fmt not in TYPES or fmt == PACK:
            raise web.HTTPNotFound()
        data = await self._export([peer_session.short_id], fmt, locale)
        return self.file(data, f"{peer_session.short_id}-evidence.{fmt}", TYPES[fmt])

    async def _export(self, shorts: list[str], fmt: str, locale: str) -> bytes:
        if fmt == CSV_ZIP:
            return await pages.csv_zip(self.db, shorts)
        if fmt == XLSX:
            return await pages.workbook(self.db, self.settings, shorts, locale)
        return await pages.sheets(self.db, self.settings, shorts, locale)

    async def learner_pdf(self, request: web.Request) -> web.StreamResponse:
        viewer, locale = await self.viewer(request)
        cohort = await self.access.cohort(viewer, int(request.match_info["cohort"]))
        kind = request.match_info["kind"]
        if kind not in {"learner-file", "certificate"}:
            raise web.HTTPNotFound()
        file = await self._learner_file(cohort.id or 0, request.match_info["learner"])
        if kind == "learner-file":
            data = await pages.learner_pdf(file, locale)
        else:
            data = await pages.certificate(file, self.clock.now(), locale)
        return self.file(data, f"{kind}-{pages.safe_name(file.learner_id)}.pdf", TYPES[PDF])


def _refuse_cross_site(request: web.Request) -> None:
    """Sign-in and sign-out forms are posted from the dashboard's own pages only. Another site posting its own
    link's token from a victim's browser would sign the victim in as someone else (login CSRF); the session
    cookie's SameSite=Lax does not cover that, the request carries no cookie yet. Browsers say where a form
    came from: Sec-Fetch-Site, else Origin (compared with the Host the request was sent to)."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None:
        cross = site not in ("same-origin", "none")
    else:
        cross = origin is not None and origin != "null" and urlsplit(origin).netloc != request.host
    if cross:
        log.warning("dashboard refused a %s from another site (%s)", request.path, origin or site)
        raise Refused(
            403,
            _("This form can only be sent from the dashboard itself."),
            _("Open the link peerbot sent you (type `/peer dashboard` for a new one) and press the button there."),
        )


def mount(parent: web.Application, access: DashboardAccess, db: Database, settings: Settings, clock: Clock) -> None:
    """Serve the dashboard under /dashboard on `parent` (the HTTP server of /healthz)."""
    parent.router.add_get(PREFIX, _to_index)
    parent.add_subapp(PREFIX, Dashboard(access, db, settings, clock).application())


async def _to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(f"{PREFIX}/")
