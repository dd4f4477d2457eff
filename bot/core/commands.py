"""The `/peer` commands for cohorts, sessions, the quiz, the report, the trainer call and personal data:
each handler checks the request, does its work in one transaction and answers with a neutral `Reply`.
Group and attendance commands live with their concern (`groups`, `attendance`); the routing table that
maps a command name to its handler is in `facade`, next to `Core.execute`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select

from bot import grammar
from bot.core.base import log
from bot.core.timeline import TimelineMixin
from bot.errors import Invalid
from bot.i18n import SESSION_STATES, Text, _, label, t
from bot.inbound import Actor
from bot.messages import Message, Reply
from bot.port import PlatformError
from bot.refs import ChannelRef, UserRef
from storage.models import Cohort, Enrollment, PeerGroup, PeerSession, QuestionnaireItem


class CommandsMixin(TimelineMixin):
    """Cohort, session, quiz, report, raise and mydata commands."""

    # ------------------------------------------------------------------ cohort commands

    async def _cmd_help(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        return Reply(grammar.help_text(actor.is_trainer, self.reply_locale(actor)))

    async def _cmd_cohort_create(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        channel_id = command.channel or (channel.id if channel else "")
        async with self.db.session() as s:
            workspace = await self._workspace(s, actor)
            exists = await s.exec(
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
                workspace_id=workspace.id, name=command.cohort, channel_id=channel_id, created_at=self.clock.now()
            )
            s.add(cohort)
            await s.flush()
            trainer = await self._actor_member(s, actor)
            assert cohort.id is not None and trainer.id is not None
            s.add(Enrollment(cohort_id=cohort.id, member_id=trainer.id, role="trainer", level=3))
            await self._audit(s, actor.user.key, "cohort.create", None, cohort=command.cohort)
        locale = self.reply_locale(actor)
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
        """Enroll learners (levels updated for those already in); returns (added, updated)."""
        added = updated = 0
        async with self.db.session() as s:
            cohort = await self._cohort(s, actor, cohort_name)
            assert cohort.id is not None
            for user_id, level in users:
                member = await self._member(s, UserRef(actor.user.platform, user_id), (names or {}).get(user_id, ""))
                assert member.id is not None
                found = await s.exec(
                    select(Enrollment).where(Enrollment.cohort_id == cohort.id, Enrollment.member_id == member.id)
                )
                enrollment = found.first()
                if enrollment is None:
                    s.add(Enrollment(cohort_id=cohort.id, member_id=member.id, level=level or default_level))
                    added += 1
                elif level is not None and enrollment.level != level:
                    enrollment.level = level
                    updated += 1
            await self._audit(s, actor.user.key, "cohort.add", None, cohort=cohort_name, users=list(users))
        return added, updated

    async def _cmd_cohort_add(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        added, updated = await self.enroll(actor, command.cohort, command.users)
        return Reply(
            t(
                self.reply_locale(actor),
                "Cohort `{cohort}`: {added} added, {updated} level(s) updated.",
                cohort=command.cohort,
                added=added,
                updated=updated,
            )
        )

    async def _cmd_cohort_import(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            await self._cohort(s, actor, command.cohort)
        platform = self.platform_for(actor.user.platform)
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
        users = [(m.id, command.level) for m in members if m.id != actor.user.id]
        added, _updated = await self.enroll(actor, command.cohort, users, default_level=command.level or 3)
        return Reply(
            t(
                self.reply_locale(actor),
                "Cohort `{cohort}`: imported {added} new learner(s) from <#{channel}>.",
                cohort=command.cohort,
                added=added,
                channel=command.channel,
            )
        )

    async def _cmd_cohort_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            cohort = await self._cohort(s, actor, command.cohort)
            assert cohort.id is not None
            learners = await self._learners(s, cohort.id)
            rules = await self._pair_rules(s, cohort.id)
            sessions = await s.exec(
                select(PeerSession).where(PeerSession.cohort_id == cohort.id).order_by(col(PeerSession.starts_at))
            )
            session_rows = list(sessions.all())
        locale = self.reply_locale(actor)
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
                    start=self._fallback(p.starts_at),
                    state=label(locale, SESSION_STATES, p.state),
                )
                for p in session_rows
            ]
        return Reply("\n".join(lines))

    # ------------------------------------------------------------------ session commands

    async def _cmd_session_plan(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        assert command.day and command.at and command.duration
        local = datetime.combine(command.day, command.at, tzinfo=self.settings.zone)
        starts = local.astimezone(self.clock.now().tzinfo)
        if starts <= self.clock.now():
            raise Invalid(
                _("{moment} ({zone}) is in the past.", moment=f"{local:%Y-%m-%d %H:%M}", zone=self.settings.timezone),
                _("Plan the session for a later date. Usage: `{usage}`", usage=grammar.usage("session plan")),
            )
        opts = command.options
        fmt = opts.get("format", "groups")
        size = int(opts.get("size", "2" if fmt == "tutoring" else "4"))
        lead = grammar.parse_duration_arg(opts.get("prep_before", "1d"), "session plan")
        async with self.db.session() as s:
            cohort = await self._cohort(s, actor, command.cohort)
            creator = await self._actor_member(s, actor)
            assert cohort.id is not None and creator.id is not None
            session = PeerSession(
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
                retention_days=28 if opts.get("retention") == "4w" else 14,
                groups_from=opts.get("groups_from", "checked_in"),
                channel_id=cohort.channel_id,
                created_by=creator.id,
                created_at=self.clock.now(),
            )
            s.add(session)
            await s.flush()
            session.short_id = f"s{session.id}"
            await self._audit(
                s,
                actor.user.key,
                "session.plan",
                session.id,
                title=command.title,
                start=starts,
            )
        self._notify_scheduler(session)
        locale = self.reply_locale(actor)
        planned = t(
            locale,
            "Planned session `{session}`: “{title}” for cohort `{cohort}`, {start}, {minutes} min, format {format}, "
            "groups of {size}.",
            session=session.short_id,
            title=session.title,
            cohort=cohort.name,
            start=self._fallback(starts),
            minutes=f"{command.duration.total_seconds() / 60:.0f}",
            format=fmt,
            size=size,
        )
        quiz = t(
            locale,
            'Add quiz items with `/peer quiz add {session} "question" "right" "wrong"`.',
            session=session.short_id,
        )
        return Reply(planned + "\n" + quiz, extra={"session": session.short_id})

    async def _cmd_session_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        return Reply(await self.describe_session(actor, command.session, self.reply_locale(actor)))

    async def _cmd_session_start(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
        locale = self.reply_locale(actor)
        if session.state not in {"planned", "prep_sent"}:
            raise Invalid(
                _(
                    "Session `{session}` is {state}; only a planned session can start.",
                    session=session.short_id,
                    state=Text(SESSION_STATES[session.state]),
                )
            )
        detail = await self.start(session.short_id, by=actor.user.key, locale=locale)
        return Reply(t(locale, "Session `{session}` started. {detail}", session=session.short_id, detail=detail))

    async def _cmd_session_end(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
        if session.state != "running":
            raise Invalid(
                _(
                    "Session `{session}` is {state}; only a running session can end.",
                    session=session.short_id,
                    state=Text(SESSION_STATES[session.state]),
                ),
                _("Start it first with `/peer session start {session}`.", session=session.short_id),
            )
        await self.end(session.short_id, by=actor.user.key)
        return Reply(
            t(
                self.reply_locale(actor),
                "Session `{session}` ended; questionnaires are on their way.",
                session=session.short_id,
            )
        )

    async def _cmd_session_cancel(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            if session.state not in {"planned", "prep_sent"}:
                raise Invalid(
                    _(
                        "Session `{session}` is {state}; only a session that has not started can be cancelled.",
                        session=session.short_id,
                        state=Text(SESSION_STATES[session.state]),
                    )
                )
            session.state = "cancelled"
            await self._audit(s, actor.user.key, "session.cancel", session.id)
        if session.event_id:
            cohort_platform = await self._platform_of(session)
            try:
                await cohort_platform.end_event(session.event_id, cancelled=True)
            except PlatformError as exc:
                log.warning("could not cancel event of %s: %s", session.short_id, exc)
        self._notify_scheduler(session)
        return Reply(t(self.reply_locale(actor), "Session `{session}` cancelled.", session=session.short_id))

    async def _cmd_quiz_add(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        question, correct, *wrong = command.texts
        options = [correct, *wrong]
        if any(not o.strip() for o in [question, *options]) or len(set(options)) != len(options):
            raise Invalid(
                _("The question and answers must be non-empty and the answers all different."),
                grammar.usage_hint("quiz add"),
            )
        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
            if session.state in {"closed", "cancelled"} or session.retention_queued_at is not None:
                raise Invalid(_("The retention quiz of `{session}` has already been sent.", session=session.short_id))
            assert session.id is not None
            count = await self._quiz_size(s, session)
            if count >= 10:
                raise Invalid(_("A retention quiz holds at most 10 questions."))
            s.add(
                QuestionnaireItem(
                    session_id=session.id,
                    kind="retention",
                    position=count + 1,
                    item_key=f"q{count + 1}",
                    item_type="choice",
                    text=question,
                    options_json=json.dumps(options, ensure_ascii=False),
                    correct="0",
                )
            )
            await self._audit(s, actor.user.key, "quiz.add", session.id, question=question)
        return Reply(
            t(
                self.reply_locale(actor),
                "Quiz question {number} added to `{session}`.",
                number=count + 1,
                session=session.short_id,
            )
        )

    async def _cmd_report(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        from bot.reports import session_report

        async with self.db.session() as s:
            session = await self._session(s, actor, command.session)
        return Reply(await session_report(self, session.short_id, self.reply_locale(actor)))

    # ------------------------------------------------------------------ learner commands

    async def _cmd_raise(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        if channel is None:
            raise Invalid(_("`/peer raise` works from your group's breakout channel."))
        async with self.db.session() as s:
            group = (await s.exec(select(PeerGroup).where(PeerGroup.channel_id == channel.id))).first()
            if group is None:
                raise Invalid(
                    _("`/peer raise` works from your group's breakout channel."),
                    _("Go to your group's channel and type it there."),
                )
            session = await s.get(PeerSession, group.session_id)
            assert session is not None
            trainers = await self._trainers(s, session)
            await self._audit(s, actor.user.key, "raise", session.id, group=group.number)
        platform = self.platform_for(channel.platform)
        mentions = " ".join(f"<@{m.user_id}>" for m in trainers)
        call = t(
            self.settings.locale,
            "✋ {trainers}: <@{user}> asks for the trainer in group {number}.",
            trainers=mentions,
            user=actor.user.id,
            number=group.number,
        )
        await platform.post(channel, Message(call))
        return Reply(t(self.reply_locale(actor), "The trainer has been called to your group."))

    async def _cmd_mydata(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        from bot.reports import my_data

        locale = self.reply_locale(actor)
        text = await my_data(self.db, actor.user, locale)
        try:
            await self.platform_for(actor.user.platform).send_dm(actor.user, Message(text))
        except PlatformError:
            return Reply(text)
        return Reply(t(locale, "I have sent you by DM everything I store about you."))
