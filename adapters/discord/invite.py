"""The OAuth2 URL a server admin opens to add peerbot (`peerbot discord-invite-url`)."""

from __future__ import annotations

from urllib.parse import urlencode

import discord

SCOPES = ("bot", "applications.commands")


def permissions() -> discord.Permissions:
    """Exactly what peerbot uses: breakout channels, scheduled events, posting, history, ✅ reactions."""
    return discord.Permissions(
        manage_channels=True,
        manage_events=True,
        send_messages=True,
        read_message_history=True,
        add_reactions=True,
    )


def invite_url(application_id: int | str) -> str:
    query = {"client_id": str(application_id), "permissions": str(permissions().value), "scope": " ".join(SCOPES)}
    return "https://discord.com/oauth2/authorize?" + urlencode(query)
