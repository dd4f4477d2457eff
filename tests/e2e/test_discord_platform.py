"""`DiscordPlatform` (the port on Discord) through discord.py's real HTTP client against the emulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import discord
import pytest

from adapters.discord.invite import NEEDED, invite_url, permissions
from adapters.discord.platform import DiscordPlatform
from bot.messages import Button, Message, Section, Timestamp
from bot.port import EventSpec, PlatformError, Undeliverable
from bot.refs import ChannelRef, MessageRef, UserRef
from tests.emulators.discord_emulator import (
    BOT_INVITE_PERMISSIONS,
    CATEGORY,
    SEND_MESSAGES,
    TEXT,
    VOICE,
    DiscordEmulator,
    EmuUser,
)
from tests.emulators.discord_spec import find_route

README = Path(__file__).parents[2] / "adapters" / "README.md"


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    """A gated guild (@everyone sees nothing; a member role does), the bot holding exactly the invite's permissions."""
    async with DiscordEmulator(time_scale=0.002, gated=True, bot_permissions=permissions().value) as emulator:
        yield emulator


def permission_table() -> dict[str, set[str]]:
    """adapters/README.md's "Discord permissions, per REST call": route → the permissions it lists."""
    section = README.read_text(encoding="utf-8").split("## Discord permissions, per REST call", 1)[1]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    return {call.strip().strip("`"): set(re.findall(r"`([a-z_]+)`", perms)) for call, perms in rows}


def platform(emu: DiscordEmulator, http: discord.http.HTTPClient, **kw: object) -> DiscordPlatform:
    return DiscordPlatform(http, emu.guild_id, trainer_role="Trainer", global_rate=1000.0, **kw)  # type: ignore[arg-type]


def ref(user: EmuUser) -> UserRef:
    return UserRef("discord", str(user.id))


async def test_breakouts_are_private_and_spill_over_categories(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    emu.max_per_category = 6  # 3 groups (text + voice) per category
    trainer = emu.add_user("trainer", roles=[emu.trainer_role_id])
    learners = [emu.add_user(f"l{i}") for i in range(16)]
    outsider = emu.add_user("outsider")
    port = platform(emu, http, max_per_category=6)
    await port.ensure_capacity("s1", 8)
    refs = []
    for g in range(8):
        members = [ref(u) for u in learners[2 * g : 2 * g + 2]]
        refs.append(await port.create_private_channel(f"peer-s1-g{g + 1}", members, "Topic", group_key=f"s1:{g + 1}"))
    categories = [c for c in emu.channels.values() if c.type == CATEGORY]
    assert [c.name for c in categories] == ["peer s1", "peer s1 (2)", "peer s1 (3)"]
    for g, channel_ref in enumerate(refs):
        text = emu.channels[int(channel_ref.id)]
        voice = next(c for c in emu.channels.values() if c.type == VOICE and c.name == text.name)
        assert text.type == TEXT and voice.parent_id == text.parent_id
        for channel in (text, voice):
            inside = learners[2 * g : 2 * g + 2]
            assert all(emu.can_view(u, channel) for u in [*inside, trainer, emu.bot_user])
            assert not emu.can_view(outsider, channel)
            assert not any(emu.can_view(u, channel) for u in learners if u not in inside)
    emu.privileged_intents = 1 << 1  # the trainer role sees every breakout: who can see it needs the member list
    seen = sorted(str(u.id) for u in [*learners[:2], trainer, emu.owner])
    assert sorted(m.id for m in await port.members_of(refs[0])) == seen


async def test_capacity_is_refused_before_anything_is_created(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    emu.max_channels = 20
    emu.max_per_category = 10
    port = platform(emu, http, max_channels=20, max_per_category=10)
    await port.ensure_capacity("big", 8)  # 16 channels + 2 categories + #general = 19
    before = len(emu.channels)
    with pytest.raises(PlatformError) as refused:
        await port.ensure_capacity("big", 10)
    assert refused.value.code == "30013"
    assert len(emu.channels) == before


async def test_restarted_platform_fills_the_existing_category(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    users = [emu.add_user(f"u{i}") for i in range(4)]
    first = platform(emu, http)
    await first.create_private_channel("peer-s2-g1", [ref(users[0])], "", group_key="s2:1")
    second = platform(emu, http)  # a new process: no memory of the category
    await second.create_private_channel("peer-s2-g2", [ref(users[1])], "", group_key="s2:2")
    assert [c.name for c in emu.channels.values() if c.type == CATEGORY] == ["peer s2"]


@pytest.mark.parametrize("mode", ["archive", "delete"])
async def test_cleanup(emu: DiscordEmulator, http: discord.http.HTTPClient, mode: str) -> None:
    alice = emu.add_user("alice")
    port = platform(emu, http, cleanup=mode)
    channel = await port.create_private_channel("peer-s3-g1", [ref(alice)], "", group_key="s3:1")
    await port.archive_channel(channel)
    kinds = sorted(c.type for c in emu.channels.values() if c.name != "general")
    if mode == "delete":
        assert kinds == []
    else:
        text = emu.channels[int(channel.id)]
        assert kinds == [TEXT, CATEGORY]
        assert emu.can_view(alice, text) and not emu.permissions_in(alice, text) & SEND_MESSAGES


async def test_posts_render_timestamps_buttons_and_updates(emu: DiscordEmulator, http: discord.http.HTTPClient) -> None:
    port = platform(emu, http)
    at = datetime(2031, 5, 6, 14, 0, tzinfo=UTC)
    message = Message(
        "Check-in is open",
        sections=(Section("Starts {0}", (Timestamp(at, "6 May 14:00 UTC"),)),),
        buttons=(Button("checkin:in:ab12", "I'm here"),),
    )
    posted = await port.post(ChannelRef("discord", str(emu.general.id)), message)
    stored = emu.general.messages[int(posted.id)]
    assert stored.content == f"Check-in is open\n\nStarts <t:{int(at.timestamp())}:F>"
    assert stored.custom_ids() == ["checkin:in:ab12"]
    await port.update(posted, Message("Check-in closed"))
    assert stored.content == "Check-in closed" and stored.custom_ids() == []
    long = Message("\n".join(f"line {i} " + "x" * 60 for i in range(80)), buttons=(Button("a:b:c", "Go"),))
    last = await port.post(ChannelRef("discord", str(emu.general.id)), long)
    assert len(emu.general.messages) == 4 and emu.general.messages[int(last.id)].custom_ids() == ["a:b:c"]


async def test_dms_closed_and_idempotent_retries(emu: DiscordEmulator, http: discord.http.HTTPClient) -> None:
    port = platform(emu, http)
    open_user, closed = emu.add_user("open"), emu.add_user("closed", dms_open=False)
    with pytest.raises(Undeliverable) as undeliverable:
        await port.send_dm(ref(closed), Message("hi"))
    assert undeliverable.value.code == "50007"
    first = await port.send_dm(ref(open_user), Message("Your questionnaire", key="fb:1:7"))
    again = await port.send_dm(ref(open_user), Message("Your questionnaire", key="fb:1:7", retry=True))
    other = await port.send_dm(ref(open_user), Message("Your questionnaire", key="fb:1:8"))
    assert first == again and other != first
    dm = emu.dm_with(open_user)
    assert dm is not None and len(dm.messages) == 2


async def test_scheduled_event_lifecycle(emu: DiscordEmulator, http: discord.http.HTTPClient) -> None:
    port = platform(emu, http)
    now = datetime.now(UTC)
    emu.event_clock = lambda: now
    start = now + timedelta(hours=1)
    spec = EventSpec("Peer session", "Objectives", start, start + timedelta(minutes=90), "peerbot breakouts")
    event_id = await port.create_event(spec)
    assert event_id is not None
    event = emu.events[int(event_id)]
    assert (event.body["entity_type"], event.body["entity_metadata"]["location"]) == (3, "peerbot breakouts")
    now = start + timedelta(minutes=5)
    await port.end_event(event_id)  # a session ended early: the event, begun on its own, ends on its own
    assert event.status == 2
    now = start + timedelta(hours=2)
    await port.end_event(event_id)  # finished: nothing to update (Discord would answer 180000)
    assert event.status == 3 and not emu.refusals
    now = datetime.now(UTC)
    cancelled = await port.create_event(spec)
    assert cancelled is not None
    await port.end_event(cancelled, cancelled=True)
    assert emu.events[int(cancelled)].status == 4
    begun = await port.create_event(spec)
    assert begun is not None
    now = start + timedelta(minutes=1)
    await port.end_event(begun, cancelled=True)  # cannot be cancelled once begun: removed
    assert int(begun) not in emu.events and not emu.refusals
    with pytest.raises(PlatformError) as past:
        await port.create_event(EventSpec("x", "", start - timedelta(days=1), start, "here"))
    assert past.value.code == "50035"


async def test_unknown_channel_is_a_platform_error(emu: DiscordEmulator, http: discord.http.HTTPClient) -> None:
    port = platform(emu, http)
    with pytest.raises(PlatformError) as unknown:
        await port.update(MessageRef(ChannelRef("discord", "42"), "43"), Message("x"))
    assert unknown.value.code == "10003"


def test_invite_url_asks_for_exactly_what_is_used() -> None:
    query = parse_qs(urlparse(invite_url(1234)).query)
    assert query["client_id"] == ["1234"]
    assert query["scope"] == ["bot applications.commands"]
    asked = discord.Permissions(int(query["permissions"][0]))
    assert asked.value == BOT_INVITE_PERMISSIONS  # the emulated bot role holds what the invite asks for
    assert not asked.administrator
    table = permission_table()
    assert table, "adapters/README.md lost its permission table"
    listed = set().union(*table.values())
    assert listed == set(NEEDED) and asked == discord.Permissions(**dict.fromkeys(listed, True))
    for route in table:  # every call listed is one Discord has
        method, path = route.split(" ", 1)
        assert find_route(method, path.replace("{", "").replace("}", "")) is not None, route


async def test_moving_a_member_updates_text_and_voice(emu: DiscordEmulator, http: discord.http.HTTPClient) -> None:
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    port = platform(emu, http)
    channel = await port.create_private_channel("peer-s4-g1", [ref(alice)], "", group_key="s4:1")
    text = emu.channels[int(channel.id)]
    voice = next(c for c in emu.channels.values() if c.type == VOICE)
    await port.add_members(channel, [ref(bob)])
    await port.remove_member(channel, ref(alice))
    await port.remove_member(channel, ref(alice))  # twice: already gone is fine
    for room in (text, voice):
        assert emu.can_view(bob, room) and not emu.can_view(alice, room)


async def test_members_of_a_public_channel_needs_the_members_intent(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    humans = [emu.add_user(f"h{i}") for i in range(3)]
    robot = emu.add_user("robot")
    robot.bot = True
    port = platform(emu, http)
    general = ChannelRef("discord", str(emu.general.id))
    with pytest.raises(PlatformError) as info:
        await port.members_of(general)
    assert info.value.code == "50001" and "Server Members Intent" in info.value.detail
    emu.privileged_intents = 1 << 1  # the application turns the Server Members Intent on
    listed = {u.id for u in await port.members_of(general)}
    assert {str(h.id) for h in humans} <= listed
    assert str(robot.id) not in listed and str(emu.bot_user.id) not in listed


async def test_members_of_a_channel_only_member_overwrites_open_needs_no_intent(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    alice, bob = emu.add_user("alice"), emu.add_user("bob")
    port = platform(emu, http)
    made = await port.create_private_channel("peer-s5-g1", [ref(alice)], "", group_key="s5:1")
    emu.channels[int(made.id)].permission_overwrites = [  # no role lets anyone in: no member list needed
        o for o in emu.channels[int(made.id)].permission_overwrites if int(o["id"]) != emu.trainer_role_id
    ]
    assert [m.id for m in await port.members_of(made)] == [str(alice.id)]
    assert not emu.can_view(bob, emu.channels[int(made.id)])


async def test_members_of_a_role_gated_channel_come_from_roles_and_overwrites(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    """On a gated server, a channel with no overwrite at all is seen by the member role only; a channel that denies
    @everyone can let a whole role in. Both are computed from roles and overwrites, never guessed."""
    emu.privileged_intents = 1 << 1
    members = [emu.add_user(f"m{i}") for i in range(2)]
    outsider = emu.add_user("guest")
    outsider.roles.clear()  # joined the server, never given the member role: sees nothing
    port = platform(emu, http)
    listed = {u.id for u in await port.members_of(ChannelRef("discord", str(emu.general.id)))}
    assert listed == {str(u.id) for u in [*members, emu.owner]}
    cohort_role = emu.add_role("Cohort 7", 0)
    learner = emu.add_user("lea", roles=[cohort_role])
    gated = emu._new_channel(
        TEXT,
        "cohort-7",
        None,
        [
            {"id": str(emu.guild_id), "type": 0, "allow": "0", "deny": str(1 << 10)},
            {"id": str(cohort_role), "type": 0, "allow": str(1 << 10), "deny": "0"},
            {"id": str(emu.bot_user.id), "type": 1, "allow": str(1 << 10), "deny": "0"},  # the admin let the bot in
        ],
    )
    seen = {u.id for u in await port.members_of(ChannelRef("discord", str(gated.id)))}
    assert seen == {str(learner.id), str(emu.owner.id)}  # the owner sees every channel
    emu.privileged_intents = 0
    with pytest.raises(PlatformError) as info:
        await port.members_of(ChannelRef("discord", str(gated.id)))
    assert info.value.code == "50001" and "Server Members Intent" in info.value.detail


class MemoryDmStore:
    """A DM store as the database keeps it (`storage.dm_channels.DmChannelStore`), in memory."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    async def get(self, user_id: str) -> str | None:
        return self.ids.get(user_id)

    async def put(self, user_id: str, channel_id: str) -> None:
        self.ids[user_id] = channel_id


async def test_dm_channels_are_opened_once_across_restarts(emu: DiscordEmulator, http: discord.http.HTTPClient) -> None:
    store = MemoryDmStore()
    people = [emu.add_user(f"p{i}") for i in range(3)]
    first = platform(emu, http, dm_store=store)
    for person in people:
        await first.send_dm(ref(person), Message("hi"))
    opened = emu.stats.by_route["POST /users/@me/channels"]
    restarted = platform(emu, http, dm_store=store)  # a new process: nothing in memory
    for person in people:
        await restarted.send_dm(ref(person), Message("again"))
    assert emu.stats.by_route["POST /users/@me/channels"] == opened == 3


async def test_a_retried_dm_after_the_nonce_window_finds_its_first_copy(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    port = platform(emu, http)
    learner = emu.add_user("lee")
    first = await port.send_dm(ref(learner), Message("Your questionnaire", key="fb:1:7"))
    later = emu.clock() + emu.nonce_window + 60
    emu.clock = lambda: later
    again = await port.send_dm(ref(learner), Message("Your questionnaire", key="fb:1:7", retry=True))
    assert again == first
    dm = emu.dm_with(learner)
    assert dm is not None and len(dm.messages) == 1
    other = await port.send_dm(ref(learner), Message("Your questionnaire", key="fb:1:8", retry=True))
    assert other != first and len(dm.messages) == 2  # another key: sent


async def test_archived_breakouts_are_deleted_after_their_retention(
    emu: DiscordEmulator, http: discord.http.HTTPClient
) -> None:
    """Archived channels count towards the 500 per server: after DISCORD_ARCHIVE_DAYS they go, with their
    emptied category; the archive says when, and that post is what a later pass (a new process) reads back."""
    now = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)
    alice = emu.add_user("alice")
    port = platform(emu, http, archive_days=14, clock=lambda: now)
    kept = await port.create_private_channel("peer-s6-g1", [ref(alice)], "", group_key="s6:1")
    gone = await port.create_private_channel("peer-s6-g2", [ref(alice)], "", group_key="s6:2")
    await port.archive_channel(gone)
    (notice,) = [m for m in emu.channels[int(gone.id)].messages.values()]
    deadline = int((now + timedelta(days=14)).timestamp())
    assert f"<t:{deadline}:D>" in notice.content and "archived" in notice.content
    later = platform(emu, http, archive_days=14, clock=lambda: now + timedelta(days=13))
    assert await later.purge_archives() == 0 and int(gone.id) in emu.channels
    due = platform(emu, http, archive_days=14, clock=lambda: now + timedelta(days=14, minutes=1))
    assert await due.purge_archives() == 1
    assert int(gone.id) not in emu.channels and int(kept.id) in emu.channels  # a live breakout stays
    await due.archive_channel(kept)
    much_later = platform(emu, http, archive_days=14, clock=lambda: now + timedelta(days=40))
    assert await much_later.purge_archives() == 1
    assert [c.name for c in emu.channels.values()] == ["general"]  # the emptied category went too
