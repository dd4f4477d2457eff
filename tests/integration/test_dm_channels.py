"""DM channel ids kept in the database (migration 0004), per platform and workspace, on SQLite and PostgreSQL."""

from __future__ import annotations

from storage.db import Database
from storage.dm_channels import DmChannelStore


async def test_dm_channel_ids_survive_a_new_store_and_stay_apart_per_workspace(database_url: str) -> None:
    db = Database(database_url)
    await db.upgrade()
    try:
        guild = DmChannelStore(db, "discord", "g1")
        assert await guild.get("u1") is None
        await guild.put("u1", "900")
        await guild.put("u1", "900")  # twice: one row
        assert await DmChannelStore(db, "discord", "g1").get("u1") == "900"  # a restarted process
        assert await DmChannelStore(db, "discord", "g2").get("u1") is None
        await guild.put("u1", "901")  # a DM channel Discord replaced
        assert await guild.get("u1") == "901"
    finally:
        await db.dispose()
