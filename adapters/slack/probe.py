"""`peerbot check-config --probe` for Slack: what this token may really do on this workspace.

Slack has no method that tells a bot the workspace's channel-management settings, so the probe does what a
session does, once, on a throw-away private channel (`peerbot-probe-…`): create it, invite the first
trainer, remove them, archive it. A refusal (`restricted_action`: only admins may; `missing_scope`) becomes a
line naming the setting or the scope to change. Scopes come from the `x-oauth-scopes` header Slack adds
to every Web API answer; user groups and trainer ids are read as the running app would read them.
"""

from __future__ import annotations

import secrets
from typing import Any

from adapters.common import ProbeLine as Line
from adapters.slack.manifest import bot_scopes
from adapters.slack.platform import SlackPlatform, channel_name
from bot.port import PlatformError
from bot.refs import ChannelRef, UserRef
from bot.settings import Settings

ADMIN_SETTING = (
    "ask a workspace admin to allow members to {what} (Slack admin → Settings & permissions → Permissions → "
    "Channel Management)"
)


def _refusal(exc: PlatformError, what: str) -> str:
    if exc.code == "restricted_action":
        return ADMIN_SETTING.format(what=what)
    if exc.code == "missing_scope":
        return "reinstall the app from `peerbot slack-manifest` so it gets the scopes it needs"
    return f"Slack answered {exc.code}"


async def probe(settings: Settings, *, platform: SlackPlatform | None = None) -> list[Line]:
    """Every line for Slack; never raises (an unreachable Slack is a failed line)."""
    if settings.slack_bot_token is None:
        return [Line(False, "Slack: SLACK_BOT_TOKEN is not set", "set it to the Bot User OAuth Token (xoxb-…)")]
    slack = platform or SlackPlatform.connect(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    try:
        return await _probe(settings, slack)
    finally:
        if platform is None:
            await slack.close()


async def _probe(settings: Settings, slack: SlackPlatform) -> list[Line]:
    lines: list[Line] = []
    try:
        auth = await slack._api("auth.test", slack.client.auth_test)
    except PlatformError as exc:
        fix = "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…), OAuth & Permissions page"
        return [Line(False, f"token refused by Slack ({exc.code})", fix)]
    except Exception as exc:  # unreachable, DNS, TLS…
        return [
            Line(
                False,
                f"Slack unreachable at {settings.slack_api_url} ({type(exc).__name__})",
                "check SLACK_API_URL and the network",
            )
        ]
    lines.append(Line(True, f"token valid: bot {auth.get('user_id')} on workspace {auth.get('team')}"))

    granted = _scopes(auth.headers)
    needed = set(bot_scopes())
    missing = sorted(needed - granted)
    if granted or not missing:
        lines.append(
            Line(
                not missing,
                f"scopes: {len(needed & granted)} of {len(needed)} needed granted"
                + (f"; missing {', '.join(missing)}" if missing else ""),
                "reinstall the app from `peerbot slack-manifest` (api.slack.com/apps → OAuth & Permissions)",
            )
        )

    lines += await _channels(settings, slack)
    lines += await _groups(settings, slack)
    lines += await _trainers(settings, slack)
    return lines


def _scopes(headers: Any) -> set[str]:
    raw = ""
    for key, value in dict(headers or {}).items():
        if str(key).lower() == "x-oauth-scopes":
            raw = value[0] if isinstance(value, list) else str(value)
    return {s.strip() for s in raw.split(",") if s.strip()}


async def _channels(settings: Settings, slack: SlackPlatform) -> list[Line]:
    """Create, invite, remove, archive on a throw-away private channel: what a session does."""
    lines: list[Line] = []
    name = channel_name(f"peerbot-probe-{secrets.token_hex(3)}")
    try:
        resp = await slack._api(
            "conversations.create", lambda: slack.client.conversations_create(name=name, is_private=True)
        )
    except PlatformError as exc:
        lines.append(
            Line(False, f"cannot create private channels ({exc.code})", _refusal(exc, "create private channels"))
        )
        return lines
    channel = ChannelRef("slack", str(resp["channel"]["id"]))
    lines.append(Line(True, f"can create private channels (made and archived {name} to check)"))
    someone = sorted(settings.trainer_ids)[0] if settings.trainer_ids else ""
    if someone:
        try:
            await slack._api(
                "conversations.invite", lambda: slack.client.conversations_invite(channel=channel.id, users=someone)
            )
            lines.append(Line(True, "can invite members"))
            try:
                await slack.remove_member(channel, UserRef("slack", someone))
                lines.append(Line(True, "can remove members (groups can be rearranged during a session)"))
            except PlatformError as exc:
                lines.append(
                    Line(False, f"cannot remove members ({exc.code})", _refusal(exc, "remove members from channels"))
                )
        except PlatformError as exc:
            lines.append(Line(False, f"cannot invite {someone} ({exc.code})", _refusal(exc, "invite members")))
    else:
        lines.append(
            Line(
                False, "invitations not checked: no SLACK_TRAINER_IDS to invite", "set SLACK_TRAINER_IDS", needed=False
            )
        )
    try:
        await slack.archive_channel(channel)
        lines.append(Line(True, "can archive channels (breakouts are closed at the end)"))
    except PlatformError as exc:
        lines.append(
            Line(False, f"cannot archive channels ({exc.code}); {name} is left open", _refusal(exc, "archive channels"))
        )
    return lines


async def _groups(settings: Settings, slack: SlackPlatform) -> list[Line]:
    group = settings.slack_trainer_group.strip()
    if not group:
        return [Line(True, "user groups: not used (SLACK_TRAINER_GROUP is empty)")]
    try:
        members = await slack.usergroup_members(group)
    except PlatformError as exc:
        if exc.code == "plan_upgrade_required":
            fix = (
                "user groups need a paid Slack plan: list the trainers in SLACK_TRAINER_IDS "
                "and empty SLACK_TRAINER_GROUP"
            )
        elif exc.code == "no_such_subteam":
            fix = f"no user group {group!r}: give its handle or id (S…)"
        else:
            fix = _refusal(exc, "read user groups")
        return [Line(False, f"user group {group}: cannot be read ({exc.code})", fix)]
    return [Line(True, f"user group {group}: {len(members)} member(s)")]


async def _trainers(settings: Settings, slack: SlackPlatform) -> list[Line]:
    lines: list[Line] = []
    if not settings.trainer_ids and not settings.slack_trainer_group.strip():
        return [Line(False, "no trainer configured", "set SLACK_TRAINER_IDS to the trainers' member ids (U…)")]
    for uid in sorted(settings.trainer_ids):
        try:
            info = await slack.user_info(uid)
        except PlatformError as exc:
            lines.append(
                Line(False, f"trainer {uid}: not found ({exc.code})", "copy the member id from their Slack profile")
            )
            continue
        if info.get("deleted") or info.get("is_bot"):
            what = "deactivated" if info.get("deleted") else "a bot"
            lines.append(Line(False, f"trainer {uid} is {what}", "remove it from SLACK_TRAINER_IDS"))
        else:
            lines.append(Line(True, f"trainer {uid} resolves to {info.get('real_name') or info.get('name')}"))
    return lines
