"""The Slack emulator, exercised through the real slack_sdk AsyncWebClient: if these pass, the adapter's
tests against it are tests against Slack's contract rather than against a stub."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.manifest import bot_scopes
from tests.e2e.conftest_slack import FAST, LIMITED, bare_client, slack_client
from tests.emulators.slack_api import ALL_SCOPES, Policy, SlackEmulator

__all__ = ["slack_client"]


@pytest.fixture
async def slack_emulator() -> AsyncIterator[SlackEmulator]:
    """Every scope granted: these tests exercise the emulator's methods, not the app's manifest."""
    async with SlackEmulator(time_scale=FAST, rate_limits=False, scopes=ALL_SCOPES) as emu:
        yield emu


@pytest.fixture
async def limited_slack_emulator() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(time_scale=LIMITED, scopes=ALL_SCOPES) as emu:
        yield emu


async def error_of(call: object) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_token_is_checked_in_header_and_form_field(slack_emulator: SlackEmulator) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=slack_emulator.base_url)
    err = await error_of(bad.auth_test())
    assert err.response["error"] == "invalid_auth"

    anonymous = AsyncWebClient(base_url=slack_emulator.base_url)
    err = await error_of(anonymous.api_call("auth.test"))
    assert err.response["error"] == "not_authed"
    ok = await anonymous.api_call("auth.test", data={"token": slack_emulator.token})  # form field
    assert ok["user_id"] == slack_emulator.bot_user_id


async def test_unknown_and_missing_arguments_follow_the_spec(slack_client: AsyncWebClient) -> None:
    err = await error_of(slack_client.conversations_create(name="peer-1", colour="red"))
    assert err.response["error"] == "invalid_arguments"
    assert "colour" in err.response["response_metadata"]["messages"][0]

    err = await error_of(slack_client.api_call("chat.postMessage", json={"text": "hi"}))
    assert err.response["error"] == "channel_not_found"
    err = await error_of(slack_client.api_call("conversations.invite", params={"channel": "C1"}))
    assert err.response["error"] == "no_user"
    err = await error_of(slack_client.api_call("users.info"))
    assert err.response["error"] == "user_not_found"


async def test_channel_names_are_validated_like_slack(slack_client: AsyncWebClient) -> None:
    for name, code in [
        ("Peer-Group", "invalid_name_specials"),
        ("peer group", "invalid_name_specials"),
        ("peer.group", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("---", "invalid_name_punctuation"),
    ]:
        err = await error_of(slack_client.conversations_create(name=name))
        assert err.response["error"] == code, name
    created = await slack_client.conversations_create(name="x" * 80, is_private=True)
    assert created["channel"]["is_private"] is True
    err = await error_of(slack_client.conversations_create(name="x" * 80))
    assert err.response["error"] == "name_taken"


async def test_channel_membership_lifecycle(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    ann = slack_emulator.seed_user("ann")
    bob = slack_emulator.seed_user("bob")
    cid = (await slack_client.conversations_create(name="peer-s1-g1", is_private=True))["channel"]["id"]

    await slack_client.conversations_invite(channel=cid, users=[ann, bob])
    assert slack_emulator.channels[cid].members == [slack_emulator.bot_user_id, ann, bob]
    err = await error_of(slack_client.conversations_invite(channel=cid, users=ann))
    assert err.response["error"] == "already_in_channel"
    err = await error_of(slack_client.conversations_invite(channel=cid, users="U404"))
    assert err.response["error"] == "user_not_found"
    err = await error_of(slack_client.conversations_invite(channel=cid, users=slack_emulator.bot_user_id))
    assert err.response["error"] == "cant_invite_self"

    page1 = await slack_client.conversations_members(channel=cid, limit=2)
    cursor = page1["response_metadata"]["next_cursor"]
    page2 = await slack_client.conversations_members(channel=cid, limit=2, cursor=cursor)
    assert page1["members"] + page2["members"] == [slack_emulator.bot_user_id, ann, bob]
    assert page2["response_metadata"]["next_cursor"] == ""

    await slack_client.conversations_kick(channel=cid, user=bob)
    err = await error_of(slack_client.conversations_kick(channel=cid, user=bob))
    assert err.response["error"] == "not_in_channel"
    info = await slack_client.conversations_info(channel=cid, include_num_members=True)
    assert info["channel"]["num_members"] == 2

    await slack_client.conversations_archive(channel=cid)
    err = await error_of(slack_client.chat_postMessage(channel=cid, text="late"))
    assert err.response["error"] == "is_archived"
    err = await error_of(slack_client.conversations_archive(channel=cid))
    assert err.response["error"] == "already_archived"
    err = await error_of(slack_client.conversations_info(channel="C404"))
    assert err.response["error"] == "channel_not_found"


async def test_private_channel_invisible_to_bot_outside_it(
    slack_emulator: SlackEmulator, slack_client: AsyncWebClient
) -> None:
    ann = slack_emulator.seed_user("ann")
    hidden = slack_emulator.seed_channel("secret", [ann], is_private=True)
    public = slack_emulator.seed_channel("general", [ann])
    err = await error_of(slack_client.conversations_info(channel=hidden))
    assert err.response["error"] == "channel_not_found"
    err = await error_of(slack_client.chat_postMessage(channel=public, text="hi"))
    assert err.response["error"] == "not_in_channel"


async def test_messages_json_and_form_bodies(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    ann = slack_emulator.seed_user("ann")
    cid = slack_emulator.seed_channel("general", [slack_emulator.bot_user_id, ann])
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    sent = await slack_client.chat_postMessage(channel=cid, text="hi", blocks=blocks)  # JSON body
    form = await slack_client.api_call(  # form-encoded, blocks as a JSON string
        "chat.postMessage", data={"channel": cid, "text": "again", "blocks": json.dumps(blocks)}
    )
    history = slack_emulator.history(cid)
    assert [m.text for m in history] == ["hi", "again"]
    assert history[1].blocks == blocks
    assert float(form["ts"]) > float(sent["ts"])

    await slack_client.chat_update(channel=cid, ts=sent["ts"], text="edited")
    assert slack_emulator.history(cid)[0].text == "edited"
    err = await error_of(slack_client.chat_update(channel=cid, ts="1.000000", text="x"))
    assert err.response["error"] == "message_not_found"
    err = await error_of(slack_client.api_call("chat.postMessage", json={"channel": cid}))
    assert err.response["error"] == "no_text"
    too_many = [{"type": "divider"}] * 51
    err = await error_of(slack_client.chat_postMessage(channel=cid, text="x", blocks=too_many))
    assert err.response["error"] == "invalid_blocks"

    await slack_client.reactions_add(channel=cid, timestamp=sent["ts"], name="white_check_mark")
    err = await error_of(slack_client.reactions_add(channel=cid, timestamp=sent["ts"], name="white_check_mark"))
    assert err.response["error"] == "already_reacted"
    assert slack_emulator.history(cid)[0].reactions == {"white_check_mark": [slack_emulator.bot_user_id]}

    outsider = slack_emulator.seed_user("zed")
    err = await error_of(slack_client.chat_postEphemeral(channel=cid, user=outsider, text="psst"))
    assert err.response["error"] == "user_not_in_channel"
    await slack_client.chat_postEphemeral(channel=cid, user=ann, text="psst")
    assert [(e.user, e.text) for e in slack_emulator.ephemerals] == [(ann, "psst")]


async def test_direct_messages(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    ann = slack_emulator.seed_user("ann")
    gone = slack_emulator.seed_user("gone", deleted=True)
    robot = slack_emulator.seed_user("robot", is_bot=True)
    first = await slack_client.conversations_open(users=ann)
    again = await slack_client.conversations_open(users=[ann], return_im=True)
    assert first["channel"]["id"] == again["channel"]["id"]
    assert again["channel"]["user"] == ann
    await slack_client.chat_postMessage(channel=first["channel"]["id"], text="questionnaire")
    assert [m.text for m in slack_emulator.history(first["channel"]["id"])] == ["questionnaire"]
    assert (await error_of(slack_client.conversations_open(users=gone))).response["error"] == "user_disabled"
    assert (await error_of(slack_client.conversations_open(users=robot))).response["error"] == "cannot_dm_bot"


async def test_views_need_a_fresh_unused_trigger(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    ann = slack_emulator.seed_user("ann")
    modal = {
        "type": "modal",
        "callback_id": "survey:submit:1",
        "title": {"type": "plain_text", "text": "Feedback"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    trigger = slack_emulator.new_trigger_id(ann)
    opened = await slack_client.views_open(trigger_id=trigger, view=modal)
    assert slack_emulator.views[opened["view"]["id"]].user == ann
    assert (await error_of(slack_client.views_open(trigger_id=trigger, view=modal))).response[
        "error"
    ] == "exchanged_trigger_id"

    long_title = {**modal, "title": {"type": "plain_text", "text": "x" * 25}}
    err = await error_of(slack_client.views_open(trigger_id=slack_emulator.new_trigger_id(ann), view=long_title))
    assert err.response["error"] == "invalid_arguments"

    slack_emulator.trigger_ttl = 0.05
    stale = slack_emulator.new_trigger_id(ann)
    await asyncio.sleep(0.1)
    err = await error_of(slack_client.views_open(trigger_id=stale, view=modal))
    assert err.response["error"] == "expired_trigger_id"

    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "home"}}]}
    await slack_client.views_publish(user_id=ann, view=home)
    assert slack_emulator.home_views[ann].view["blocks"] == home["blocks"]


async def test_users_and_usergroups(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    tina = slack_emulator.seed_user("tina", real_name="Tina Trainer", tz="America/New_York")
    group = slack_emulator.seed_usergroup("trainers", [tina])
    info = await slack_client.users_info(user=tina)
    assert (info["user"]["real_name"], info["user"]["tz"]) == ("Tina Trainer", "America/New_York")
    assert (await slack_client.usergroups_users_list(usergroup=group))["users"] == [tina]
    listed = await slack_client.usergroups_list(include_users=True)
    assert [(g["handle"], g["users"]) for g in listed["usergroups"]] == [("trainers", [tina])]
    err = await error_of(slack_client.usergroups_users_list(usergroup="S404"))
    assert err.response["error"] == "no_such_subteam"


async def test_tier_bucket_answers_429_with_scaled_retry_after(limited_slack_emulator: SlackEmulator) -> None:
    slack_emulator, slack_client = limited_slack_emulator, bare_client(limited_slack_emulator)
    burst = slack_emulator.limit_for("conversations.create").burst  # Tier2
    for i in range(burst):
        await slack_client.conversations_create(name=f"burst-{i}")
    err = await error_of(slack_client.conversations_create(name="one-too-many"))
    assert err.response.status_code == 429
    assert err.response.headers["Retry-After"] == "1"  # 3 emulated s * 0.1 → 0.3 s, rounded up to 1
    assert slack_emulator.rate_limited == 1
    await asyncio.sleep(60 / 20 * slack_emulator.time_scale * 1.05)  # one Tier2 interval, scaled
    await slack_client.conversations_create(name="after-refill")
    assert slack_emulator.rate_limited == 1
    # Limits are per method: another Tier2 method has its own bucket.
    await slack_client.conversations_archive(channel=slack_emulator.channel_named("burst-0").id)  # type: ignore[union-attr]


async def test_retry_after_is_never_shorter_than_the_real_wait() -> None:
    async with SlackEmulator(time_scale=0.05) as emu:  # Tier1: one call per 60 × 0.05 = 3 wall seconds
        client = AsyncWebClient(token=emu.token, base_url=emu.base_url, retry_handlers=[])
        emu.tiers["users.info"] = "Tier1"
        await client.users_info(user=emu.bot_user_id)
        err = await error_of(client.users_info(user=emu.bot_user_id))
        assert err.response.headers["Retry-After"] == "3"


async def test_post_message_limit_is_per_channel() -> None:
    async with SlackEmulator() as slack_emulator:  # real time: 1 message per second per channel
        await _post_message_limit(slack_emulator, bare_client(slack_emulator))


async def _post_message_limit(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    bot = slack_emulator.bot_user_id
    busy, quiet = slack_emulator.seed_channel("busy", [bot]), slack_emulator.seed_channel("quiet", [bot])
    for _ in range(slack_emulator.post_message_limit.burst):
        await slack_client.chat_postMessage(channel=busy, text="x")
    err = await error_of(slack_client.chat_postMessage(channel=busy, text="x"))
    assert err.response.status_code == 429
    await slack_client.chat_postMessage(channel=quiet, text="x")


async def test_sdk_rate_limit_handler_recovers(limited_slack_emulator: SlackEmulator) -> None:
    slack_emulator = limited_slack_emulator
    client = AsyncWebClient(
        token=slack_emulator.token,
        base_url=slack_emulator.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    burst = slack_emulator.limit_for("conversations.create").burst
    started = time.monotonic()
    for i in range(burst + 1):
        await client.conversations_create(name=f"g{i}")
    assert slack_emulator.rate_limited == 1
    assert time.monotonic() - started >= 1.0  # the SDK slept Retry-After
    assert len(slack_emulator.calls_of("conversations.create")) == burst + 1


async def test_sdk_server_error_handler_recovers(slack_emulator: SlackEmulator) -> None:
    client = AsyncWebClient(
        token=slack_emulator.token,
        base_url=slack_emulator.base_url,
        retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=2)],
    )
    slack_emulator.fail_next("auth.test", 503, 500)
    assert (await client.auth_test())["ok"] is True
    assert [c.status for c in slack_emulator.calls] == [503, 500, 200]


async def test_response_url_allows_five_posts(slack_emulator: SlackEmulator) -> None:
    url = slack_emulator.new_response_url()
    async with aiohttp.ClientSession() as session:
        statuses = []
        for i in range(6):
            async with session.post(url, json={"text": f"step {i}", "replace_original": True}) as resp:
                statuses.append(resp.status)
    assert statuses == [200] * 5 + [404]
    assert [p["text"] for p in slack_emulator.responses_to(url)] == [f"step {i}" for i in range(5)]


async def test_response_url_expires_after_30_minutes(slack_emulator: SlackEmulator) -> None:
    slack_emulator.response_url_ttl = 0.05  # 30 minutes, shortened
    url = slack_emulator.new_response_url()
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"text": "in time"}) as resp:
            assert resp.status == 200
        await asyncio.sleep(0.1)
        async with session.post(url, json={"text": "too late"}) as resp:
            assert (resp.status, await resp.text()) == (404, "expired_url")
    assert [p["text"] for p in slack_emulator.responses_to(url)] == ["in time"]
    assert slack_emulator.refused_hooks[-1][1] == "expired_url"


async def test_trigger_id_is_single_use(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    ann = slack_emulator.seed_user("ann")
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": [_section("hello")]}
    trigger = slack_emulator.new_trigger_id(ann)
    await slack_client.views_open(trigger_id=trigger, view=modal)
    err = await error_of(slack_client.views_open(trigger_id=trigger, view=modal))
    assert err.response["error"] == "exchanged_trigger_id"


async def test_trigger_id_expires_after_3_seconds(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    ann = slack_emulator.seed_user("ann")
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": [_section("hello")]}
    assert slack_emulator.trigger_ttl == 3.0  # Slack's value by default
    slack_emulator.trigger_ttl = 0.05
    stale = slack_emulator.new_trigger_id(ann)
    await asyncio.sleep(0.1)
    err = await error_of(slack_client.views_open(trigger_id=stale, view=modal))
    assert err.response["error"] == "expired_trigger_id"


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def test_missing_scope_names_the_needed_and_the_provided_scopes() -> None:
    async with SlackEmulator(time_scale=FAST, rate_limits=False) as emu:  # installed from the manifest
        client = bare_client(emu)
        assert emu.scopes == set(bot_scopes())
        # The manifest asks for groups:write (private breakouts), not channels:manage (public channels).
        err = await error_of(client.conversations_create(name="public-one"))
        assert err.response["error"] == "missing_scope"
        assert err.response["needed"] == "channels:manage"
        assert err.response["provided"] == ",".join(sorted(bot_scopes()))
        assert (await client.conversations_create(name="private-one", is_private=True))["ok"]
        emu.scopes.discard("users:read")
        err = await error_of(client.users_info(user=emu.bot_user_id))
        assert (err.response["error"], err.response["needed"]) == ("missing_scope", "users:read")
        assert "users:read" not in err.response["provided"].split(",")
        assert [c.error for c in emu.calls_of("users.info", ok_only=False)] == ["missing_scope"]


async def test_scope_depends_on_the_kind_of_conversation() -> None:
    async with SlackEmulator(time_scale=FAST, rate_limits=False, scopes={"channels:read", "chat:write"}) as emu:
        client = bare_client(emu)
        public = emu.seed_channel("general", [emu.bot_user_id])
        private = emu.seed_channel("secret", [emu.bot_user_id], is_private=True)
        assert (await client.conversations_members(channel=public))["ok"]
        err = await error_of(client.conversations_members(channel=private))
        assert (err.response["error"], err.response["needed"]) == ("missing_scope", "groups:read")
        err = await error_of(client.conversations_list(types="public_channel,private_channel"))
        assert err.response["needed"] == "groups:read"


async def test_only_admins_may_create_channels_when_the_workspace_says_so(slack_emulator: SlackEmulator) -> None:
    slack_emulator.policy = Policy(only_admins_create_channels=True)
    boss = slack_emulator.seed_user("boss", is_admin=True)
    bot = bare_client(slack_emulator)
    err = await error_of(bot.conversations_create(name="peer-1", is_private=True))
    assert err.response["error"] == "restricted_action"
    admin = AsyncWebClient(token=slack_emulator.user_token(boss), base_url=slack_emulator.base_url)
    assert (await admin.conversations_create(name="peer-1", is_private=True))["ok"]


async def test_only_admins_may_archive_channels_when_the_workspace_says_so(slack_emulator: SlackEmulator) -> None:
    bot = bare_client(slack_emulator)
    cid = (await bot.conversations_create(name="peer-1", is_private=True))["channel"]["id"]
    slack_emulator.policy = Policy(only_admins_archive_channels=True)
    err = await error_of(bot.conversations_archive(channel=cid))
    assert err.response["error"] == "restricted_action"
    assert not slack_emulator.channels[cid].is_archived


async def test_only_admins_may_remove_members_when_the_workspace_says_so(slack_emulator: SlackEmulator) -> None:
    ann = slack_emulator.seed_user("ann")
    bot = bare_client(slack_emulator)
    cid = (await bot.conversations_create(name="peer-1", is_private=True))["channel"]["id"]
    await bot.conversations_invite(channel=cid, users=ann)
    slack_emulator.policy = Policy(only_admins_remove_members=True)
    err = await error_of(bot.conversations_kick(channel=cid, user=ann))
    assert err.response["error"] == "restricted_action"
    assert ann in slack_emulator.channels[cid].members


async def test_single_channel_guest_cannot_join_a_second_channel(slack_emulator: SlackEmulator) -> None:
    gus = slack_emulator.seed_user("gus", guest="single")
    mia = slack_emulator.seed_user("mia", guest="multi")
    slack_emulator.seed_channel("cohort", [slack_emulator.bot_user_id, gus, mia])
    bot = bare_client(slack_emulator)
    cid = (await bot.conversations_create(name="peer-1", is_private=True))["channel"]["id"]
    err = await error_of(bot.conversations_invite(channel=cid, users=[mia, gus]))
    assert err.response["error"] == "ura_max_channels"
    assert slack_emulator.channels[cid].members == [slack_emulator.bot_user_id]  # all or nothing
    await bot.conversations_invite(channel=cid, users=mia)  # a multi-channel guest may be invited
    info = (await bot.users_info(user=gus))["user"]
    assert (info["is_restricted"], info["is_ultra_restricted"]) == (True, True)


async def test_a_guest_calling_with_their_own_token_is_restricted(slack_emulator: SlackEmulator) -> None:
    mia = slack_emulator.seed_user("mia", guest="multi")
    guest = AsyncWebClient(token=slack_emulator.user_token(mia), base_url=slack_emulator.base_url)
    err = await error_of(guest.conversations_create(name="mine", is_private=True))
    assert err.response["error"] == "user_is_restricted"
    assert (await guest.auth_test())["ok"]


async def test_deactivated_user_cannot_be_invited_nor_messaged(
    slack_emulator: SlackEmulator, slack_client: AsyncWebClient
) -> None:
    gone = slack_emulator.seed_user("gone", deleted=True)
    cid = (await slack_client.conversations_create(name="peer-1", is_private=True))["channel"]["id"]
    err = await error_of(slack_client.conversations_invite(channel=cid, users=gone))
    assert err.response["error"] == "cant_invite"
    err = await error_of(slack_client.chat_postMessage(channel=gone, text="hi"))
    assert err.response["error"] == "user_disabled"


async def test_user_groups_need_a_paid_plan(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    slack_emulator.seed_usergroup("trainers", [])
    slack_emulator.plan = "free"
    err = await error_of(slack_client.usergroups_list())
    assert err.response["error"] == "plan_upgrade_required"
    err = await error_of(slack_client.usergroups_users_list(usergroup="S1"))
    assert err.response["error"] == "plan_upgrade_required"


async def test_users_list_pages_and_locale(slack_emulator: SlackEmulator, slack_client: AsyncWebClient) -> None:
    for i in range(5):
        slack_emulator.seed_user(f"u{i}", locale="fr-FR")
    first = await slack_client.users_list(limit=4, include_locale=True)
    rest = await slack_client.users_list(limit=4, cursor=first["response_metadata"]["next_cursor"])
    assert len(first["members"]) + len(rest["members"]) == 6  # the bot and 5 people
    assert first["members"][1]["locale"] == "fr-FR" and "locale" not in rest["members"][0]
    assert rest["response_metadata"]["next_cursor"] == ""
