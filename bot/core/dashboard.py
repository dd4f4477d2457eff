"""Who may read the web dashboard: `/peer dashboard` DMs a trainer a signed, single-use sign-in link valid
15 minutes; opening it shows a "Sign in" button (a chat app's link preview fetches the page without spending the
link), and pressing it gives a signed session cookie valid 8 hours. No password is ever stored.

The link carries a random nonce signed with the dashboard key; the database keeps only the nonce's SHA-256, and
one conditional UPDATE marks it used, so a replayed link is refused on every replica. The cookie carries who the
trainer is (platform, workspace, id, admin or not, language) and when it ends, signed with the same key; every page
then checks per cohort, with the bot's own rule (`queries.require_trainer`), that this person trains it.

The key is PEERBOT_SECRET_KEY, or else one generated once and kept in the database (`app_secret`), so replicas
share it and links and cookies survive a restart. Signing is itsdangerous' HMAC-SHA1 over a SHA-512-derived key
(the Pallets library behind Flask's sessions), not hand-written.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import grammar
from bot.core import queries
from bot.core.context import Context, log
from bot.errors import Forbidden, Invalid, PeerError
from bot.i18n import Text, _, supported, t
from bot.inbound import Actor
from bot.messages import Message, Reply
from bot.port import PlatformError
from bot.refs import ChannelRef, UserRef
from storage.models import AppSecret, Cohort, DashboardLink, PeerSession, Workspace

LINK_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=8)
LINK_SALT = "peerbot.dashboard.link"
SESSION_SALT = "peerbot.dashboard.session"
SECRET_NAME = "dashboard"
LOGIN_PATH = "/dashboard/login"


class Refused(PeerError):
    """A dashboard request refused: `status` is the HTTP status the page answers with (401: sign in again; 403:
    not yours, or a link already used)."""

    def __init__(self, status: int, message: Text, hint: Text | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


def _sign_in_again() -> Text:
    return _("Type `/peer dashboard` in Slack or Discord to get a new link.")


def _not_yours() -> Refused:
    return Refused(
        403,
        _("This page is for the trainers of another cohort, or it does not exist."),
        _("Go back to your cohorts."),
    )


@dataclass(frozen=True)
class Viewer:
    """The signed-in trainer, as the session cookie says."""

    platform: str
    workspace: str
    user_id: str
    is_admin: bool
    locale: str
    expires_at: datetime

    @property
    def actor(self) -> Actor:
        """The same identity the chat adapters build, so the bot's own per-cohort check applies unchanged."""
        return Actor(
            UserRef(self.platform, self.user_id), "", True, self.workspace, locale=self.locale, is_admin=self.is_admin
        )


def nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class DashboardAccess:
    """The `/peer dashboard` command, sign-in links, session cookies and the per-cohort check."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._key: str | None = None

    # ------------------------------------------------------------------ the signing key

    async def key(self) -> str:
        """PEERBOT_SECRET_KEY, else the database's generated key (created by the first replica that needs it)."""
        if self._key is not None:
            return self._key
        configured = self.ctx.settings.secret_key
        if configured is not None:
            self._key = configured.get_secret_value()
            return self._key
        for _attempt in range(2):
            try:
                async with self.ctx.db.transaction() as tx:
                    row = await tx.get(AppSecret, SECRET_NAME)
                    if row is None:
                        row = AppSecret(name=SECRET_NAME, value=secrets.token_hex(32), created_at=self.ctx.clock.now())
                        tx.add(row)
                    self._key = row.value
                return self._key
            except IntegrityError:  # another replica created it at the same moment: read theirs
                continue
        raise RuntimeError("could not create or read the dashboard key")

    async def _serializer(self, salt: str) -> URLSafeSerializer:
        return URLSafeSerializer(await self.key(), salt=salt)

    # ------------------------------------------------------------------ /peer dashboard

    async def command(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        """DM a new sign-in link (the command is for trainers: `Core._authorize` checked it)."""
        locale = self.ctx.reply_locale(actor)
        if not self.ctx.settings.dashboard_on:
            raise Invalid(
                _("The web dashboard is not switched on for this bot."),
                _("Ask the person who runs peerbot to set PEERBOT_DASHBOARD=on."),
            )
        link = await self.issue(actor)
        text = t(
            locale,
            "Your peerbot dashboard: {link}\nThe link works once, within 15 minutes; then you stay signed in for "
            "8 hours in that browser. Do not share it.",
            link=link,
        )
        try:
            await self.ctx.platform(actor.user.platform).send_dm(actor.user, Message(text))
        except PlatformError as exc:  # closed DMs: the link goes in the private reply instead
            log.info("dashboard link not DMed to %s: %s", actor.user.key, exc)
            return Reply(text)
        return Reply(t(locale, "I have sent you a sign-in link to the dashboard by DM (valid 15 minutes, once)."))

    async def issue(self, actor: Actor) -> str:
        """A new single-use link for `actor`; only the nonce's hash is stored."""
        nonce = secrets.token_urlsafe(32)
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as tx:
            tx.add(
                DashboardLink(
                    nonce_hash=nonce_hash(nonce),
                    platform=actor.user.platform,
                    workspace=actor.workspace,
                    user_id=actor.user.id,
                    is_admin=actor.is_admin,
                    locale=supported(actor.locale),
                    created_at=now,
                    expires_at=now + LINK_TTL,
                )
            )
            self.ctx.audit(tx, actor.user.key, "dashboard.link", None)
        token = (await self._serializer(LINK_SALT)).dumps({"n": nonce})
        return f"{self.ctx.settings.dashboard_base_url}{LOGIN_PATH}?token={token}"

    # ------------------------------------------------------------------ signing in

    async def _digest(self, token: str) -> str:
        """The stored hash of the link's nonce, once its signature is checked."""
        try:
            payload = (await self._serializer(LINK_SALT)).loads(token)
            nonce = str(payload["n"])
        except (BadData, KeyError, TypeError):
            raise Refused(401, _("This sign-in link is not valid."), _sign_in_again()) from None
        return nonce_hash(nonce)

    async def peek(self, token: str) -> None:
        """Check a link without spending it: opening it shows a "Sign in" button, so a chat app that fetches the
        link for a preview (Discord's embeds, Slack's unfurls) does not use it up."""
        digest = await self._digest(token)
        async with self.ctx.db.transaction() as tx:
            row = (await tx.exec(select(DashboardLink).where(DashboardLink.nonce_hash == digest))).first()
        if row is None:
            raise Refused(401, _("This sign-in link is not valid."), _sign_in_again())
        if row.used_at is not None:
            raise Refused(403, _("This sign-in link has already been used."), _sign_in_again())
        if row.expires_at <= self.ctx.clock.now():
            raise Refused(401, _("This sign-in link has expired (links last 15 minutes)."), _sign_in_again())

    async def redeem(self, token: str) -> Viewer:
        """Spend a link: refused when forged, unknown, expired or already used (by anyone, on any replica)."""
        digest = await self._digest(token)
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as tx:
            spent = await tx.exec(  # type: ignore[call-overload]
                update(DashboardLink)
                .where(
                    col(DashboardLink.nonce_hash) == digest,
                    col(DashboardLink.used_at).is_(None),
                    col(DashboardLink.expires_at) > now,
                )
                .values(used_at=now)
            )
            row = (await tx.exec(select(DashboardLink).where(DashboardLink.nonce_hash == digest))).first()
            if spent.rowcount == 1 and row is not None:
                self.ctx.audit(tx, f"{row.platform}:{row.user_id}", "dashboard.sign-in", None)
        if row is None:
            raise Refused(401, _("This sign-in link is not valid."), _sign_in_again())
        if spent.rowcount != 1:
            if row.used_at is not None:
                raise Refused(403, _("This sign-in link has already been used."), _sign_in_again())
            raise Refused(401, _("This sign-in link has expired (links last 15 minutes)."), _sign_in_again())
        return Viewer(row.platform, row.workspace, row.user_id, row.is_admin, row.locale, now + SESSION_TTL)

    async def cookie(self, viewer: Viewer) -> str:
        payload = {
            "p": viewer.platform,
            "w": viewer.workspace,
            "u": viewer.user_id,
            "a": viewer.is_admin,
            "l": viewer.locale,
            "e": int(viewer.expires_at.timestamp()),
        }
        return (await self._serializer(SESSION_SALT)).dumps(payload)

    async def viewer(self, cookie: str | None) -> Viewer:
        """Who the session cookie names; refused when missing, forged, altered or past its 8 hours."""
        if not cookie:
            raise Refused(401, _("Please sign in to the dashboard first."), _sign_in_again())
        try:
            data: dict[str, Any] = (await self._serializer(SESSION_SALT)).loads(cookie)
            viewer = Viewer(
                str(data["p"]),
                str(data["w"]),
                str(data["u"]),
                bool(data["a"]),
                str(data["l"]),
                datetime.fromtimestamp(int(data["e"]), UTC),
            )
        except (BadData, KeyError, TypeError, ValueError, OverflowError):
            raise Refused(401, _("Your dashboard session is not valid."), _sign_in_again()) from None
        if viewer.expires_at <= self.ctx.clock.now():
            raise Refused(401, _("Your dashboard session has ended (sessions last 8 hours)."), _sign_in_again())
        return viewer

    # ------------------------------------------------------------------ what a viewer may see

    async def cohorts(self, viewer: Viewer) -> list[Cohort]:
        """The cohorts of the viewer's workspace they train (all of them for an admin), by name."""
        async with self.ctx.db.transaction() as tx:
            rows = await tx.exec(
                select(Cohort)
                .join(Workspace, col(Workspace.id) == col(Cohort.workspace_id))
                .where(Workspace.platform == viewer.platform, Workspace.external_id == viewer.workspace)
                .order_by(col(Cohort.name))
            )
            found = []
            for cohort in rows.all():
                if await self._trains(tx, viewer, cohort):
                    found.append(cohort)
            return found

    async def session(self, viewer: Viewer, short_id: str) -> tuple[Cohort, PeerSession]:
        """The session and its cohort, if the viewer trains that cohort (the same refusal otherwise)."""
        async with self.ctx.db.transaction() as tx:
            found = (await tx.exec(select(PeerSession).where(PeerSession.short_id == short_id.lower()))).first()
        if found is None:
            raise _not_yours()
        return await self.cohort(viewer, found.cohort_id), found

    async def cohort(self, viewer: Viewer, cohort_id: int) -> Cohort:
        """The cohort, if the viewer trains it; the same refusal whether it exists or not (nothing leaks)."""
        async with self.ctx.db.transaction() as tx:
            cohort = await tx.get(Cohort, cohort_id)
            if cohort is not None:
                workspace = await tx.get(Workspace, cohort.workspace_id)
                mine = (
                    workspace is not None
                    and (workspace.platform, workspace.external_id) == (viewer.platform, viewer.workspace)
                    and await self._trains(tx, viewer, cohort)
                )
                if mine:
                    return cohort
        raise _not_yours()

    @staticmethod
    async def _trains(tx: AsyncSession, viewer: Viewer, cohort: Cohort) -> bool:
        try:
            await queries.require_trainer(tx, viewer.actor, cohort)
        except Forbidden:
            return False
        return True
