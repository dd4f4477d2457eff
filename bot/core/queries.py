"""Lookups several services start from, as plain functions of the open transaction (`tx`).

They raise the polite domain errors (`NotFound`, `Forbidden`) a user sees when a name or id is wrong, so
every service refuses the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import rules
from bot.core.rules import ACTIVE, Role
from bot.errors import Forbidden, NotFound
from bot.i18n import _, supported
from bot.inbound import Actor
from bot.refs import UserRef
from storage.models import (
    Answer,
    Cohort,
    Enrollment,
    GroupMembership,
    Member,
    PairConstraint,
    PeerGroup,
    PeerSession,
    QuestionnaireItem,
    Submission,
    Workspace,
)

GroupRows = list[tuple[PeerGroup, list[tuple[Member, str]]]]
"""A session's groups in number order, each with its members and their roles (member, tutor, tutee)."""


def ref(member: Member) -> UserRef:
    return UserRef(member.platform, member.user_id)


def printable(text: str, limit: int) -> str:
    """A platform-supplied name as the database can store it: no control characters (PostgreSQL refuses NUL),
    at most `limit` characters."""
    return "".join(ch for ch in text if ch.isprintable() or ch == " ")[:limit]


async def member(tx: AsyncSession, user: UserRef, display_name: str = "", locale: str = "") -> Member:
    """The person's row (created on first sight); a known locale is kept for the DMs sent to them."""
    found = await tx.exec(select(Member).where(Member.platform == user.platform, Member.user_id == user.id))
    row = found.first()
    locale = supported(locale)
    display_name = printable(display_name, 200)
    if row is None:
        row = Member(platform=user.platform, user_id=user.id, display_name=display_name or user.id, locale=locale)
        tx.add(row)
        await tx.flush()
        return row
    refresh(row, display_name, locale)
    return row


def refresh(row: Member, display_name: str, locale: str) -> None:
    """Keep what the platform last said of a person: their name and their language (when it says)."""
    display_name, locale = printable(display_name, 200), supported(locale)
    if display_name and row.display_name != display_name:
        row.display_name = display_name
    if locale and row.locale != locale:
        row.locale = locale


async def actor_member(tx: AsyncSession, actor: Actor) -> Member:
    return await member(tx, actor.user, actor.display_name, actor.locale)


async def workspace(tx: AsyncSession, actor: Actor) -> Workspace:
    found = await tx.exec(
        select(Workspace).where(Workspace.platform == actor.user.platform, Workspace.external_id == actor.workspace)
    )
    row = found.first()
    if row is None:
        row = Workspace(platform=actor.user.platform, external_id=actor.workspace)
        tx.add(row)
        await tx.flush()
    return row


async def cohort(tx: AsyncSession, actor: Actor, name: str) -> Cohort:
    """The actor's workspace's cohort by name."""
    home = await workspace(tx, actor)
    row = (await tx.exec(select(Cohort).where(Cohort.workspace_id == home.id, Cohort.name == name))).first()
    if row is None:
        raise NotFound(
            _("There is no cohort named `{cohort}` here.", cohort=name),
            _(
                "Create it with `/peer cohort create {cohort}`, or check the name with `/peer cohort show`.",
                cohort=name,
            ),
        )
    return row


async def peer_session(tx: AsyncSession, actor: Actor | None, short_id: str, *, lock: bool = False) -> PeerSession:
    """The session by short id, only if it belongs to the actor's workspace (one query); `None` for the
    scheduler, which acts on every workspace. `lock`: its row locked until the transaction ends (`FOR NO KEY
    UPDATE`, PostgreSQL; SQLite has one writer), read as the lock holder before left it."""
    query = select(PeerSession).where(PeerSession.short_id == short_id.lower())
    if lock:
        query = query.with_for_update(key_share=True, of=PeerSession).execution_options(populate_existing=True)
    if actor is not None:
        query = (
            query.join(Cohort, col(Cohort.id) == col(PeerSession.cohort_id))
            .join(Workspace, col(Workspace.id) == col(Cohort.workspace_id))
            .where(Workspace.platform == actor.user.platform, Workspace.external_id == actor.workspace)
        )
    row = (await tx.exec(query)).first()
    if row is None:
        raise NotFound(
            _("There is no session `{session}` here.", session=short_id),
            _("Session ids are shown when a session is planned, and in `/peer session show`."),
        )
    return row


async def learner_session(tx: AsyncSession, actor: Actor, short_id: str) -> PeerSession:
    """The named session, or the learner's nearest one not over yet when no id is given."""
    if short_id:
        return await peer_session(tx, actor, short_id)
    # Looked up, not created (a refusal creates no row); a known person's name and language are refreshed,
    # so DMs follow the language their platform last reported.
    found = await tx.exec(select(Member).where(Member.platform == actor.user.platform, Member.user_id == actor.user.id))
    me = found.first()
    if me is not None:
        refresh(me, actor.display_name, actor.locale)
    rows = await tx.exec(
        select(PeerSession)
        .join(Enrollment, col(Enrollment.cohort_id) == col(PeerSession.cohort_id))
        .where(Enrollment.member_id == (me.id if me else -1), col(PeerSession.state).in_(ACTIVE[:3]))
        .order_by(col(PeerSession.starts_at))
    )
    row = rows.first()
    if row is None:
        raise NotFound(_("You have no upcoming session."), _("If you expected one, ask your trainer."))
    return row


async def enrollment(tx: AsyncSession, peer_session: PeerSession, learner: Member) -> Enrollment:
    """The learner's enrollment in the session's cohort; refused politely for anyone else."""
    found = await tx.exec(
        select(Enrollment).where(
            Enrollment.cohort_id == peer_session.cohort_id,
            Enrollment.member_id == learner.id,
            Enrollment.role == Role.LEARNER,
        )
    )
    row = found.first()
    if row is None:
        raise Forbidden(
            _("You are not enrolled as a learner in session `{session}`.", session=peer_session.short_id),
            _("If you should be, ask your trainer to add you to the cohort."),
        )
    return row


async def learners(tx: AsyncSession, cohort_id: int) -> list[tuple[Enrollment, Member]]:
    rows = await tx.exec(
        select(Enrollment, Member)
        .join(Member, col(Member.id) == col(Enrollment.member_id))
        .where(Enrollment.cohort_id == cohort_id, Enrollment.role == Role.LEARNER)
        .order_by(col(Member.id))
    )
    return list(rows.all())


async def trainers(tx: AsyncSession, peer_session: PeerSession) -> list[Member]:
    """The cohort's trainers, and the session's creator first if they are not one of them."""
    rows = await tx.exec(
        select(Member)
        .join(Enrollment, col(Member.id) == col(Enrollment.member_id))
        .where(Enrollment.cohort_id == peer_session.cohort_id, Enrollment.role == Role.TRAINER)
        .order_by(col(Member.id))
    )
    found = list(rows.all())
    creator = await tx.get(Member, peer_session.created_by)
    if creator is not None and all(m.id != creator.id for m in found):
        found.insert(0, creator)
    return found


async def count(tx: AsyncSession, model: type[SQLModel], *conditions: Any) -> int:
    return int((await tx.exec(select(func.count()).select_from(model).where(*conditions))).one())


async def quiz_size(tx: AsyncSession, peer_session: PeerSession) -> int:
    return await count(
        tx,
        QuestionnaireItem,
        QuestionnaireItem.session_id == peer_session.id,
        QuestionnaireItem.kind == "retention",
    )


async def missed_items(tx: AsyncSession, peer_session: PeerSession, member_id: int) -> list[int]:
    """The first retention quiz's items this learner did not answer right (`rules.missed_items`)."""
    items = await tx.exec(
        select(QuestionnaireItem.id)
        .where(QuestionnaireItem.session_id == peer_session.id, QuestionnaireItem.kind == "retention")
        .order_by(col(QuestionnaireItem.position))
    )
    right = await tx.exec(
        select(Answer.item_id)
        .join(Submission, col(Submission.id) == col(Answer.submission_id))
        .where(
            Submission.session_id == peer_session.id,
            Submission.member_id == member_id,
            Submission.kind == "retention",
            col(Answer.correct).is_(True),
        )
    )
    return rules.missed_items([i for i in items.all() if i is not None], set(right.all()))


async def groups(tx: AsyncSession, session_id: int) -> GroupRows:
    rows = await tx.exec(select(PeerGroup).where(PeerGroup.session_id == session_id).order_by(col(PeerGroup.number)))
    found = list(rows.all())
    memberships = await tx.exec(
        select(GroupMembership, Member)
        .join(Member, col(Member.id) == col(GroupMembership.member_id))
        .where(GroupMembership.session_id == session_id)
        .order_by(col(GroupMembership.id))
    )
    by_group: dict[int, list[tuple[Member, str]]] = {}
    for membership, who in memberships.all():
        by_group.setdefault(membership.group_id, []).append((who, membership.role))
    return [(g, by_group.get(g.id or 0, [])) for g in found]


async def pair_rules(tx: AsyncSession, cohort_id: int) -> list[tuple[PairConstraint, Member, Member]]:
    """The cohort's keep-apart and keep-together rules with both members, in a stable order."""
    first, second = aliased(Member), aliased(Member)
    rows = await tx.exec(
        select(PairConstraint, first, second)
        .join(first, col(first.id) == col(PairConstraint.member_a_id))
        .join(second, col(second.id) == col(PairConstraint.member_b_id))
        .where(PairConstraint.cohort_id == cohort_id)
        .order_by(col(PairConstraint.kind), col(PairConstraint.member_a_id), col(PairConstraint.member_b_id))
    )
    return list(rows.all())


async def apart_from(tx: AsyncSession, cohort_id: int, member_id: int) -> set[int]:
    """Whom `member_id` must never share a group with in this cohort."""
    rules = await tx.exec(
        select(PairConstraint).where(
            PairConstraint.cohort_id == cohort_id,
            PairConstraint.kind == "apart",
            (col(PairConstraint.member_a_id) == member_id) | (col(PairConstraint.member_b_id) == member_id),
        )
    )
    return {r.member_b_id if r.member_a_id == member_id else r.member_a_id for r in rules.all()}


async def cohort_trainers(tx: AsyncSession, cohort_id: int) -> list[Member]:
    rows = await tx.exec(
        select(Member)
        .join(Enrollment, col(Enrollment.member_id) == col(Member.id))
        .where(Enrollment.cohort_id == cohort_id, Enrollment.role == Role.TRAINER)
        .order_by(col(Member.id))
    )
    return list(rows.all())


async def require_trainer(tx: AsyncSession, actor: Actor, target: Cohort) -> None:
    """Only the cohort's trainers (and the workspace's admins) act on it; anyone else is told who can."""
    if actor.is_admin:
        return
    assert target.id is not None
    trainers = await cohort_trainers(tx, target.id)
    if any(t.platform == actor.user.platform and t.user_id == actor.user.id for t in trainers):
        return
    names = ", ".join(f"<@{t.user_id}>" for t in trainers) or "-"
    raise Forbidden(
        _("You are not a trainer of cohort `{cohort}`.", cohort=target.name),
        _(
            "Ask one of its trainers ({trainers}) to add you with `/peer cohort trainers add {cohort} <@you>`.",
            trainers=names,
            cohort=target.name,
        ),
    )


async def cohort_of_command(tx: AsyncSession, actor: Actor, cohort_name: str, short_id: str) -> Cohort | None:
    """The cohort a trainer command acts on (by name, or through its session), in the actor's workspace."""
    if cohort_name:
        return await cohort(tx, actor, cohort_name)
    if short_id:
        found = await tx.get(Cohort, (await peer_session(tx, actor, short_id)).cohort_id)
        assert found is not None
        return found
    return None
