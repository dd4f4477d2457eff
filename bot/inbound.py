"""The inbound contract: what an adapter may call on the core, and who is acting.

Adapters depend on this protocol, not on `bot.core.Core`, so an adapter's tests can name exactly the
entry points it uses and the core's inside can change freely behind them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.messages import Form, Message, Reply
from bot.refs import ChannelRef, MessageRef, UserRef


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the adapter decides `is_trainer` (may create cohorts: Slack trainer ids/group, Discord trainer
    role), `is_admin` (may act on every cohort of the workspace: Slack's configured trainer ids, Discord's
    Manage Server) and `locale` (`en`/`fr` when the platform tells the person's language)."""

    user: UserRef
    display_name: str = ""
    is_trainer: bool = False
    workspace: str = ""
    locale: str = ""
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class Pending:
    """One open promise, as the adapter needs it after a restart."""

    id: int
    user_id: str
    what: str
    response_url: str
    still_valid: bool  # the url may still be used (its expiry has not passed)


class CoreAPI(Protocol):
    """The core's entry points; each answers with a neutral reply and never raises a domain error."""

    async def handle_command(self, actor: Actor, text: str | Sequence[str], channel: ChannelRef | None = None) -> Reply:
        """`/peer …`: the text after `/peer` (Slack), or its tokens already split (Discord's typed options,
        so a `"` inside an option survives)."""
        ...

    async def handle_action(self, actor: Actor, action_id: str, channel: ChannelRef | None = None) -> Reply:
        """A button click (Slack `action_id`, Discord `custom_id`); a reply with `form` asks to open it."""
        ...

    async def form_for(self, actor: Actor, action_id: str) -> Form | Reply:
        """The form a button opens, or the error reply instead."""
        ...

    async def handle_form(self, actor: Actor, form_id: str, values: dict[str, str]) -> Reply:
        """A submitted form: all its answers are recorded, or none."""
        ...

    async def handle_reaction(
        self, actor: Actor, message: MessageRef, emoji: str, *, recovered: bool = False
    ) -> Reply | None:
        """✅ on the prep post or the check-in announcement; `None` when the reaction is not for us.
        `recovered`: made while the adapter was offline and read back without its time."""
        ...

    async def reaction_posts(self, platform: str) -> list[MessageRef]:
        """The posts whose ✅ still count, for an adapter to read back after downtime."""
        ...

    async def home(self, actor: Actor) -> Message:
        """A person's overview (Slack App Home)."""
        ...

    async def suggest(self, actor: Actor, kind: str, prefix: str) -> list[str]:
        """Names for autocomplete (`kind` is `cohort` or `session`)."""
        ...

    async def remember_pending(
        self, platform: str, user_id: str, what: str, response_url: str, valid_for: timedelta
    ) -> int:
        """An answer promised ("working on it") and reachable through `response_url` for `valid_for`."""
        ...

    async def forget_pending(self, pending_id: int) -> None:
        """The promised answer went out."""
        ...

    async def take_pending(self, platform: str) -> list[Pending]:
        """After a restart: the promises still open (marked answered: the adapter answers them now)."""
        ...
