"""The Slack emulator's file upload (files.getUploadURLExternal, the upload URL, files.completeUploadExternal)
through the real slack_sdk client, one test per rule it enforces; and the adapter's `upload_file` on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.platform import SlackPlatform
from bot.port import FileTooLarge, Upload
from bot.refs import UserRef
from tests.e2e.conftest_slack import FAST, bare_client
from tests.emulators.slack_api import ALL_SCOPES, SlackEmulator

DATA = b"%PDF-1.7 pretend sheet\n" * 40


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(time_scale=FAST, rate_limits=False, scopes=ALL_SCOPES) as emulator:
        yield emulator


async def error_of(call: object) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call  # type: ignore[misc]
    return info.value


async def post(url: str, data: bytes) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, data=data) as answer:
        return answer.status, await answer.text()


async def dm_of(client: AsyncWebClient, user: str) -> str:
    return str((await client.conversations_open(users=user))["channel"]["id"])


async def test_an_upload_in_three_steps_shares_the_file_in_the_dm(emu: SlackEmulator) -> None:
    client = bare_client(emu)
    alice = emu.seed_user("alice")
    dm = await dm_of(client, alice)
    got = await client.files_getUploadURLExternal(filename="s1.pdf", length=len(DATA))
    assert await post(str(got["upload_url"]), DATA) == (200, f"OK - {len(DATA)}")
    done = await client.files_completeUploadExternal(
        files=[{"id": str(got["file_id"]), "title": "Sheet"}], channel_id=dm, initial_comment="Your export"
    )
    assert done["files"][0]["id"] == got["file_id"]
    [shared] = emu.files_in(dm)
    assert (shared.name, shared.title, shared.data) == ("s1.pdf", "Sheet", DATA)
    assert emu.history(dm)[-1].text == "Your export"


async def test_files_write_is_needed_for_both_calls() -> None:
    async with SlackEmulator(time_scale=FAST, rate_limits=False) as emu:  # installed from the manifest
        client = bare_client(emu)
        assert "files:write" in emu.scopes  # the manifest asks for it
        emu.scopes.discard("files:write")
        err = await error_of(client.files_getUploadURLExternal(filename="a.pdf", length=10))
        assert (err.response["error"], err.response["needed"]) == ("missing_scope", "files:write")
        err = await error_of(client.files_completeUploadExternal(files=[{"id": "F1"}]))
        assert (err.response["error"], err.response["needed"]) == ("missing_scope", "files:write")


async def test_arguments_are_checked_against_the_docs(emu: SlackEmulator) -> None:
    client = bare_client(emu)
    err = await error_of(client.api_call("files.getUploadURLExternal", params={"filename": "a.pdf"}))
    assert err.response["error"] == "invalid_arguments" and "length" in err.response["response_metadata"]["messages"][0]
    err = await error_of(client.api_call("files.getUploadURLExternal", params={"filename": "a", "length": 1, "x": 1}))
    assert "unknown argument: x" in err.response["response_metadata"]["messages"][0]
    err = await error_of(client.files_getUploadURLExternal(filename="a.pdf", length=0))
    assert err.response["error"] == "missing_argument"
    err = await error_of(client.api_call("files.completeUploadExternal", params={"channel_id": "D1"}))
    assert "missing required field: files" in err.response["response_metadata"]["messages"][0]


async def test_a_file_larger_than_the_workspace_allows_is_refused(emu: SlackEmulator) -> None:
    emu.max_file_size = 100
    err = await error_of(bare_client(emu).files_getUploadURLExternal(filename="big.zip", length=101))
    assert err.response["error"] == "file_upload_size_restricted"
    assert emu.files == {}


async def test_an_upload_url_takes_one_post(emu: SlackEmulator) -> None:
    got = await bare_client(emu).files_getUploadURLExternal(filename="a.pdf", length=len(DATA))
    assert (await post(str(got["upload_url"]), DATA))[0] == 200
    assert (await post(str(got["upload_url"]), DATA))[0] == 404


async def test_the_posted_bytes_must_have_the_announced_length(emu: SlackEmulator) -> None:
    client = bare_client(emu)
    got = await client.files_getUploadURLExternal(filename="a.pdf", length=len(DATA) + 1)
    status, text = await post(str(got["upload_url"]), DATA)
    assert status == 400 and "length_mismatch" in text
    err = await error_of(client.files_completeUploadExternal(files=[{"id": str(got["file_id"])}]))
    assert err.response["error"] == "file_not_found"


async def test_a_file_never_completed_is_shared_nowhere_and_completes_once(emu: SlackEmulator) -> None:
    client = bare_client(emu)
    dm = await dm_of(client, emu.seed_user("bob"))
    got = await client.files_getUploadURLExternal(filename="a.pdf", length=len(DATA))
    await post(str(got["upload_url"]), DATA)
    assert emu.files_in(dm) == [] and emu.history(dm) == []  # uploaded, not completed: not shared
    files = json.dumps([{"id": got["file_id"]}])
    assert (await client.api_call("files.completeUploadExternal", params={"files": files, "channel_id": dm}))["ok"]
    err = await error_of(client.api_call("files.completeUploadExternal", params={"files": files, "channel_id": dm}))
    assert err.response["error"] == "file_already_completed"
    assert len(emu.files_in(dm)) == 1


async def test_the_adapter_uploads_to_the_dm_and_maps_a_size_refusal(emu: SlackEmulator) -> None:
    platform = SlackPlatform.connect(emu.token, emu.base_url, time_scale=FAST)
    carol = emu.seed_user("carol")
    try:
        ref = await platform.upload_file(UserRef("slack", carol), Upload("x.xlsx", DATA, "X", "Here it is"))
        dm = ref.channel.id
        assert emu.channels[dm].im_user == carol
        assert [f.data for f in emu.files_in(dm)] == [DATA] and emu.history(dm)[-1].text == "Here it is"
        emu.max_file_size = 10
        with pytest.raises(FileTooLarge):
            await platform.upload_file(UserRef("slack", carol), Upload("y.xlsx", DATA))
        assert len(emu.files_in(dm)) == 1
    finally:
        await platform.close()
