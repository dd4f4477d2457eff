"""The emulator refuses what Discord refuses: one test per rule, through discord.py's real HTTP client.

If the emulator were laxer than Discord, the adapter's e2e tests would pass and a real server would still answer
403 50013; each rule here is one Discord documents (topics/permissions, Create Guild Channel, Edit Channel
Permissions, Modify Channel, Guild Scheduled Events, Create Message's nonce, Create DM). The interaction rule
(the first follow-up after a deferral edits the original) is in test_discord_emulator.py, with a gateway client.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import pytest
from discord.http import HTTPClient, Route

from adapters.discord import invite
from bot.core.rules import DELIVERY_LEASE
from tests.emulators.discord_emulator import (
    ADMINISTRATOR,
    CONNECT,
    CREATE_EVENTS,
    MANAGE_CHANNELS,
    MANAGE_EVENTS,
    MANAGE_ROLES,
    SEND_MESSAGES,
    SPEAK,
    TEXT,
    VIEW_CHANNEL,
    VOICE,
    DiscordEmulator,
    EmuChannel,
)


@contextlib.asynccontextmanager
async def bot(permissions: int, *, gated: bool = True) -> AsyncIterator[tuple[DiscordEmulator, HTTPClient]]:
    """An emulated guild whose bot role holds `permissions`, and discord.py's HTTP client logged in as that bot."""
    async with DiscordEmulator(time_scale=0.002, gated=gated, bot_permissions=permissions) as emu:
        client = discord.Client(intents=discord.Intents.none())
        await client.login(emu.token)
        try:
            yield emu, client.http
        finally:
            await client.close()


def overwrite(target: int, kind: int, allow: int = 0, deny: int = 0) -> dict[str, Any]:
    return {"id": str(target), "type": kind, "allow": str(allow), "deny": str(deny)}


async def refused(call: Any) -> int:
    with pytest.raises(discord.HTTPException) as info:
        await call
    return int(info.value.code)


def put_overwrite(channel_id: int, target: int) -> Route:
    return Route("PUT", "/channels/{channel_id}/permissions/{target}", channel_id=channel_id, target=target)


async def test_gated_guild_hides_channels_from_everyone_and_the_bot_holds_the_invite_as_a_role() -> None:
    async with bot(invite.permissions().value) as (emu, _):
        everyone = emu.roles[emu.guild_id].permissions
        assert not everyone & (VIEW_CHANNEL | CONNECT | SPEAK)
        role = emu.roles[emu.bot_role_id]
        assert role.managed and role.permissions == invite.permissions().value
        assert emu.bot_user.roles == [emu.bot_role_id]
        member = emu.add_user("mia")
        assert emu.member_role_id in member.roles and emu.can_view(member, emu.general)
        stranger = emu.add_user("sam")
        stranger.roles.clear()  # someone without the member role sees nothing, as on the real server
        assert not emu.can_view(stranger, emu.general)


async def test_permissions_follow_discords_overwrite_order() -> None:
    async with bot(invite.permissions().value) as (emu, _):
        helpers = emu.add_role("Helpers", 0)
        ana = emu.add_user("ana", roles=[helpers])
        channel = emu._new_channel(
            TEXT,
            "order",
            None,
            [
                overwrite(emu.guild_id, 0, deny=SEND_MESSAGES),  # @everyone first
                overwrite(emu.member_role_id or 0, 0, deny=VIEW_CHANNEL),
                overwrite(helpers, 0, allow=VIEW_CHANNEL),  # roles merged: an allow of one role wins over a deny
            ],
        )
        assert emu.can_view(ana, channel) and not emu.permissions_in(ana, channel) & SEND_MESSAGES
        channel.permission_overwrites.append(overwrite(ana.id, 1, allow=SEND_MESSAGES))  # the member last
        assert emu.permissions_in(ana, channel) & SEND_MESSAGES
        channel.permission_overwrites[-1] = overwrite(ana.id, 1, deny=VIEW_CHANNEL)  # the member's deny wins
        assert not emu.can_view(ana, channel)
        admins = emu.add_role("Admins", ADMINISTRATOR)
        boss = emu.add_user("boss", roles=[admins])
        assert emu.permissions_in(boss, channel) & SEND_MESSAGES  # Administrator ignores overwrites


async def test_no_view_channel_denies_everything_in_the_channel() -> None:
    async with bot(invite.permissions().value) as (emu, http):
        hidden = emu._new_channel(TEXT, "hidden", None, [overwrite(emu.bot_role_id, 0, deny=VIEW_CHANNEL)])
        assert emu.permissions_in(emu.bot_user, hidden) == 0
        assert await refused(http.send_message(hidden.id, params=_text("hi"))) == 50001


async def test_a_voice_channel_without_connect_cannot_be_managed() -> None:
    async with bot(invite.permissions().value) as (emu, http):
        voice = emu._new_channel(VOICE, "no-connect", None, [overwrite(emu.bot_role_id, 0, deny=CONNECT)])
        assert emu.can_view(emu.bot_user, voice)
        assert not emu.permissions_in(emu.bot_user, voice) & MANAGE_CHANNELS
        assert await refused(http.delete_channel(voice.id)) == 50013


async def test_editing_an_overwrite_needs_manage_roles() -> None:
    async with bot(invite.permissions().value & ~MANAGE_ROLES) as (emu, http):
        alice = emu.add_user("alice")
        channel = emu.general
        body = {"allow": str(VIEW_CHANNEL), "deny": "0", "type": 1}
        route = put_overwrite(channel.id, alice.id)
        assert await refused(http.request(route, json=body)) == 50013


async def test_deleting_an_overwrite_needs_manage_roles() -> None:
    async with bot(invite.permissions().value & ~MANAGE_ROLES) as (emu, http):
        alice = emu.add_user("alice")
        emu.general.permission_overwrites.append(overwrite(alice.id, 1, allow=VIEW_CHANNEL))
        assert await refused(http.delete_channel_permissions(emu.general.id, alice.id)) == 50013


async def test_modifying_a_channels_overwrites_needs_manage_roles_its_name_does_not() -> None:
    async with bot(invite.permissions().value & ~MANAGE_ROLES) as (emu, http):
        await http.edit_channel(emu.general.id, name="lobby")
        assert emu.general.name == "lobby"
        code = await refused(http.edit_channel(emu.general.id, permission_overwrites=[overwrite(emu.guild_id, 0)]))
        assert code == 50013


async def test_the_overwrite_body_takes_no_id() -> None:
    async with bot(invite.permissions().value) as (emu, http):
        alice = emu.add_user("alice")
        body = {"id": str(alice.id), "allow": str(VIEW_CHANNEL), "deny": "0", "type": 1}
        assert await refused(http.request(put_overwrite(emu.general.id, alice.id), json=body)) == 50035
        del body["id"]
        await http.request(put_overwrite(emu.general.id, alice.id), json=body)
        assert emu.can_view(alice, emu.general)


async def test_overwrites_at_creation_only_grant_what_the_bot_holds_manage_roles_is_no_exemption() -> None:
    held = MANAGE_CHANNELS | MANAGE_ROLES | VIEW_CHANNEL | SEND_MESSAGES
    async with bot(held) as (emu, http):
        alice = emu.add_user("alice")
        speak = [overwrite(alice.id, 1, allow=VIEW_CHANNEL | CONNECT | SPEAK)]
        assert await refused(http.create_channel(emu.guild_id, VOICE, name="v", permission_overwrites=speak)) == 50013
        grant = [overwrite(alice.id, 1, allow=MANAGE_ROLES)]  # only an administrator may put Manage Roles there
        assert await refused(http.create_channel(emu.guild_id, TEXT, name="t", permission_overwrites=grant)) == 50013
        fine = [overwrite(emu.guild_id, 0, deny=VIEW_CHANNEL), overwrite(alice.id, 1, allow=VIEW_CHANNEL)]
        created = await http.create_channel(emu.guild_id, TEXT, name="ok", permission_overwrites=fine)
        assert emu.can_view(alice, emu.channels[int(created["id"])])


async def test_overwrites_on_an_existing_channel_may_use_what_the_parent_category_gives() -> None:
    held = MANAGE_CHANNELS | MANAGE_ROLES | VIEW_CHANNEL
    async with bot(held) as (emu, http):
        alice = emu.add_user("alice")
        category = emu._new_channel(4, "cat", None, [overwrite(emu.bot_user.id, 1, allow=CONNECT)])
        child: EmuChannel = emu._new_channel(TEXT, "child", category.id, [])
        body = {"allow": str(CONNECT), "deny": "0", "type": 1}  # the guild does not give the bot Connect
        await http.request(put_overwrite(child.id, alice.id), json=body)
        assert await refused(http.request(put_overwrite(emu.general.id, alice.id), json=body)) == 50013


async def test_creating_an_event_needs_create_events_manage_events_is_not_enough() -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    event: dict[str, Any] = {
        "name": "Peer session",
        "scheduled_start_time": start.isoformat(),
        "scheduled_end_time": (start + timedelta(hours=1)).isoformat(),
        "privacy_level": 2,
        "entity_type": 3,
        "entity_metadata": {"location": "Discord"},
    }
    async with bot(MANAGE_EVENTS) as (emu, http):
        assert await refused(http.create_guild_scheduled_event(emu.guild_id, **event)) == 50013
    async with bot(CREATE_EVENTS) as (emu, http):
        created = await http.create_guild_scheduled_event(emu.guild_id, **event)
        await http.edit_scheduled_event(emu.guild_id, int(created["id"]), name="Renamed")  # its own event
        assert emu.events[int(created["id"])].body["name"] == "Renamed"


def _text(content: str) -> Any:
    return discord.http.handle_message_parameters(content=content)


async def test_external_events_start_and_end_on_their_own_and_a_finished_one_cannot_be_updated() -> None:
    now = datetime.now(UTC)
    start = now + timedelta(hours=1)
    event: dict[str, Any] = {
        "name": "Peer session",
        "scheduled_start_time": start.isoformat(),
        "scheduled_end_time": (start + timedelta(hours=1)).isoformat(),
        "privacy_level": 2,
        "entity_type": 3,
        "entity_metadata": {"location": "Discord"},
    }
    async with bot(invite.permissions().value) as (emu, http):
        emu.event_clock = lambda: now
        created = await http.create_guild_scheduled_event(emu.guild_id, **event)
        event_id = int(created["id"])
        assert await refused(http.edit_scheduled_event(emu.guild_id, event_id, status=2)) == 50035  # not by hand
        now = start
        await emu.tick_events()
        assert emu.events[event_id].status == 2  # "automatically begin at its scheduled start time"
        assert await refused(http.edit_scheduled_event(emu.guild_id, event_id, status=4)) == 50035
        now = start + timedelta(hours=1)
        fetched = await http.get_scheduled_event(emu.guild_id, event_id, False)
        assert fetched["status"] == 3  # and end at its scheduled end
        assert await refused(http.edit_scheduled_event(emu.guild_id, event_id, name="Late")) == 180000


async def test_the_nonce_dedupes_only_for_a_few_minutes_shorter_than_the_outbox_lease() -> None:
    async with bot(invite.permissions().value) as (emu, http):
        assert emu.nonce_window < DELIVERY_LEASE.total_seconds()
        params = discord.http.handle_message_parameters(content="hello", nonce="n1")
        first = await http.send_message(emu.general.id, params=params)
        again = await http.send_message(emu.general.id, params=params)
        assert again["id"] == first["id"]
        later = emu.clock() + emu.nonce_window + 1
        emu.clock = lambda: later
        third = await http.send_message(emu.general.id, params=params)
        assert third["id"] != first["id"]


async def test_opening_dms_too_fast_is_refused_with_40003() -> None:
    async with bot(invite.permissions().value) as (emu, http):
        emu.dm_opens_per_minute = 3
        people = [emu.add_user(f"p{i}") for i in range(4)]
        for person in people[:3]:
            await http.start_private_message(person.id)
        assert await refused(http.start_private_message(people[3].id)) == 40003
