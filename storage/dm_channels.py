"""Where each person's DM channel is, per platform and workspace: read once, remembered in the database.

An adapter uses it through a two-verb store (`get`, `put`) built by the composition root, so opening a DM
is not repeated at every restart (Discord rate-limits and even blocks bots that open DMs quickly, 40003).
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import Database
from storage.models import DmChannel


class DmChannelStore:
    """The DM channel ids of one platform workspace (a Discord guild, a Slack team)."""

    def __init__(self, db: Database, platform: str, workspace: str) -> None:
        self.db, self.platform, self.workspace = db, platform, workspace

    async def _row(self, tx: AsyncSession, user_id: str) -> DmChannel | None:
        query = select(DmChannel).where(
            DmChannel.platform == self.platform, DmChannel.workspace == self.workspace, DmChannel.user_id == user_id
        )
        return (await tx.exec(query)).first()

    async def get(self, user_id: str) -> str | None:
        async with self.db.transaction() as tx:
            row = await self._row(tx, user_id)
            return row.channel_id if row is not None else None

    async def put(self, user_id: str, channel_id: str) -> None:
        """Remember (or correct) a person's DM channel; a concurrent writer of the same row wins harmlessly."""
        try:
            async with self.db.transaction() as tx:
                row = await self._row(tx, user_id)
                if row is None:
                    tx.add(
                        DmChannel(
                            platform=self.platform, workspace=self.workspace, user_id=user_id, channel_id=channel_id
                        )
                    )
                else:
                    row.channel_id = channel_id
        except IntegrityError:
            pass  # another replica stored it first: the same id
