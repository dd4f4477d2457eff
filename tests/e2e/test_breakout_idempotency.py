"""A breakout asked for again after a restart (the process died between creating the channel and recording its
id) is the same channel, not a duplicate: through the real slack_sdk and discord.py clients, against the
emulators. Each "restart" is a fresh platform instance with no memory of the first one."""

from __future__ import annotations

import discord
import pytest

from adapters.discord.platform import DiscordPlatform
from adapters.slack.pacing import Pacer
from adapters.slack.platform import SlackPlatform, build_client
from bot.port import PlatformError
from bot.refs import UserRef
from tests.e2e.conftest_slack import slack_emulator
from tests.emulators.discord_emulator import CATEGORY, TEXT, VOICE, DiscordEmulator, EmuUser
from tests.emulators.slack_api import SlackEmulator

__all__ = ["slack_emulator"]

CREATE_ROUTE = "POST /guilds/{guild_id}/channels"


# ---------------------------------------------------------------------------------------------------- Slack
def slack_process(emulator: SlackEmulator) -> SlackPlatform:
    pacer = Pacer(time_scale=emulator.time_scale)
    return SlackPlatform(build_client(emulator.token, emulator.base_url, pacer), pacer)


def slack_users(emulator: SlackEmulator, *names: str) -> list[UserRef]:
    return [UserRef("slack", emulator.seed_user(n)) for n in names]


def created(emulator: SlackEmulator) -> int:
    return len(emulator.calls_of("conversations.create"))


async def test_slack_restart_returns_the_same_breakout_and_adds_missing_members(
    slack_emulator: SlackEmulator,
) -> None:
    ann, bob, cyd = slack_users(slack_emulator, "ann", "bob", "cyd")
    first = slack_process(slack_emulator)
    before = await first.create_private_channel("peer-s1-g1", [ann, bob], "Fractions", group_key="s1:1")
    await first.close()
    channels = len(slack_emulator.channels)

    restarted = slack_process(slack_emulator)
    again = await restarted.create_private_channel("peer-s1-g1", [ann, bob, cyd], "Fractions", group_key="s1:1")
    await restarted.close()

    assert again == before
    assert created(slack_emulator) == 1 and len(slack_emulator.channels) == channels
    channel = slack_emulator.channels[again.id]
    assert channel.name == "peer-s1-g1"
    assert channel.members == [slack_emulator.bot_user_id, ann.id, bob.id, cyd.id]
    assert channel.topic == "Fractions"
    # Nothing was redone that did not need redoing: the mark and the topic were already right.
    assert len(slack_emulator.calls_of("conversations.setPurpose")) == 1
    assert len(slack_emulator.calls_of("conversations.setTopic")) == 1


async def test_slack_crash_right_after_create_is_finished_by_the_restart(slack_emulator: SlackEmulator) -> None:
    ann, bob = slack_users(slack_emulator, "ann", "bob")
    first = slack_process(slack_emulator)
    slack_emulator.fail_next("conversations.setPurpose", 503, 503, 503)  # past the SDK's 2 retries
    with pytest.raises(PlatformError):
        await first.create_private_channel("peer-s1-g2", [ann, bob], "Fractions", group_key="s1:2")
    await first.close()
    half = slack_emulator.channel_named("peer-s1-g2")
    assert half is not None and half.members == [slack_emulator.bot_user_id] and half.purpose == ""

    restarted = slack_process(slack_emulator)
    ref = await restarted.create_private_channel("peer-s1-g2", [ann, bob], "Fractions", group_key="s1:2")
    await restarted.close()

    assert ref.id == half.id and created(slack_emulator) == 1
    assert half.members == [slack_emulator.bot_user_id, ann.id, bob.id]
    assert half.topic == "Fractions" and "s1:2" in half.purpose


@pytest.mark.parametrize("bot_inside", [True, False])
async def test_slack_foreign_channel_with_the_name_still_gets_a_suffix(
    slack_emulator: SlackEmulator, bot_inside: bool
) -> None:
    (human,) = slack_users(slack_emulator, "human")
    ann, bob = slack_users(slack_emulator, "ann", "bob")
    members = [human.id, slack_emulator.bot_user_id] if bot_inside else [human.id]
    foreign = slack_emulator.seed_channel("peer-s1-g1", members, is_private=True, creator=human.id)

    first = slack_process(slack_emulator)
    ref = await first.create_private_channel("peer-s1-g1", [ann], "t", group_key="s1:1")
    await first.close()
    assert ref.id != foreign and slack_emulator.channels[ref.id].name == "peer-s1-g1-2"
    assert slack_emulator.channels[foreign].members == members  # left alone

    restarted = slack_process(slack_emulator)  # the suffixed breakout is found again, past the foreign one
    again = await restarted.create_private_channel("peer-s1-g1", [ann, bob], "t", group_key="s1:1")
    await restarted.close()
    assert again == ref and created(slack_emulator) == 1
    assert slack_emulator.channels[ref.id].members == [slack_emulator.bot_user_id, ann.id, bob.id]


async def test_slack_breakout_marked_for_another_group_is_not_taken(slack_emulator: SlackEmulator) -> None:
    (ann,) = slack_users(slack_emulator, "ann")
    first = slack_process(slack_emulator)
    other = await first.create_private_channel("peer-s1-g1", [ann], "t", group_key="old:1")
    await first.close()

    restarted = slack_process(slack_emulator)
    ref = await restarted.create_private_channel("peer-s1-g1", [ann], "t", group_key="s1:1")
    await restarted.close()
    assert ref != other and slack_emulator.channels[ref.id].name == "peer-s1-g1-2"
    assert created(slack_emulator) == 2


async def test_slack_lookup_follows_conversations_list_pages(slack_emulator: SlackEmulator) -> None:
    (ann,) = slack_users(slack_emulator, "ann")
    for n in range(250):  # more private channels than one page holds, the breakout last
        slack_emulator.seed_channel(f"other-{n}", [slack_emulator.bot_user_id], is_private=True)
    first = slack_process(slack_emulator)
    ref = await first.create_private_channel("peer-s9-g1", [ann], "t", group_key="s9:1")
    await first.close()

    restarted = slack_process(slack_emulator)
    assert await restarted.create_private_channel("peer-s9-g1", [ann], "t", group_key="s9:1") == ref
    await restarted.close()
    pages = slack_emulator.calls_of("conversations.list")
    assert len(pages) == 2 and all(c.args["types"] == "private_channel" for c in pages)


# -------------------------------------------------------------------------------------------------- Discord
def discord_process(emu: DiscordEmulator, http: discord.http.HTTPClient) -> DiscordPlatform:
    return DiscordPlatform(http, emu.guild_id, trainer_role="Trainer", global_rate=1000.0)


def dref(user: EmuUser) -> UserRef:
    return UserRef("discord", str(user.id))


def channel_creations(emu: DiscordEmulator) -> int:
    return sum(1 for _, route, _, status in emu.request_log if route == CREATE_ROUTE and status < 300)


async def test_discord_restart_returns_the_same_pair_and_lets_new_members_in(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    trainer = emu.add_user("trainer", roles=[emu.trainer_role_id])
    ann, bob, cyd, outsider = (emu.add_user(n) for n in ("ann", "bob", "cyd", "outsider"))
    first = discord_process(emu, http)
    before = await first.create_private_channel("peer-s1-g1", [dref(ann), dref(bob)], "Fractions", group_key="s1:1")
    await first.create_private_channel("peer-s1-g2", [dref(outsider)], "Fractions", group_key="s1:2")
    made = channel_creations(emu)

    restarted = discord_process(emu, http)
    await restarted.ensure_capacity("s1", 2)  # what the core does first: loads the layout
    members = [dref(ann), dref(bob), dref(cyd)]
    again = await restarted.create_private_channel("peer-s1-g1", members, "Fractions", group_key="s1:1")

    assert again == before and channel_creations(emu) == made
    text = emu.channels[int(again.id)]
    voices = [c for c in emu.channels.values() if c.type == VOICE and c.name == "peer-s1-g1"]
    assert len(voices) == 1 and voices[0].parent_id == text.parent_id
    assert len([c for c in emu.channels.values() if c.type == TEXT and c.name == "peer-s1-g1"]) == 1
    for channel in (text, voices[0]):
        assert all(emu.can_view(u, channel) for u in (ann, bob, cyd, trainer, emu.bot_user))
        assert not emu.can_view(outsider, channel)
    emu.privileged_intents = 1 << 1  # the trainer role sees the breakout too: who sees it needs the member list
    seen = sorted(str(u.id) for u in (ann, bob, cyd, trainer, emu.owner))
    assert sorted(m.id for m in await restarted.members_of(again)) == seen
    # The pair is known to the restarted process: moving a member reaches the voice channel too.
    await restarted.remove_member(again, cyd)
    assert not emu.can_view(cyd, voices[0])


async def test_discord_restart_with_nothing_missing_changes_nothing(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    ann = emu.add_user("ann")
    first = discord_process(emu, http)
    before = await first.create_private_channel("peer-s1-g1", [dref(ann)], "Fractions", group_key="s1:1")
    patches = emu.stats.by_route.get("PATCH /channels/{channel_id}", 0)

    restarted = discord_process(emu, http)
    assert await restarted.create_private_channel("peer-s1-g1", [dref(ann)], "Fractions", group_key="s1:1") == before
    assert emu.stats.by_route.get("PATCH /channels/{channel_id}", 0) == patches
    assert channel_creations(emu) == 3  # category, text, voice: all from the first process


async def test_discord_crash_between_text_and_voice_creates_only_the_voice(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    ann = emu.add_user("ann")
    emu.max_channels = len(emu.channels) + 2  # room for the category and the text channel only
    first = discord_process(emu, http)
    with pytest.raises(PlatformError):
        await first.create_private_channel("peer-s1-g1", [dref(ann)], "Fractions", group_key="s1:1")
    texts = [c for c in emu.channels.values() if c.type == TEXT and c.name == "peer-s1-g1"]
    assert len(texts) == 1 and not any(c.type == VOICE for c in emu.channels.values())
    emu.max_channels = 500

    restarted = discord_process(emu, http)
    ref = await restarted.create_private_channel("peer-s1-g1", [dref(ann)], "Fractions", group_key="s1:1")
    assert int(ref.id) == texts[0].id
    voices = [c for c in emu.channels.values() if c.type == VOICE]
    assert len(voices) == 1 and voices[0].parent_id == texts[0].parent_id and emu.can_view(ann, voices[0])
    assert [c.name for c in emu.channels.values() if c.type == CATEGORY] == ["peer s1"]


async def test_discord_same_name_outside_the_session_category_is_not_reused(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    ann = emu.add_user("ann")
    stray = await http.create_channel(emu.guild_id, TEXT, name="peer-s1-g1")  # top level, not a breakout
    port = discord_process(emu, http)
    ref = await port.create_private_channel("peer-s1-g1", [dref(ann)], "", group_key="s1:1")
    assert ref.id != stray["id"]
    assert emu.channels[int(ref.id)].parent_id is not None
