"""The trainer's own questionnaire, the second retention quiz and the behavioural follow-up, end to end on
the local platform (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from io import BytesIO
from pathlib import Path

from openpyxl import load_workbook
from sqlmodel import select
from typer.testing import CliRunner

from bot.actions import Questionnaire, SaveQuestionnaire
from bot.documents.charts import chart_data, render
from bot.documents.export import evidence_xlsx
from bot.documents.learner import learner_file_pdf, learner_files
from bot.documents.sheet import attendance_sheet
from bot.localtime import same_wall_time_later
from bot.messages import ChoiceField, Form, LikertField, TextField
from bot.reports import collect, csv_files
from storage.models import Cohort, Delivery, Member, PeerSession, QuestionnaireItem
from tests.conftest import World
from tests.integration.conftest import pdf_text

CUSTOM = "\n".join(
    [
        "likert: The pace suited me. // Le rythme me convenait.",
        "choice: Which phase helped most? [Preparation | Exchange | Synthesis] "
        "// Quelle phase vous a le plus aidé ? [Préparation | Échange | Synthèse]",
        "# a comment line, ignored",
        "text: One thing you will try next week? // Une chose que vous essaierez la semaine prochaine ?",
        "likert: I would recommend this session.",
    ]
)


async def cohort(world: World, name: str = "py") -> None:
    assert (await world.trainer.command(f"cohort create {name} <#{world.channel_id}|cohort>")).ok
    mentions = " ".join(f"<@{u.user_id}>" for u in world.learners[:4])
    assert (await world.trainer.command(f"cohort add {name} {mentions}")).ok


async def plan(world: World, extra: str = "", day: int = 4) -> str:
    reply = await world.trainer.command(f'session plan py "Testing" 2026-03-{day:02d} 14:00 1h {extra}'.strip())
    assert reply.ok, reply.text
    return str(reply.extra["session"])


async def held(world: World, short: str, present: int = 3) -> None:
    """The session took place with the first `present` learners and has ended."""
    start = await world.check_in_at_start(short, present)
    await world.advance(start)
    await world.advance(start + timedelta(hours=1))


async def save_template(world: World, text: str) -> str:
    reply = await world.trainer.command("questionnaire edit py")
    assert reply.ok and reply.form is not None, reply.text
    saved = await world.trainer.submit(reply.form, {"items": text})
    assert saved.ok, saved.text
    return saved.text


async def french(world: World, user_id: str) -> None:
    async with world.app.db.transaction() as tx:
        member = (await tx.exec(select(Member).where(Member.user_id == user_id))).one()
        member.locale = "fr"


# ---------------------------------------------------------------------------------------------- questionnaires


async def test_the_edit_form_shows_the_default_then_the_trainers_items_are_asked(world: World) -> None:
    await cohort(world)
    reply = await world.trainer.command("questionnaire edit py")
    assert reply.form is not None
    (field,) = reply.form.fields
    assert isinstance(field, TextField) and field.required and field.multiline
    assert field.initial.splitlines()[0] == (
        "likert: The exchanges in my group were clear. // Les échanges dans mon groupe étaient clairs."
    )
    assert len(field.initial.splitlines()) == 6  # the default questionnaire stays the default
    assert "choice:" in reply.form.intro  # Slack shows the syntax above the field
    assert "4 items" in await save_template(world, CUSTOM)

    short = await plan(world)
    await french(world, "L2")
    await held(world, short)
    dm = world.platform.dms_to("L1")[-1].message.text
    assert "4 questions" in dm, dm
    assert "Deux minutes pour 4 questions" in world.platform.dms_to("L2")[-1].message.text
    form = await world.learners[0].open_form(world.learners[0].invite(Questionnaire.SURVEY))
    kinds = [type(f) for f in form.fields]
    assert kinds == [LikertField, ChoiceField, TextField, LikertField]
    choice = form.fields[1]
    assert isinstance(choice, ChoiceField) and [o for _v, o in choice.options] == [
        "Preparation",
        "Exchange",
        "Synthesis",
    ]
    missing = await world.learners[0].submit(form, {"i1": "4", "i3": "pairs"})
    assert not missing.ok and "Which phase helped most?" in missing.text
    done = await world.learners[0].submit(form, {"i1": "4", "i2": "1", "i3": "Pair work", "i4": "5"})
    assert done.ok, done.text

    l2 = world.learners[1]
    fr_form = await world.core.form_for(replace(l2.actor, locale="fr"), str(l2.invite(Questionnaire.SURVEY)))
    assert isinstance(fr_form, Form)
    assert fr_form.fields[0].label == "Le rythme me convenait."
    assert fr_form.fields[3].label == "I would recommend this session."  # no French written: the English
    fr_choice = fr_form.fields[1]
    assert isinstance(fr_choice, ChoiceField) and fr_choice.options[1] == ("1", "Échange")
    assert (await world.learners[1].submit(fr_form, {"i1": "2", "i2": "1", "i4": "3"})).ok

    # A later edit changes the next sessions only: this one keeps what it asked.
    await save_template(world, "likert: A\nlikert: B\nlikert: C")
    async with world.app.db.transaction() as tx:
        asked = (
            await tx.exec(
                select(QuestionnaireItem.text)
                .join(PeerSession, PeerSession.id == QuestionnaireItem.session_id)  # type: ignore[arg-type]
                .where(PeerSession.short_id == short, QuestionnaireItem.kind == "feedback")
                .order_by(QuestionnaireItem.position)  # type: ignore[arg-type]
            )
        ).all()
    assert asked[0] == "The pace suited me." and len(asked) == 4

    evidence = await collect(world.app.db, [short])
    files = csv_files(evidence)
    assert files["feedback.csv"].decode().splitlines()[0].endswith(",i1,i2,i3,i4")
    assert "The pace suited me.,Le rythme me convenait." in files["questions.csv"].decode()
    sheet = await attendance_sheet(world.app.db, world.app.settings, short)
    workbook = load_workbook(BytesIO(evidence_xlsx([sheet], evidence, "fr")))
    assert workbook.sheetnames[1:] == ["questionnaire d'avis", "quiz de rétention", "questions"]
    header = [c.value for c in next(workbook["questionnaire d'avis"].iter_rows(max_row=1))]
    assert header[-4:] == ["i1", "i2", "i3", "i4"]
    chart = chart_data(evidence)  # Likert charts for Likert items only
    assert list(chart.likert) == ["i1", "i4"] and chart.likert["i1"] == [0, 1, 0, 1, 0]
    assert render(chart, "fr").startswith(b"\x89PNG")

    report = (await world.trainer.command(f"report {short}")).text
    assert "The pace suited me.: 3.0" in report, report
    assert "Which phase helped most?: Exchange 2" in report, report
    assert "“Pair work”" in report


async def test_a_mistake_names_the_line_and_the_draft_comes_back(world: World) -> None:
    await cohort(world)
    reply = await world.trainer.command("questionnaire edit py")
    assert reply.form is not None
    bad = "likert: Fine\nchoise: Typo [A | B]\ntext: Why?"
    refused = await world.trainer.submit(reply.form, {"items": bad})
    assert not refused.ok and refused.extra.get("field") == "items"
    assert "Line 2 should start with `likert:`, `choice:` or `text:`" in refused.text, refused.text
    assert "Your text is kept" in refused.text
    again = await world.trainer.command("questionnaire edit py")
    assert again.form is not None and again.form.fields[0].initial == bad  # type: ignore[union-attr]
    assert "draft you submitted last" in again.form.intro
    for text, error in (
        ("likert: One\nlikert: Two", "3 to 10 items; this one has 2"),
        ("likert: A\nchoice: Q [Only one]\ntext: C", "Line 2: a choice takes 2 to 8 answers"),
        ("likert: A\nchoice: Q [x | y] // Q [x]\ntext: C", "Line 2: a choice takes 2 to 8 answers"),
        ("likert: A [x | y]\nlikert: B\ntext: C", "Line 1: only a `choice:` item has answers"),
        ("likert: A\nlikert: " + "b" * 201 + "\ntext: C", "Line 2: the question is 201 characters long"),
        ("likert: A\n" * 11, "this one has 11"),
    ):
        refused = await world.trainer.submit(reply.form, {"items": text})
        assert not refused.ok and error in refused.text, (text, refused.text)
    reply_fr = await world.trainer.submit(reply.form, {"items": "likert: A\nlikert: B\n"})
    assert not reply_fr.ok


async def test_only_the_cohorts_trainers_edit_its_questionnaire(world: World) -> None:
    await cohort(world)
    refused = await world.learners[0].command("questionnaire edit py")
    assert not refused.ok and "Only trainers" in refused.text
    other = world.user("T2", trainer=True)
    refused = await other.command("questionnaire edit py")
    assert not refused.ok and refused.form is None
    async with world.app.db.transaction() as tx:
        cohort_id = (await tx.exec(select(Cohort.id).where(Cohort.name == "py"))).one()
    assert cohort_id is not None
    forged = await other.core.handle_form(other.actor, str(SaveQuestionnaire(cohort_id)), {"items": CUSTOM})
    assert not forged.ok


async def test_peerbot_questionnaire_import_reads_yaml(world: World, tmp_path: Path, monkeypatch: object) -> None:
    await cohort(world)
    yaml_file = tmp_path / "q.yaml"
    yaml_file.write_text(
        "items:\n"
        "  - type: likert\n    en: Clear goals\n    fr: Objectifs clairs\n"
        "  - type: choice\n    en: Best part\n    options: [Prep, Talk]\n    options_fr: [Prépa, Échange]\n"
        "  - type: text\n    en: Anything else?\n",
        encoding="utf-8",
    )
    cohort_row, count = await world.app.core.templates.import_yaml("py", yaml_file.read_text())
    assert count == 3 and cohort_row.name == "py"
    reply = await world.trainer.command("questionnaire edit py")
    assert reply.form is not None
    assert reply.form.fields[0].initial.splitlines()[1] == (  # type: ignore[union-attr]
        "choice: Best part [Prep | Talk] // Best part [Prépa | Échange]"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("- type: likert\n  en: A\n- type: poll\n  en: B\n- type: text\n  en: C\n", encoding="utf-8")
    from bot.errors import Invalid

    try:
        await world.app.core.templates.import_yaml("py", bad.read_text())
    except Invalid as exc:
        assert "Item 2: the type must be likert, choice or text." in exc.text()
    else:
        raise AssertionError("a bad YAML file was accepted")


def test_the_import_command_line(tmp_path: Path, monkeypatch: object) -> None:
    """`peerbot questionnaire import`: an unknown cohort is one polite line and exit 2."""
    from bot.cli import cli

    setattr_env = monkeypatch.setenv  # type: ignore[attr-defined]
    setattr_env("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    yaml_file = tmp_path / "q.yaml"
    yaml_file.write_text("- {type: likert, en: A}\n- {type: likert, en: B}\n- {type: text, en: C}\n")
    result = CliRunner().invoke(cli, ["questionnaire", "import", "nope", str(yaml_file)])
    assert result.exit_code == 2 and "No cohort named `nope`" in result.output, result.output


# ---------------------------------------------------------------------------------------------- second quiz


async def test_the_second_quiz_asks_again_what_each_learner_missed(world: World) -> None:
    await cohort(world)
    short = await plan(world, "retention=2w,6w")
    for question in ('"2+2?" "4" "5" "3"', '"Capital of France?" "Paris" "Lyon"', '"Blue?" "yes" "no"'):
        assert (await world.trainer.command(f"quiz add {short} {question}")).ok
    await held(world, short)
    async with world.app.db.transaction() as tx:
        end = (await tx.exec(select(PeerSession.ended_at).where(PeerSession.short_id == short))).one()
    assert end is not None
    await world.advance(end + timedelta(weeks=2))
    l1, l2, l3 = world.learners[:3]
    first = await l1.open_form(l1.invite(Questionnaire.QUIZ))
    assert (await l1.submit(first, {"q1": "0", "q2": "1", "q3": "1"})).ok  # 2 and 3 wrong
    perfect = await l2.open_form(l2.invite(Questionnaire.QUIZ))
    assert (await l2.submit(perfect, {"q1": "0", "q2": "0", "q3": "0"})).ok
    # L3 never answers the first quiz.
    due = same_wall_time_later(end, 6, world.core.ctx.settings.zone)  # 6 weeks on, at the same local time (DST)
    await world.advance(due - timedelta(minutes=1))
    assert not any("to practise again" in p.message.text for p in world.platform.dms_to("L1"))
    await world.advance(due)
    await world.advance(due + timedelta(minutes=5))  # a second pass (a restart) sends nothing more
    second_dms = [p for p in world.platform.dms_to("L1") if "to practise again" in p.message.text]
    assert len(second_dms) == 1 and "2 question(s)" in second_dms[0].message.text
    assert not any("to practise again" in p.message.text for p in world.platform.dms_to("L2"))  # all right
    assert any("3 question(s) to practise again" in p.message.text for p in world.platform.dms_to("L3"))

    form = await l1.open_form(l1.dm_button("quiz:open:"))
    assert [f.label for f in form.fields] == ["Capital of France?", "Blue?"]
    reply = await l1.submit(form, {"q2": "0", "q3": "1"})
    assert reply.ok and "Your score: 1/2." in reply.text and "❌ Blue? — the answer is “yes”." in reply.text
    again = await l1.click(l1.dm_button("quiz:open:"))
    assert not again.ok and "first answers are kept" in again.text
    closed = await l3.click(f"quiz:open:{await delivery_id(world, 'L3', 'retention')}")
    assert not closed.ok and "second round" in closed.text
    async with world.app.db.transaction() as tx:
        states = (
            await tx.exec(
                select(Delivery.state)
                .join(Member, Member.id == Delivery.member_id)
                .where(Member.user_id == "L2", Delivery.kind == "retention2")
            )
        ).all()
    assert states == ["skipped"]
    report = (await world.trainer.command(f"report {short}")).text
    assert "Second retention quiz: 1 answer(s), mean score 50%" in report, report


async def delivery_id(world: World, user_id: str, kind: str) -> int:
    async with world.app.db.transaction() as tx:
        found = (
            await tx.exec(
                select(Delivery.id)
                .join(Member, Member.id == Delivery.member_id)
                .where(Member.user_id == user_id, Delivery.kind == kind)
            )
        ).one()
    assert found is not None
    return found


async def test_the_retention_option_takes_one_or_two_durations(world: World) -> None:
    await cohort(world)
    for bad, error in (
        ("retention=2w,2w", "must come after the first"),
        ("retention=2w,27w", "up to 26w"),
        ("retention=3w", "Retention must be `2w` or `4w`"),
        ("retention=4w,6d", "must come after the first"),
    ):
        reply = await world.trainer.command(f'session plan py "T" 2026-03-04 14:00 1h {bad}')
        assert not reply.ok and error in reply.text, (bad, reply.text)
    short = await plan(world, "retention=4w,8w")
    async with world.app.db.transaction() as tx:
        row = (await tx.exec(select(PeerSession).where(PeerSession.short_id == short))).one()
    assert (row.retention_days, row.retention2_days) == (28, 56)


# ---------------------------------------------------------------------------------------------- follow-up


async def test_the_follow_up_reaches_learners_and_their_observer_once(world: World) -> None:
    await cohort(world)
    short = await plan(world)
    reply = await world.trainer.command(f"followup plan {short} 6 observer=<@M1>")
    assert reply.ok and "6 week(s) after the session" in reply.text and "<@M1>" in reply.text, reply.text
    await held(world, short, present=2)
    async with world.app.db.transaction() as tx:
        end = (await tx.exec(select(PeerSession.ended_at).where(PeerSession.short_id == short))).one()
    assert end is not None
    due = same_wall_time_later(end, 6, world.core.ctx.settings.zone)
    await world.advance(due - timedelta(minutes=1))
    assert not any("🔁" in p.message.text for p in world.platform.dms_to("L1"))
    await world.advance(due)
    await world.advance(due + timedelta(minutes=10))
    mine = [p for p in world.platform.dms_to("L1") if "🔁" in p.message.text]
    assert len(mine) == 1 and "three questions on how you apply" in mine[0].message.text
    observed = [p for p in world.platform.dms_to("M1") if "🔁" in p.message.text]
    assert len(observed) == 2 and "as Learner 1's observer" in observed[0].message.text
    home = await world.core.home(world.user("M1").actor)
    assert [s.text for s in home.sections].count("Follow-up: Testing") == 2  # one per learner to observe
    assert not any("🔁" in p.message.text for p in world.platform.dms_to("L3"))  # absent: nothing to follow up

    l1 = world.learners[0]
    form = await l1.open_form(l1.invite(Questionnaire.FOLLOWUP))
    assert [type(f) for f in form.fields] == [TextField, TextField, LikertField]
    done = await l1.submit(form, {"applied": "Fixtures in my tests", "obstacles": "Time", "rating": "4"})
    assert done.ok, done.text
    observer = world.user("M1")
    obs_form = await observer.open_form(str(observed[0].message.buttons[0].action_id))
    assert "Learner 1" in obs_form.fields[0].label
    assert (await observer.submit(obs_form, {"applied": "Writes fixtures now", "rating": "5"})).ok
    home = await world.core.home(observer.actor)
    assert [s.text for s in home.sections].count("Follow-up: Testing") == 1  # the other learner's is left
    twice = await observer.submit(obs_form, {"applied": "again", "rating": "1"})
    assert not twice.ok and "first answers are kept" in twice.text

    report = (await world.trainer.command(f"report {short}")).text
    assert "Follow-up: 1 learner answer(s), self-rating 4.0; 1 observer answer(s), rating 5.0" in report, report
    assert "“Fixtures in my tests”" in report and "“Writes fixtures now”" in report
    evidence = await collect(world.app.db, [short])
    assert "followup.csv" in csv_files(evidence)
    sheet = await attendance_sheet(world.app.db, world.app.settings, short)
    (mine_file,) = [f for f in learner_files([sheet], evidence) if f.learner_id == "L1"]
    text = " ".join(pdf_text(learner_file_pdf(mine_file, "en")).split())
    assert "Behavioural follow-up" in text and "applies it 4/5" in text and "Writes fixtures now" in text, text

    late = await world.trainer.command(f"followup plan {short} 8")
    assert not late.ok and "already been sent" in late.text


async def test_a_follow_up_planned_after_the_end_and_replanned_before_it_goes(world: World) -> None:
    await cohort(world)
    short = await plan(world)
    await held(world, short, present=1)
    assert (await world.trainer.command(f"followup plan {short} 4")).ok
    assert (await world.trainer.command(f"followup plan {short} 2w observer=<@M1>")).ok
    async with world.app.db.transaction() as tx:
        rows = (await tx.exec(select(Delivery.kind, Delivery.state).where(Delivery.kind != "feedback"))).all()
    followups = sorted((k, s) for k, s in rows if k in {"followup", "observation"})
    assert followups == [("followup", "pending"), ("followup", "skipped"), ("observation", "pending")]
    assert await world.core.privacy.erase_member("local", "L1", by="test") is not None
    async with world.app.db.transaction() as tx:
        observation = (await tx.exec(select(Delivery.state).where(Delivery.kind == "observation"))).one()
    assert observation == "skipped"  # nobody is asked about a learner who was erased
    refused = await world.learners[0].command(f"followup plan {short} 4")
    assert not refused.ok and "Only trainers" in refused.text
    bad = await world.trainer.command(f"followup plan {short} 0")
    assert not bad.ok and "number of weeks from 1 to 52" in bad.text
