"""Files on the Discord emulator through discord.py's real HTTP client, one test per rule (Create Message with
files: multipart/form-data, `payload_json` and `files[n]`; Attach Files; the 10 MiB limit answered 413 / 40005);
and the adapter's `upload_file` on it."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord.http import HTTPClient, handle_message_parameters

from adapters.discord import invite
from adapters.discord.platform import DiscordPlatform
from bot.port import FileTooLarge, Upload
from bot.refs import UserRef
from tests.emulators.discord_emulator import ATTACH_FILES, DEFAULT_ATTACHMENT_LIMIT, DiscordEmulator

DATA = b"PK\x03\x04 pretend zip " * 64


@contextlib.asynccontextmanager
async def bot(permissions: int | None = None, **kw: int) -> AsyncIterator[tuple[DiscordEmulator, HTTPClient]]:
    perms = invite.permissions().value if permissions is None else permissions
    async with DiscordEmulator(time_scale=0.002, bot_permissions=perms, **kw) as emu:
        client = discord.Client(intents=discord.Intents.none())
        await client.login(emu.token)
        try:
            yield emu, client.http
        finally:
            await client.close()


async def refused(call: object) -> tuple[int, int]:
    with pytest.raises(discord.HTTPException) as info:
        await call  # type: ignore[misc]
    return info.value.status, int(info.value.code)


async def send_file(http: HTTPClient, channel_id: int, data: bytes, name: str = "pack.zip", text: str = "") -> Any:
    file = discord.File(io.BytesIO(data), filename=name)
    with handle_message_parameters(content=text or discord.utils.MISSING, file=file) as params:
        return await http.send_message(channel_id, params=params)


async def test_a_file_arrives_as_an_attachment_of_a_dm() -> None:
    async with bot() as (emu, http):
        alice = emu.add_user("alice")
        dm = await http.start_private_message(alice.id)
        sent = await send_file(http, int(dm["id"]), DATA, text="Your export")
        [attachment] = sent["attachments"]
        assert (attachment["filename"], attachment["size"]) == ("pack.zip", len(DATA))
        message = emu.messages_in(emu.dm_channels[alice.id])[-1]
        assert message.content == "Your export" and emu.attachment_bytes(message) == [("pack.zip", DATA)]


async def test_a_file_alone_is_a_message_and_an_empty_one_is_not() -> None:
    async with bot() as (emu, http):
        dm = await http.start_private_message(emu.add_user("bob").id)
        assert (await send_file(http, int(dm["id"]), DATA))["content"] == ""
        with handle_message_parameters(content="") as params:
            assert await refused(http.send_message(int(dm["id"]), params=params)) == (400, 50006)


async def test_a_file_over_the_upload_limit_is_refused_with_40005_and_nothing_is_posted() -> None:
    assert DEFAULT_ATTACHMENT_LIMIT == 10 * 1024 * 1024
    async with bot(attachment_limit=1000) as (emu, http):
        user = emu.add_user("carol")
        dm = await http.start_private_message(user.id)
        assert await refused(send_file(http, int(dm["id"]), b"x" * 1001)) == (413, 40005)
        assert emu.messages_in(emu.dm_channels[user.id]) == []
        assert await send_file(http, int(dm["id"]), b"x" * 1000)


async def test_attach_files_is_needed_in_a_server_channel() -> None:
    async with bot(invite.permissions().value & ~ATTACH_FILES) as (emu, http):
        emu.roles[emu.guild_id].permissions &= ~ATTACH_FILES  # nor through @everyone
        assert await refused(send_file(http, emu.general.id, DATA)) == (403, 50013)
        assert emu.messages_in(emu.general) == []


async def test_only_payload_json_and_files_parts_are_taken() -> None:
    async with bot() as (emu, _http):
        dm_user = emu.add_user("dan")
        form = aiohttp.FormData()
        form.add_field("payload_json", '{"content": "hi"}', content_type="application/json")
        form.add_field("file", DATA, filename="a.zip")  # the legacy field name
        async with aiohttp.ClientSession() as session:
            opened = await session.post(
                f"{emu.api_url}/users/@me/channels",
                json={"recipient_id": str(dm_user.id)},
                headers={"Authorization": f"Bot {emu.token}"},
            )
            channel_id = (await opened.json())["id"]
            answer = await session.post(
                f"{emu.api_url}/channels/{channel_id}/messages",
                data=form,
                headers={"Authorization": f"Bot {emu.token}"},
            )
            assert answer.status == 400 and (await answer.json())["code"] == 50035


async def test_the_adapter_uploads_to_the_dm_and_refuses_a_large_file_before_sending() -> None:
    async with bot() as (emu, http):
        eve = emu.add_user("eve")
        platform = DiscordPlatform(http, emu.guild_id, max_upload=len(DATA))
        long_comment = "\n".join(f"line {i} " + "x" * 60 for i in range(60))  # over 2,000 characters
        ref = await platform.upload_file(UserRef("discord", str(eve.id)), Upload("e.zip", DATA, "E", long_comment))
        messages = emu.messages_in(emu.dm_channels[eve.id])
        assert len(messages) > 1 and str(messages[-1].id) == ref.id
        assert all(m.attachments == [] for m in messages[:-1])
        assert emu.attachment_bytes(messages[-1]) == [("e.zip", DATA)]
        assert "line 0" in messages[0].content and "line 59" in messages[-1].content
        with pytest.raises(FileTooLarge):
            await platform.upload_file(UserRef("discord", str(eve.id)), Upload("big.zip", DATA + b"!"))
        assert len(emu.messages_in(emu.dm_channels[eve.id])) == len(messages)
