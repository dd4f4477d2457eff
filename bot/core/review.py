"""The peer review format (`format=review`): learners hand in their work (text or a link) until the session
starts; at the start each work gets k reviewers (`bot.reviewing.assign_reviewers`), each of whom is sent the work
by DM with a rubric form (the trainer's criteria, 1–4 each, and a comment); late reviewers are reminded at the
wrap-up; at the end each author gets the aggregated feedback by DM. The trainer's report lists the submissions,
the reviews and the outliers.

Reviews are anonymous unless the session was planned with `named=yes`: then authors see their reviewers' names
and reviewers see the author's. The trainer always sees everything.
"""

from __future__ import annotations

import json
from statistics import fmean, median

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions, grammar
from bot.core import queries, rules
from bot.core.context import Context
from bot.core.outbox import Outbox
from bot.core.rules import DeliveryKind, SessionState
from bot.errors import Invalid, NotFound
from bot.i18n import N_, _, t
from bot.inbound import Actor
from bot.messages import Button, ButtonStyle, Form, Message, Reply, Section, TextField
from bot.refs import ChannelRef
from bot.reviewing import assign_reviewers, review_outliers
from storage.models import AuditEvent, Delivery, Member, PeerSession, ReviewAssignment, ReviewCriterion, WorkSubmission

MAX_WORK = 3000  # characters of a work handed in (a Discord paragraph field holds 3,000)
DEFAULT_CRITERION = N_("Overall quality")
SCORES = range(1, 5)


def _key_id(delivery: Delivery) -> int:
    """The assignment a review DM is about: the last part of its idempotency key."""
    return int(delivery.idempotency_key.rsplit(":", 1)[1])


def _scores(assignment: ReviewAssignment) -> list[int]:
    return [int(x) for x in json.loads(assignment.scores_json)] if assignment.scores_json else []


class Reviews:
    """Submissions, assignment, rubric forms, reminders and feedback of peer review sessions."""

    def __init__(self, ctx: Context, outbox: Outbox) -> None:
        self.ctx, self.outbox = ctx, outbox
        outbox.composers[DeliveryKind.REVIEW_REQUEST] = self._request
        outbox.composers[DeliveryKind.REVIEW_REMINDER] = self._reminder
        outbox.composers[DeliveryKind.REVIEW_FEEDBACK] = self._feedback

    # ------------------------------------------------------------------ the trainer's rubric

    async def criteria_command(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        """`/peer review criteria <session> "<c1>" …`: the rubric, replaced whole until the start."""
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
            self._require_review(peer_session)
            if not rules.can_start(peer_session.state):
                raise Invalid(
                    _(
                        "Session `{session}` has started: its reviewers already have the rubric.",
                        session=peer_session.short_id,
                    )
                )
            assert peer_session.id is not None
            for old in (
                await tx.exec(select(ReviewCriterion).where(ReviewCriterion.session_id == peer_session.id))
            ).all():
                await tx.delete(old)
            await tx.flush()
            for position, text in enumerate(command.texts, start=1):
                tx.add(ReviewCriterion(session_id=peer_session.id, position=position, text=text))
            self.ctx.audit(tx, actor.user.key, "review.criteria", peer_session.id, criteria=list(command.texts))
        return Reply(
            t(
                self.ctx.reply_locale(actor),
                "Rubric of `{session}`: {criteria} (each scored 1–4, with a comment).",
                session=peer_session.short_id,
                criteria="; ".join(command.texts),
            )
        )

    def _require_review(self, peer_session: PeerSession) -> None:
        if peer_session.format != "review":
            raise Invalid(
                _("Session `{session}` is not a peer review session.", session=peer_session.short_id),
                _("Plan one with `format=review`."),
            )

    async def _criteria(self, tx: AsyncSession, peer_session: PeerSession) -> list[str]:
        rows = await tx.exec(
            select(ReviewCriterion.text)
            .where(ReviewCriterion.session_id == peer_session.id)
            .order_by(col(ReviewCriterion.position))
        )
        return list(rows.all()) or [t(self.ctx.settings.locale, DEFAULT_CRITERION)]

    # ------------------------------------------------------------------ handing in the work

    async def submit_command(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        """`/peer submit [session]`: the form to hand in one's work."""
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.learner_session(tx, actor, command.session)
        form = await self.work_form(actor, peer_session.short_id)
        return Reply(form.title, form=form)

    async def _open_for_work(self, tx: AsyncSession, actor: Actor, short_id: str) -> tuple[PeerSession, Member]:
        peer_session = await queries.peer_session(tx, actor, short_id)
        self._require_review(peer_session)
        member = await queries.actor_member(tx, actor)
        await queries.enrollment(tx, peer_session, member)
        if not rules.can_start(peer_session.state):
            raise Invalid(
                _(
                    "Work for `{session}` was due by its start; I can no longer take it.",
                    session=peer_session.short_id,
                ),
                _("Send it to your trainer directly."),
            )
        return peer_session, member

    async def work_form(self, actor: Actor, short_id: str) -> Form:
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            peer_session, member = await self._open_for_work(tx, actor, short_id)
            earlier = (
                await tx.exec(
                    select(WorkSubmission).where(
                        WorkSubmission.session_id == peer_session.id, WorkSubmission.member_id == member.id
                    )
                )
            ).first()
        return Form(
            str(actions.SubmitWork(peer_session.short_id)),
            t(locale, "Your work for peer review"),
            (
                TextField(
                    "work",
                    t(locale, "Your work: the text, or a link to it"),
                    multiline=True,
                    required=True,
                    initial=earlier.content if earlier else "",
                ),
            ),
            submit_label=t(locale, "Hand in"),
            intro=t(locale, "You can hand it in again to replace it until the session starts."),
        )

    async def record_work(self, actor: Actor, short_id: str, text: str) -> Reply:
        work = text.strip()
        if not work:
            raise Invalid(_("Your work is empty."), _("Paste the text, or a link to it."), field="work")
        if len(work) > MAX_WORK:
            raise Invalid(
                _("Your work is {length} characters long; at most {limit}.", length=len(work), limit=MAX_WORK),
                _("Share a link to it instead."),
                field="work",
            )
        async with self.ctx.db.transaction() as tx:
            peer_session, member = await self._open_for_work(tx, actor, short_id)
            assert peer_session.id is not None and member.id is not None
            row = (
                await tx.exec(
                    select(WorkSubmission).where(
                        WorkSubmission.session_id == peer_session.id, WorkSubmission.member_id == member.id
                    )
                )
            ).first()
            again = row is not None
            if row is None:
                row = WorkSubmission(
                    session_id=peer_session.id, member_id=member.id, content=work, submitted_at=self.ctx.clock.now()
                )
                tx.add(row)
            else:
                row.content, row.submitted_at = work, self.ctx.clock.now()
            self.ctx.audit(tx, actor.user.key, "review.work", peer_session.id, replaced=again)
        locale = self.ctx.reply_locale(actor)
        return Reply(
            t(locale, "Your work is handed in; it goes to your reviewers when `{session}` starts.", session=short_id)
        )

    # ------------------------------------------------------------------ the timeline's hooks

    async def assign(self, tx: AsyncSession, peer_session: PeerSession) -> int:
        """At the start (once): assign the reviewers and queue their DMs; returns how many reviews are assigned."""
        if peer_session.format != "review" or peer_session.id is None:
            return 0
        done = await queries.count(
            tx, AuditEvent, AuditEvent.session_id == peer_session.id, AuditEvent.action == "review.assign"
        )
        if done:  # once, even when nobody handed anything in
            return 0
        works = (await tx.exec(select(WorkSubmission).where(WorkSubmission.session_id == peer_session.id))).all()
        by_author = {w.member_id: w for w in works}
        apart = [
            (rule.member_a_id, rule.member_b_id)
            for rule, _a, _b in await queries.pair_rules(tx, peer_session.cohort_id)
            if rule.kind == "apart"
        ]
        plan = assign_reviewers(list(by_author), peer_session.reviewers, apart, seed=peer_session.id)
        now = self.ctx.clock.now()
        created: list[ReviewAssignment] = []
        for author, reviewers in sorted(plan.reviewers.items()):
            for reviewer in reviewers:
                row = ReviewAssignment(
                    session_id=peer_session.id,
                    submission_id=by_author[author].id or 0,
                    reviewer_id=reviewer,
                    assigned_at=now,
                )
                tx.add(row)
                created.append(row)
        await tx.flush()
        members = {m.id: m for _e, m in await queries.learners(tx, peer_session.cohort_id)}
        for row in created:
            reviewer_member = members.get(row.reviewer_id)
            if reviewer_member is not None:
                key = f"{DeliveryKind.REVIEW_REQUEST}:{peer_session.short_id}:{row.id}"
                await self.outbox.enqueue(tx, DeliveryKind.REVIEW_REQUEST, peer_session, reviewer_member, now, key=key)
        self.ctx.audit(
            tx,
            "scheduler",
            "review.assign",
            peer_session.id,
            works=len(works),
            reviews=len(created),
            missing=sum(plan.missing.values()),
        )
        return len(created)

    async def remind(self, tx: AsyncSession, peer_session: PeerSession) -> None:
        """At the wrap-up: a reminder to every reviewer whose review is still missing."""
        if peer_session.format != "review":
            return
        now = self.ctx.clock.now()
        late = (
            await tx.exec(
                select(ReviewAssignment, Member)
                .join(Member, col(Member.id) == col(ReviewAssignment.reviewer_id))
                .where(ReviewAssignment.session_id == peer_session.id, col(ReviewAssignment.reviewed_at).is_(None))
            )
        ).all()
        for row, reviewer in late:
            key = f"{DeliveryKind.REVIEW_REMINDER}:{peer_session.short_id}:{row.id}"
            await self.outbox.enqueue(tx, DeliveryKind.REVIEW_REMINDER, peer_session, reviewer, now, key=key)

    async def queue_feedback(self, tx: AsyncSession, peer_session: PeerSession) -> None:
        """At the end: each author gets their reviews, aggregated, by DM."""
        if peer_session.format != "review":
            return
        now = self.ctx.clock.now()
        authors = (
            await tx.exec(
                select(Member)
                .join(WorkSubmission, col(WorkSubmission.member_id) == col(Member.id))
                .where(WorkSubmission.session_id == peer_session.id)
            )
        ).all()
        for author in authors:
            await self.outbox.enqueue(tx, DeliveryKind.REVIEW_FEEDBACK, peer_session, author, now)

    # ------------------------------------------------------------------ the reviewer's side

    async def _request(
        self, tx: AsyncSession, delivery: Delivery, peer_session: PeerSession, member: Member
    ) -> Message | None:
        row = await tx.get(ReviewAssignment, _key_id(delivery))
        work = await tx.get(WorkSubmission, row.submission_id) if row is not None else None
        if row is None or work is None or row.reviewed_at is not None:
            return None
        locale = self.ctx.locale_of(member)
        author = await tx.get(Member, work.member_id)
        if peer_session.named_reviews and author is not None:
            intro = t(
                locale,
                "🔍 Please review <@{author}>'s work for “{title}”: score each criterion from 1 to 4 and add a "
                "comment.",
                author=author.user_id,
                title=peer_session.title,
            )
        else:
            intro = t(
                locale,
                "🔍 Please review a peer's work for “{title}” (they will not know it was you): score each criterion "
                "from 1 to 4 and add a comment.",
                title=peer_session.title,
            )
        return Message(
            intro,
            sections=(Section("\n".join(f"> {line}" for line in work.content.splitlines())),),
            buttons=(Button(str(actions.OpenReview(row.id or 0)), t(locale, "Review"), ButtonStyle.PRIMARY),),
            key=delivery.idempotency_key,
            retry=delivery.attempts > 1,
        )

    async def _reminder(
        self, tx: AsyncSession, delivery: Delivery, peer_session: PeerSession, member: Member
    ) -> Message | None:
        row = await tx.get(ReviewAssignment, _key_id(delivery))
        if row is None or row.reviewed_at is not None:
            return None
        locale = self.ctx.locale_of(member)
        return Message(
            t(
                locale,
                "⏰ A reminder: your review of a peer's work for “{title}” is still missing; it takes a few minutes.",
                title=peer_session.title,
            ),
            buttons=(Button(str(actions.OpenReview(row.id or 0)), t(locale, "Review"), ButtonStyle.PRIMARY),),
            key=delivery.idempotency_key,
            retry=delivery.attempts > 1,
        )

    async def _assignment(
        self, tx: AsyncSession, actor: Actor, assignment_id: int
    ) -> tuple[ReviewAssignment, PeerSession]:
        row = await tx.get(ReviewAssignment, assignment_id)
        peer_session = await tx.get(PeerSession, row.session_id) if row is not None else None
        if row is None or peer_session is None:
            raise NotFound(_("This review no longer exists."))
        try:
            await queries.peer_session(tx, actor, peer_session.short_id)
        except NotFound:
            raise NotFound(_("This review no longer exists.")) from None
        me = await queries.actor_member(tx, actor)
        if me.id != row.reviewer_id:
            raise Invalid(_("This review was given to someone else."), _("Your own reviews come to you by DM."))
        if peer_session.state in rules.GONE:
            raise Invalid(_("Session `{session}` is closed: reviews are over.", session=peer_session.short_id))
        if row.reviewed_at is not None:
            raise Invalid(_("You have already sent this review. Thank you!"))
        return row, peer_session

    async def review_form(self, actor: Actor, assignment_id: int) -> Form:
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            _row, peer_session = await self._assignment(tx, actor, assignment_id)
            criteria = await self._criteria(tx, peer_session)
        fields = tuple(
            TextField(f"c{position}", f"1–4 · {text}", multiline=False, required=True)
            for position, text in enumerate(criteria, start=1)
        )
        return Form(
            str(actions.SubmitReview(assignment_id)),
            t(locale, "Peer review"),
            (*fields, TextField("comment", t(locale, "Comment for the author"), multiline=True, required=True)),
            submit_label=t(locale, "Send the review"),
            intro=t(locale, "1 = not yet, 2 = partly, 3 = mostly, 4 = fully."),
        )

    async def record_review(self, actor: Actor, assignment_id: int, values: dict[str, str]) -> Reply:
        async with self.ctx.db.transaction() as tx:
            row, peer_session = await self._assignment(tx, actor, assignment_id)
            criteria = await self._criteria(tx, peer_session)
            scores: list[int] = []
            for position, criterion in enumerate(criteria, start=1):
                raw = values.get(f"c{position}", "").strip()
                if raw not in {str(s) for s in SCORES}:
                    raise Invalid(
                        _("“{criterion}”: give a whole number from 1 to 4, not `{raw}`.", criterion=criterion, raw=raw),
                        field=f"c{position}",
                    )
                scores.append(int(raw))
            comment = values.get("comment", "").strip()
            if not comment:
                raise Invalid(
                    _("The comment is empty."), _("Say one thing that works and one to improve."), field="comment"
                )
            row.scores_json, row.comment, row.reviewed_at = json.dumps(scores), comment, self.ctx.clock.now()
            self.ctx.audit(tx, actor.user.key, "review.done", peer_session.id, assignment=row.id)
        return Reply(t(self.ctx.reply_locale(actor), "Review sent, thank you! The author gets it at the end."))

    # ------------------------------------------------------------------ the author's feedback

    async def _feedback(
        self, tx: AsyncSession, delivery: Delivery, peer_session: PeerSession, member: Member
    ) -> Message | None:
        work = (
            await tx.exec(
                select(WorkSubmission).where(
                    WorkSubmission.session_id == peer_session.id, WorkSubmission.member_id == member.id
                )
            )
        ).first()
        if work is None:
            return None
        done = [
            (row, reviewer)
            for row, reviewer in (
                await tx.exec(
                    select(ReviewAssignment, Member)
                    .join(Member, col(Member.id) == col(ReviewAssignment.reviewer_id))
                    .where(ReviewAssignment.submission_id == work.id, col(ReviewAssignment.reviewed_at).is_not(None))
                    .order_by(col(ReviewAssignment.id))
                )
            ).all()
        ]
        locale = self.ctx.locale_of(member)
        if not done:
            text = t(
                locale, "📬 No review of your work for “{title}” came in; your trainer knows.", title=peer_session.title
            )
            return Message(text, key=delivery.idempotency_key, retry=delivery.attempts > 1)
        criteria = await self._criteria(tx, peer_session)
        averages = [
            t(
                locale,
                "{criterion}: {mean} / 4",
                criterion=criterion,
                mean=f"{fmean(_scores(row)[i] for row, _r in done if len(_scores(row)) > i):.1f}",
            )
            for i, criterion in enumerate(criteria)
            if any(len(_scores(row)) > i for row, _r in done)
        ]
        comments = [
            f"— <@{reviewer.user_id}>: {row.comment}" if peer_session.named_reviews else f"— {row.comment}"
            for row, reviewer in done
        ]
        return Message(
            t(
                locale,
                "📬 Peer feedback on your work for “{title}” ({count} review(s)):",
                title=peer_session.title,
                count=len(done),
            ),
            sections=(Section("\n".join(averages)), Section("\n".join(comments))),
            key=delivery.idempotency_key,
            retry=delivery.attempts > 1,
        )

    # ------------------------------------------------------------------ the trainer's report

    async def report_lines(self, tx: AsyncSession, peer_session: PeerSession, locale: str) -> list[str]:
        if peer_session.format != "review" or peer_session.id is None:
            return []
        works = (
            await tx.exec(
                select(WorkSubmission, Member)
                .join(Member, col(Member.id) == col(WorkSubmission.member_id))
                .where(WorkSubmission.session_id == peer_session.id)
                .order_by(col(WorkSubmission.id))
            )
        ).all()
        rows = (
            await tx.exec(
                select(ReviewAssignment, Member)
                .join(Member, col(Member.id) == col(ReviewAssignment.reviewer_id))
                .where(ReviewAssignment.session_id == peer_session.id)
                .order_by(col(ReviewAssignment.id))
            )
        ).all()
        learners = len(await queries.learners(tx, peer_session.cohort_id))
        done = [(r, m) for r, m in rows if r.reviewed_at is not None]
        lines = [
            t(locale, "*Peer review*"),
            t(
                locale,
                "{works} of {learners} learner(s) handed in their work; {done} of {reviews} review(s) done.",
                works=len(works),
                learners=learners,
                done=len(done),
                reviews=len(rows),
            ),
        ]
        means: dict[int, dict[int, float]] = {}
        for row, _reviewer in done:
            if _scores(row):
                means.setdefault(row.submission_id, {})[row.reviewer_id] = fmean(_scores(row))
        names = {m.id: m.user_id for _w, m in works} | {m.id: m.user_id for _r, m in rows}
        for work, author in works:
            mine = means.get(work.id or 0, {})
            total = sum(1 for r, _m in rows if r.submission_id == work.id)
            mean = f"{fmean(mine.values()):.1f}" if mine else "–"
            reviewers = ", ".join(f"<@{m.user_id}>" for r, m in rows if r.submission_id == work.id)
            lines.append(
                t(
                    locale,
                    "<@{author}>: {done}/{total} review(s), mean {mean}; reviewers {reviewers}",
                    author=author.user_id,
                    done=len(mine),
                    total=total,
                    mean=mean,
                    reviewers=reviewers or "–",
                )
            )
        authors = {w.id: a for w, a in works}
        for submission, reviewer in review_outliers(means):
            lines.append(
                t(
                    locale,
                    "Outlier: <@{reviewer}>'s review of <@{author}>'s work ({mean} against a median of {median}).",
                    reviewer=names.get(reviewer, "?"),
                    author=authors[submission].user_id,
                    mean=f"{means[submission][reviewer]:.1f}",
                    median=f"{median(means[submission].values()):.1f}",
                )
            )
        late = [m for r, m in rows if r.reviewed_at is None]
        if late and peer_session.state != SessionState.PLANNED:
            lines.append(
                t(locale, "Reviews missing from: {people}", people=", ".join(sorted({f"<@{m.user_id}>" for m in late})))
            )
        return lines
