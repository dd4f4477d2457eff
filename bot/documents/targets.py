"""What `peerbot export`, `verify` and `audit-pack` act on: a session (its short id) or a cohort (its name)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from bot.errors import NotFound
from bot.i18n import _
from storage.db import Database
from storage.models import Cohort, PeerSession


@dataclass(frozen=True)
class Target:
    kind: str  # session | cohort
    name: str  # the short id or the cohort's name
    sessions: list[str]  # short ids, in start order


async def resolve(db: Database, name: str, *, cohort_only: bool = False) -> Target:
    """A session short id wins over a cohort of the same name (short ids are unique, cohort names per workspace).

    A cohort name shared by several workspaces takes the sessions of all of them: the shell user owns the
    database, and the sheets name each session's cohort."""
    async with db.transaction() as tx:
        if not cohort_only:
            session = (await tx.exec(select(PeerSession).where(PeerSession.short_id == name))).first()
            if session is not None:
                return Target("session", name, [session.short_id])
        cohorts = [c.id for c in (await tx.exec(select(Cohort).where(Cohort.name == name))).all()]
        if not cohorts:
            what = _("cohort") if cohort_only else _("session or cohort")
            raise NotFound(_("No {what} named `{name}`.", what=what, name=name))
        shorts = (
            await tx.exec(
                select(PeerSession.short_id)
                .where(col(PeerSession.cohort_id).in_(cohorts))
                .order_by(col(PeerSession.starts_at), col(PeerSession.id))
            )
        ).all()
    return Target("cohort", name, list(shorts))
