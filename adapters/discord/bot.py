"""The Discord entrypoint: a `discord.Client` that turns slash commands, clicks, modals and reactions into
core calls and renders the neutral replies.

`/peer` is a tree of `app_commands.Group` classes mirroring the text grammar with typed options. Each
command hands the core the grammar's tokens (users as `<@id>`, options as `key=value`), one token per
option, so `bot.grammar` stays the only parser and an option's text arrives exactly as typed (quotes
included). Work that may outlast Discord's 3-second window is deferred and answered by a follow-up.

Every interaction gets an answer: a core failure, a reply Discord refuses, an error in discord.py's own command
handling (a member option for someone who left, say) all end in a private message saying whether the work was
done, with the reference that is in the log. An answer ready after the 15-minute interaction token has died
(a start provisioning many breakouts) goes by DM instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from adapters import common
from adapters.discord import render
from bot import actions
from bot.i18n import N_, t
from bot.inbound import Actor, CoreAPI
from bot.messages import Button, Form, Reply
from bot.metrics import Metrics
from bot.refs import ChannelRef, MessageRef, UserRef

log = logging.getLogger(__name__)

PLATFORM = "discord"
INTERACTION_KINDS = {
    discord.InteractionType.application_command: "command",
    discord.InteractionType.component: "action",
    discord.InteractionType.modal_submit: "form",
}
DEFER_AFTER = 2.0  # seconds: answer directly when the core is this fast, else defer (Discord allows 3)
DONE = N_("Done.")
NOT_DONE = N_("That did not work.")
TOKEN_GONE = frozenset({10015, 10062, 50027})  # unknown webhook / interaction, invalid webhook token
FORM_FORGOTTEN = N_(
    "I restarted while this form was open, so I could not record it. Please open it again and send it once more."
)
FORM_FORGOTTEN_TEXT = N_("What you wrote, to paste again:")
OPEN_MODALS_KEPT = 10_000  # custom ids of modals this process opened (oldest forgotten first)


def intents() -> discord.Intents:
    """Only what peerbot reads: guild metadata, and reactions (✅ for prep and check-in) in guild and DM.
    No privileged intent: members are known from interactions and channel overwrites."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_reactions = True
    wanted.dm_reactions = True
    return wanted


def mention(user: discord.abc.Snowflake) -> str:
    return f"<@{user.id}>"


def channel_token(channel: discord.abc.Snowflake) -> str:
    return f"<#{channel.id}>"


def option(key: str, value: object) -> list[str]:
    """`key=value` as one grammar token (the grammar splits at the first `=`), or nothing when unset."""
    return [] if value is None or value == "" else [f"{key}={value}"]


def word(value: str) -> str:
    """An identifier or a date/time/duration: one grammar token, without the spaces around it."""
    return value.strip()


class PeerBot(discord.Client):
    """Services come in through `__init__`; commands and persistent buttons are registered in `setup_hook`."""

    def __init__(
        self,
        core: CoreAPI,
        *,
        guild_id: int,
        trainer_role: str = "",
        metrics: Metrics | None = None,
        **options: Any,
    ) -> None:
        super().__init__(intents=intents(), **options)
        self.core = core
        self.metrics = metrics or Metrics(enabled=False)
        self.guild_id = guild_id
        self.trainer_role = trainer_role
        self.defer_after = DEFER_AFTER
        self.opened_modals: dict[str, None] = {}  # custom ids of the modals this process opened
        self.reactions_recovered = asyncio.Event()  # set once the reactions missed while offline are read back
        self._background: set[asyncio.Task[int]] = set()
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]
        self.tree.add_command(PeerGroup(), guild=discord.Object(guild_id))

    async def setup_hook(self) -> None:
        self.add_dynamic_items(render.ActionButton)
        await self.tree.sync(guild=discord.Object(self.guild_id))

    # ------------------------------------------------------------------------------------ translation
    def actor_of(self, user: discord.abc.User, guild_id: int | None = None) -> Actor:
        is_trainer = is_admin = False
        if isinstance(user, discord.Member):  # the trainer role (name or id) trains; Manage Server administers
            has_role = bool(self.trainer_role) and any(
                str(role.id) == self.trainer_role or role.name == self.trainer_role for role in user.roles
            )
            is_admin = user.guild_permissions.manage_guild
            is_trainer = has_role or is_admin
        return Actor(
            user=UserRef(PLATFORM, str(user.id)),
            display_name=user.display_name,
            is_trainer=is_trainer,
            workspace=str(guild_id or self.guild_id),
            is_admin=is_admin,
        )

    @staticmethod
    def locale_of(interaction: discord.Interaction) -> str:
        return str(interaction.locale).split("-")[0]  # "fr", "en-US" → "en"

    def actor(self, interaction: discord.Interaction) -> Actor:
        actor = self.actor_of(interaction.user, interaction.guild_id)
        actor = dataclasses.replace(actor, locale=self.locale_of(interaction))
        # The interaction carries the member's resolved permissions: no dependence on the role cache.
        if interaction.guild_id is not None and interaction.permissions.manage_guild:
            actor = dataclasses.replace(actor, is_trainer=True, is_admin=True)
        return actor

    @staticmethod
    def channel_of(interaction: discord.Interaction) -> ChannelRef | None:
        return ChannelRef(PLATFORM, str(interaction.channel_id)) if interaction.channel_id else None

    async def answer(self, interaction: discord.Interaction, work: Awaitable[Reply], *, ephemeral: bool = True) -> None:
        """Reply within Discord's 3 s (`adapters.common.answer`): in the interaction response when the core is
        quick, else a deferred "thinking…" response and a follow-up (by DM once the token has died)."""

        async def send(reply: Reply) -> None:
            await self.send_reply(interaction, reply, ephemeral=ephemeral)

        async def thinking() -> None:
            await interaction.response.defer(ephemeral=ephemeral, thinking=True)

        async def later(reply: Reply) -> None:
            await self.late(interaction, reply, lambda: send(reply))

        await common.answer(
            work, budget=self.defer_after, ack_now=send, defer=thinking, follow_up=later, what="Discord interaction",
            locale=self.locale_of(interaction), on_failure=lambda reply: self.tell_failure(interaction, reply),
            on_ack=self.ack_timer(interaction),
        )  # fmt: skip

    def ack_timer(self, interaction: discord.Interaction) -> Callable[[float], None]:
        """Records how long this interaction took to be acknowledged, labelled by its kind."""
        kind = INTERACTION_KINDS.get(interaction.type, "other")
        return lambda seconds: self.metrics.ack(PLATFORM, kind, seconds)

    async def late(
        self, interaction: discord.Interaction, reply: Reply, deliver: Callable[[], Awaitable[None]]
    ) -> None:
        """A follow-up through the interaction token while it lives (15 minutes), else the reply by DM."""
        if not interaction.is_expired():
            try:
                await deliver()
                return
            except discord.HTTPException as exc:
                if exc.code not in TOKEN_GONE:
                    raise
        await self.send_dm_reply(interaction.user, reply, self.locale_of(interaction))

    async def send_dm_reply(self, user: discord.User | discord.Member, reply: Reply, locale: str) -> None:
        text = render.reply_content(reply) or t(locale, DONE if reply.ok else NOT_DONE)
        for part in render.chunks(text):
            await user.send(part)

    async def tell_failure(self, interaction: discord.Interaction, reply: Reply) -> None:
        """The polite failure, privately, however far the interaction got (never a form or buttons)."""
        text = render.reply_content(reply)
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
        elif interaction.is_expired():
            await self.send_dm_reply(interaction.user, reply, self.locale_of(interaction))
        else:
            await interaction.followup.send(text, ephemeral=True)

    async def send_reply(self, interaction: discord.Interaction, reply: Reply, *, ephemeral: bool = True) -> None:
        """The reply as the interaction's response, or as follow-ups once it has one; long text in parts.

        After a deferred response, Discord turns the first follow-up into the "thinking…" message, keeping its
        privacy: a public reply to a private deferral first settles that message privately ("Done."), then
        goes out as a public follow-up."""
        if reply.form is not None:
            await self.open_form(interaction, reply.form)
            return
        private = ephemeral and not reply.public
        locale = self.locale_of(interaction)
        text = render.reply_content(reply) or t(locale, DONE if reply.ok else NOT_DONE)
        parts = render.chunks(text)
        buttons = reply.message.buttons if reply.message is not None else ()
        deferred = interaction.response.type is discord.InteractionResponseType.deferred_channel_message
        if deferred and ephemeral and not private:
            await interaction.edit_original_response(content=t(locale, DONE))
        for index, part in enumerate(parts):
            view = render.view(buttons) if buttons and index == len(parts) - 1 else discord.utils.MISSING
            if not interaction.response.is_done():
                await interaction.response.send_message(part, ephemeral=private, view=view)
            else:
                await interaction.followup.send(part, ephemeral=private, view=view)

    async def answer_in_place(self, interaction: discord.Interaction, action_id: str, work: Awaitable[Reply]) -> None:
        """An item answered by a click: its message shows the answer, the clicked button highlighted and all
        its buttons frozen (edited in the response, or after a deferred update); a refusal comes privately."""

        async def show(reply: Reply) -> None:
            message = interaction.message
            if reply.ok and message is not None:
                content = f"{message.content}\n✔ {reply.text}"
                view = render.view(buttons_of(message), chosen=action_id, disabled=True)
                if interaction.response.is_done():
                    await interaction.edit_original_response(content=content, view=view)
                else:
                    await interaction.response.edit_message(content=content, view=view)
            elif interaction.response.is_done():
                await interaction.followup.send(reply.text, ephemeral=True)
            else:
                await interaction.response.send_message(reply.text, ephemeral=True)

        async def update_later() -> None:
            await interaction.response.defer()  # a component's plain defer: the message is edited afterwards

        async def later(reply: Reply) -> None:
            await self.late(interaction, reply, lambda: show(reply))

        await common.answer(
            work, budget=self.defer_after, ack_now=show, defer=update_later, follow_up=later, what="Discord click",
            locale=self.locale_of(interaction), on_failure=lambda reply: self.tell_failure(interaction, reply),
            on_ack=self.ack_timer(interaction),
        )  # fmt: skip

    async def guard(self, interaction: discord.Interaction, handle: Awaitable[None], what: str) -> None:
        """Runs an interaction handler; whatever escapes it is logged with a reference and answered politely."""
        try:
            await handle
        except Exception:
            ref = common.new_reference()
            log.exception("%s failed (ref %s)", what, ref)
            try:
                await self.tell_failure(interaction, common.failure(ref, self.locale_of(interaction)))
            except Exception:
                log.exception("could not tell the person either (ref %s)", ref)

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """discord.py's own failures around a command (an option it cannot convert, a check): answered too."""
        ref = common.new_reference()
        log.error("/peer command failed (ref %s)", ref, exc_info=error)
        try:
            await self.tell_failure(interaction, common.failure(ref, self.locale_of(interaction)))
        except Exception:
            log.exception("could not tell the person either (ref %s)", ref)

    # ------------------------------------------------------------------------------------ components
    async def on_action(self, interaction: discord.Interaction, action_id: str) -> None:
        """A click on any of our buttons (routed by `render.ActionButton`, also after a restart)."""
        await self.guard(interaction, self._on_action(interaction, action_id), "Discord click")

    async def _on_action(self, interaction: discord.Interaction, action_id: str) -> None:
        try:
            in_place = isinstance(actions.parse_click(action_id), actions.AnswerItem)
        except actions.BadActionId:
            in_place = False  # not ours (any more): the core says so, in the person's language
        work = self.core.handle_action(self.actor(interaction), action_id, self.channel_of(interaction))
        if in_place:
            await self.answer_in_place(interaction, action_id, work)
        else:
            await self.answer(interaction, work)

    async def open_form(self, interaction: discord.Interaction, form: Form) -> None:
        """Text-only forms open as a modal; rated items arrive as one DM message each with buttons."""
        if render.fits_modal(form) and not interaction.response.is_done():
            modal = render.FormModal(form, self.on_form)
            self.opened_modals[modal.custom_id] = None
            while len(self.opened_modals) > OPEN_MODALS_KEPT:
                del self.opened_modals[next(iter(self.opened_modals))]
            await interaction.response.send_modal(modal)
            return
        items = render.form_items(form)
        intro = f"**{form.title}**" + (f" — {form.intro}" if form.intro else "")
        private = interaction.guild_id is not None
        if not interaction.response.is_done():
            await interaction.response.send_message(intro, ephemeral=private)
        else:
            await interaction.followup.send(intro, ephemeral=private)
        for text, buttons in items:
            await interaction.followup.send(text, view=render.view(buttons), ephemeral=private)

    async def on_form(self, interaction: discord.Interaction, form_id: str, values: dict[str, str]) -> None:
        work = self.answer(interaction, self.core.handle_form(self.actor(interaction), form_id, values))
        await self.guard(interaction, work, "Discord form")

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A submission of a modal this process never opened (it was opened before a restart): discord.py drops
        it silently, so it is answered here, with the text given back so that nothing typed is lost."""
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if interaction.type is not discord.InteractionType.modal_submit or custom_id in self.opened_modals:
            return
        if render.MODAL_SEPARATOR not in custom_id:
            return  # not one of ours
        locale = self.locale_of(interaction)
        typed = [v for v in render.modal_values(list(data.get("components", []))).values() if v.strip()]
        text = t(locale, FORM_FORGOTTEN)
        if typed:
            quoted = "\n".join(f"> {line}" for value in typed for line in value.splitlines())
            text += f"\n\n{t(locale, FORM_FORGOTTEN_TEXT)}\n{quoted}"
        await self.guard(interaction, self.send_reply(interaction, Reply(text, ok=False)), "forgotten form")

    async def on_ready(self) -> None:
        """After a fresh login (not a resume, which replays missed events) the ✅ made while the bot was down
        were never heard: read them back from the open prep and check-in posts."""
        task = asyncio.create_task(self.recover_reactions())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def recover_reactions(self) -> int:
        """Record every ✅ on the posts whose reactions still count, as `recovered` (Discord gives no reaction
        time); the core ignores those already recorded. Returns how many were handed to the core."""
        handed = 0
        try:
            for ref in await self.core.reaction_posts(PLATFORM):
                after: int | None = None
                while True:
                    users = await self.http.get_reaction_users(int(ref.channel.id), int(ref.id), "✅", 100, after)
                    for user in users:
                        if user.get("bot"):
                            continue
                        actor = Actor(UserRef(PLATFORM, str(user["id"])), workspace=str(self.guild_id))
                        await self.core.handle_reaction(actor, ref, "✅", recovered=True)
                        handed += 1
                    if len(users) < 100:
                        break
                    after = int(users[-1]["id"])
        except Exception:
            log.exception("could not read back the reactions made while I was offline (ref %s)", common.new_reference())
        finally:
            self.reactions_recovered.set()
        return handed

    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        if self.user is not None and event.user_id == self.user.id:
            return
        user: discord.abc.User | None = event.member or self.get_user(event.user_id)
        actor = (
            self.actor_of(user, event.guild_id)
            if user is not None
            else Actor(UserRef(PLATFORM, str(event.user_id)), workspace=str(event.guild_id or self.guild_id))
        )
        ref = MessageRef(ChannelRef(PLATFORM, str(event.channel_id)), str(event.message_id))
        reply = await self.core.handle_reaction(actor, ref, str(event.emoji))
        if reply is not None and not reply.ok:
            log.info("reaction by %s refused: %s", event.user_id, reply.text)

    # ------------------------------------------------------------------------------------ autocomplete
    async def complete(
        self, interaction: discord.Interaction, kind: str, current: str
    ) -> list[app_commands.Choice[str]]:
        names = await self.core.suggest(self.actor(interaction), kind, current)
        return [app_commands.Choice(name=n[:100], value=n[:100]) for n in names[:25]]

    async def run_command(self, interaction: discord.Interaction, tokens: list[str]) -> None:
        """`/peer` with its grammar tokens already split: no quoting, so no text is lost on the way."""

        async def run() -> None:
            actor = self.actor(interaction)
            await self.answer(interaction, self.core.handle_command(actor, tokens, self.channel_of(interaction)))

        await self.guard(interaction, run(), "/peer command")


def buttons_of(message: discord.Message) -> list[Button]:
    found: list[Button] = []
    for row in message.components:
        for child in getattr(row, "children", []):
            custom_id = getattr(child, "custom_id", None)
            if custom_id:
                found.append(Button(custom_id, getattr(child, "label", None) or "…"))
    return found


Choices = list[app_commands.Choice[str]]


class PeerCommands(app_commands.Group):
    """What the `/peer` groups share: running the grammar for an interaction, and name autocomplete.

    The groups hold no state: the `PeerBot` serving the interaction is `interaction.client`.
    """

    async def run(self, interaction: discord.Interaction[PeerBot], *tokens: str) -> None:
        await interaction.client.run_command(interaction, list(tokens))

    async def cohort_names(self, interaction: discord.Interaction[PeerBot], current: str) -> Choices:
        return await interaction.client.complete(interaction, "cohort", current)

    async def session_names(self, interaction: discord.Interaction[PeerBot], current: str) -> Choices:
        return await interaction.client.complete(interaction, "session", current)

    async def target_names(self, interaction: discord.Interaction[PeerBot], current: str) -> Choices:
        """Cohorts, then sessions: what `/peer export` acts on."""
        cohorts = await interaction.client.complete(interaction, "cohort", current)
        sessions = await interaction.client.complete(interaction, "session", current)
        return (cohorts + sessions)[:25]


class CohortCommands(PeerCommands, name="cohort", description="Cohorts (trainers)"):
    @app_commands.command(name="create", description="Create a cohort")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    async def create(
        self, interaction: discord.Interaction[PeerBot], cohort: str, channel: discord.TextChannel | None = None
    ) -> None:
        await self.run(interaction, "cohort", "create", word(cohort), *([channel_token(channel)] if channel else []))

    @app_commands.command(name="add", description="Add a learner (optionally with a level 1-5) to a cohort")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    @app_commands.describe(others="More people: @user or @user=level, separated by spaces")
    async def add(
        self,
        interaction: discord.Interaction[PeerBot],
        cohort: str,
        member: discord.Member,
        level: app_commands.Range[int, 1, 5] | None = None,
        others: str = "",
    ) -> None:
        first = mention(member) + (f"={level}" if level is not None else "")
        await self.run(interaction, "cohort", "add", word(cohort), first, *others.split())

    @app_commands.command(name="import", description="Enroll every member of a channel")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    async def import_(
        self,
        interaction: discord.Interaction[PeerBot],
        cohort: str,
        channel: discord.TextChannel,
        level: app_commands.Range[int, 1, 5] | None = None,
    ) -> None:
        await self.run(
            interaction, "cohort", "import", word(cohort), channel_token(channel), *([str(level)] if level else [])
        )

    @app_commands.command(name="show", description="Show a cohort")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    async def show(self, interaction: discord.Interaction[PeerBot], cohort: str) -> None:
        await self.run(interaction, "cohort", "show", word(cohort))

    @app_commands.command(name="apart", description="Never put two learners in the same group")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    async def apart(
        self, interaction: discord.Interaction[PeerBot], cohort: str, first: discord.Member, second: discord.Member
    ) -> None:
        await self.run(interaction, "cohort", "apart", word(cohort), mention(first), mention(second))

    @app_commands.command(name="together", description="Put two learners in the same group when possible")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    async def together(
        self, interaction: discord.Interaction[PeerBot], cohort: str, first: discord.Member, second: discord.Member
    ) -> None:
        await self.run(interaction, "cohort", "together", word(cohort), mention(first), mention(second))

    @app_commands.command(name="trainers", description="Add or remove a trainer of a cohort")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    @app_commands.choices(action=[app_commands.Choice(name=v, value=v) for v in ("add", "remove")])
    async def trainers(
        self,
        interaction: discord.Interaction[PeerBot],
        action: app_commands.Choice[str],
        cohort: str,
        member: discord.Member,
    ) -> None:
        # Discord nests commands two levels deep (`/peer cohort trainers add` would be three): add|remove is a
        # choice here, the same tokens reach the grammar.
        await self.run(interaction, "cohort", "trainers", action.value, word(cohort), mention(member))

    @app_commands.command(name="unpair", description="Remove the rule between two learners")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    async def unpair(
        self, interaction: discord.Interaction[PeerBot], cohort: str, first: discord.Member, second: discord.Member
    ) -> None:
        await self.run(interaction, "cohort", "unpair", word(cohort), mention(first), mention(second))


class SessionCommands(PeerCommands, name="session", description="Sessions (trainers)"):
    @app_commands.command(name="plan", description="Plan a peer-learning session")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    @app_commands.describe(
        day="Date, YYYY-MM-DD", time="Start time, HH:MM (24 h)", duration="e.g. 90m or 1h30m",
        prep_before="How long before the start the preparation is posted, e.g. 2d",
        second_retention="Weeks after the session for a second quiz on the questions each learner missed",
    )  # fmt: skip
    @app_commands.choices(
        format=[app_commands.Choice(name=f, value=f) for f in ("groups", "tutoring", "review", "sharing")],
        retention=[app_commands.Choice(name=w, value=w) for w in ("2w", "4w")],
        groups_from=[app_commands.Choice(name=g, value=g) for g in ("checked_in", "enrolled")],
        named=[app_commands.Choice(name=n, value=n) for n in ("yes", "no")],
    )
    async def plan(
        self,
        interaction: discord.Interaction[PeerBot],
        cohort: str,
        title: str,
        day: str,
        time: str,
        duration: str,
        format: app_commands.Choice[str] | None = None,
        size: app_commands.Range[int, 2, 6] | None = None,
        prep: str | None = None,
        prep_before: str | None = None,
        objectives: str | None = None,
        retention: app_commands.Choice[str] | None = None,
        groups_from: app_commands.Choice[str] | None = None,
        second_retention: app_commands.Range[int, 3, 26] | None = None,
        reviewers: app_commands.Range[int, 1, 5] | None = None,
        named: app_commands.Choice[str] | None = None,
    ) -> None:
        first = retention.value if retention else ("2w" if second_retention else None)
        retention_value = f"{first},{second_retention}w" if second_retention else first
        await self.run(
            interaction, "session", "plan", word(cohort), title, word(day), word(time), word(duration),
            *option("format", format.value if format else None), *option("size", size), *option("prep", prep),
            *option("prep_before", word(prep_before) if prep_before else None), *option("objectives", objectives),
            *option("retention", retention_value),
            *option("groups_from", groups_from.value if groups_from else None),
            *option("reviewers", reviewers), *option("named", named.value if named else None),
        )  # fmt: skip

    @app_commands.command(name="show", description="Show a session")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def show(self, interaction: discord.Interaction[PeerBot], session: str) -> None:
        await self.run(interaction, "session", "show", word(session))

    @app_commands.command(name="start", description="Start now a session")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def start(self, interaction: discord.Interaction[PeerBot], session: str) -> None:
        await self.run(interaction, "session", "start", word(session))

    @app_commands.command(name="end", description="End now a session")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def end(self, interaction: discord.Interaction[PeerBot], session: str) -> None:
        await self.run(interaction, "session", "end", word(session))

    @app_commands.command(name="cancel", description="Cancel a session")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def cancel(self, interaction: discord.Interaction[PeerBot], session: str) -> None:
        await self.run(interaction, "session", "cancel", word(session))


class QuizCommands(PeerCommands, name="quiz", description="Retention quiz (trainers)"):
    @app_commands.command(name="add", description="Add a retention-quiz question")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def add(
        self, interaction: discord.Interaction[PeerBot], session: str, question: str, correct: str, wrong1: str,
        wrong2: str | None = None, wrong3: str | None = None, wrong4: str | None = None,
    ) -> None:  # fmt: skip
        wrong = [w for w in (wrong1, wrong2, wrong3, wrong4) if w]
        await self.run(interaction, "quiz", "add", word(session), question, correct, *wrong)


class QuestionnaireCommands(PeerCommands, name="questionnaire", description="Questionnaires (trainers)"):
    @app_commands.command(name="edit", description="Edit the cohort's post-session questionnaire")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    async def edit(self, interaction: discord.Interaction[PeerBot], cohort: str) -> None:
        await self.run(interaction, "questionnaire", "edit", word(cohort))


class FollowupCommands(PeerCommands, name="followup", description="Behavioural follow-up (trainers)"):
    @app_commands.command(name="plan", description="Ask learners (and an observer) how they apply the session")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    @app_commands.describe(weeks="Weeks after the session", observer="A tutor or manager asked about each learner")
    async def plan(
        self,
        interaction: discord.Interaction[PeerBot],
        session: str,
        weeks: app_commands.Range[int, 1, 52],
        observer: discord.Member | None = None,
    ) -> None:
        extra = [f"observer={mention(observer)}"] if observer else []
        await self.run(interaction, "followup", "plan", word(session), str(weeks), *extra)


class ReviewCommands(PeerCommands, name="review", description="Peer review (trainers)"):
    @app_commands.command(name="criteria", description="Set the rubric of a peer review session (1 to 4 criteria)")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def criteria(
        self, interaction: discord.Interaction[PeerBot], session: str, criterion1: str,
        criterion2: str | None = None, criterion3: str | None = None, criterion4: str | None = None,
    ) -> None:  # fmt: skip
        criteria = [c for c in (criterion1, criterion2, criterion3, criterion4) if c is not None]
        await self.run(interaction, "review", "criteria", word(session), *criteria)


class GroupCommands(PeerCommands, name="group", description="Groups of a running session (trainers)"):
    @app_commands.command(name="show", description="Show the groups of a session")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def show(self, interaction: discord.Interaction[PeerBot], session: str) -> None:
        await self.run(interaction, "group", "show", word(session))

    @app_commands.command(name="move", description="Move someone to another group")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def move(
        self,
        interaction: discord.Interaction[PeerBot],
        session: str,
        member: discord.Member,
        number: app_commands.Range[int, 1],
    ) -> None:
        await self.run(interaction, "group", "move", word(session), mention(member), str(number))

    @app_commands.command(name="swap", description="Swap two people between their groups")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def swap(
        self, interaction: discord.Interaction[PeerBot], session: str, first: discord.Member, second: discord.Member
    ) -> None:
        await self.run(interaction, "group", "swap", word(session), mention(first), mention(second))

    @app_commands.command(name="reshuffle", description="Form a new draft of the groups (before the start)")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def reshuffle(self, interaction: discord.Interaction[PeerBot], session: str) -> None:
        await self.run(interaction, "group", "reshuffle", word(session))


class PeerGroup(PeerCommands, name="peer", description="Peer-learning sessions"):
    """`/peer …`: one subcommand per grammar entry, with typed options, choices and autocomplete."""

    # The trainers' subgroups first: the order Discord lists them in.
    cohort_commands = CohortCommands()
    session_commands = SessionCommands()
    quiz_commands = QuizCommands()
    review_commands = ReviewCommands()
    group_commands = GroupCommands()
    questionnaire_commands = QuestionnaireCommands()
    followup_commands = FollowupCommands()

    @app_commands.command(name="help", description="What I can do for you")
    async def help(self, interaction: discord.Interaction[PeerBot]) -> None:
        await self.run(interaction, "help")

    @app_commands.command(name="report", description="Attendance, preparation and feedback of a session")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def report(self, interaction: discord.Interaction[PeerBot], session: str) -> None:
        await self.run(interaction, "report", word(session))

    @app_commands.command(name="export", description="Send me a cohort's or a session's evidence by DM")
    @app_commands.autocomplete(target=PeerCommands.target_names)
    @app_commands.describe(
        target="A cohort, or a session id", format="pdf (default), xlsx, csv or a cohort's audit pack"
    )
    @app_commands.choices(format=[app_commands.Choice(name=f, value=f) for f in ("pdf", "xlsx", "csv", "audit")])
    async def export(
        self,
        interaction: discord.Interaction[PeerBot],
        target: str,
        format: app_commands.Choice[str] | None = None,
    ) -> None:
        await self.run(interaction, "export", word(target), *([format.value] if format else []))

    @app_commands.command(name="note", description="Note what you saw in a session and what you will change")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def note(
        self, interaction: discord.Interaction[PeerBot], session: str, text: app_commands.Range[str, 1, 1000]
    ) -> None:
        await self.run(interaction, "note", word(session), text)

    @app_commands.command(name="alerts", description="Learners of a cohort who may be drifting away")
    @app_commands.autocomplete(cohort=PeerCommands.cohort_names)
    async def alerts(self, interaction: discord.Interaction[PeerBot], cohort: str) -> None:
        await self.run(interaction, "alerts", word(cohort))

    @app_commands.command(name="dashboard", description="Get a sign-in link to the web dashboard (trainers)")
    async def dashboard(self, interaction: discord.Interaction[PeerBot]) -> None:
        await self.run(interaction, "dashboard")

    @app_commands.command(name="checkin", description="Check in to your session")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def checkin(self, interaction: discord.Interaction[PeerBot], session: str | None = None) -> None:
        await self.run(interaction, "checkin", *([word(session)] if session else []))

    @app_commands.command(name="prep-done", description="Mark your preparation as done")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def prep_done(self, interaction: discord.Interaction[PeerBot], session: str | None = None) -> None:
        await self.run(interaction, "prep-done", *([word(session)] if session else []))

    @app_commands.command(name="absent", description="Tell your trainer you cannot come")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def absent(self, interaction: discord.Interaction[PeerBot], session: str, reason: str) -> None:
        await self.run(interaction, "absent", word(session), reason)

    @app_commands.command(name="submit", description="Hand in your work for a peer review session")
    @app_commands.autocomplete(session=PeerCommands.session_names)
    async def submit(self, interaction: discord.Interaction[PeerBot], session: str | None = None) -> None:
        await self.run(interaction, "submit", *([word(session)] if session else []))

    @app_commands.command(name="raise", description="Ask the trainer for help in your breakout")
    async def raise_(self, interaction: discord.Interaction[PeerBot]) -> None:
        await self.run(interaction, "raise")

    @app_commands.command(name="mydata", description="What peerbot stores about you")
    async def mydata(self, interaction: discord.Interaction[PeerBot]) -> None:
        await self.run(interaction, "mydata")

    @app_commands.command(name="forget-me", description="Erase what peerbot knows about you (asks to confirm)")
    async def forget_me(self, interaction: discord.Interaction[PeerBot]) -> None:
        await self.run(interaction, "forget-me")
