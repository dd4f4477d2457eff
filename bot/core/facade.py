"""`Core`, what adapters and the scheduler call: it builds the services, routes each command, click, form and
reaction to the one that handles it, and turns every refusal into a polite error reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot import actions, grammar
from bot.clock import Clock
from bot.core import queries, rules
from bot.core.alerts import Alerts
from bot.core.attendance import Attendance
from bot.core.commands import Commands
from bot.core.context import Context, SchedulerPort, log
from bot.core.dashboard import DashboardAccess
from bot.core.exports import Exports
from bot.core.followups import FollowUps
from bot.core.formats import Formats
from bot.core.forms import Forms
from bot.core.groups import Groups
from bot.core.outbox import Outbox
from bot.core.pairs import Pairs
from bot.core.pending import PendingReplies
from bot.core.privacy import Privacy
from bot.core.templates import Templates
from bot.core.timeline import StepResult, Timeline
from bot.core.views import Views
from bot.errors import Forbidden, Invalid, PeerError
from bot.grouping.live import LIVE_BUDGET
from bot.i18n import _, t
from bot.inbound import Actor, Pending
from bot.logs import request_context, session_context
from bot.messages import Form, Message, Reply
from bot.metrics import Metrics
from bot.port import Platform
from bot.refs import ChannelRef, MessageRef
from bot.settings import Settings
from storage.db import Database
from storage.models import PeerSession

Handler = Callable[[Actor, grammar.Command, ChannelRef | None], Awaitable[Reply]]
"""A `/peer` command's handler: a bound method of the service that owns the command."""


async def settled(work: Callable[[], Awaitable[Reply]]) -> Reply:
    """Run a use case; if a concurrent request committed the same unique row first (two clicks at once on
    PostgreSQL), run it once more: use cases are idempotent, so the second run sees that row and answers
    as for a repeat ("already checked in"), and nothing is recorded twice."""
    try:
        return await work()
    except IntegrityError:
        return await work()


class Core:
    """One instance per process; the composition root builds it with storage, platforms and a clock."""

    def __init__(
        self,
        db: Database,
        platforms: dict[str, Platform],
        settings: Settings,
        clock: Clock,
        scheduler: SchedulerPort | None = None,
        grouping_budget: float = LIVE_BUDGET,
        metrics: Metrics | None = None,
    ) -> None:
        self.ctx = Context(db, settings, clock, scheduler, dict(platforms), grouping_budget)
        if metrics is not None:
            self.ctx.metrics = metrics
        self.views = Views(self.ctx)
        self.groups = Groups(self.ctx)
        self.pairs = Pairs(self.ctx)
        self.outbox = Outbox(self.ctx, self.views)
        self.forms = Forms(self.ctx)
        self.attendance = Attendance(self.ctx, self.groups)
        self.followups = FollowUps(self.ctx, self.outbox)
        self.templates = Templates(self.ctx)
        self.formats = Formats(self.ctx, self.outbox)
        self.timeline = Timeline(self.ctx, self.groups, self.outbox, self.views, self.followups, self.formats)
        self.exports = Exports(self.ctx)
        self.commands = Commands(self.ctx, self.timeline, self.views, self.exports)
        self.alerts = Alerts(self.ctx, self.outbox)
        self.pending = PendingReplies(self.ctx)
        self.privacy = Privacy(self.ctx)
        self.dashboard = DashboardAccess(self.ctx)
        self.routes: dict[str, Handler] = {
            "help": self.commands.help,
            "cohort create": self.commands.cohort_create,
            "cohort add": self.commands.cohort_add,
            "cohort import": self.commands.cohort_import,
            "cohort show": self.commands.cohort_show,
            "cohort apart": self.pairs.cohort_pair,
            "cohort together": self.pairs.cohort_pair,
            "cohort unpair": self.pairs.cohort_unpair,
            "cohort trainers": self.commands.cohort_trainers,
            "session plan": self.commands.session_plan,
            "session show": self.commands.session_show,
            "session start": self.commands.session_start,
            "session end": self.commands.session_end,
            "session cancel": self.commands.session_cancel,
            "quiz add": self.commands.quiz_add,
            "report": self.commands.report,
            "review criteria": self.formats.reviews.criteria_command,
            "submit": self.formats.reviews.submit_command,
            "export": self.exports.export,
            "note": self.exports.note,
            "alerts": self.alerts.command,
            "questionnaire edit": self.templates.edit_form,
            "followup plan": self.followups.plan,
            "dashboard": self.dashboard.command,
            "group show": self.groups.group_show,
            "group move": self.groups.group_move,
            "group swap": self.groups.group_swap,
            "group reshuffle": self.groups.group_reshuffle,
            "checkin": self.attendance.checkin,
            "prep-done": self.attendance.prep_done_command,
            "absent": self.attendance.absent,
            "raise": self.commands.raise_hand,
            "mydata": self.commands.mydata,
            "forget-me": self.privacy.forget_me_form,
        }

    def attach(self, platform: Platform) -> None:
        """Serve a started adapter's platform (its `name` is the `platform` of its users' refs)."""
        self.ctx.platforms[platform.name] = platform

    # ------------------------------------------------------------------ the scheduler's entry points

    async def advance(self) -> list[StepResult]:
        """Run every due step of every active session, then deliver due DMs (the catch-up at start-up)."""
        return await self.timeline.advance()

    async def advance_session(self, short_id: str) -> list[StepResult]:
        return await self.timeline.advance_session(short_id)

    async def deliver_due(self, limit: int = 500) -> int:
        return await self.outbox.deliver_due(limit)

    async def sweep(self) -> int:
        """The scheduler's periodic pass: place learners who waited too long for a group, move the sharing timers
        on, send due DMs, and (at
        most hourly, when PEERBOT_RETENTION_DAYS is set) purge old free text; returns how many DMs went out."""
        await self.timeline.place_waiting()
        await self.formats.tick_all()
        await self.alerts.weekly()
        sent = await self.outbox.deliver_due()
        await self.privacy.purge_expired()
        return sent

    # ------------------------------------------------------------------ the adapters' entry points

    async def handle_command(self, actor: Actor, text: str | Sequence[str], channel: ChannelRef | None = None) -> Reply:
        """Run `/peer <text>` (or its tokens); every refusal comes back as a polite, ephemeral error reply."""
        with request_context():
            name, session = "(unparsed)", ""
            try:
                command = grammar.parse(text) if isinstance(text, str) else grammar.parse_tokens(text)
                name, session = command.name, command.session or ""
                with session_context(session):
                    reply = await settled(lambda: self.execute(actor, command, channel))
            except PeerError as exc:
                reply = Reply(exc.text(self.ctx.reply_locale(actor)), ok=False)
            except Exception:
                self.ctx.metrics.command(name, "error")
                raise
            outcome = "ok" if reply.ok else "refused"
            self.ctx.metrics.command(name, outcome)
            session = str(reply.extra.get("session", "")) or session  # a plan names its new session
            log.debug("command %s: %s", name, outcome, extra={"session": session})
            return reply

    async def execute(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        if command.name == "export":  # a session or a cohort: known once looked up
            command = await self.exports.resolve(actor, command)
        if command.name in grammar.TRAINER_COMMANDS:
            await self._authorize(actor, command)
        return await self.routes[command.name](actor, command, channel)

    async def _authorize(self, actor: Actor, command: grammar.Command) -> None:
        """Trainer commands: a trainer (or admin) may create a cohort; every other one acts on a cohort, and
        only that cohort's trainers (or an admin) may. Checked here once, so no handler can forget it."""
        if not (actor.is_trainer or actor.is_admin):
            raise Forbidden(
                _("Only trainers can use `/peer {command}`.", command=command.name),
                _("Ask your trainer, or type `/peer help` to see your commands."),
            )
        if command.name == "cohort create":
            return
        async with self.ctx.db.transaction() as tx:
            target = await queries.cohort_of_command(tx, actor, command.cohort, command.session)
            if target is not None:
                await queries.require_trainer(tx, actor, target)

    async def handle_action(self, actor: Actor, action_id: str, channel: ChannelRef | None = None) -> Reply:
        """A button click (Slack `action_id`, Discord `custom_id`)."""
        try:
            action = actions.parse_click(action_id)
        except actions.BadActionId:
            self.ctx.metrics.action("(unknown)", "refused")
            return Reply(t(self.ctx.reply_locale(actor), "This button is not one of mine any more."), ok=False)
        return await self._counted(actor, type(action).__name__, lambda: settled(lambda: self._click(actor, action)))

    async def _counted(
        self, actor: Actor, kind: str, work: Callable[[], Awaitable[Reply]], *, field_error: bool = False
    ) -> Reply:
        """Run a click, form or reaction use case and count it by kind and outcome; a refusal becomes a reply
        (naming the form field at fault when `field_error`)."""
        with request_context():
            try:
                reply = await work()
            except PeerError as exc:
                extra = {"field": exc.field} if field_error and exc.field else {}
                reply = Reply(exc.text(self.ctx.reply_locale(actor)), ok=False, extra=extra)
            except Exception:
                self.ctx.metrics.action(kind, "error")
                raise
            outcome = "ok" if reply.ok else "refused"
            self.ctx.metrics.action(kind, outcome)
            log.debug("%s: %s", kind, outcome)
            return reply

    async def form_for(self, actor: Actor, action_id: str) -> Form | Reply:
        """The form a button opens (Answer, Share takeaways), or an error reply."""
        reply = await self.handle_action(actor, action_id)
        return reply.form if reply.form is not None else reply

    async def handle_form(self, actor: Actor, form_id: str, values: dict[str, str]) -> Reply:
        """A submitted form: all its answers are recorded, or none (with a clear error)."""
        try:
            action = actions.parse_submit(form_id)
        except actions.BadActionId:
            self.ctx.metrics.action("(unknown)", "refused")
            return Reply(t(self.ctx.reply_locale(actor), "This form is not one of mine any more."), ok=False)
        match action:
            case actions.SubmitQuestionnaire(delivery=delivery):
                work = lambda: settled(lambda: self.forms.answer(actor, delivery, values))  # noqa: E731
            case actions.SubmitTakeaways(group=group):
                text = values.get("takeaways", "")
                work = lambda: settled(lambda: self.forms.record_takeaways(actor, group, text))  # noqa: E731
            case actions.SendNudge(cohort=cohort, member=member):
                message = values.get("message", "")
                work = lambda: self.alerts.send_nudge(actor, cohort, member, message)  # noqa: E731
            case actions.SaveQuestionnaire(cohort=cohort):
                text = values.get("items", "")
                work = lambda: self.templates.save(actor, cohort, text)  # noqa: E731
            case actions.ForgetMe():
                work = lambda: self.privacy.forget_me(actor, values)  # noqa: E731
            case actions.SubmitWork(session=short):
                text = values.get("work", "")
                work = lambda: settled(lambda: self.formats.reviews.record_work(actor, short, text))  # noqa: E731
            case actions.SubmitReview(assignment=assignment):
                work = lambda: settled(lambda: self.formats.reviews.record_review(actor, assignment, values))  # noqa: E731
        return await self._counted(actor, type(action).__name__, work, field_error=True)

    async def handle_reaction(
        self, actor: Actor, message: MessageRef, emoji: str, *, recovered: bool = False
    ) -> Reply | None:
        """✅ on the prep post marks prep done; ✅ on the check-in announcement checks in. `recovered`: a reaction
        made while the adapter was offline, read back afterwards without its time, so recorded with the method
        `recovered` (its time is when it was read, which the evidence must say)."""
        method = "recovered" if recovered else "reaction"
        if emoji not in rules.CHECK_EMOJI:
            return None
        async with self.ctx.db.transaction() as tx:
            prep = await tx.exec(select(PeerSession).where(PeerSession.prep_message_id == message.id))
            peer_session = prep.first()
            kind = "prep"
            if peer_session is None:
                announce = await tx.exec(select(PeerSession).where(PeerSession.announce_message_id == message.id))
                peer_session, kind = announce.first(), "checkin"
        if peer_session is None:
            return None
        short = peer_session.short_id
        if kind == "prep":
            return await self._counted(
                actor,
                "PrepDoneReaction",
                lambda: settled(lambda: self.attendance.prep_done(actor, short, method=method)),
            )
        return await self._counted(
            actor, "CheckInReaction", lambda: settled(lambda: self.attendance.check_in(actor, short, method=method))
        )

    async def reaction_posts(self, platform: str) -> list[MessageRef]:
        """The prep posts and check-in announcements on `platform` whose ✅ still count (prep not over, check-in
        open now): an adapter that was offline reads their reactions back (`handle_reaction(recovered=True)`)."""
        now = self.ctx.clock.now()
        async with self.ctx.db.transaction() as tx:
            rows = await tx.exec(
                select(PeerSession).where(
                    PeerSession.channel_id != "",
                    (PeerSession.prep_message_id != "") | (PeerSession.announce_message_id != ""),
                )
            )
            sessions = [s for s in rows.all() if rules.accepts_prep(s.state)]
            found: list[MessageRef] = []
            for peer_session in sessions:
                if (await self.ctx.platform_of(peer_session, tx)).name != platform:
                    continue
                channel = ChannelRef(platform, peer_session.channel_id)
                if peer_session.prep_message_id:
                    found.append(MessageRef(channel, peer_session.prep_message_id))
                if peer_session.announce_message_id and rules.checkin_refusal(peer_session, now) is None:
                    found.append(MessageRef(channel, peer_session.announce_message_id))
        return found

    async def home(self, actor: Actor) -> Message:
        return await self.views.home(actor)

    async def suggest(self, actor: Actor, kind: str, prefix: str) -> list[str]:
        return await self.views.suggest(actor, kind, prefix)

    async def remember_pending(
        self, platform: str, user_id: str, what: str, response_url: str, valid_for: timedelta
    ) -> int:
        return await self.pending.remember(platform, user_id, what, response_url, valid_for)

    async def forget_pending(self, pending_id: int) -> None:
        await self.pending.forget(pending_id)

    async def take_pending(self, platform: str) -> list[Pending]:
        return await self.pending.take_open(platform)

    async def _click(self, actor: Actor, action: actions.Click) -> Reply:
        match action:
            case actions.PrepDone(session=short):
                return await self.attendance.prep_done(actor, short, method="button")
            case actions.CheckIn(session=short):
                return await self.attendance.check_in(actor, short, method="button")
            case actions.OpenQuestionnaire(delivery=delivery):
                return Reply("", form=await self.forms.questionnaire_form(actor, delivery))
            case actions.AnswerItem(delivery=delivery, item=item, value=value):
                return await self.forms.answer(actor, delivery, {item: value})
            case actions.OpenTextItem(delivery=delivery, item=item):
                form = await self.forms.questionnaire_form(actor, delivery, open_only=True)
                fields = tuple(f for f in form.fields if f.field_id == item)
                return Reply("", form=Form(form.form_id, form.title, fields, form.submit_label))
            case actions.OpenTakeaways(group=group):
                return Reply("", form=await self.forms.takeaways_form(actor, group))
            case actions.Nudge(cohort=cohort, member=member):
                return Reply("", form=await self.alerts.nudge_form(actor, cohort, member))
            case actions.AcceptAgreement(group=group):
                return await self.formats.accept(actor, group)
            case actions.ReportMeeting(group=group, minutes=minutes):
                return await self.formats.report_meeting(actor, group, minutes)
            case actions.OpenWork(session=short):
                return Reply("", form=await self.formats.reviews.work_form(actor, short))
            case actions.OpenReview(assignment=assignment):
                return Reply("", form=await self.formats.reviews.review_form(actor, assignment))
        raise Invalid(_("This button is not one of mine any more."))
