"""Erasure keeps the auditor's facts under a pseudonym and removes the person; retention purges old free text."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import col, select

from adapters.local.driver import LocalUser
from bot.actions import SubmitTakeaways
from bot.documents.verify import check
from bot.refs import UserRef
from bot.reports import my_data
from storage.models import Answer, Attendance, AuditEvent, Delivery, GroupMembership, Member, PeerGroup
from tests.conftest import World, make_settings
from tests.integration.test_session_flow import plan, session_row


async def answered(world: World) -> tuple[str, LocalUser]:
    """L1 and L2 attended, L1 wrote takeaways and answered the questionnaire with a free-text comment."""
    short = await plan(world)
    start = (await session_row(world, short)).starts_at
    world.clock.set(start)
    learner = world.learners[0]
    for person in world.learners[:2]:
        assert (await person.click(f"checkin:in:{short}")).ok
    await world.core.timeline.start(short, by="test")
    async with world.app.db.transaction() as tx:
        me = (await tx.exec(select(Member.id).where(Member.user_id == "L1"))).one()
        group = (await tx.exec(select(GroupMembership.group_id).where(GroupMembership.member_id == me))).one()
    takeaways = await learner.core.handle_form(learner.actor, str(SubmitTakeaways(group)), {"takeaways": "Fixtures!"})
    assert takeaways.ok, takeaways.text
    await world.advance(start + timedelta(minutes=90))
    form = await learner.open_form(learner.dm_button("survey:open:"))
    values = {f.field_id: "4" for f in form.fields}
    values["open"] = "My private thoughts about L12"
    assert (await learner.submit(form, values)).ok
    return short, learner


async def texts(world: World) -> list[str]:
    async with world.app.db.transaction() as tx:
        return [a for a in (await tx.exec(select(Answer.value_text).where(Answer.value_text != ""))).all()]


async def test_erasing_a_member_pseudonymises_them_and_keeps_the_counts(world: World) -> None:
    short, _learner = await answered(world)
    assert await texts(world) == ["My private thoughts about L12"]
    async with world.app.db.transaction() as tx:
        rated = (await tx.exec(select(func.count()).where(col(Answer.value_int).is_not(None)))).one()
        attended = (await tx.exec(select(func.count()).select_from(Attendance))).one()

    erased = await world.core.privacy.erase_member("local", "L1", by="test")
    assert erased is not None and erased.pseudonym.startswith("erased-")
    assert erased.answers == 1 and erased.audit >= 2  # their check-in and answer, their enrolment in cohort.add

    assert await texts(world) == []
    async with world.app.db.transaction() as tx:
        member = (await tx.exec(select(Member).where(Member.id == erased.member_id))).one()
        assert (member.user_id, member.display_name, member.locale) == (erased.pseudonym,) * 2 + ("",)
        assert (await tx.exec(select(func.count()).where(col(Answer.value_int).is_not(None)))).one() == rated
        assert (await tx.exec(select(func.count()).select_from(Attendance))).one() == attended
        audit = (await tx.exec(select(AuditEvent))).all()
        pending = (
            await tx.exec(select(Delivery).where(Delivery.member_id == erased.member_id, Delivery.state == "pending"))
        ).all()
    assert not [e for e in audit if e.actor == "local:L1" or '"L1"' in e.detail]
    assert any(e.actor == f"local:{erased.pseudonym}" for e in audit)
    assert any('"L12"' in e.detail for e in audit)  # another learner whose id starts alike is untouched
    assert pending == []  # the 24 h reminder queued for them will not go out
    assert await my_data(world.app.db, UserRef("local", "L1")) == "I store nothing about you."
    assert await world.core.privacy.erase_member("local", "L1") is None  # nothing left to erase
    assert short


async def test_retention_purges_free_text_older_than_the_setting(world: World) -> None:
    await answered(world)
    world.core.ctx.settings = make_settings(world.app.settings.database_url, PEERBOT_RETENTION_DAYS="30")
    world.clock.set(world.clock.now() + timedelta(days=29))
    purged = await world.core.privacy.purge_expired()
    assert purged is not None and (purged.answers, purged.takeaways) == (0, 0)
    world.clock.set(world.clock.now() + timedelta(minutes=30))
    assert await world.core.privacy.purge_expired() is None  # at most once an hour
    world.clock.set(world.clock.now() + timedelta(days=2))
    await world.core.sweep()  # the scheduler's periodic pass runs the purge
    assert await texts(world) == []
    async with world.app.db.transaction() as tx:
        assert [t for t in (await tx.exec(select(PeerGroup.takeaways))).all() if t] == []
        purge = (await tx.exec(select(AuditEvent).where(AuditEvent.action == "retention.purge"))).one()
    assert '"answers": 1' in purge.detail and '"takeaways": 1' in purge.detail


def test_erase_command_line(tmp_path: Path) -> None:
    """`peerbot erase --member` on a database that knows the person, then on one that does not."""
    import asyncio

    from bot.app import build

    db = tmp_path / "erase.db"
    settings = make_settings(f"sqlite+aiosqlite:///{db}")

    async def seed() -> None:
        app = await build(settings, {}, with_scheduler=False)
        async with app.db.transaction() as tx:
            tx.add(Member(platform="slack", user_id="U0ERASE", display_name="Eve"))
        await app.close()

    asyncio.run(seed())
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{db}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "erase", "--member", "slack:U0ERASE"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Erased slack:U0ERASE: now slack:erased-")
    again = subprocess.run(
        [sys.executable, "-m", "bot.cli", "erase", "--member", "slack:U0ERASE"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 1 and "No member slack:U0ERASE is stored" in again.stderr


async def test_forget_me_asks_to_confirm_then_erases_the_person_who_submits(world: World) -> None:
    await answered(world)
    learner = world.learners[0]
    reply = await learner.command("forget-me")
    assert reply.ok and reply.form is not None
    form = reply.form
    assert [f.field_id for f in form.fields] == ["confirm"] and "cannot be undone" in form.intro
    wrong = await learner.submit(form, {"confirm": "yes"})
    assert not wrong.ok and wrong.extra == {"field": "confirm"}
    assert await texts(world) == ["My private thoughts about L12"]  # nothing erased yet

    done = await learner.submit(form, {"confirm": " erase "})
    assert done.ok and done.text.startswith("Done: peerbot no longer knows who you are.")
    assert await texts(world) == []
    assert (await learner.command("mydata")).ok
    assert world.platform.dms_to("L1")[-1].message.text == "I store nothing about you."
    async with world.app.db.transaction() as tx:
        erased = (await tx.exec(select(AuditEvent).where(AuditEvent.action == "member.erase"))).one()
    assert erased.actor == "self"


async def test_forget_me_in_french_takes_the_french_word(world: World) -> None:
    from dataclasses import replace

    learner = world.learners[1]
    actor = replace(learner.actor, locale="fr")
    form = (await world.core.handle_command(actor, "forget-me")).form
    assert form is not None and form.fields[0].label == "Tapez EFFACER pour confirmer"
    refused = await world.core.handle_form(actor, form.form_id, {"confirm": "non"})
    assert refused.text == "Tapez EFFACER pour confirmer, ou fermez cette fenêtre pour garder vos données."
    reply = await world.core.handle_form(actor, form.form_id, {"confirm": "effacer"})
    assert reply.text == "Je ne conserve rien à votre sujet."  # L2 never used peerbot: nothing was stored


async def test_verify_still_passes_after_an_erasure(world: World) -> None:
    """Clearing a free-text answer is a lawful change: the chain records the cleared version, so an auditor's
    `verify` does not report it as an alteration."""
    short, _learner = await answered(world)
    await world.core.privacy.erase_member("local", "L1", by="test")
    assert await texts(world) == []
    [result] = await check(world.app.db, [short])
    assert result.verdict.ok, result.verdict


async def test_verify_still_passes_after_a_retention_purge(world: World) -> None:
    short, _learner = await answered(world)
    world.core.ctx.settings = make_settings(world.app.settings.database_url, PEERBOT_RETENTION_DAYS="1")
    world.clock.set(world.clock.now() + timedelta(days=3))
    purged = await world.core.privacy.purge_expired()
    assert purged is not None and purged.answers == 1
    assert await texts(world) == []
    [result] = await check(world.app.db, [short])
    assert result.verdict.ok, result.verdict
