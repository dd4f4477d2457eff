"""Enrolling a whole class: thousands of mentions in one command, in short batches (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlmodel import func, select

from bot.core.commands import ENROLL_BATCH
from storage.models import AuditEvent, Enrollment
from tests.conftest import World


async def test_a_class_of_thousands_is_enrolled_in_short_batches(world: World) -> None:
    assert (await world.trainer.command("cohort create big")).ok
    mentions = [f"<@B{i}>" for i in range(3000)]
    mentions += ["<@B7>=5", "<@B8>"]  # a person mentioned twice counts once, with the last level given
    reply = await world.trainer.command("cohort add big " + " ".join(mentions))
    assert reply.ok and "3000 added" in reply.text, reply.text
    async with world.app.db.transaction() as tx:
        learners = (await tx.exec(select(func.count()).where(Enrollment.role == "learner"))).one()
        level = (await tx.exec(select(Enrollment.level).where(Enrollment.level == 5))).all()
        batches = (await tx.exec(select(func.count()).where(AuditEvent.action == "cohort.add"))).one()
    assert learners == 3000 and len(level) == 1
    assert batches == -(-3000 // ENROLL_BATCH)  # one short transaction per batch, each with its audit line
    again = await world.trainer.command("cohort add big <@B1>=2 <@B2>")
    assert again.ok and "0 added, 1 level(s) updated" in again.text, again.text
