"""Answers promised and not given yet ("Working on …"), kept in the database so a restart can keep the promise.

An adapter that acknowledged a request with "working on it" remembers how to reach the person later
(Slack: the command's `response_url`, valid 30 minutes) and forgets it once the answer went out. After a crash
the restarted adapter takes what is still open and apologises: through the url while it is valid, else by DM.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select

from bot.core.context import Context
from bot.inbound import Pending
from storage.models import PendingReply


class PendingReplies:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def remember(self, platform: str, user_id: str, what: str, response_url: str, valid_for: timedelta) -> int:
        now = self.ctx.clock.now()
        row = PendingReply(
            platform=platform,
            user_id=user_id,
            what=what[:250],
            response_url=response_url,
            created_at=now,
            expires_at=now + valid_for,
        )
        async with self.ctx.db.transaction() as tx:
            tx.add(row)
            await tx.flush()
            assert row.id is not None
            return row.id

    async def forget(self, pending_id: int) -> None:
        async with self.ctx.db.transaction() as tx:
            row = await tx.get(PendingReply, pending_id)
            if row is not None and row.answered_at is None:
                row.answered_at = self.ctx.clock.now()

    async def take_open(self, platform: str) -> list[Pending]:
        """The open promises of `platform`, marked answered in the same transaction (the caller answers them)."""
        now: datetime = self.ctx.clock.now()
        async with self.ctx.db.transaction() as tx:
            rows = (
                await tx.exec(
                    select(PendingReply).where(
                        PendingReply.platform == platform, col(PendingReply.answered_at).is_(None)
                    )
                )
            ).all()
            for row in rows:
                row.answered_at = now
            return [Pending(r.id or 0, r.user_id, r.what, r.response_url, r.expires_at > now) for r in rows]
