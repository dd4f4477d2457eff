"""The `Platform` port on Slack's Web API, through slack_sdk's AsyncWebClient.

Every call goes through `_api`, which paces it to its method's tier (see `pacing`) and turns
`SlackApiError` into the port's `PlatformError` / `Undeliverable`, so the core never sees slack_sdk.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack import render
from adapters.slack.pacing import ApiCallCounter, ApiObserver, PacedRateLimitHandler, Pacer
from bot.messages import Form, Message
from bot.port import ChannelsRestricted, EventSpec, FileTooLarge, LeftOut, PlatformError, Undeliverable, Upload
from bot.refs import ChannelRef, MessageRef, UserRef

log = logging.getLogger(__name__)

PLATFORM = "slack"
MAX_CHANNEL_NAME = 80
MAX_TOPIC = 250
LIST_PAGE = 200  # conversations.list page size Slack recommends
# A breakout's purpose carries its group key: after a crash between creating the channel and recording its
# id, the restarted process finds it by that mark instead of creating a duplicate.
BREAKOUT_MARK = "peerbot breakout "
INVITE_BATCH = 1000
# Where a workspace admin lets members create channels (named in the trainer's notice when they cannot).
CHANNEL_SETTING = "Settings & permissions → Permissions → Channel Management"
# A group working in a thread of the cohort channel: "<channel id>/<parent ts>" stands for the thread.
THREAD_SEP = "/"
PAGE_WHEN_MORE_THAN = 20  # members whose profiles come from users.list pages rather than users.info each
DELIVERY_EVENT = "peerbot_delivery"
# Codes meaning "this person cannot get a DM from us", where retrying will not help.
UNDELIVERABLE = frozenset(
    {
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "account_inactive",
        "is_archived",
        "user_not_visible",
    }
)
# Codes of conversations.invite that concern one user of the batch: retry the others one by one, and report
# the user left out (by the port's neutral reason) so the core reaches them another way.
LEFT_OUT_REASONS: dict[str, str] = {
    "ura_max_channels": "single_channel_guest",  # a single-channel guest already in their one channel
    "user_is_restricted": "guest",
    "user_is_ultra_restricted": "guest",
    "cant_invite": "deactivated",
    "user_disabled": "deactivated",
    "user_not_found": "refused",
}
# files.getUploadURLExternal refusing a file for its size (the workspace restricts large uploads; Slack's own
# ceiling is 1 GB).
TOO_LARGE = frozenset({"file_upload_size_restricted", "file_too_large"})
PER_USER_INVITE_ERRORS = frozenset({"already_in_channel", *LEFT_OUT_REASONS})

_INVALID = re.compile(r"[^a-z0-9_-]+")


def channel_name(raw: str, suffix: str = "") -> str:
    """A name Slack accepts: lowercase, `[a-z0-9_-]`, at most 80 characters (suffix kept whole)."""
    name = _INVALID.sub("-", raw.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name) or "peer"
    return name[: MAX_CHANNEL_NAME - len(suffix)].rstrip("-") + suffix


def _mark(group_key: str) -> str:
    return (BREAKOUT_MARK + group_key)[:MAX_TOPIC]  # purposes share the topics' 250-character limit


def _purpose_of(channel: dict[str, Any]) -> str:
    return str((channel.get("purpose") or {}).get("value") or "")


def build_client(
    token: str,
    base_url: str,
    pacer: Pacer,
    *,
    server_retries: int = 2,
    timeout: int = 30,
    observe: ApiObserver | None = None,
) -> AsyncWebClient:
    """The SDK client with our retry policy: 429 → Retry-After (and pause the method), 5xx and
    connection resets → bounded exponential backoff; `observe` is told of every answer (for /metrics)."""
    counting: list[AsyncRetryHandler] = [ApiCallCounter(observe)] if observe is not None else []
    return AsyncWebClient(
        token=token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=timeout,
        retry_handlers=[
            *counting,
            PacedRateLimitHandler(pacer),
            AsyncServerErrorRetryHandler(max_retry_count=server_retries),
            AsyncConnectionErrorRetryHandler(max_retry_count=server_retries),
        ],
    )


class SlackPlatform:
    """Implements `bot.port.Platform`; also offers the Slack-only verbs the Bolt app needs."""

    name = PLATFORM

    def __init__(self, client: AsyncWebClient, pacer: Pacer) -> None:
        self.client = client
        self.pacer = pacer
        self._bot_user_id: str | None = None
        self._by_group: dict[str, ChannelRef] = {}
        self._dm_channels: dict[str, str] = {}
        self._left_out: dict[str, list[LeftOut]] = {}

    @classmethod
    def connect(
        cls,
        token: str,
        base_url: str = "https://slack.com/api/",
        *,
        time_scale: float = 1.0,
        observe: ApiObserver | None = None,
    ) -> SlackPlatform:
        pacer = Pacer(time_scale=time_scale)
        return cls(build_client(token, base_url, pacer, observe=observe), pacer)

    # ------------------------------------------------------------------------------------------ plumbing
    async def _api(
        self, method: str, call: Callable[[], Awaitable[AsyncSlackResponse]], *, channel: str = ""
    ) -> AsyncSlackResponse:
        if self.client.session is None or self.client.session.closed:
            # One pooled session: without it slack_sdk opens a new connection for every call.
            self.client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.client.timeout))
        await self.pacer.acquire(method, channel)
        try:
            return await call()
        except SlackApiError as exc:
            code = str(exc.response.get("error", "")) or f"http_{exc.response.status_code}"
            raise PlatformError(code, method) from exc

    async def close(self) -> None:
        if self.client.session is not None and not self.client.session.closed:
            await self.client.session.close()

    async def bot_user_id(self) -> str:
        if self._bot_user_id is None:
            resp = await self._api("auth.test", self.client.auth_test)
            self._bot_user_id = str(resp["user_id"])
        return self._bot_user_id

    # --------------------------------------------------------------------------------------- channels
    async def create_private_channel(
        self, name: str, members: list[UserRef], topic: str, *, group_key: str = ""
    ) -> ChannelRef:
        """Create, mark with the group key, invite, set the topic; idempotent per `group_key`.

        A taken name is either this group's breakout from an earlier run (a crash before the core recorded
        its id): reused, with any missing member invited; or someone else's channel: the name gets `-2`,
        `-3`… Only a `name_taken` looks the channels up, so the usual path costs no extra call."""
        if group_key and group_key in self._by_group:
            ref = self._by_group[group_key]
            await self.add_members(ref, members)
            return ref
        topic = render.clip(topic, MAX_TOPIC) if topic else ""
        listing: dict[str, dict[str, Any]] | None = None
        for attempt in range(1, 21):
            candidate = channel_name(name, "" if attempt == 1 else f"-{attempt}")
            try:
                resp = await self._api(
                    "conversations.create",
                    partial(self.client.conversations_create, name=candidate, is_private=True),
                )
            except PlatformError as exc:
                if exc.code == "restricted_action":
                    raise ChannelsRestricted(exc.code, "conversations.create", setting=CHANNEL_SETTING) from exc
                if exc.code != "name_taken":
                    raise
                if not group_key:
                    continue
                if listing is None:
                    listing = await self._private_channels()
                found = listing.get(candidate)
                if found is not None and await self._is_our_breakout(found, group_key):
                    return await self._reuse(found, group_key, members, topic)
                continue
            return await self._set_up(str(resp["channel"]["id"]), group_key, members, topic)
        raise PlatformError("name_taken", f"{name} and 19 variants are taken")

    async def _set_up(self, channel_id: str, group_key: str, members: list[UserRef], topic: str) -> ChannelRef:
        ref = ChannelRef(PLATFORM, channel_id)
        if group_key:
            self._by_group[group_key] = ref
            await self._set_purpose(channel_id, group_key)  # first, to keep the unmarked window short
        await self._invite(ref, members)
        if topic:
            await self._set_topic(channel_id, topic)
        return ref

    async def _reuse(self, channel: dict[str, Any], group_key: str, members: list[UserRef], topic: str) -> ChannelRef:
        """Finish what the crashed run may have left undone: mark, members, topic."""
        channel_id = str(channel["id"])
        log.info("reusing breakout %s (%s) for group %s", channel.get("name"), channel_id, group_key)
        ref = ChannelRef(PLATFORM, channel_id)
        self._by_group[group_key] = ref
        if _purpose_of(channel) != _mark(group_key):
            await self._set_purpose(channel_id, group_key)
        await self.add_members(ref, members)
        if topic and (channel.get("topic") or {}).get("value") != topic:
            await self._set_topic(channel_id, topic)
        return ref

    async def _is_our_breakout(self, channel: dict[str, Any], group_key: str) -> bool:
        """Created by this bot, and not marked for another group (no mark: a crash came before it)."""
        if channel.get("creator") != await self.bot_user_id():
            return False
        purpose = _purpose_of(channel)
        return not purpose.startswith(BREAKOUT_MARK) or purpose == _mark(group_key)

    async def _private_channels(self) -> dict[str, dict[str, Any]]:
        """The unarchived private channels the bot is in (the only ones a bot token lists), by name."""
        by_name: dict[str, dict[str, Any]] = {}
        cursor = ""
        while True:
            resp = await self._api(
                "conversations.list",
                partial(
                    self.client.conversations_list,
                    types="private_channel",
                    exclude_archived=True,
                    limit=LIST_PAGE,
                    cursor=cursor or None,
                ),
            )
            for ch in resp["channels"]:
                by_name.setdefault(str(ch.get("name", "")), ch)
            cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return by_name

    async def _set_purpose(self, channel_id: str, group_key: str) -> None:
        await self._api(
            "conversations.setPurpose",
            lambda: self.client.conversations_setPurpose(channel=channel_id, purpose=_mark(group_key)),
        )

    async def _set_topic(self, channel_id: str, topic: str) -> None:
        await self._api(
            "conversations.setTopic",
            lambda: self.client.conversations_setTopic(channel=channel_id, topic=topic),
        )

    async def _invite(self, channel: ChannelRef, members: list[UserRef]) -> None:
        me = await self.bot_user_id()
        ids = list(dict.fromkeys(m.id for m in members if m.id != me))
        for start in range(0, len(ids), INVITE_BATCH):
            batch = ids[start : start + INVITE_BATCH]
            try:
                await self._api(
                    "conversations.invite",
                    partial(self.client.conversations_invite, channel=channel.id, users=batch),
                )
            except PlatformError as exc:
                if exc.code not in PER_USER_INVITE_ERRORS:
                    raise
                if len(batch) == 1:
                    self._leave_out(channel, batch[0], exc.code)
                    continue
                for uid in batch:  # find the one(s) Slack refused, invite the rest
                    try:
                        await self._api(
                            "conversations.invite",
                            partial(self.client.conversations_invite, channel=channel.id, users=uid),
                        )
                    except PlatformError as one:
                        if one.code not in PER_USER_INVITE_ERRORS:
                            raise
                        self._leave_out(channel, uid, one.code)

    def _leave_out(self, channel: ChannelRef, user_id: str, code: str) -> None:
        if code == "already_in_channel":
            return
        log.warning("could not invite %s to %s: %s", user_id, channel.id, code)
        self._left_out.setdefault(channel.id, []).append(LeftOut(UserRef(PLATFORM, user_id), LEFT_OUT_REASONS[code]))

    def take_left_out(self, channel: ChannelRef) -> list[LeftOut]:
        """`bot.port.ReportsLeftOut`: who the last invitations to `channel` could not bring in, and why."""
        return self._left_out.pop(channel.id, [])

    async def open_thread(self, channel: ChannelRef, message: Message) -> ChannelRef:
        """`bot.port.OpensThreads`: the message opens a thread in `channel`; the ref stands for the thread."""
        parent = await self._post(channel.id, message)
        return ChannelRef(PLATFORM, f"{parent.channel.id}{THREAD_SEP}{parent.id}")

    async def add_members(self, channel: ChannelRef, members: list[UserRef]) -> None:
        if THREAD_SEP in channel.id:
            return  # a thread has no members: the group's message mentions them
        present = set(await self._member_ids(channel))
        await self._invite(channel, [m for m in members if m.id not in present])

    async def remove_member(self, channel: ChannelRef, member: UserRef) -> None:
        if THREAD_SEP in channel.id:
            return
        try:
            await self._api(
                "conversations.kick",
                lambda: self.client.conversations_kick(channel=channel.id, user=member.id),
            )
        except PlatformError as exc:
            if exc.code != "not_in_channel":  # already gone: the goal is reached
                raise

    async def archive_channel(self, channel: ChannelRef) -> None:
        if THREAD_SEP in channel.id:
            return  # the thread stays in the cohort channel's history
        try:
            await self._api("conversations.archive", lambda: self.client.conversations_archive(channel=channel.id))
        except PlatformError as exc:
            if exc.code != "already_archived":
                raise

    async def members_of(self, channel: ChannelRef) -> list[UserRef]:
        """The people in a channel: bots (this one included), Slackbot and deactivated accounts excluded."""
        me = await self.bot_user_id()
        channel = ChannelRef(channel.platform, channel.id.split(THREAD_SEP, 1)[0])  # a thread: its channel's people
        ids = [uid for uid in await self._member_ids(channel) if uid not in {me, "USLACKBOT"}]
        if len(ids) > PAGE_WHEN_MORE_THAN:
            infos = await self._profiles_by_pages(set(ids))
        else:
            infos = {uid: await self.user_info(uid) for uid in ids}  # users.info is Tier 4: paced
        return [
            UserRef(PLATFORM, uid)
            for uid in ids
            if uid in infos and not infos[uid].get("is_bot") and not infos[uid].get("deleted")
        ]

    async def _profiles_by_pages(self, wanted: set[str]) -> dict[str, dict[str, Any]]:
        """The profiles of `wanted` from `users.list` pages (Tier 2, 200 people a call: 4,000 a minute against
        users.info's 100), stopping at the page that completes the set."""
        found: dict[str, dict[str, Any]] = {}
        cursor = ""
        while True:
            members, cursor = await self.users_page(cursor)
            found |= {str(m["id"]): m for m in members if m.get("id") in wanted}
            if not cursor or len(found) == len(wanted):
                return found

    async def _member_ids(self, channel: ChannelRef) -> list[str]:
        """Every member id, bots included: enough to know whom to invite, without a users.info each."""
        ids: list[str] = []
        cursor = ""
        while True:
            resp = await self._api(
                "conversations.members",
                partial(self.client.conversations_members, channel=channel.id, limit=200, cursor=cursor or None),
            )
            ids += [str(uid) for uid in resp["members"]]
            cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return ids

    # --------------------------------------------------------------------------------------- messages
    async def post(self, channel: ChannelRef, message: Message) -> MessageRef:
        return await self._post(channel.id, message)

    async def _post(self, channel_id: str, message: Message) -> MessageRef:
        extra: dict[str, Any] = {}
        if THREAD_SEP in channel_id:
            channel_id, extra["thread_ts"] = channel_id.split(THREAD_SEP, 1)
        if message.key:
            extra["metadata"] = {"event_type": DELIVERY_EVENT, "event_payload": {"key": message.key}}
        resp = await self._api(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=channel_id,
                text=render.fallback_text(message),
                blocks=render.message_blocks(message),
                **extra,
            ),
            channel=channel_id,
        )
        return MessageRef(ChannelRef(PLATFORM, str(resp["channel"])), str(resp["ts"]))

    async def update(self, ref: MessageRef, message: Message) -> None:
        await self._api(
            "chat.update",
            lambda: self.client.chat_update(
                channel=ref.channel.id,
                ts=ref.id,
                text=render.fallback_text(message),
                blocks=render.message_blocks(message),
            ),
        )

    async def send_dm(self, user: UserRef, message: Message) -> MessageRef:
        """Post to the user id: Slack delivers it in the app's DM without a conversations.open call.

        A retried delivery first looks for its key in the DM's recent messages' metadata."""
        try:
            if message.key and message.retry:
                existing = await self._find_delivery(user.id, message.key)
                if existing is not None:
                    return existing
            ref = await self._post(user.id, message)
        except PlatformError as exc:
            if exc.code in UNDELIVERABLE or exc.code == "channel_not_found":
                raise Undeliverable(exc.code, f"DM to {user.id}") from exc
            raise
        self._dm_channels[user.id] = ref.channel.id
        return ref

    async def _dm_channel(self, user_id: str) -> str:
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            opened = await self._api("conversations.open", lambda: self.client.conversations_open(users=user_id))
            channel_id = self._dm_channels[user_id] = str(opened["channel"]["id"])
        return channel_id

    async def upload_file(self, user: UserRef, upload: Upload) -> MessageRef:
        """Slack's external upload: `files.getUploadURLExternal` (name and exact length), the bytes POSTed to
        the single-use upload URL, then `files.completeUploadExternal` shares the file in the DM (its
        `channel_id`, from `conversations.open`) with the comment. A file never completed is shared nowhere,
        so a failure half-way leaves nothing behind in the DM. Needs the `files:write` scope."""
        try:
            channel_id = await self._dm_channel(user.id)
        except PlatformError as exc:
            if exc.code in UNDELIVERABLE or exc.code == "channel_not_found":
                raise Undeliverable(exc.code, f"DM to {user.id}") from exc
            raise
        try:
            target = await self._api(
                "files.getUploadURLExternal",
                lambda: self.client.files_getUploadURLExternal(filename=upload.name, length=len(upload.data)),
            )
        except PlatformError as exc:
            if exc.code in TOO_LARGE:
                raise FileTooLarge(exc.code, upload.name) from exc
            raise
        assert self.client.session is not None  # opened by `_api`
        async with self.client.session.post(
            str(target["upload_url"]), data=upload.data, headers={"Content-Type": "application/octet-stream"}
        ) as posted:
            if posted.status != 200:
                raise PlatformError("upload_failed", f"HTTP {posted.status}: {await posted.text()}")
        done = await self._api(
            "files.completeUploadExternal",
            lambda: self.client.files_completeUploadExternal(
                files=[{"id": str(target["file_id"]), "title": upload.title or upload.name}],
                channel_id=channel_id,
                initial_comment=upload.comment or None,
            ),
        )
        files = done.get("files") or [{}]
        return MessageRef(ChannelRef(PLATFORM, channel_id), str(files[0].get("id") or target["file_id"]))

    async def _find_delivery(self, user_id: str, key: str) -> MessageRef | None:
        channel_id = await self._dm_channel(user_id)
        history = await self._api(
            "conversations.history",
            lambda: self.client.conversations_history(channel=channel_id, limit=50, include_all_metadata=True),
        )
        for msg in history["messages"]:
            payload = (msg.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == key:
                return MessageRef(ChannelRef(PLATFORM, channel_id), str(msg["ts"]))
        return None

    async def post_ephemeral(self, channel: str, user: str, message: Message) -> None:
        await self._api(
            "chat.postEphemeral",
            lambda: self.client.chat_postEphemeral(
                channel=channel,
                user=user,
                text=render.fallback_text(message),
                blocks=render.message_blocks(message),
            ),
        )

    # ----------------------------------------------------------------------------------- views, people
    async def open_form(self, trigger_id: str, form: Form, *, private_metadata: str = "") -> str:
        resp = await self._api(
            "views.open",
            lambda: self.client.views_open(
                trigger_id=trigger_id, view=render.modal_view(form, private_metadata=private_metadata)
            ),
        )
        return str(resp["view"]["id"])

    async def publish_home(self, user_id: str, message: Message) -> None:
        await self._api(
            "views.publish",
            lambda: self.client.views_publish(user_id=user_id, view=render.home_view(message)),
        )

    async def user_info(self, user_id: str, *, locale: bool = False) -> dict[str, Any]:
        """A person's profile; `locale=True` adds their Slack language (`fr-FR`…)."""
        resp = await self._api(
            "users.info", lambda: self.client.users_info(user=user_id, include_locale=locale or None)
        )
        user: dict[str, Any] = resp["user"]
        return user

    async def users_page(self, cursor: str = "", *, locale: bool = False) -> tuple[list[dict[str, Any]], str]:
        """One page of the workspace's people (Tier 2, 200 a page) and the next cursor ("" at the end)."""
        resp = await self._api(
            "users.list",
            partial(self.client.users_list, limit=LIST_PAGE, cursor=cursor or None, include_locale=locale or None),
        )
        members: list[dict[str, Any]] = list(resp["members"])
        return members, str((resp.get("response_metadata") or {}).get("next_cursor") or "")

    async def usergroup_members(self, group: str) -> set[str]:
        """Members of a user group given by id (`S…`) or handle (`trainers`, `@trainers`)."""
        group_id = group
        if not group.startswith("S"):
            handle = group.lstrip("@")
            listed = await self._api("usergroups.list", self.client.usergroups_list)
            match = next((g for g in listed["usergroups"] if g.get("handle") == handle), None)
            if match is None:
                raise PlatformError("no_such_subteam", group)
            group_id = str(match["id"])
        resp = await self._api("usergroups.users.list", lambda: self.client.usergroups_users_list(usergroup=group_id))
        return set(resp["users"])

    # ------------------------------------------------------------------------------- no Slack equivalent
    async def create_event(self, spec: EventSpec) -> str | None:
        """Slack has no scheduled events: the session lives in the channel's messages."""
        return None

    async def end_event(self, event_id: str, *, cancelled: bool = False) -> None:
        return None
