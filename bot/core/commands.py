"""The `/peer` commands for cohorts, sessions, the quiz, the report, the trainer call and personal data:
each handler checks the request, does its work in one transaction and answers with a neutral `Reply`.
Group and attendance commands live with their concern (`groups`, `attendance`); the routing table that
maps a command name to its handler is in `facade`, next to `Core.execute`.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import grammar
from bot.core import queries, rules
from bot.core.context import Context, log
from bot.core.exports import Exports
from bot.core.rules import Role, SessionState
from bot.core.timeline import Timeline
from bot.core.views import Views
from bot.errors import Forbidden, Invalid, NotFound
from bot.i18n import SESSION_STATES, Text, _, label, t
from bot.inbound import Actor
from bot.messages import Message, Reply
from bot.port import PlatformError
from bot.refs import ChannelRef, UserRef
from storage.models import Cohort, Enrollment, Member, PeerGroup, PeerSession, QuestionnaireItem

ENROLL_BATCH = 50  # people per transaction when enrolling a class: each batch takes a few milliseconds


class Commands:
    """Cohort, session, quiz, report, raise and mydata commands."""

    def __init__(self, ctx: Context, timeline: Timeline, views: Views, exports: Exports) -> None:
        self.ctx, self.timeline, self.views, self.exports = ctx, timeline, views, exports

    # ------------------------------------------------------------------ cohort commands

    async def help(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        return Reply(grammar.help_text(actor.is_trainer, self.ctx.reply_locale(actor)))

    async def cohort_create(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        channel_id = command.channel or (channel.id if channel else "")
        async with self.ctx.db.transaction() as tx:
            workspace = await queries.workspace(tx, actor)
            exists = await tx.exec(
                select(Cohort).where(Cohort.workspace_id == workspace.id, Cohort.name == command.cohort)
            )
            if exists.first() is not None:
                raise Invalid(
                    _("A cohort named `{cohort}` already exists.", cohort=command.cohort),
                    _(
                        "Add people with `/peer cohort add {cohort} @someone`, or pick another name.",
                        cohort=command.cohort,
                    ),
                )
            assert workspace.id is not None
            cohort = Cohort(
                workspace_id=workspace.id, name=command.cohort, channel_id=channel_id, created_at=self.ctx.clock.now()
            )
            tx.add(cohort)
            await tx.flush()
            trainer = await queries.actor_member(tx, actor)
            assert cohort.id is not None and trainer.id is not None
            tx.add(Enrollment(cohort_id=cohort.id, member_id=trainer.id, role="trainer", level=3))
            self.ctx.audit(tx, actor.user.key, "cohort.create", None, cohort=command.cohort)
        locale = self.ctx.reply_locale(actor)
        text = (
            t(
                locale,
                "Cohort `{cohort}` created; you are its trainer. Announcements go to <#{channel}>.",
                cohort=command.cohort,
                channel=channel_id,
            )
            if channel_id
            else t(
                locale,
                "Cohort `{cohort}` created; you are its trainer. Announcements will be sent by DM.",
                cohort=command.cohort,
            )
        )
        return Reply(text + "\n" + t(locale, "Next: `/peer cohort add {cohort} @learner=3 ...`", cohort=command.cohort))

    async def enroll(
        self,
        actor: Actor,
        cohort_name: str,
        users: Sequence[tuple[str, int | None]],
        *,
        default_level: int = 3,
        names: dict[str, str] | None = None,
    ) -> tuple[int, int]:
        """Enroll learners (levels updated for those already in); returns (added, updated).

        Batches of `ENROLL_BATCH` people, each one short transaction of a few set-based statements, so a class
        of thousands never holds SQLite's single connection long enough to make a check-in wait."""
        wanted = dict(users)  # a person mentioned twice counts once, with the last level given
        added = updated = 0
        ordered = list(wanted.items())
        for first in range(0, max(len(ordered), 1), ENROLL_BATCH):
            batch = ordered[first : first + ENROLL_BATCH]
            async with self.ctx.db.transaction() as tx:
                cohort = await queries.cohort(tx, actor, cohort_name)
                assert cohort.id is not None
                members = await self._members(tx, actor.user.platform, [u for u, _l in batch], names or {})
                found = await tx.exec(
                    select(Enrollment).where(
                        Enrollment.cohort_id == cohort.id,
                        col(Enrollment.member_id).in_([m.id for m in members.values()]),
                    )
                )
                enrolled = {e.member_id: e for e in found.all()}
                for user_id, level in batch:
                    member_id = members[user_id].id
                    assert member_id is not None
                    enrollment = enrolled.get(member_id)
                    if enrollment is None:
                        tx.add(Enrollment(cohort_id=cohort.id, member_id=member_id, level=level or default_level))
                        added += 1
                    elif level is not None and enrollment.level != level:
                        enrollment.level = level
                        updated += 1
                self.ctx.audit(tx, actor.user.key, "cohort.add", None, cohort=cohort_name, users=batch)
            await asyncio.sleep(0)  # let the requests that queued behind this batch in
        return added, updated

    @staticmethod
    async def _members(
        tx: AsyncSession, platform: str, user_ids: list[str], names: dict[str, str]
    ) -> dict[str, Member]:
        """The rows of these people, created in one flush for those seen for the first time."""
        found = await tx.exec(select(Member).where(Member.platform == platform, col(Member.user_id).in_(user_ids)))
        rows = {m.user_id: m for m in found.all()}
        for user_id in user_ids:
            name = queries.printable(names.get(user_id, ""), 200)
            if user_id not in rows:
                rows[user_id] = Member(platform=platform, user_id=user_id, display_name=name or user_id)
                tx.add(rows[user_id])
            elif name and rows[user_id].display_name != name:
                rows[user_id].display_name = name
        await tx.flush()
        return rows

    async def cohort_add(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        added, updated = await self.enroll(actor, command.cohort, command.users)
        return Reply(
            t(
                self.ctx.reply_locale(actor),
                "Cohort `{cohort}`: {added} added, {updated} level(s) updated.",
                cohort=command.cohort,
                added=added,
                updated=updated,
            )
        )

    async def cohort_import(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.ctx.db.transaction() as tx:
            await queries.cohort(tx, actor, command.cohort)
        platform = self.ctx.platform(actor.user.platform)
        try:
            members = await platform.members_of(ChannelRef(actor.user.platform, command.channel))
        except PlatformError as exc:
            raise Invalid(
                _(
                    "I could not read the members of <#{channel}>: {reason}.",
                    channel=command.channel,
                    reason=exc.detail or exc.code,
                ),
                _("Check that I can see that channel (invite me to it), then try again."),
            ) from None
        if not actor.is_admin and all(m.id != actor.user.id for m in members):
            raise Forbidden(
                _(
                    "You are not a member of <#{channel}>, so I will not read its members for you.",
                    channel=command.channel,
                ),
                _("Join the channel first, or ask a workspace admin to import it."),
            )
        users = [(m.id, command.level) for m in members if m.id != actor.user.id]
        added, _updated = await self.enroll(actor, command.cohort, users, default_level=command.level or 3)
        return Reply(
            t(
                self.ctx.reply_locale(actor),
                "Cohort `{cohort}`: imported {added} new learner(s) from <#{channel}>.",
                cohort=command.cohort,
                added=added,
                channel=command.channel,
            )
        )

    async def cohort_trainers(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        """`cohort trainers add|remove`: who may act on the cohort besides the workspace's admins."""
        (user_id, _level), verb = command.users[0], command.texts[0]
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            cohort = await queries.cohort(tx, actor, command.cohort)
            assert cohort.id is not None
            person = await queries.member(tx, UserRef(actor.user.platform, user_id))
            enrollment = (
                await tx.exec(
                    select(Enrollment).where(Enrollment.cohort_id == cohort.id, Enrollment.member_id == person.id)
                )
            ).first()
            trainers = await queries.cohort_trainers(tx, cohort.id)
            if verb == "add":
                if enrollment is not None and enrollment.role == Role.TRAINER:
                    return Reply(
                        t(locale, "<@{user}> is already a trainer of `{cohort}`.", user=user_id, cohort=cohort.name)
                    )
                if enrollment is not None:
                    raise Invalid(
                        _(
                            "<@{user}> is a learner of `{cohort}`; a learner cannot also train the cohort. "
                            "Nothing changed.",
                            user=user_id,
                            cohort=cohort.name,
                        )
                    )
                assert person.id is not None
                tx.add(Enrollment(cohort_id=cohort.id, member_id=person.id, role=Role.TRAINER, level=3))
                text = t(locale, "<@{user}> is now a trainer of `{cohort}`.", user=user_id, cohort=cohort.name)
            else:
                if enrollment is None or enrollment.role != Role.TRAINER:
                    raise NotFound(
                        _(
                            "<@{user}> is not a trainer of `{cohort}`. Nothing changed.",
                            user=user_id,
                            cohort=cohort.name,
                        )
                    )
                if len(trainers) == 1:
                    raise Invalid(
                        _(
                            "`{cohort}` needs at least one trainer: add another before removing <@{user}>.",
                            cohort=cohort.name,
                            user=user_id,
                        ),
                        grammar.usage_hint("cohort trainers"),
                    )
                await tx.delete(enrollment)
                text = t(locale, "<@{user}> no longer trains `{cohort}`.", user=user_id, cohort=cohort.name)
            self.ctx.audit(tx, actor.user.key, f"cohort.trainers.{verb}", None, cohort=cohort.name, user=user_id)
        return Reply(text)

    async def cohort_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.ctx.db.transaction() as tx:
            cohort = await queries.cohort(tx, actor, command.cohort)
            assert cohort.id is not None
            learners = await queries.learners(tx, cohort.id)
            rules = await queries.pair_rules(tx, cohort.id)
            sessions = await tx.exec(
                select(PeerSession).where(PeerSession.cohort_id == cohort.id).order_by(col(PeerSession.starts_at))
            )
            session_rows = list(sessions.all())
        locale = self.ctx.reply_locale(actor)
        lines = [t(locale, "*Cohort `{cohort}`* — {count} learner(s)", cohort=cohort.name, count=len(learners))]
        lines += [t(locale, "• <@{user}> level {level}", user=m.user_id, level=e.level) for e, m in learners]
        if rules:
            lines.append(t(locale, "*Pair rules*"))
            lines += [
                t(locale, "• <@{first}> and <@{second}>: kept apart", first=a.user_id, second=b.user_id)
                if rule.kind == "apart"
                else t(locale, "• <@{first}> and <@{second}>: kept together", first=a.user_id, second=b.user_id)
                for rule, a, b in rules
            ]
        if session_rows:
            lines.append(t(locale, "*Sessions*"))
            lines += [
                t(
                    locale,
                    "• `{session}` {title} — {start} ({state})",
                    session=p.short_id,
                    title=p.title,
                    start=self.ctx.fallback(p.starts_at),
                    state=label(locale, SESSION_STATES, p.state),
                )
                for p in session_rows
            ]
        return Reply("\n".join(lines))

    # ------------------------------------------------------------------ session commands

    async def session_plan(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        assert command.day and command.at and command.duration
        # bot/localtime.py via the grammar: a skipped wall time is refused, a repeated one noted (clock_note)
        starts, clock_note = grammar.plan_start(command.day, command.at, self.ctx.settings.zone, self.ctx.clock.now())
        local = starts.astimezone(self.ctx.settings.zone)
        if starts <= self.ctx.clock.now():
            raise Invalid(
                _(
                    "{moment} ({zone}) is in the past.",
                    moment=f"{local:%Y-%m-%d %H:%M}",
                    zone=self.ctx.settings.timezone,
                ),
                _("Plan the session for a later date. Usage: `{usage}`", usage=grammar.usage("session plan")),
            )
        opts = command.options
        fmt = opts.get("format", "groups")
        size = int(opts.get("size", "2" if fmt == "tutoring" else "4"))
        lead = grammar.parse_duration_arg(opts.get("prep_before", "1d"), "session plan")
        retention = grammar.retention_weeks(opts.get("retention", "2w"))
        async with self.ctx.db.transaction() as tx:
            cohort = await queries.cohort(tx, actor, command.cohort)
            creator = await queries.actor_member(tx, actor)
            assert cohort.id is not None and creator.id is not None
            peer_session = PeerSession(
                short_id=f"tmp{random.getrandbits(40):x}",
                cohort_id=cohort.id,
                title=command.title,
                objectives=opts.get("objectives", ""),
                format=fmt,
                group_size=size,
                starts_at=starts,
                duration_minutes=int(command.duration.total_seconds() // 60),
                prep_material=opts.get("prep", ""),
                prep_lead_minutes=int(lead.total_seconds() // 60),
                retention_days=retention[0] * 7,
                retention2_days=retention[1] * 7,
                groups_from=opts.get("groups_from", "checked_in"),
                reviewers=int(opts.get("reviewers", "2")),
                named_reviews=opts.get("named") == "yes",
                channel_id=cohort.channel_id,
                created_by=creator.id,
                created_at=self.ctx.clock.now(),
            )
            tx.add(peer_session)
            await tx.flush()
            peer_session.short_id = f"s{peer_session.id}"
            self.ctx.audit(
                tx,
                actor.user.key,
                "session.plan",
                peer_session.id,
                title=command.title,
                start=starts,
            )
        self.ctx.notify_scheduler(peer_session)
        await self.timeline.ensure_event(peer_session.short_id)  # in the server's Events list at once
        locale = self.ctx.reply_locale(actor)
        planned = t(
            locale,
            "Planned session `{session}`: “{title}” for cohort `{cohort}`, {start}, {minutes} min, format {format}, "
            "groups of {size}.",
            session=peer_session.short_id,
            title=peer_session.title,
            cohort=cohort.name,
            start=self.ctx.fallback(starts),
            minutes=f"{command.duration.total_seconds() / 60:.0f}",
            format=fmt,
            size=size,
        )
        quiz = t(
            locale,
            'Add quiz items with `/peer quiz add {session} "question" "right" "wrong"`.',
            session=peer_session.short_id,
        )
        note = [clock_note.render(locale)] if clock_note else []
        if fmt == "review":
            note.append(
                t(
                    locale,
                    "Peer review: learners hand in their work with `/peer submit {session}` (or the button on the "
                    "announcements) before the start; each work gets {count} reviewer(s), {named}. Set the rubric with "
                    '`/peer review criteria {session} "criterion" …`.',
                    session=peer_session.short_id,
                    count=peer_session.reviewers,
                    named=t(locale, "named") if peer_session.named_reviews else t(locale, "anonymous"),
                )
            )
        return Reply("\n".join([planned, *note, quiz]), extra={"session": peer_session.short_id})

    async def session_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        return Reply(await self.views.describe_session(actor, command.session, self.ctx.reply_locale(actor)))

    async def session_start(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
        locale = self.ctx.reply_locale(actor)
        if not rules.can_start(peer_session.state):
            raise Invalid(
                _(
                    "Session `{session}` is {state}; only a planned session can start.",
                    session=peer_session.short_id,
                    state=Text(SESSION_STATES[peer_session.state]),
                )
            )
        detail = await self.timeline.start(peer_session.short_id, by=actor.user.key, locale=locale)
        return Reply(t(locale, "Session `{session}` started. {detail}", session=peer_session.short_id, detail=detail))

    async def session_end(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
        if not rules.can_end(peer_session.state):
            raise Invalid(
                _(
                    "Session `{session}` is {state}; only a running session can end.",
                    session=peer_session.short_id,
                    state=Text(SESSION_STATES[peer_session.state]),
                ),
                _("Start it first with `/peer session start {session}`.", session=peer_session.short_id),
            )
        await self.timeline.end(peer_session.short_id, by=actor.user.key)
        return Reply(
            t(
                self.ctx.reply_locale(actor),
                "Session `{session}` ended; questionnaires are on their way.",
                session=peer_session.short_id,
            )
        )

    async def session_cancel(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session, lock=True)  # vs a start now
            if not rules.can_cancel(peer_session.state):
                raise Invalid(
                    _(
                        "Session `{session}` is {state}; only a session that has not started can be cancelled.",
                        session=peer_session.short_id,
                        state=Text(SESSION_STATES[peer_session.state]),
                    )
                )
            peer_session.state = SessionState.CANCELLED
            self.ctx.audit(tx, actor.user.key, "session.cancel", peer_session.id)
        if peer_session.event_id:
            cohort_platform = await self.ctx.platform_of(peer_session)
            try:
                await cohort_platform.end_event(peer_session.event_id, cancelled=True)
            except PlatformError as exc:
                log.warning("could not cancel event of %s: %s", peer_session.short_id, exc)
        self.ctx.notify_scheduler(peer_session)
        return Reply(t(self.ctx.reply_locale(actor), "Session `{session}` cancelled.", session=peer_session.short_id))

    async def quiz_add(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        question, correct, *wrong = command.texts
        options = [correct, *wrong]
        if any(not o.strip() for o in [question, *options]) or len(set(options)) != len(options):
            raise Invalid(
                _("The question and answers must be non-empty and the answers all different."),
                grammar.usage_hint("quiz add"),
            )
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
            if not rules.quiz_editable(peer_session):
                raise Invalid(
                    _("The retention quiz of `{session}` has already been sent.", session=peer_session.short_id)
                )
            assert peer_session.id is not None
            count = await queries.quiz_size(tx, peer_session)
            if count >= 10:
                raise Invalid(_("A retention quiz holds at most 10 questions."))
            tx.add(
                QuestionnaireItem(
                    session_id=peer_session.id,
                    kind="retention",
                    position=count + 1,
                    item_key=f"q{count + 1}",
                    item_type="choice",
                    text=question,
                    options_json=json.dumps(options, ensure_ascii=False),
                    correct="0",
                )
            )
            self.ctx.audit(tx, actor.user.key, "quiz.add", peer_session.id, question=question)
        return Reply(
            t(
                self.ctx.reply_locale(actor),
                "Quiz question {number} added to `{session}`.",
                number=count + 1,
                session=peer_session.short_id,
            )
        )

    async def report(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        from bot.reports import session_report

        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
            missed = await self.views.missed_questions(tx, peer_session, locale)
            formats = await self.timeline.formats.report_lines(tx, peer_session, locale)
        report = await session_report(self.views, peer_session.short_id, locale)
        notes = await self.exports.note_lines(peer_session.short_id, locale)
        text = "\n".join([report, *missed, *formats, *notes])
        # The chart goes to the trainer's DM with the same text; the reply keeps the text whatever happens to it.
        problem = await self.exports.chart(actor, peer_session.short_id, text, locale)
        sent = problem or t(locale, "The chart is in your DMs, with this summary.")
        return Reply("\n".join([text, sent]))

    # ------------------------------------------------------------------ learner commands

    async def raise_hand(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        if channel is None:
            raise Invalid(_("`/peer raise` works from your group's breakout channel."))
        async with self.ctx.db.transaction() as tx:
            group = (await tx.exec(select(PeerGroup).where(PeerGroup.channel_id == channel.id))).first()
            if group is None:
                raise Invalid(
                    _("`/peer raise` works from your group's breakout channel."),
                    _("Go to your group's channel and type it there."),
                )
            peer_session = await tx.get(PeerSession, group.session_id)
            assert peer_session is not None
            trainers = await queries.trainers(tx, peer_session)
            self.ctx.audit(tx, actor.user.key, "raise", peer_session.id, group=group.number)
        platform = self.ctx.platform(channel.platform)
        mentions = " ".join(f"<@{m.user_id}>" for m in trainers)
        call = t(
            self.ctx.settings.locale,
            "✋ {trainers}: <@{user}> asks for the trainer in group {number}.",
            trainers=mentions,
            user=actor.user.id,
            number=group.number,
        )
        await platform.post(channel, Message(call))
        return Reply(t(self.ctx.reply_locale(actor), "The trainer has been called to your group."))

    async def mydata(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        from bot.reports import my_data

        locale = self.ctx.reply_locale(actor)
        text = await my_data(self.ctx.db, actor.user, locale)
        try:
            await self.ctx.platform(actor.user.platform).send_dm(actor.user, Message(text))
        except PlatformError:
            return Reply(text)
        return Reply(t(locale, "I have sent you by DM everything I store about you."))
