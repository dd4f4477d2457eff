"""The emulator against a minimal real discord.py client: if these fail, the adapter tests mean nothing."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import discord
import pytest
from discord import app_commands

from tests.e2e.discord_fixtures import discord_emu, running
from tests.emulators.discord_emulator import VIEW_CHANNEL, DiscordEmulator

__all__ = ["discord_emu"]


class Answer(discord.ui.Modal, title="Your answer"):
    text: discord.ui.TextInput[Answer] = discord.ui.TextInput(label="What did you learn?", custom_id="learned")

    def __init__(self, sink: list[str]) -> None:
        super().__init__(custom_id="probe:modal:1")
        self.sink = sink

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.sink.append(self.text.value)
        await interaction.response.send_message(f"saved {self.text.value}", ephemeral=True)


class Probe(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"probe:(?P<verb>click|ask):(?P<n>\d+)"):
    """A persistent button: it must work for a client that never sent the message."""

    def __init__(self, verb: str, n: int) -> None:
        super().__init__(discord.ui.Button(label=verb, custom_id=f"probe:{verb}:{n}"))
        self.verb, self.n = verb, n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Probe:
        return cls(match["verb"], int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        assert isinstance(client, ProbeClient)
        if self.verb == "ask":
            await interaction.response.send_modal(Answer(client.answers))
        else:
            await interaction.response.send_message(f"clicked {self.n} by {interaction.user.id}", ephemeral=True)


class ProbeClient(discord.Client):
    def __init__(self, guild_id: int) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_reactions = True
        intents.dm_reactions = True
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.guild = discord.Object(guild_id)
        self.answers: list[str] = []
        self.reactions: asyncio.Queue[discord.RawReactionActionEvent] = asyncio.Queue()
        self.resumed = asyncio.Event()
        group = app_commands.Group(name="peer", description="peer learning")
        session = app_commands.Group(name="session", description="sessions", parent=group)

        @session.command(name="plan", description="plan a session")
        @app_commands.choices(fmt=[app_commands.Choice(name="Jigsaw", value="jigsaw")])
        async def plan(
            interaction: discord.Interaction,
            cohort: str,
            size: int,
            trainer: discord.Member,
            fmt: app_commands.Choice[str] | None = None,
        ) -> None:
            fmt_value = fmt.value if fmt else "-"
            await interaction.response.send_message(f"{cohort}|{size}|{trainer.id}|{fmt_value}")

        @plan.autocomplete("cohort")
        async def cohorts(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=c, value=c) for c in ("alpha", "beta") if c.startswith(current)]

        @group.command(name="slow", description="defers")
        async def slow(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await asyncio.sleep(0.01)
            await interaction.followup.send("done later")

        @group.command(name="private", description="defers privately, then follows up twice")
        async def private(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("first", ephemeral=False)
            await interaction.followup.send("second", ephemeral=False)

        self.tree.add_command(group, guild=self.guild)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Probe)
        await self.tree.sync(guild=self.guild)

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        await self.reactions.put(event)


async def post_probe(client: ProbeClient, channel_id: int) -> int:
    view = discord.ui.View(timeout=None)
    view.add_item(Probe("click", 7))
    view.add_item(Probe("ask", 8))
    channel = await client.fetch_channel(channel_id)
    assert isinstance(channel, discord.TextChannel)
    msg = await channel.send("probe", view=view)
    return msg.id


async def test_login_sync_and_typed_slash_command(discord_emu: DiscordEmulator) -> None:
    alice = discord_emu.add_user("alice")
    async with running(ProbeClient(discord_emu.guild_id), discord_emu):
        [peer] = discord_emu.guild_commands
        assert [o["name"] for o in peer["options"]] == ["session", "slow", "private"]
        inter = await discord_emu.slash(
            alice,
            "peer",
            ["session", "plan"],
            {"cohort": "alpha", "size": 4, "trainer": alice, "fmt": "jigsaw"},
        )
        assert inter.callback_type == 4
        assert inter.text == f"alpha|4|{alice.id}|jigsaw"
        with pytest.raises(AssertionError, match="choices"):
            await discord_emu.slash(
                alice, "peer", ["session", "plan"], {"cohort": "a", "size": 1, "trainer": alice, "fmt": "x"}
            )


async def test_autocomplete_and_deferred_follow_up(discord_emu: DiscordEmulator) -> None:
    alice = discord_emu.add_user("alice")
    async with running(ProbeClient(discord_emu.guild_id), discord_emu):
        choices = await discord_emu.autocomplete(alice, "peer", ["session", "plan"], "cohort", {"cohort": "b"})
        assert [c["value"] for c in choices] == ["beta"]
        inter = await discord_emu.slash(alice, "peer", ["slow"])
        assert inter.callback_type == 5
        msg = await inter.wait_message()
        assert msg.content == "done later"


async def test_persistent_button_survives_a_new_client(discord_emu: DiscordEmulator) -> None:
    bob = discord_emu.add_user("bob")
    async with running(ProbeClient(discord_emu.guild_id), discord_emu) as first:
        assert isinstance(first, ProbeClient)
        message_id = await post_probe(first, discord_emu.general.id)
    message = discord_emu.general.messages[message_id]
    assert message.custom_ids() == ["probe:click:7", "probe:ask:8"]
    async with running(ProbeClient(discord_emu.guild_id), discord_emu):
        inter = await discord_emu.click(bob, message, "probe:click:7")
        assert inter.text == f"clicked 7 by {bob.id}"
        assert inter.messages[0].ephemeral


async def test_button_opens_modal_and_submission_reaches_the_bot(discord_emu: DiscordEmulator) -> None:
    bob = discord_emu.add_user("bob")
    async with running(ProbeClient(discord_emu.guild_id), discord_emu) as client:
        assert isinstance(client, ProbeClient)
        message = discord_emu.general.messages[await post_probe(client, discord_emu.general.id)]
        opened = await discord_emu.click(bob, message, "probe:ask:8")
        assert opened.modal is not None and opened.modal["title"] == "Your answer"
        with pytest.raises(AssertionError, match="required"):
            await discord_emu.submit_modal(bob, opened, {})
        submitted = await discord_emu.submit_modal(bob, opened, {"learned": "jigsaw works"})
        assert submitted.text == "saved jigsaw works"
        assert client.answers == ["jigsaw works"]


async def test_429_is_recovered_by_discord_py() -> None:
    # Windows of 0.5 s: at 0.05 s, loopback latency alone makes requests straddle two windows.
    async with (
        DiscordEmulator(time_scale=0.1) as discord_emu,
        running(ProbeClient(discord_emu.guild_id), discord_emu) as client,
    ):
        channel = await client.fetch_channel(discord_emu.general.id)
        assert isinstance(channel, discord.TextChannel)
        discord_emu.inject_429("POST /channels/{channel_id}/messages", retry_after=5.0)
        sent = await channel.send("after a 429")
        assert discord_emu.stats.rate_limited == 1
        assert discord_emu.general.messages[sent.id].content == "after a 429"
        # Bucket headers: 5 per (scaled) 5 s; discord.py must wait instead of hammering.
        await asyncio.gather(*(channel.send(f"m{i}") for i in range(7)))
        assert discord_emu.stats.rate_limited == 1
        assert len(discord_emu.general.messages) == 8


async def test_gateway_resume_replays_missed_events(discord_emu: DiscordEmulator) -> None:
    alice = discord_emu.add_user("alice")
    async with running(ProbeClient(discord_emu.guild_id), discord_emu) as client:
        assert isinstance(client, ProbeClient)
        message = discord_emu.general.messages[await post_probe(client, discord_emu.general.id)]
        await discord_emu.drop_gateway()
        await discord_emu.react(alice, message, "✅")  # sent while the bot is away
        async with asyncio.timeout(5):
            await client.resumed.wait()
            event = await client.reactions.get()
        assert (event.user_id, event.message_id, str(event.emoji)) == (alice.id, message.id, "✅")
        inter = await discord_emu.slash(
            alice, "peer", ["session", "plan"], {"cohort": "beta", "size": 3, "trainer": alice}
        )
        assert inter.text == f"beta|3|{alice.id}|-"


async def test_errors_are_discord_shaped(discord_emu: DiscordEmulator) -> None:
    closed = discord_emu.add_user("closed", dms_open=False)
    async with running(ProbeClient(discord_emu.guild_id), discord_emu) as client:
        user = await client.fetch_user(closed.id)
        with pytest.raises(discord.Forbidden) as dm_error:
            await user.send("hello")
        assert dm_error.value.code == 50007
        with pytest.raises(discord.NotFound) as missing:
            await client.http.send_message(123, params=discord.http.handle_message_parameters(content="x"))
        assert missing.value.code == 10003
        channel = await client.fetch_channel(discord_emu.general.id)
        assert isinstance(channel, discord.TextChannel)
        view = discord.ui.View()
        view.add_item(discord.ui.Button(label="x" * 81, custom_id="too:long:label"))
        with pytest.raises(discord.HTTPException) as invalid:
            await channel.send("bad", view=view)
        assert invalid.value.code == 50035 and "80" in invalid.value.text


async def test_private_channels_limits_and_overwrites(discord_emu: DiscordEmulator) -> None:
    alice, bob = discord_emu.add_user("alice"), discord_emu.add_user("bob")
    discord_emu.max_per_category = 2
    discord_emu.max_channels = 5
    async with running(ProbeClient(discord_emu.guild_id), discord_emu) as client:
        guild = client.get_guild(discord_emu.guild_id)
        assert guild is not None
        category = await guild.create_category("session 1")
        hidden = discord.PermissionOverwrite(view_channel=False)
        shown = discord.PermissionOverwrite(view_channel=True)
        me, everyone = guild.me, guild.default_role
        admin_only = discord.PermissionOverwrite(administrator=True)
        with pytest.raises(discord.Forbidden) as escalation:
            await guild.create_text_channel("x", overwrites={everyone: admin_only})
        assert escalation.value.code == 50013
        overwrites: dict[Any, discord.PermissionOverwrite] = {everyone: hidden, me: shown}
        overwrites[discord.Object(alice.id, type=discord.Member)] = shown
        text = await guild.create_text_channel("Group 1", category=category, overwrites=overwrites)
        created = discord_emu.channels[text.id]
        assert created.name == "group-1" and created.parent_id == category.id
        assert discord_emu.can_view(alice, created) and not discord_emu.can_view(bob, created)
        assert discord_emu.permissions_in(discord_emu.bot_user, created) & VIEW_CHANNEL
        await guild.create_voice_channel("Group 1", category=category, overwrites=overwrites)
        with pytest.raises(discord.HTTPException) as full_category:
            await guild.create_text_channel("group-2", category=category)
        assert full_category.value.code == 50035 and "(2)" in full_category.value.text
        await guild.create_text_channel("loose")
        with pytest.raises(discord.HTTPException) as full_guild:
            await guild.create_text_channel("one-too-many")
        assert full_guild.value.code == 30013


async def test_first_follow_up_after_a_deferral_edits_the_original_and_keeps_it_private(
    discord_emu: DiscordEmulator,
) -> None:
    alice = discord_emu.add_user("alice")
    async with running(ProbeClient(discord_emu.guild_id), discord_emu):
        inter = await discord_emu.slash(alice, "peer", ["private"])
        assert inter.callback_type == 5
        await discord_emu.wait_until(lambda: len(inter.messages) == 2)
        first, second = inter.messages
        assert first is inter.original and first.content == "first" and first.ephemeral  # the deferral's privacy
        assert second.content == "second" and not second.ephemeral  # later follow-ups are messages of their own


class Listener(discord.Client):
    """A bare client that answers every interaction it hears with its own name, and records what Discord said."""

    def __init__(self, name: str, outcomes: dict[str, str]) -> None:
        super().__init__(intents=discord.Intents.none())
        self.name, self.outcomes = name, outcomes

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.05 if self.name == "second" else 0)  # the first one answers first
        try:
            await interaction.response.send_message(f"from {self.name}")
            self.outcomes[self.name] = "answered"
        except discord.HTTPException as exc:
            self.outcomes[self.name] = f"refused {exc.code}"


async def test_two_processes_logged_in_with_one_token_both_hear_each_interaction(discord_emu: DiscordEmulator) -> None:
    """Discord sends every event to every gateway session of the shard (a bot run twice answers twice): both
    clients get the interaction, the first answer stands and the second is refused with 40060."""
    emu = discord_emu
    user = emu.add_user("ana")
    emu.guild_commands.append({"id": "1", "name": "anything", "type": 1, "options": []})  # as a sync leaves it
    outcomes: dict[str, str] = {}
    async with running(Listener("first", outcomes), emu), running(Listener("second", outcomes), emu):
        inter = await emu.slash(user, "anything")
        async with asyncio.timeout(5):
            while len(outcomes) < 2:  # noqa: ASYNC110 - each client records its outcome on its own
                await asyncio.sleep(0.01)
    assert outcomes == {"first": "answered", "second": "refused 40060"}
    assert (await inter.wait_message()).content == "from first"
