"""SlackPlatform (the port on slack_sdk) against the emulator: what lands in Slack's state, and how the
adapter copes with Slack's refusals, 429s and 5xx."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.slack.pacing import Pacer, Rate
from adapters.slack.platform import SlackPlatform, build_client, channel_name
from bot.messages import Button, ButtonStyle, Message, Section, Timestamp
from bot.port import Platform, PlatformError, Undeliverable
from bot.refs import ChannelRef, MessageRef, UserRef
from tests.e2e.conftest_slack import FAST, limited_slack_emulator, slack_emulator
from tests.emulators.slack_api import SlackEmulator

__all__ = ["limited_slack_emulator", "slack_emulator"]


def platform_for(emulator: SlackEmulator, pacer: Pacer | None = None) -> SlackPlatform:
    pacer = pacer or Pacer(time_scale=emulator.time_scale)
    return SlackPlatform(build_client(emulator.token, emulator.base_url, pacer), pacer)


def users(emulator: SlackEmulator, *names: str) -> list[UserRef]:
    return [UserRef("slack", emulator.seed_user(n)) for n in names]


@given(st.text())
def test_channel_names_always_valid(raw: str) -> None:
    name = channel_name(raw, "-2")
    assert re.fullmatch(r"[a-z0-9_-]+", name) and len(name) <= 80 and name.endswith("-2")


def test_slack_platform_satisfies_the_port() -> None:
    assert isinstance(SlackPlatform.connect("xoxb-x", "http://127.0.0.1:9/api/"), Platform)


async def test_breakout_channel_is_created_private_with_members_and_topic(slack_emulator: SlackEmulator) -> None:
    slack = platform_for(slack_emulator)
    learners = users(slack_emulator, "ann", "bob", "cyd")
    bot = UserRef("slack", slack_emulator.bot_user_id)
    ref = await slack.create_private_channel("Peer S1.Group 1!", [*learners, bot, learners[0]], "Fractions")
    channel = slack_emulator.channels[ref.id]
    assert (channel.name, channel.is_private, channel.topic) == ("peer-s1-group-1", True, "Fractions")
    assert channel.members == [slack_emulator.bot_user_id, *(u.id for u in learners)]
    assert await slack.members_of(ref) == learners


async def test_taken_name_gets_a_suffix_and_group_key_is_idempotent(slack_emulator: SlackEmulator) -> None:
    slack = platform_for(slack_emulator)
    slack_emulator.seed_channel("peer-s1-g1", [])
    ann, bob = users(slack_emulator, "ann", "bob")
    first = await slack.create_private_channel("peer-s1-g1", [ann], "t", group_key="s1:1")
    again = await slack.create_private_channel("peer-s1-g1", [ann, bob], "t", group_key="s1:1")
    assert first == again
    assert slack_emulator.channels[first.id].name == "peer-s1-g1-2"
    assert slack_emulator.channels[first.id].members == [slack_emulator.bot_user_id, ann.id, bob.id]
    assert len(slack_emulator.calls_of("conversations.create")) == 1


async def test_one_unknown_member_does_not_block_the_others(slack_emulator: SlackEmulator) -> None:
    slack = platform_for(slack_emulator)
    ann, bob = users(slack_emulator, "ann", "bob")
    ref = await slack.create_private_channel("g", [ann, UserRef("slack", "U0GHOST"), bob], "")
    assert slack_emulator.channels[ref.id].members == [slack_emulator.bot_user_id, ann.id, bob.id]


async def test_membership_changes_and_archive_are_idempotent(slack_emulator: SlackEmulator) -> None:
    slack = platform_for(slack_emulator)
    ann, bob, cyd = users(slack_emulator, "ann", "bob", "cyd")
    ref = await slack.create_private_channel("g", [ann, bob], "")
    await slack.add_members(ref, [bob, cyd])
    await slack.remove_member(ref, ann)
    await slack.remove_member(ref, ann)
    assert await slack.members_of(ref) == [bob, cyd]
    await slack.archive_channel(ref)
    await slack.archive_channel(ref)
    assert slack_emulator.channels[ref.id].is_archived
    with pytest.raises(PlatformError) as info:
        await slack.post(ref, Message("too late"))
    assert info.value.code == "is_archived"


async def test_members_of_follows_pagination(slack_emulator: SlackEmulator) -> None:
    slack = platform_for(slack_emulator)
    many = users(slack_emulator, *(f"u{i}" for i in range(450)))
    cid = slack_emulator.seed_channel("big", [slack_emulator.bot_user_id, *(u.id for u in many)], is_private=True)
    assert await slack.members_of(ChannelRef("slack", cid)) == many
    assert len(slack_emulator.calls_of("conversations.members")) == 3


async def test_post_and_update_render_block_kit(slack_emulator: SlackEmulator) -> None:
    from datetime import UTC, datetime

    slack = platform_for(slack_emulator)
    cid = slack_emulator.seed_channel("general", [slack_emulator.bot_user_id])
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    message = Message(
        "Session *S1* starts",
        sections=(Section("Starts {0}.", (Timestamp(at, "2 March 09:30 UTC"),)),),
        buttons=(Button("prep:done:S1", "I have prepared", ButtonStyle.PRIMARY),),
    )
    ref = await slack.post(ChannelRef("slack", cid), message)
    stored = slack_emulator.history(cid)[0]
    assert ref == MessageRef(ChannelRef("slack", cid), stored.ts)
    token = f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|2 March 09:30 UTC>"
    assert stored.blocks[1]["text"]["text"] == f"Starts {token}."
    assert stored.blocks[2]["elements"][0]["action_id"] == "prep:done:S1"
    assert token in stored.text
    await slack.update(ref, Message("Session *S1* started"))
    assert slack_emulator.history(cid)[0].text == "Session *S1* started"
    assert slack_emulator.history(cid)[0].edited


async def test_dm_reaches_the_app_dm_and_refusals_are_undeliverable(slack_emulator: SlackEmulator) -> None:
    slack = platform_for(slack_emulator)
    (ann,) = users(slack_emulator, "ann")
    ref = await slack.send_dm(ann, Message("How was it?"))
    dm = slack_emulator.channels[ref.channel.id]
    assert dm.is_im and dm.im_user == ann.id
    assert [m.text for m in slack_emulator.history(dm.id)] == ["How was it?"]
    gone = UserRef("slack", slack_emulator.seed_user("gone", deleted=True))
    robot = UserRef("slack", slack_emulator.seed_user("robot", is_bot=True))
    for who in (gone, robot, UserRef("slack", "U0NOBODY")):
        with pytest.raises(Undeliverable):
            await slack.send_dm(who, Message("hi"))


async def test_retried_delivery_is_not_sent_twice(slack_emulator: SlackEmulator) -> None:
    (ann,) = users(slack_emulator, "ann")
    first = await platform_for(slack_emulator).send_dm(ann, Message("Quiz", key="delivery-7"))
    restarted = platform_for(slack_emulator)  # a new process: no memory of the first send
    again = await restarted.send_dm(ann, Message("Quiz", key="delivery-7", retry=True))
    assert again == first
    assert len(slack_emulator.history(first.channel.id)) == 1
    other = await restarted.send_dm(ann, Message("Quiz", key="delivery-8", retry=True))
    assert other != first and len(slack_emulator.history(first.channel.id)) == 2


async def test_pacing_avoids_429s_and_stays_near_the_floor(limited_slack_emulator: SlackEmulator) -> None:
    emu = limited_slack_emulator
    slack = platform_for(emu)
    members = users(emu, "ann", "bob")
    count = 8
    rate = emu.limit_for("conversations.create")
    floor = (count - rate.burst) * 60 / rate.per_minute * emu.time_scale
    started = time.monotonic()
    for i in range(count):
        await slack.create_private_channel(f"peer-s1-g{i}", members, "topic")
    elapsed = time.monotonic() - started
    assert emu.rate_limited == 0
    assert floor <= elapsed < floor * 1.5 + 0.2


async def test_unpaced_client_recovers_from_429_and_pauses_the_method(limited_slack_emulator: SlackEmulator) -> None:
    emu = limited_slack_emulator
    greedy = Pacer(time_scale=FAST, tier_rates={t: Rate(10_000, 10_000) for t in ("Tier2", "Tier3", "Special")})
    slack = platform_for(emu, greedy)
    burst = emu.limit_for("conversations.create").burst
    for i in range(burst + 1):
        await slack.create_private_channel(f"g{i}", [], "")
    assert emu.rate_limited == 1
    assert greedy.paused == 1
    assert len(emu.calls_of("conversations.create")) == burst + 1


async def test_server_errors_are_retried(slack_emulator: SlackEmulator) -> None:
    slack = platform_for(slack_emulator)
    slack_emulator.fail_next("chat.postMessage", 503)
    cid = slack_emulator.seed_channel("general", [slack_emulator.bot_user_id])
    await slack.post(ChannelRef("slack", cid), Message("hello"))
    assert [m.text for m in slack_emulator.history(cid)] == ["hello"]
    slack_emulator.fail_next("chat.postMessage", 503, 503, 503)
    with pytest.raises(PlatformError) as info:
        await slack.post(ChannelRef("slack", cid), Message("again"))
    assert info.value.code == "fatal_error"
