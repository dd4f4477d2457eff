"""The OAuth2 URL a server admin opens to add peerbot (`peerbot discord-invite-url`).

The permissions are exactly what the REST calls of `adapters.discord.platform` need on a server whose @everyone
role grants nothing (schools and companies gate it): the table "Discord permissions, per REST call" in
adapters/README.md names each call and its permission, and a test keeps that table and `NEEDED` in step.
Discord lets an overwrite allow only permissions the bot holds itself, so what the breakouts grant their members
(see, talk, read history, react, join and speak in voice) is part of the invite too. No Administrator.
"""

from __future__ import annotations

from urllib.parse import urlencode

import discord

SCOPES = ("bot", "applications.commands")

# discord.Permissions flag → why peerbot needs it (README's Discord set-up says the same in prose).
NEEDED: dict[str, str] = {
    "view_channel": "see the cohort channel and the breakouts; granted to breakout members",
    "send_messages": "post the preparation, check-in and group messages; granted to breakout members",
    "read_message_history": "read the ✅ reactions and earlier messages; granted to breakout members",
    "add_reactions": "granted to breakout members (an overwrite can only grant what the bot holds)",
    "connect": "granted to breakout members for the voice channel; keeps the bot able to manage it",
    "speak": "granted to breakout members for the voice channel",
    "manage_channels": "create, archive and delete the breakout categories, text and voice channels",
    "manage_roles": "add or remove a member's permission overwrite (late check-in, move, swap, archive)",
    "create_events": "create the session's scheduled event, and edit or cancel it (its own events)",
}


def permissions() -> discord.Permissions:
    """Exactly what peerbot uses (`NEEDED`), nothing else and no Administrator."""
    return discord.Permissions(**dict.fromkeys(NEEDED, True))


def invite_url(application_id: int | str) -> str:
    query = {"client_id": str(application_id), "permissions": str(permissions().value), "scope": " ".join(SCOPES)}
    return "https://discord.com/oauth2/authorize?" + urlencode(query)
