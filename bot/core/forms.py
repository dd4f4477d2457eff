"""Forms a learner fills in: the post-session questionnaire and the retention quiz (whole form or one item
at a time, all-or-nothing, first answers kept, validated against the stored items) and the group's
takeaways at wrap-up. Named `forms` so it is not mistaken for `bot.questionnaires`, which holds the
questionnaires' content and renders them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions
from bot.core import queries, rules
from bot.core.context import Context
from bot.core.rules import DeliveryKind, DeliveryState, SessionState
from bot.errors import Forbidden, Invalid, NotFound
from bot.i18n import _, t
from bot.inbound import Actor
from bot.messages import Form, Reply, TextField
from bot.questionnaires import feedback_form, followup_form, item_label, quiz_form
from storage.models import (
    Answer,
    Cohort,
    Delivery,
    GroupMembership,
    Member,
    PeerGroup,
    PeerSession,
    QuestionnaireItem,
    Submission,
)

QUIZZES = frozenset({DeliveryKind.RETENTION, DeliveryKind.RETENTION2})  # scored, with the answers shown after


class Forms:
    """Open, validate and record questionnaire answers and group takeaways."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def _delivery_for(
        self, tx: AsyncSession, actor: Actor, delivery_id: int
    ) -> tuple[Delivery, PeerSession, Member]:
        delivery = await tx.get(Delivery, delivery_id)
        member = await queries.actor_member(tx, actor)
        if delivery is None or delivery.member_id != member.id:
            raise NotFound(_("This questionnaire is not addressed to you."))
        peer_session = await tx.get(PeerSession, delivery.session_id)
        assert peer_session is not None
        return delivery, peer_session, member

    async def _subject(self, tx: AsyncSession, delivery: Delivery, member: Member) -> Member:
        """Whose answers these are: the learner an observer's DM is about, else the person answering."""
        if delivery.kind == DeliveryKind.OBSERVATION and delivery.subject_id is not None:
            subject = await tx.get(Member, delivery.subject_id)
            assert subject is not None
            return subject
        return member

    async def _items(self, tx: AsyncSession, peer_session: PeerSession, delivery: Delivery) -> list[QuestionnaireItem]:
        """The items this DM asks, in order; the second retention quiz asks those its learner missed."""
        rows = await tx.exec(
            select(QuestionnaireItem)
            .where(
                QuestionnaireItem.session_id == peer_session.id,
                QuestionnaireItem.kind == rules.item_kind(delivery.kind),
            )
            .order_by(col(QuestionnaireItem.position))
        )
        items = list(rows.all())
        if delivery.kind != DeliveryKind.RETENTION2:
            return items
        missed = set(await queries.missed_items(tx, peer_session, delivery.member_id))
        return [item for item in items if item.id in missed]

    async def questionnaire_form(self, actor: Actor, delivery_id: int, *, open_only: bool = False) -> Form:
        async with self.ctx.db.transaction() as tx:
            delivery, peer_session, member = await self._delivery_for(tx, actor, delivery_id)
            subject = await self._subject(tx, delivery, member)
            items = await self._items(tx, peer_session, delivery)
            await self._refuse_if_closed(tx, peer_session, subject, delivery.kind, open_only=open_only)
        locale = self.ctx.reply_locale(actor)
        questionnaire = actions.Questionnaire.of_kind(delivery.kind)
        if questionnaire is actions.Questionnaire.SURVEY:
            return feedback_form(delivery_id, peer_session.title, items, locale)
        if questionnaire is actions.Questionnaire.FOLLOWUP:
            name = subject.display_name if delivery.kind == DeliveryKind.OBSERVATION else ""
            return followup_form(delivery_id, peer_session.title, items, locale, name)
        return quiz_form(delivery_id, peer_session.title, items, locale)

    async def _refuse_if_closed(
        self, tx: AsyncSession, peer_session: PeerSession, subject: Member, kind: str, *, open_only: bool = False
    ) -> Submission | None:
        """Refuse a closed questionnaire, or a completed one unless only its optional open question is coming
        (one item at a time, the open question may come after the last rating). The first retention quiz
        closes once the second one has gone out: the second asks what the first missed, which must stay put."""
        kind = rules.submission_kind(kind)
        if kind == DeliveryKind.FEEDBACK and rules.feedback_closed(peer_session, self.ctx.clock.now()):
            raise Invalid(
                _(
                    "This questionnaire closed {days} days after the session. Thank you all the same!",
                    days=rules.SURVEY_OPEN_FOR.days,
                )
            )
        if kind == DeliveryKind.RETENTION:
            second = (
                await tx.exec(
                    select(Delivery.id).where(
                        Delivery.session_id == peer_session.id,
                        Delivery.member_id == subject.id,
                        Delivery.kind == DeliveryKind.RETENTION2,
                        Delivery.state == DeliveryState.SENT,
                    )
                )
            ).first()
            if second is not None:
                raise Invalid(_("This quiz is closed: its second round has been sent to you, answer that one instead."))
        found = (
            await tx.exec(
                select(Submission).where(
                    Submission.session_id == peer_session.id,
                    Submission.member_id == subject.id,
                    Submission.kind == kind,
                )
            )
        ).first()
        if found is not None and found.completed and not open_only:
            raise Invalid(_("You have already answered this questionnaire; your first answers are kept."))
        return found

    async def answer(self, actor: Actor, delivery_id: int, values: dict[str, str]) -> Reply:
        """Record answers (a whole form, or one item at a time). All-or-nothing; first answers are kept."""
        async with self.ctx.db.transaction() as tx:
            delivery, peer_session, member = await self._delivery_for(tx, actor, delivery_id)
            subject = await self._subject(tx, delivery, member)
            kind = rules.submission_kind(delivery.kind)
            locale = self.ctx.reply_locale(actor)
            assert peer_session.id is not None and subject.id is not None
            items = {item.item_key: item for item in await self._items(tx, peer_session, delivery)}
            open_only = bool(values) and all(k in items and items[k].item_type == "open" for k in values)
            submission = await self._refuse_if_closed(tx, peer_session, subject, delivery.kind, open_only=open_only)
            parsed = self._validate_answers(items, values, locale)
            if submission is None:
                submission = Submission(
                    session_id=peer_session.id, member_id=subject.id, kind=kind, submitted_at=self.ctx.clock.now()
                )
                tx.add(submission)
                await tx.flush()
            assert submission.id is not None
            answered = {
                a.item_id for a in (await tx.exec(select(Answer).where(Answer.submission_id == submission.id))).all()
            }
            for key, (value_int, value_text, correct) in parsed.items():
                item = items[key]
                if item.id in answered:
                    raise Invalid(
                        _(
                            "You already answered “{question}”; your first answer is kept.",
                            question=item_label(item, locale),
                        ),
                        field=key,
                    )
                tx.add(
                    Answer(
                        submission_id=submission.id,
                        item_id=item.id or 0,
                        value_int=value_int,
                        value_text=value_text,
                        correct=correct,
                    )
                )
                answered.add(item.id or 0)
            required = {i.id for i in items.values() if i.item_type in {"likert", "choice"}}
            whole_form = len(values) > 1 or len(items) == 1
            if whole_form:
                missing = [
                    item_label(i, locale)
                    for i in items.values()
                    if i.item_type in {"likert", "choice"} and i.id not in answered
                ]
                if missing:
                    raise Invalid(_("Please answer every rated question; missing: “{question}”.", question=missing[0]))
            if required <= answered and not submission.completed:
                submission.completed = True
                submission.submitted_at = self.ctx.clock.now()
                if kind in QUIZZES:
                    answers = (await tx.exec(select(Answer).where(Answer.submission_id == submission.id))).all()
                    submission.score = sum(1 for a in answers if a.correct)
                    submission.max_score = len(items)
            self.ctx.audit(tx, actor.user.key, f"{kind}.answer", peer_session.id, items=sorted(parsed))
            completed, score, total = submission.completed, submission.score, submission.max_score
            review = (
                await self._quiz_review(tx, submission.id, items.values(), locale)
                if completed and kind in QUIZZES
                else []
            )
        if completed and kind in QUIZZES:
            text = t(locale, "Your score: {score}/{total}.", score=score, total=total)
            return Reply("\n".join([text, *review]), extra={"score": str(score)})
        if completed:
            return Reply(t(locale, "Thank you, your answers are recorded."))
        return Reply(t(locale, "Answer recorded."))

    @staticmethod
    async def _quiz_review(
        tx: AsyncSession, submission_id: int | None, items: Iterable[QuestionnaireItem], locale: str
    ) -> list[str]:
        """Retrieval practice: right after the quiz, each question with the right answer, so a wrong
        recall is corrected while it is fresh."""
        answers = {a.item_id: a for a in (await tx.exec(select(Answer).where(Answer.submission_id == submission_id)))}
        lines: list[str] = []
        for item in sorted(items, key=lambda i: i.position):
            options = json.loads(item.options_json or "[]")
            right = options[int(item.correct)] if item.correct.isdigit() and int(item.correct) < len(options) else ""
            answer = answers.get(item.id or 0)
            if answer is not None and answer.correct:
                lines.append(t(locale, "✅ {question} — {answer}", question=item.text, answer=right))
            else:
                lines.append(t(locale, "❌ {question} — the answer is “{answer}”.", question=item.text, answer=right))
        return lines

    @staticmethod
    def _validate_answers(
        items: dict[str, QuestionnaireItem], values: dict[str, str], locale: str
    ) -> dict[str, tuple[int | None, str, bool | None]]:
        if not values:
            raise Invalid(_("The form was empty; please answer the questions."))
        parsed: dict[str, tuple[int | None, str, bool | None]] = {}
        for key, raw in values.items():
            item = items.get(key)
            if item is None:
                raise Invalid(_("`{key}` is not a question of this questionnaire.", key=key))
            raw = (raw or "").strip()
            if item.item_type == "likert":
                if not raw.isdigit() or not 1 <= int(raw) <= 5:
                    raise Invalid(
                        _(
                            "“{question}” takes a rating from 1 to 5, not `{raw}`.",
                            question=item_label(item, locale),
                            raw=raw,
                        ),
                        field=key,
                    )
                parsed[key] = (int(raw), "", None)
            elif item.item_type == "choice":
                options = json.loads(item.options_json)
                if not raw.isdigit() or not 0 <= int(raw) < len(options):
                    raise Invalid(
                        _(
                            "`{raw}` is not one of the answers to “{question}”.",
                            raw=raw,
                            question=item_label(item, locale),
                        ),
                        field=key,
                    )
                correct = raw == item.correct if item.kind == DeliveryKind.RETENTION else None
                parsed[key] = (int(raw), options[int(raw)], correct)
            elif raw:
                parsed[key] = (None, raw[:3000], None)
        return parsed

    async def _group_for(self, tx: AsyncSession, actor: Actor, group_id: int) -> PeerGroup:
        """The group a takeaways button or form names, if the actor may write for it: a member of the group,
        or a trainer of its cohort (or an admin), in the same workspace, while the session runs."""
        group = await tx.get(PeerGroup, group_id)
        if group is None:
            raise NotFound(_("This group no longer exists."))
        peer_session = await tx.get(PeerSession, group.session_id)
        assert peer_session is not None
        try:
            await queries.peer_session(tx, actor, peer_session.short_id)  # the actor's workspace only
        except NotFound:
            raise NotFound(_("This group no longer exists.")) from None
        if peer_session.state != SessionState.RUNNING:
            raise Invalid(
                _("Session `{session}` is over: its takeaways are closed.", session=peer_session.short_id),
                _("Send them to your trainer directly."),
            )
        member = await queries.actor_member(tx, actor)
        in_group = (
            await tx.exec(
                select(GroupMembership).where(
                    GroupMembership.group_id == group_id, GroupMembership.member_id == member.id
                )
            )
        ).first()
        if in_group is None:
            cohort = await tx.get(Cohort, peer_session.cohort_id)
            assert cohort is not None
            try:
                await queries.require_trainer(tx, actor, cohort)
            except Forbidden:
                raise Forbidden(_("Only the members of this group can share its takeaways.")) from None
        return group

    async def record_takeaways(self, actor: Actor, group_id: int, text: str) -> Reply:
        if not text.strip():
            raise Invalid(_("The takeaways are empty."), _("Write the group's key points, then submit."))
        async with self.ctx.db.transaction() as tx:
            group = await self._group_for(tx, actor, group_id)
            group.takeaways = (group.takeaways + "\n" if group.takeaways else "") + text.strip()
            self.ctx.audit(tx, actor.user.key, "takeaways", group.session_id, group=group.number)
        return Reply(t(self.ctx.settings.locale, "Takeaways recorded, thank you!"), public=True)

    async def takeaways_form(self, actor: Actor, group_id: int) -> Form:
        async with self.ctx.db.transaction() as tx:
            await self._group_for(tx, actor, group_id)
        locale = self.ctx.reply_locale(actor)
        return Form(
            str(actions.SubmitTakeaways(group_id)),
            t(locale, "Group takeaways"),
            (TextField("takeaways", t(locale, "Your group's three key takeaways"), multiline=True, required=True),),
            submit_label=t(locale, "Submit"),
        )
