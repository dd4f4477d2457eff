"""Who in a cohort may be drifting away, read from the evidence already recorded (attendance, preparation,
questionnaires, quiz scores), and the trainer's alert that lists them. Plain functions of the transaction:
the weekly DM (outbox) and `/peer alerts` (the Alerts service) build the same message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions
from bot.core import queries, rules
from bot.core.rules import DeliveryKind, Risk, SessionState
from bot.i18n import N_, t
from bot.messages import Button, Message, Section
from storage.models import Attendance, Cohort, Delivery, Member, PeerSession, PrepAck, Submission

RISK_TEXTS = {
    Risk.ABSENT_TWICE: N_("absent from the last two sessions"),
    Risk.PREP_SKIPPED_TWICE: N_("skipped the last two preparations"),
    Risk.QUESTIONNAIRES_UNANSWERED: N_("left the last two questionnaires unanswered"),
    Risk.QUIZ_FALLING: N_("retention score falling"),
}


@dataclass(frozen=True, slots=True)
class AtRisk:
    member: Member
    risks: tuple[Risk, ...]


async def at_risk(tx: AsyncSession, cohort: Cohort, now: datetime) -> list[AtRisk]:
    """The cohort's learners with at least one dropout signal, over the sessions that took place (a
    questionnaire counts as unanswered only once it has closed: a learner has a week to answer)."""
    assert cohort.id is not None
    held = list(
        (
            await tx.exec(
                select(PeerSession)
                .where(
                    PeerSession.cohort_id == cohort.id,
                    col(PeerSession.started_at).is_not(None),
                    PeerSession.state != SessionState.CANCELLED,
                )
                .order_by(col(PeerSession.starts_at))
            )
        ).all()
    )
    if len(held) < 2:
        return []
    ids = [p.id for p in held]
    present = {
        (a.session_id, a.member_id)
        for a in (await tx.exec(select(Attendance).where(col(Attendance.session_id).in_(ids)))).all()
        if a.status in rules.PRESENT
    }
    prepped = {
        (p.session_id, p.member_id) for p in (await tx.exec(select(PrepAck).where(col(PrepAck.session_id).in_(ids))))
    }
    sent = {
        (d.session_id, d.member_id)
        for d in (
            await tx.exec(
                select(Delivery).where(
                    col(Delivery.session_id).in_(ids),
                    Delivery.kind == DeliveryKind.FEEDBACK,
                    Delivery.state == rules.DeliveryState.SENT,
                )
            )
        ).all()
    }
    done = (
        await tx.exec(select(Submission).where(col(Submission.session_id).in_(ids), col(Submission.completed)))
    ).all()
    answered = {(s.session_id, s.member_id) for s in done if s.kind == DeliveryKind.FEEDBACK}
    ratios = {
        (s.session_id, s.member_id): s.score / s.max_score
        for s in done
        if s.kind == DeliveryKind.RETENTION and s.score is not None and s.max_score
    }
    found: list[AtRisk] = []
    for _enrollment, member in await queries.learners(tx, cohort.id):
        records = [
            rules.Record(
                present=(p.id, member.id) in present,
                prep_expected=bool(p.prep_material),
                prepped=(p.id, member.id) in prepped,
                feedback_sent=(p.id, member.id) in sent and rules.feedback_closed(p, now),
                feedback_answered=(p.id, member.id) in answered,
                quiz_ratio=ratios.get((p.id or 0, member.id or 0)),
            )
            for p in held
        ]
        risks = rules.dropout_risks(records)
        if risks:
            found.append(AtRisk(member, tuple(risks)))
    return found


def alert_message(cohort: Cohort, found: list[AtRisk], locale: str, *, key: str = "") -> Message:
    """The list a trainer acts on: each learner at risk with the reasons and a "friendly check-in" button."""
    if not found:
        return Message(t(locale, "Nobody in cohort `{cohort}` shows a dropout signal right now.", cohort=cohort.name))
    lines = [
        t(
            locale,
            "• <@{user}>: {reasons}",
            user=entry.member.user_id,
            reasons="; ".join(t(locale, RISK_TEXTS[r]) for r in entry.risks),
        )
        for entry in found
    ]
    assert cohort.id is not None
    buttons = tuple(
        Button(
            str(actions.Nudge(cohort.id, entry.member.id or 0)),
            t(locale, "Check in with {name}", name=entry.member.display_name)[:75],
        )
        for entry in found[:25]
    )
    title = t(locale, "Learners of cohort `{cohort}` who may be drifting away", cohort=cohort.name)
    return Message(title, sections=(Section("\n".join(lines)),), buttons=buttons, key=key)
