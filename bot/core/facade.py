"""`Core`, the facade adapters call: it composes the concern mixins and owns the entry points (a command,
a button click, a submitted form, a ✅ reaction), turning every refusal into a polite error reply and
routing each command name to its handler through `_COMMANDS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot import grammar
from bot.core.attendance import AttendanceMixin
from bot.core.base import CHECK_EMOJI
from bot.core.commands import CommandsMixin
from bot.core.forms import FormsMixin
from bot.core.pairs import PairsMixin
from bot.errors import Forbidden, Invalid, PeerError
from bot.i18n import _, t
from bot.inbound import Actor
from bot.messages import ActionId, Form, Reply
from bot.port import Platform
from bot.refs import ChannelRef, MessageRef
from storage.models import PeerSession


async def settled(work: Callable[[], Awaitable[Reply]]) -> Reply:
    """Run a use case; if a concurrent request committed the same unique row first (two clicks at once on
    PostgreSQL), run it once more: use cases are idempotent, so the second run sees that row and answers
    as for a repeat ("already checked in"), and nothing is recorded twice."""
    try:
        return await work()
    except IntegrityError:
        return await work()


class Core(CommandsMixin, PairsMixin, AttendanceMixin, FormsMixin):
    """One instance per process; the composition root builds it with storage, platforms and a clock."""

    def attach(self, platform: Platform) -> None:
        """Serve a started adapter's platform (its `name` is the `platform` of its users' refs)."""
        self.platforms[platform.name] = platform

    async def handle_command(self, actor: Actor, text: str | Sequence[str], channel: ChannelRef | None = None) -> Reply:
        """Run `/peer <text>` (or its tokens); every refusal comes back as a polite, ephemeral error reply."""
        try:
            command = grammar.parse(text) if isinstance(text, str) else grammar.parse_tokens(text)
            return await settled(lambda: self.execute(actor, command, channel))
        except PeerError as exc:
            return Reply(exc.text(self.reply_locale(actor)), ok=False)

    async def execute(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        if command.name in grammar.TRAINER_COMMANDS and not actor.is_trainer:
            raise Forbidden(
                _("Only trainers can use `/peer {command}`.", command=command.name),
                _("Ask your trainer, or type `/peer help` to see your commands."),
            )
        handler = _COMMANDS[command.name]
        result: Reply = await handler(self, actor, command, channel)
        return result

    async def handle_action(self, actor: Actor, action_id: str, channel: ChannelRef | None = None) -> Reply:
        """A button click (Slack `action_id`, Discord `custom_id`)."""
        try:
            action = ActionId.parse(action_id)
        except ValueError:
            return Reply(t(self.reply_locale(actor), "This button is not one of mine any more."), ok=False)
        try:
            return await settled(lambda: self._dispatch_action(actor, action))
        except PeerError as exc:
            return Reply(exc.text(self.reply_locale(actor)), ok=False)

    async def form_for(self, actor: Actor, action_id: str) -> Form | Reply:
        """The form a button opens (Answer, Share takeaways), or an error reply."""
        reply = await self.handle_action(actor, action_id)
        return reply.form if reply.form is not None else reply

    async def handle_form(self, actor: Actor, form_id: str, values: dict[str, str]) -> Reply:
        """A submitted form: all its answers are recorded, or none (with a clear error)."""
        try:
            action = ActionId.parse(form_id)
            if action.feature in {"survey", "quiz"} and action.verb == "submit":
                delivery = int(action.entity)
                return await settled(lambda: self.answer(actor, delivery, values))
            if action.feature == "takeaways" and action.verb == "submit":
                group = int(action.entity)
                return await settled(lambda: self.record_takeaways(actor, group, values.get("takeaways", "")))
        except PeerError as exc:
            return Reply(exc.text(self.reply_locale(actor)), ok=False, extra={"field": exc.field} if exc.field else {})
        except ValueError:
            pass
        return Reply(t(self.reply_locale(actor), "This form is not one of mine any more."), ok=False)

    async def handle_reaction(self, actor: Actor, message: MessageRef, emoji: str) -> Reply | None:
        """✅ on the prep post marks prep done; ✅ on the check-in announcement checks in."""
        if emoji not in CHECK_EMOJI:
            return None
        async with self.db.session() as s:
            prep = await s.exec(select(PeerSession).where(PeerSession.prep_message_id == message.id))
            session = prep.first()
            kind = "prep"
            if session is None:
                announce = await s.exec(select(PeerSession).where(PeerSession.announce_message_id == message.id))
                session, kind = announce.first(), "checkin"
        if session is None:
            return None
        short = session.short_id
        try:
            if kind == "prep":
                return await settled(lambda: self.prep_done(actor, short, method="reaction"))
            return await settled(lambda: self.check_in(actor, short, method="reaction"))
        except PeerError as exc:
            return Reply(exc.text(self.reply_locale(actor)), ok=False)

    async def _dispatch_action(self, actor: Actor, action: ActionId) -> Reply:
        key = (action.feature, action.verb)
        if key == ("prep", "done"):
            return await self.prep_done(actor, action.entity, method="button")
        if key == ("checkin", "in"):
            return await self.check_in(actor, action.entity, method="button")
        if key in {("survey", "open"), ("quiz", "open")}:
            return Reply("", form=await self.questionnaire_form(actor, int(action.entity)))
        if key in {("survey", "rate"), ("quiz", "pick")}:
            delivery, item, value = action.entity.split(".", 2)
            return await self.answer(actor, int(delivery), {item: value})
        if key in {("survey", "text"), ("quiz", "text")}:
            delivery, item = action.entity.split(".", 1)
            form = await self.questionnaire_form(actor, int(delivery), open_only=True)
            fields = tuple(f for f in form.fields if f.field_id == item)
            return Reply("", form=Form(form.form_id, form.title, fields, form.submit_label))
        if key == ("takeaways", "open"):
            return Reply("", form=await self.takeaways_form(actor, int(action.entity)))
        raise Invalid(_("This button is not one of mine any more."))


_COMMANDS: dict[str, Any] = {
    "help": Core._cmd_help,
    "cohort create": Core._cmd_cohort_create,
    "cohort add": Core._cmd_cohort_add,
    "cohort import": Core._cmd_cohort_import,
    "cohort show": Core._cmd_cohort_show,
    "cohort apart": Core._cmd_cohort_pair,
    "cohort together": Core._cmd_cohort_pair,
    "cohort unpair": Core._cmd_cohort_unpair,
    "session plan": Core._cmd_session_plan,
    "session show": Core._cmd_session_show,
    "session start": Core._cmd_session_start,
    "session end": Core._cmd_session_end,
    "session cancel": Core._cmd_session_cancel,
    "quiz add": Core._cmd_quiz_add,
    "report": Core._cmd_report,
    "group show": Core._cmd_group_show,
    "group move": Core._cmd_group_move,
    "group swap": Core._cmd_group_swap,
    "group reshuffle": Core._cmd_group_reshuffle,
    "checkin": Core._cmd_checkin,
    "prep-done": Core._cmd_prep_done,
    "absent": Core._cmd_absent,
    "raise": Core._cmd_raise,
    "mydata": Core._cmd_mydata,
}
