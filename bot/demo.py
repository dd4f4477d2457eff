"""`peerbot demo`: a whole peer-learning cycle on SQLite and the local platform, with an accelerated clock."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.actions import CheckIn, OpenTakeaways, PrepDone, Questionnaire, SubmitQuestionnaire
from bot.app import App, build
from bot.clock import FakeClock
from bot.core import queries
from bot.core.rules import CHECKIN_OPENS
from bot.documents.charts import session_chart
from bot.documents.pack import audit_pack
from bot.documents.targets import resolve
from bot.messages import ChoiceField, Form, Reply
from bot.reports import collect, write_csv
from bot.settings import Settings
from storage.models import Delivery, Member

FIRST_NAMES = [
    "Alice",
    "Bilal",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Gaëlle",
    "Hugo",
    "Inès",
    "Jules",
    "Kenza",
    "Léo",
    "Manon",
    "Nadia",
    "Oscar",
    "Pauline",
    "Quentin",
    "Rose",
    "Sami",
    "Tess",
    "Ugo",
    "Vera",
    "Wassim",
    "Xavier",
    "Yasmine",
    "Zoé",
]
DEMO_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass
class DemoResult:
    out_dir: Path
    files: list[Path]
    session: str
    transcript: list[str]


class Transcript:
    def __init__(self, clock: FakeClock, zone: ZoneInfo, echo: Callable[[str], None] | None) -> None:
        self.clock, self.zone, self.echo = clock, zone, echo
        self.lines: list[str] = []
        self.names: dict[str, str] = {}  # user id → display name, for mentions in the transcript

    def __call__(self, text: str) -> None:
        text = re.sub(r"<@(\w+)>", lambda m: "@" + self.names.get(m.group(1), m.group(1)), text)
        line = f"[{self.clock.now().astimezone(self.zone):%a %d %b %H:%M}] {text}"
        self.lines.append(line)
        if self.echo is not None:
            self.echo(line)


async def run_demo(
    out_dir: Path,
    learners: int = 12,
    seed: int = 7,
    echo: Callable[[str], None] | None = print,
    *,
    second_week: bool = True,
) -> DemoResult:
    """The whole cycle on the local platform; `second_week` adds a second session whose absences raise a
    dropout alert (the evidence tests turn it off to read a one-session cohort)."""
    if not 4 <= learners <= len(FIRST_NAMES):
        raise ValueError(f"--learners must be between 4 and {len(FIRST_NAMES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "peerbot-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    clock = FakeClock(DEMO_START)
    settings = Settings(  # type: ignore[call-arg]
        DATABASE_URL=f"sqlite+aiosqlite:///{db_path}",
        PEERBOT_TIMEZONE="Europe/Paris",
        PEERBOT_ORGANISATION=os.environ.get("PEERBOT_ORGANISATION") or "peerbot demo training centre",
    )
    say = Transcript(clock, settings.zone, echo)
    rng = random.Random(seed)
    platform = LocalPlatform(closed_dms={"L4"})
    app = await build(settings, {"local": platform}, clock=clock, with_scheduler=False)
    try:
        return await _cycle(app, platform, clock, say, rng, learners, out_dir, second_week)
    finally:
        await app.close()


async def _cycle(
    app: App,
    platform: LocalPlatform,
    clock: FakeClock,
    say: Transcript,
    rng: random.Random,
    count: int,
    out_dir: Path,
    second_week: bool,
) -> DemoResult:
    core = app.core
    trainer = LocalUser(core, platform, "T1", "Camille (trainer)", trainer=True)
    people = [LocalUser(core, platform, f"L{i}", FIRST_NAMES[i - 1]) for i in range(1, count + 1)]
    names = {p.user_id: p.name for p in [trainer, *people]}
    say.names = names
    channel = platform.add_channel("python-cohort", list(names))

    async def advance_to(moment: datetime, label: str) -> None:
        clock.set(moment)
        for result in await core.advance():
            say(f"⏱  {label}: {result.step} — {result.detail}")

    say(f"Trainer creates the cohort and enrolls {count} learners with levels 1–5")
    await _ok(trainer.command(f"cohort create python <#{channel.id}|python-cohort>"))
    mentions = " ".join(f"<@{p.user_id}|{p.name}>={rng.randint(1, 5)}" for p in people)
    await _ok(trainer.command(f"cohort add python {mentions}"))
    await _name_members(app, names)
    plan = await _ok(
        trainer.command(
            'session plan python "Testing with pytest" 2026-03-04 14:00 1h30m format=groups size=4 '
            'prep="Read https://docs.pytest.org/en/stable/getting-started.html and write one test" '
            'objectives="Write fixtures; parametrize tests; read a failure report" retention=2w'
        )
    )
    short = plan.extra["session"]
    say(f"Session planned: {plan.text.splitlines()[0]}")
    for question, right, *wrong in (
        (
            "Which decorator runs a test with several inputs?",
            "@pytest.mark.parametrize",
            "@pytest.fixture",
            "@pytest.mark.skip",
        ),
        ("Where do shared fixtures live?", "conftest.py", "setup.cfg", "pytest.ini"),
        ("What does `pytest -x` do?", "Stops at the first failure", "Runs tests in parallel", "Shows coverage"),
    ):
        await _ok(trainer.command(f'quiz add {short} "{question}" "{right}" ' + " ".join(f'"{w}"' for w in wrong)))
    say("Trainer adds 3 retention-quiz questions")

    async with core.ctx.db.transaction() as tx:
        session = await queries.peer_session(tx, None, short)
    start = session.starts_at
    # Roles in the cycle, drawn from the seed: one excused, one no-show, one late, the rest on time.
    order = people[:]
    rng.shuffle(order)
    excused, no_show, late = order[0], order[1], order[2]
    on_time = order[3:]

    await advance_to(start - timedelta(days=1), "prep time")
    async with core.ctx.db.transaction() as tx:
        session = await queries.peer_session(tx, None, short)
    prep_post = platform.messages.get(session.prep_message_id)
    preparers = [p for p in people if p is not no_show and rng.random() < 0.75]
    for i, person in enumerate(preparers):
        if i % 2 == 0 and prep_post is not None:
            await _ok(person.react(prep_post.ref))
        else:
            await _ok(person.click(PrepDone(short)))
    say(
        f"{len(preparers)}/{count} learners mark the preparation done (button or ✅ reaction); not yet: "
        + ", ".join(p.name for p in people if p not in preparers)
    )
    await _ok(excused.command(f'absent {short} "Medical appointment"'))
    say(f"{excused.name} cannot come and sends a reason: “Medical appointment” (kept with the attendance record)")

    await advance_to(start - timedelta(hours=2), "2 h before")
    await advance_to(start - CHECKIN_OPENS, "check-in opens")
    async with core.ctx.db.transaction() as tx:
        session = await queries.peer_session(tx, None, short)
    announce = platform.messages.get(session.announce_message_id)
    clock.set(start - timedelta(minutes=5))
    how: dict[str, list[str]] = {"button": [], "✅ reaction": [], "/peer checkin": []}
    for i, person in enumerate(on_time):
        if i % 4 == 3 and announce is not None:
            await _ok(person.react(announce.ref))
            how["✅ reaction"].append(person.name)
        elif i % 4 == 2:
            await _ok(person.command("checkin"))
            how["/peer checkin"].append(person.name)
        else:
            await _ok(person.click(CheckIn(short)))
            how["button"].append(person.name)
    say(f"{len(on_time)} learners check in on time: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in how.items() if v))

    await advance_to(start, "start")
    for room in platform.breakouts():
        members = ", ".join(names.get(m, m) for m in sorted(room.members) if m != trainer.user_id)
        say(f"   #{room.name}: {members}")
    clock.set(start + timedelta(minutes=12))
    reply = await _ok(late.click(CheckIn(short)))
    say(f"{late.name} arrives 12 min late: {reply.text}")
    say(f"{no_show.name} never shows up: absent")

    await advance_to(start + timedelta(minutes=80), "10 min before the end")
    async with core.ctx.db.transaction() as tx:
        groups = await queries.groups(tx, session.id or 0)
    for group, group_members in groups:
        speaker = next(p for p in people if p.user_id == group_members[0][0].user_id)
        assert group.id is not None
        form = await speaker.open_form(OpenTakeaways(group.id))
        await _ok(
            speaker.submit(
                form,
                {
                    "takeaways": f"Group {group.number}: fixtures beat setup code; "
                    "parametrize early; read the diff first"
                },
            )
        )
    say(f"Each of the {len(groups)} groups shares its takeaways")

    await advance_to(start + timedelta(minutes=90), "end")
    attendees = [p for p in people if p not in (excused, no_show)]
    reachable = [p for p in attendees if p.user_id not in platform.closed_dms]
    for person in attendees:
        if person not in reachable:
            say(f"   {person.name}'s DMs are closed: recorded as undeliverable, the trainer is told")
    procrastinators = rng.sample(reachable, 2)
    answered = 0
    for person in reachable:
        if person in procrastinators:
            continue
        form = await person.open_form(person.invite(Questionnaire.SURVEY))
        values = {f.field_id: str(rng.randint(3, 5)) for f in form.fields if f.field_id != "open"}
        values["open"] = rng.choice(["More time for the exercise", "Great group", "Clearer instructions"])
        await _ok(person.submit(form, values))
        answered += 1
    say(f"{answered} learners answer the questionnaire right away")
    first = next(p for p in reachable if p not in procrastinators)
    again = await first.submit(await _form_anyway(first), {"clarity": "9"})
    say(f"A second submission is refused politely: “{again.text}”")

    await advance_to(start + timedelta(minutes=90, hours=24), "24 h later (reminders)")
    async with app.db.transaction() as s:  # who the outbox reminded: the deliveries are the record
        reminded_ids = set(
            (
                await s.exec(
                    select(Member.user_id)
                    .join(Delivery, col(Delivery.member_id) == col(Member.id))
                    .where(Delivery.kind == "feedback_reminder", Delivery.state == "sent")
                )
            ).all()
        )
    reminded = [p for p in attendees if p.user_id in reminded_ids]
    for person in reminded[:1]:
        form = await person.open_form(person.invite(Questionnaire.SURVEY))
        await _ok(person.submit(form, {f.field_id: "4" for f in form.fields if f.field_id != "open"}))
    say(f"{len(reminded)} reminder(s) sent; {min(1, len(reminded))} more answer")
    await advance_to(start + timedelta(days=8), "7 days later")

    await advance_to(start + timedelta(days=14, minutes=90), "2 weeks later (retention quiz)")
    scores = []
    feedback = ""
    for person in attendees:
        if person.user_id in platform.closed_dms:
            continue
        form = await person.open_form(person.invite(Questionnaire.QUIZ))
        values = {}
        for field in form.fields:
            assert isinstance(field, ChoiceField)
            options = field.options
            knows_it = rng.random() < 0.7
            values[field.field_id] = "0" if knows_it else next(v for v, _ in options if v != "0")
        reply = await _ok(person.submit(form, values))
        scores.append(reply.extra.get("score", "?"))
        if not feedback and reply.extra.get("score") != "3":
            feedback = f"{person.name} sees right away what they missed:\n" + reply.text
    say(f"{len(scores)} learners take the retention quiz; scores: {', '.join(scores)} (out of 3)")
    if feedback:
        say(feedback)

    evidence = await collect(core.ctx.db, [short])
    files = write_csv(evidence, out_dir)
    report = await core.handle_command(trainer.actor, f"report {short}")
    say("Trainer's report:\n" + report.text)

    if second_week:  # a second session: the two who missed the first miss it too, and the alert says so
        second = await _ok(trainer.command('session plan python "Mocking with pytest" 2026-03-25 14:00 1h'))
        second_start = start + timedelta(days=21)
        clock.set(second_start)
        for person in people:
            if person not in (no_show, excused):
                await _ok(person.click(str(CheckIn(second.extra["session"]))))
        await advance_to(second_start, "second session")
        await advance_to(second_start + timedelta(hours=1), "its end")
        alerts = await _ok(trainer.command("alerts python"))
        say("Trainer asks who may be drifting away (`/peer alerts python`):\n" + alerts.text)
    say(f"Evidence written to {out_dir.resolve()}: " + ", ".join(p.name for p in files))
    chart = out_dir / "chart.png"
    chart.write_bytes(session_chart(evidence, app.settings.locale))
    target = await resolve(app.db, "python", cohort_only=True)
    pack = await audit_pack(app.db, app.settings, target, out_dir / "audit-pack.zip", clock.now(), app.settings.locale)
    say(f"Audit pack (sheets, charts, workbook, Qualiopi index): {pack.resolve()}")
    say(f"Session chart: {chart.resolve()}")
    return DemoResult(out_dir, [*files, chart, pack], short, say.lines)


async def _form_anyway(person: LocalUser) -> Form:
    """The submit form of a questionnaire already answered (opening it is refused, submitting must be too)."""
    invite = person.invite(Questionnaire.SURVEY)
    return Form(str(SubmitQuestionnaire(invite.questionnaire, invite.delivery)), "", ())


async def _name_members(app: App, names: dict[str, str]) -> None:
    """Local users have display names the way Slack profiles do; mentions carry only ids."""
    async with app.db.transaction() as s:
        for member in (await s.exec(select(Member))).all():
            member.display_name = names.get(member.user_id, member.display_name)


async def _ok(awaitable: Awaitable[Reply | None]) -> Reply:
    reply = await awaitable
    if reply is None or not reply.ok:
        raise RuntimeError(f"demo step refused: {reply.text if reply else 'no reply'}")
    return reply
