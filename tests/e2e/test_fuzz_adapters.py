"""Generated input through both real adapters: whatever a person types, every request gets a clear, non-empty
answer in time, and nothing escapes to the platform (the core's own fuzzing is in tests/integration)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.test_discord_app import DiscordWorld
from tests.e2e.test_discord_app import world as discord_world  # noqa: F401  (the fixture)
from tests.e2e.test_slack_app import SlackWorld
from tests.e2e.test_slack_app import world as slack_world  # noqa: F401  (the fixture)

NASTY = ["\x00", "\n", "²", "³", "٣", '"', "“", "”", "=", "<@", ">", "<#", "|", "\u202e", "🙂", "9" * 40, " "]
WORDS = [
    "cohort", "create", "add", "show", "apart", "trainers", "session", "plan", "start", "end", "cancel", "group",
    "move", "swap", "quiz", "report", "checkin", "prep-done", "absent", "raise", "mydata", "help", "c1", "s1",
    "size=²", "format=review", "prep_before=99999999999999999999w", "9999-12-28", "0001-01-01", "25:61", "1h",
    "<@U0>=³", "retention=6w", "2026-03-28", "02:30", "x" * 300,
]  # fmt: skip
TOKEN = st.one_of(st.sampled_from(WORDS), st.sampled_from(NASTY), st.text(max_size=12))
TEXT = st.lists(TOKEN, max_size=9).map(" ".join)
RELAXED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@RELAXED
@given(text=TEXT, as_trainer=st.booleans())
async def test_slack_answers_every_generated_command(slack_world: SlackWorld, text: str, as_trainer: bool) -> None:  # noqa: F811
    user = slack_world.trainer if as_trainer else slack_world.learners[0]
    ack, form = await slack_world.command(user, text)  # a 200 within the ack budget, checked by `command`
    assert slack_world.final_text(ack, form).strip(), (text, ack)


OPTION = st.one_of(st.sampled_from(WORDS + NASTY), st.text(max_size=40))


@RELAXED
@given(title=OPTION, day=OPTION, time=OPTION, duration=OPTION, reason=OPTION, others=OPTION)
async def test_discord_answers_every_generated_option(
    discord_world: DiscordWorld,  # noqa: F811
    title: str,
    day: str,
    time: str,
    duration: str,
    reason: str,
    others: str,
) -> None:
    w = discord_world
    replies = [
        await w.command(w.trainer, ["cohort", "create"], cohort="c1"),  # created once, "already exists" after
        await w.command(
            w.trainer, ["session", "plan"], cohort="c1", title=title, day=day, time=time, duration=duration
        ),
        await w.command(w.trainer, ["cohort", "add"], cohort="c1", member=w.learners[0], others=others),
        await w.command(w.learners[0], ["absent"], session=day or "s1", reason=reason),
        await w.command(w.learners[1], ["cohort", "create"], cohort=title or "x"),
    ]
    assert all(r.strip() for r in replies), replies
