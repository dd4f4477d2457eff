"""The Slack app manifest, derived from what the adapter calls: least-privilege bot scopes, `/peer`,
interactivity, the two events it listens to, and App Home.

`python -m adapters.slack.manifest https://bot.example.org/slack/events` prints it as JSON (paste it at
api.slack.com/apps → Create New App → From a manifest); `--socket-mode` omits the URLs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

# Every Web API method the adapter calls, with the bot scopes it needs. A test checks this table against
# the calls in the source and the calls the emulator records, so a new call cannot ship without its scope.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "conversations.create": ("groups:write",),  # breakouts are private channels
    "conversations.invite": ("groups:write",),
    "conversations.kick": ("groups:write",),
    "conversations.archive": ("groups:write",),
    "conversations.setTopic": ("groups:write",),
    "conversations.setPurpose": ("groups:write",),  # marks a breakout with its group key
    "conversations.list": ("groups:read",),  # private channels only: finds a breakout a crashed start made
    "conversations.members": ("channels:read", "groups:read"),  # breakouts, and cohort import from a channel
    "conversations.open": ("im:write",),
    "conversations.history": ("im:history",),  # only in DMs, to find a delivery a crashed attempt already sent
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "views.open": (),
    "views.publish": (),
    "users.info": ("users:read",),
    "users.list": ("users:read",),  # profiles by pages after a burst of new people
    "usergroups.list": ("usergroups:read",),
    "usergroups.users.list": ("usergroups:read",),
    "files.getUploadURLExternal": ("files:write",),  # exports and the report's chart, to a trainer's DM
    "files.completeUploadExternal": ("files:write",),
}
EVENT_SCOPES: dict[str, tuple[str, ...]] = {
    "app_home_opened": (),
    "reaction_added": ("reactions:read",),
}
COMMAND = "/peer"


def bot_scopes() -> list[str]:
    scopes = {"commands"}
    for needed in (*METHOD_SCOPES.values(), *EVENT_SCOPES.values()):
        scopes.update(needed)
    return sorted(scopes)


def manifest(request_url: str = "", *, name: str = "peerbot", socket_mode: bool = False) -> dict[str, Any]:
    if not socket_mode and not request_url:
        raise ValueError("HTTP mode needs the public URL of /slack/events")
    if request_url and not request_url.rstrip("/").endswith("/slack/events"):
        request_url = request_url.rstrip("/") + "/slack/events"  # a base URL is fine too
    url = {} if socket_mode else {"url": request_url}
    request = {} if socket_mode else {"request_url": request_url}
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": "Runs peer-learning sessions: preparation, breakout groups, check-in, feedback.",
            "background_color": "#1d4e89",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": [
                {
                    "command": COMMAND,
                    **url,
                    "description": "Peer-learning sessions: /peer help",
                    "usage_hint": "help | checkin | session plan …",
                    "should_escape": True,  # mentions arrive as <@U…|name>, which the grammar expects
                }
            ],
        },
        "oauth_config": {"scopes": {"bot": bot_scopes()}},
        "settings": {
            "event_subscriptions": {**request, "bot_events": sorted(EVENT_SCOPES)},
            "interactivity": {"is_enabled": True, **request},
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def main(argv: list[str]) -> None:
    socket_mode = "--socket-mode" in argv
    urls = [a for a in argv if not a.startswith("--")]
    print(json.dumps(manifest(urls[0] if urls else "", socket_mode=socket_mode), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
