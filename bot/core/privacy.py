"""Data protection: erasing one person (`/peer forget-me`, confirmed in a form, or `peerbot erase --member`), and
purging free text older than PEERBOT_RETENTION_DAYS.

Erasure keeps what an auditor needs under a pseudonym: the member row stays (so attendance, preparation,
submission counts and scores per session stay right), but its platform id and name become a random
`erased-…` pseudonym that nothing links back to the person (random, not a hash: a hash of a known id could be
recomputed). Their free-text answers are removed; rated answers and scores are not free text and stay. The audit
trail's mentions of their id (as actor, or as a JSON string in the details) are rewritten to the pseudonym, and
DMs still queued for them are skipped. What the chat platform itself keeps (messages, channel membership) is
the workspace admin's to erase there.

Trainers' notes (`/peer note`) are the trainer's text about a session, the evidence of Qualiopi indicator 32: the
retention purge keeps them (they are not a learner's free text), and erasing their author pseudonymises the author
like any member. A learner mentioned in a note (`<@id>`) is rewritten to their pseudonym when erased.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot import actions, grammar
from bot.core.context import Context, log
from bot.core.rules import DeliveryState
from bot.errors import Invalid
from bot.i18n import _, t
from bot.inbound import Actor
from bot.messages import Form, Reply, TextField
from bot.refs import ChannelRef
from storage.models import (
    Answer,
    AuditEvent,
    Delivery,
    Member,
    PeerGroup,
    PeerSession,
    ReviewAssignment,
    SessionNote,
    Submission,
    WorkSubmission,
)

PURGE_EVERY = timedelta(hours=1)  # the sweep runs every few seconds; the purge need not


@dataclass(frozen=True, slots=True)
class Erased:
    member_id: int
    pseudonym: str
    answers: int  # free-text answers removed
    audit: int  # audit entries rewritten
    deliveries: int  # queued DMs skipped


@dataclass(frozen=True, slots=True)
class Purged:
    answers: int
    takeaways: int


class Privacy:
    """Erasure and retention, each one transaction."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._last_purge: datetime | None = None

    async def forget_me_form(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        """`/peer forget-me`: the confirmation form (nothing is erased until it is submitted with the word)."""
        locale = self.ctx.reply_locale(actor)
        word = t(locale, "ERASE")
        intro = t(
            locale,
            "This erases your name, your platform id and your free-text answers from peerbot. Your attendance "
            "and scores stay for the training's audit, under a pseudonym nobody can link to you. It cannot be "
            "undone.",
        )
        form = Form(
            str(actions.ForgetMe()),
            t(locale, "Forget me"),
            (TextField("confirm", t(locale, "Type {word} to confirm", word=word), multiline=False, required=True),),
            t(locale, "Erase my data"),
            intro=intro,
        )
        return Reply(intro, form=form)  # the text for a client that cannot open the form

    async def forget_me(self, actor: Actor, values: dict[str, str]) -> Reply:
        """The submitted confirmation: the word in the person's language (or English), then the erasure."""
        locale = self.ctx.reply_locale(actor)
        word = t(locale, "ERASE")
        if values.get("confirm", "").strip().upper() not in {word.upper(), "ERASE"}:
            raise Invalid(
                _("Type {word} to confirm, or close this window to keep your data.", word=word), field="confirm"
            )
        erased = await self.erase_member(actor.user.platform, actor.user.id, by="self")
        if erased is None:
            return Reply(t(locale, "I store nothing about you."))
        return Reply(t(locale, "Done: peerbot no longer knows who you are. If you use it again, you start afresh."))

    async def erase_member(self, platform: str, user_id: str, *, by: str = "admin") -> Erased | None:
        """Pseudonymise the member `platform:user_id`; None when no such member is stored."""
        pseudonym = f"erased-{secrets.token_hex(6)}"
        async with self.ctx.db.transaction() as tx:
            member = (
                await tx.exec(select(Member).where(Member.platform == platform, Member.user_id == user_id))
            ).first()
            if member is None or member.id is None:
                return None
            member.user_id = member.display_name = pseudonym
            member.locale = member.timezone = ""
            mine = select(Submission.id).where(Submission.member_id == member.id)
            answers = await _clear_answers(tx, mine)
            texts = await _clear_format_texts(tx, member_id=member.id)
            # Whole tokens only: the actor column exactly, and the id as a JSON string in the details (a substring
            # match would also rewrite `L12` when erasing `L1`).
            key, quoted = f"{platform}:{user_id}", f'"{user_id}"'
            audit = await tx.exec(
                update(AuditEvent)  # type: ignore[call-overload]
                .where((col(AuditEvent.actor) == key) | col(AuditEvent.detail).contains(quoted))
                .values(
                    actor=func.replace(col(AuditEvent.actor), key, f"{platform}:{pseudonym}"),
                    detail=func.replace(col(AuditEvent.detail), quoted, f'"{pseudonym}"'),
                )
            )
            mention = f"<@{user_id}>"
            await tx.exec(
                update(SessionNote)  # type: ignore[call-overload]
                .where(col(SessionNote.text).contains(mention))
                .values(text=func.replace(col(SessionNote.text), mention, f"<@{pseudonym}>"))
            )
            deliveries = await tx.exec(
                update(Delivery)  # type: ignore[call-overload]
                .where(
                    (col(Delivery.member_id) == member.id) | (col(Delivery.subject_id) == member.id),  # or about them
                    col(Delivery.state) == DeliveryState.PENDING,
                )
                .values(state="skipped", last_error="member erased")
            )
            self.ctx.audit(tx, by, "member.erase", None, member=member.id, pseudonym=pseudonym)
            return Erased(member.id, pseudonym, answers + texts, int(audit.rowcount), int(deliveries.rowcount))

    async def purge_expired(self) -> Purged | None:
        """Clear free-text answers submitted, and group takeaways of sessions ended, more than
        PEERBOT_RETENTION_DAYS ago (at most once an hour); None when retention is off or not due."""
        days = self.ctx.settings.retention_days
        now = self.ctx.clock.now()
        if not days or (self._last_purge is not None and now - self._last_purge < PURGE_EVERY):
            return None
        self._last_purge = now
        cutoff = now - timedelta(days=days)
        async with self.ctx.db.transaction() as tx:
            old = select(Submission.id).where(col(Submission.submitted_at) < cutoff)
            answers = await _clear_answers(tx, old)
            ended = select(PeerSession.id).where(col(PeerSession.ended_at) < cutoff)
            takeaways = await tx.exec(
                update(PeerGroup)  # type: ignore[call-overload]
                .where(col(PeerGroup.session_id).in_(ended), col(PeerGroup.takeaways) != "")
                .values(takeaways="")
            )
            texts = await _clear_format_texts(tx, before=cutoff)
            purged = Purged(answers + texts, int(takeaways.rowcount))
            if purged.answers or purged.takeaways:
                self.ctx.audit(
                    tx, "retention", "retention.purge", None, days=days, answers=purged.answers,
                    takeaways=purged.takeaways,
                )  # fmt: skip
        if purged.answers or purged.takeaways:
            log.info("retention: %d free-text answer(s) and %d takeaway(s) purged", purged.answers, purged.takeaways)
        return purged


async def _clear_answers(tx: AsyncSession, submissions: SelectOfScalar[int] | SelectOfScalar[None]) -> int:
    """Empty the free-text answers of `submissions` through the ORM, not a bulk UPDATE: answers are chained
    evidence, and only ORM writes append the cleared version to the chain, so `verify` still passes after a
    lawful erasure or purge. Returns how many."""
    rows = await tx.exec(select(Answer).where(col(Answer.submission_id).in_(submissions), col(Answer.value_text) != ""))
    cleared = 0
    for answer in rows.all():
        answer.value_text = ""
        cleared += 1
    return cleared


async def _clear_format_texts(tx: AsyncSession, *, member_id: int | None = None, before: datetime | None = None) -> int:
    """Empty the free text of the formats (peer review work and comments) written by `member_id`, or before
    `before`; through the ORM, so the evidence chain records the cleared versions. Returns how many."""
    works = select(WorkSubmission).where(WorkSubmission.content != "")
    reviews = select(ReviewAssignment).where(ReviewAssignment.comment != "")
    if member_id is not None:
        works = works.where(WorkSubmission.member_id == member_id)
        reviews = reviews.where(ReviewAssignment.reviewer_id == member_id)
    if before is not None:
        works = works.where(col(WorkSubmission.submitted_at) < before)
        reviews = reviews.where(col(ReviewAssignment.reviewed_at) < before)
    cleared = 0
    for work in (await tx.exec(works)).all():
        work.content = ""
        cleared += 1
    for review in (await tx.exec(reviews)).all():
        review.comment = ""
        cleared += 1
    return cleared
