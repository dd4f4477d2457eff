"""`peerbot check-config --probe` for Discord: token, guild, the bot's permissions there vs what peerbot uses,
the trainer role, the optional Server Members intent. Read-only: plain REST GETs, nothing is created."""

from __future__ import annotations

from typing import Any

import aiohttp
import discord

from adapters.common import ProbeLine as Line
from adapters.discord.invite import permissions
from bot.settings import Settings

INVITE_FIX = "add the bot with the URL `peerbot discord-invite-url` prints (as a server admin)"
GATEWAY_GUILD_MEMBERS = 1 << 14
GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
ADMINISTRATOR = 1 << 3


class _Refused(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.code = body.get("code") if isinstance(body, dict) else None


async def probe(settings: Settings) -> list[Line]:
    """Every line for Discord; never raises (an unreachable API is a failed line)."""
    if settings.discord_token is None or settings.discord_guild_id is None:
        return [Line(False, "Discord: DISCORD_TOKEN and DISCORD_GUILD_ID are needed", "set both in .env")]
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    base = settings.discord_api_url.rstrip("/")
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=20)) as http:

            async def get(path: str) -> Any:
                async with http.get(base + path) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status != 200:
                        raise _Refused(resp.status, body)
                    return body

            return await _probe(settings, get)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return [Line(False, f"Discord unreachable at {base} ({type(exc).__name__})", "check DISCORD_API_URL")]


async def _probe(settings: Settings, get: Any) -> list[Line]:
    lines: list[Line] = []
    try:
        me = await get("/users/@me")
    except _Refused as exc:
        fix = "set DISCORD_TOKEN to the bot token (Developer Portal → Bot → Reset Token)"
        return [Line(False, f"token refused by Discord ({exc})", fix)]
    lines.append(Line(True, f"token valid: bot {me.get('username')} ({me.get('id')})"))
    guild_id = settings.discord_guild_id
    try:
        guild = await get(f"/guilds/{guild_id}")
        member = await get(f"/guilds/{guild_id}/members/{me['id']}")
        roles = await get(f"/guilds/{guild_id}/roles")
    except _Refused as exc:
        lines.append(Line(False, f"server {guild_id}: the bot is not in it or cannot see it ({exc})", INVITE_FIX))
        return lines
    lines.append(Line(True, f"server {guild.get('name')} ({guild_id}) reachable"))

    by_id = {str(r["id"]): r for r in roles}
    held = int(by_id.get(str(guild_id), {}).get("permissions", 0))  # @everyone's role id is the guild's
    for role_id in member.get("roles", []):
        held |= int(by_id.get(str(role_id), {}).get("permissions", 0))
    needed = permissions().value
    if held & ADMINISTRATOR:
        lines.append(Line(True, "permissions: Administrator (more than needed: peerbot asks for less)"))
    else:
        missing = needed & ~held
        names = [name for name, on in discord.Permissions(missing) if on]
        text = f"permissions: {bin(needed & held).count('1')} of {bin(needed).count('1')} needed held"
        lines.append(
            Line(
                not missing,
                text + (f"; missing {', '.join(names)}" if names else ""),
                "give the bot's role these "
                "permissions (Server Settings → Roles), or re-add it with `peerbot discord-invite-url`",
            )
        )

    wanted = settings.discord_trainer_role.strip()
    if not wanted:
        lines.append(Line(True, "trainer role: none set (members with Manage Server are trainers)"))
    else:
        role = by_id.get(wanted) or next((r for r in roles if r.get("name") == wanted), None)
        if role is None:
            lines.append(
                Line(False, f"trainer role {wanted!r} not found", "set DISCORD_TRAINER_ROLE to a role name or id")
            )
        else:
            lines.append(Line(True, f"trainer role {role.get('name')} ({role.get('id')}) found"))

    try:
        application = await get("/oauth2/applications/@me")
        flags = int(application.get("flags") or 0)
    except _Refused:
        flags = 0
    on = bool(flags & (GATEWAY_GUILD_MEMBERS | GATEWAY_GUILD_MEMBERS_LIMITED))
    lines.append(
        Line(
            on,
            "Server Members intent: " + ("on (cohort import from a public channel works)" if on else "off"),
            "optional: toggle it on (Developer Portal → Bot) for `/peer cohort import` from a public channel",
            needed=False,
        )
    )
    return lines
