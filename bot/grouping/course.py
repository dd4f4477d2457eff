"""Whole-course planning: the rounds of a cohort's coming sessions, planned together before they happen.

Forming each round when it starts walks into dead ends (a round free of repeats can leave no next one),
and completing a fixed past is much harder than planning from scratch. When a cohort's sessions are
planned in advance with the same format and size, their rounds are planned at once, ahead of time and
with a budget no start could afford: a design (`designs`: constructed, else cyclic) when levels are all
equal, else the multi-round tabu planner of `lookahead` over every round. Each start then follows its round through
`form_groups(plan=...)`, which repairs it to who actually came and to the real history.

The plan depends only on its inputs and seed (work, not the clock, bounds each search), so any replica
that recomputes it gets the same rounds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from bot.grouping.designs import design_schedule
from bot.grouping.lookahead import MAX_LEARNERS, WORK_SCALE, _Planner
from bot.grouping.model import Constraints, Learner, Meeting
from bot.grouping.objective import DEFAULT_LEVEL_TARGET, build_problem, decayed_meetings
from bot.grouping.search import budget_for
from bot.grouping.sizes import plan_sizes

# A cyclic schedule's search step costs about this many of the planner's priced swaps.
DESIGN_STEPS_PER_SECOND: Final = 300_000
MAX_COURSE_ROUNDS: Final = 24

Plan = tuple[tuple[tuple[str, ...], ...], ...]


def plan_course(
    learners: Sequence[Learner],
    format: str,
    size: int,
    rounds: int,
    history: Sequence[Meeting] = (),
    constraints: Constraints = Constraints(),  # noqa: B008 - frozen, safe as a default
    seed: int = 0,
    now: datetime | None = None,
    time_budget: float = 5.0,
    level_target: tuple[int, int] = DEFAULT_LEVEL_TARGET,
) -> Plan:
    """Up to `rounds` rounds (each groups of learner ids) for the cohort's coming sessions, or () when a
    plan would not help: tutoring (pairs are matched exactly), one group, or a cohort too large for the
    planner (above MAX_LEARNERS the one-round search already avoids nearly every repeat)."""
    cohort = list({learner.id: learner for learner in learners}.values())
    cohort.sort(key=lambda learner: learner.id)
    n = len(cohort)
    rounds = min(rounds, MAX_COURSE_ROUNDS)
    sizes = plan_sizes(format, size, n)
    if rounds < 1 or format == "tutoring" or len(sizes) < 2 or n > MAX_LEARNERS:
        return ()
    index = {learner.id: i for i, learner in enumerate(cohort)}
    if constraints.together:
        history = [m for m in history if frozenset({m.a, m.b}) not in constraints.together]
    weights, met = decayed_meetings(history, index, now)
    problem = build_problem(cohort, format, sizes, weights, constraints, level_target)
    ids = problem.ids
    start: list[list[list[int]]] = []
    spent = 0.0
    if len(set(problem.levels)) == 1 and len(set(sizes)) == 1 and not met:
        start, spent = _design_rounds(problem.n, sizes[0], len(sizes), rounds, time_budget, problem.apart)
        if len(start) >= rounds:
            return tuple(tuple(tuple(ids[i] for i in sorted(g)) for g in rnd) for rnd in start[:rounds])
    # A shorter schedule is kept as it is, and the rounds after it are planned around it as a fixed past:
    # its rounds stay free of repeats, which a search over the whole plan would trade away.
    for rnd in start:
        for group in rnd:
            for x, i in enumerate(group):
                for k in group[x + 1 :]:
                    key = (i, k) if i < k else (k, i)
                    met[key] = met.get(key, 0) + 1
    planner = _Planner(problem, met, rounds - len(start), random.Random(seed))
    plan: list[list[list[int]]] = []
    while len(plan) < rounds - len(start):
        plan.append(planner.next_round(plan))
    planner.load(plan)
    _used, _ok, best = planner.tabu(budget_for(max(0.0, time_budget - spent)) * WORK_SCALE)
    return tuple(tuple(tuple(ids[i] for i in sorted(g)) for g in rnd) for rnd in [*start, *best])


def _design_rounds(
    n: int, size: int, groups: int, rounds: int, time_budget: float, apart: list[list[int]]
) -> tuple[list[list[list[int]]], float]:
    """The longest cyclic schedule found (the one reaching `rounds` first, then any), with the seconds of
    budget it used; points are learners in order of id, and a schedule where a keep-apart pair meets is
    not offered."""
    cap = int(time_budget * DESIGN_STEPS_PER_SECOND)
    found: list[list[list[int]]] = []
    spent = 0
    for wanted, share in ((rounds, cap // 3), (0, cap * 2 // 3)):
        schedule, work = design_schedule(n, size, groups, share, wanted)
        spent += work
        if schedule is not None and not any(k in g for rnd in schedule for g in rnd for i in g for k in apart[i]):
            found = schedule
            break
    return found, spent / DESIGN_STEPS_PER_SECOND
