"""Dashboard sign-in links and the signing key on SQLite and PostgreSQL, as replicas meet them: a link opened at the
same moment by two processes signs in only one; two processes starting without PEERBOT_SECRET_KEY end up with one
shared key; the nonce is stored only as its hash."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr
from sqlmodel import select

from bot.app import build
from bot.core.dashboard import DashboardAccess, Refused
from storage.models import AppSecret, DashboardLink
from tests.conftest import World


async def test_a_link_opened_twice_at_once_signs_in_once(world: World) -> None:
    world.app.settings.dashboard = "on"
    second = await build(world.app.settings, {"local": world.platform}, clock=world.clock, with_scheduler=False)
    try:
        link = await world.app.core.dashboard.issue(world.trainer.actor)
        token = link.split("token=")[1]
        outcomes = await asyncio.gather(
            world.app.core.dashboard.redeem(token), second.core.dashboard.redeem(token), return_exceptions=True
        )
        accepted = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, Refused)]
        assert len(accepted) == 1 and len(refused) == 1 and refused[0].status == 403
        async with world.app.db.transaction() as tx:
            [row] = (await tx.exec(select(DashboardLink))).all()
        assert row.used_at is not None and len(row.nonce_hash) == 64  # the nonce's SHA-256, never the token
        assert token.split(".")[0] not in row.model_dump_json()
    finally:
        await second.close()


async def test_replicas_starting_together_share_one_generated_key(world: World) -> None:
    second = await build(world.app.settings, {"local": world.platform}, clock=world.clock, with_scheduler=False)
    try:
        first_key, second_key = await asyncio.gather(
            DashboardAccess(world.app.core.ctx).key(), DashboardAccess(second.core.ctx).key()
        )
        assert first_key == second_key and len(first_key) == 64
        async with world.app.db.transaction() as tx:
            assert [s.value for s in (await tx.exec(select(AppSecret))).all()] == [first_key]
    finally:
        await second.close()


async def test_a_configured_key_is_used_and_the_database_keeps_none(world: World) -> None:
    """PEERBOT_SECRET_KEY: nothing is generated; a link signed with another key is refused as forged."""
    keyed = world.app.settings.model_copy(update={"secret_key": SecretStr("s" * 40)})
    other = await build(keyed, {"local": world.platform}, clock=world.clock, with_scheduler=False)
    try:
        assert await other.core.dashboard.key() == "s" * 40
        link = await other.core.dashboard.issue(world.trainer.actor)
        async with other.db.transaction() as tx:
            assert (await tx.exec(select(AppSecret))).all() == []
        refused = None
        try:
            await world.app.core.dashboard.redeem(link.split("token=")[1])  # generated key: not the same
        except Refused as exc:
            refused = exc
        assert refused is not None and refused.status == 401
        assert (await other.core.dashboard.redeem(link.split("token=")[1])).user_id == world.trainer.user_id
    finally:
        await other.close()
