"""`form_groups`: validate, build the problem, search, then describe the result for the trainer."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime

from bot.grouping.lookahead import REPAIR_FREEDOM_WEIGHT, add_freedom_costs, horizon, plan_first_round
from bot.grouping.matching import EXACT_LIMIT, exact_pairing
from bot.grouping.model import Constraints, Group, Grouping, Learner, Meeting, Notice
from bot.grouping.objective import (
    APART_WEIGHT,
    DEFAULT_LEVEL_TARGET,
    LEVELS,
    REPEAT_WEIGHT,
    TOGETHER_WEIGHT,
    build_problem,
    decayed_meetings,
    level_in_target,
    spread_of,
)
from bot.grouping.search import budget_for, fit_plan, search
from bot.grouping.sizes import plan_sizes, size_bounds


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _partners(met: dict[tuple[int, int], int]) -> dict[int, set[int]]:
    """Each learner's past partners (by index), from the pairs that met."""
    partners: dict[int, set[int]] = {}
    for i, j in met:
        partners.setdefault(i, set()).add(j)
        partners.setdefault(j, set()).add(i)
    return partners


def form_groups(
    learners: Sequence[Learner],
    format: str,
    size: int = 4,
    history: Sequence[Meeting] = (),
    constraints: Constraints = Constraints(),  # noqa: B008 - frozen, safe as a default
    seed: int = 0,
    now: datetime | None = None,
    time_budget: float = 0.2,
    level_target: tuple[int, int] = DEFAULT_LEVEL_TARGET,
    plan: Sequence[Sequence[str]] = (),
) -> Grouping:
    """Split `learners` into groups for one round of `format`.

    `plan` is groups of learner ids computed ahead (a draft, a course plan's round): the search starts
    from it, fitted to who is there (absentees leave, newcomers take the cheapest free seats), so a
    start only adjusts work done earlier instead of redoing it.

    Same inputs and seed give the same groups (the search is bounded by work, not by the clock).
    `history` lists past co-memberships; recent ones weigh more (half-life 8 weeks from `now`, or
    from the latest meeting when `now` is None). `level_target` is the (min, max) level spread wanted
    in a group, or the tutor-tutee gap in tutoring.
    """
    low, _high = size_bounds(format, size)
    if not 0 <= level_target[0] <= level_target[1]:
        raise ValueError(f"level target must be (min, max) with 0 <= min <= max, got {level_target}")
    cohort: list[Learner] = []
    left_out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for learner in learners:
        if learner.id in seen:
            left_out.append((learner.id, "listed more than once; placed once"))
            continue
        seen.add(learner.id)
        cohort.append(learner)

    warnings: list[Notice] = []
    n = len(cohort)
    if n == 0:
        return Grouping((), (Notice("No learners to group.", "no_learners"),), tuple(left_out), 0, 0.0, 0.0)
    sizes = plan_sizes(format, size, n)
    if n < low:
        warnings.append(
            Notice(
                f"Only {_plural(n, 'learner')}: formed a single group, smaller than the {low} a {format} group needs.",
                "too_few",
                count=n,
                minimum=low,
            )
        )

    index = {learner.id: i for i, learner in enumerate(cohort)}
    # A keep-together pair meets every round because the trainer asked for it: its past meetings are no
    # repeats to avoid (else their growing cost would split the pair after a few sessions).
    if constraints.together:
        history = [m for m in history if frozenset({m.a, m.b}) not in constraints.together]
    weights, met = decayed_meetings(history, index, now)
    problem = build_problem(cohort, format, sizes, weights, constraints, level_target)
    if len(sizes) == 1:
        found = [list(range(n))]
    elif format == "tutoring" and n <= EXACT_LIMIT:
        found = exact_pairing(problem)
    elif plan:
        rng = random.Random(seed)
        start = fit_plan(problem, plan, index)
        planned = {frozenset(index[x] for x in g if x in index) for g in plan}
        # A repair (attendance changed a planned group: someone missing from a full group, or new) no longer
        # follows a plan that saw the course ahead: weigh what each unmet pair still has in common.
        if format != "tutoring" and any(frozenset(g) not in planned for g in start):
            add_freedom_costs(problem, _partners(met), weight=REPAIR_FREEDOM_WEIGHT, spread=level_target[1])
        found = search(problem, rng, budget_for(time_budget), start)
    else:
        rng = random.Random(seed)
        budget = budget_for(time_budget)
        partners = _partners(met)
        rounds = horizon(problem, partners) if budget else 1
        if rounds > 1:
            # The polish only runs when the plan's current round is not already at the lower bound.
            start = plan_first_round(problem, met, rounds, rng, budget * 3 // 4)
            found = search(problem, rng, budget // 4, start)
        else:
            add_freedom_costs(problem, partners)
            found = search(problem, rng, budget)

    groups: list[Group] = []
    repeated = in_target = split_together = broken_apart = 0
    score = 0.0
    for raw in sorted((sorted(g) for g in found), key=lambda g: g[0]):
        counts = [0] * LEVELS
        for i in raw:
            counts[problem.levels[i]] += 1
        pairs_in = [(i, j) for x, i in enumerate(raw) for j in raw[x + 1 :]]
        repeats = sum(1 for key in pairs_in if key in met)
        repeated += repeats
        in_target += level_in_target(format, counts, level_target)
        score += problem.level_cost(tuple(counts))
        score += sum(REPEAT_WEIGHT * weights.get(key, 0.0) ** 2 for key in pairs_in)
        tutor = tutee = None
        if format == "tutoring" and n >= 2:
            top = max(raw, key=lambda i: (problem.levels[i], -i))
            raw = [top] + [i for i in raw if i != top]
            tutor = cohort[top].id
            tutee = cohort[raw[1]].id if len(raw) == 2 else None
        groups.append(
            Group(
                members=tuple(cohort[i].id for i in raw),
                tutor=tutor,
                tutee=tutee,
                level_spread=spread_of(counts),
                repeated_pairs=repeats,
            )
        )

    group_of = {member: g for g, group in enumerate(groups) for member in group.members}
    for pairs, wanted_together in ((constraints.apart, False), (constraints.together, True)):
        for a, b in sorted(tuple(sorted(p)) for p in pairs):
            if a not in group_of or b not in group_of:
                continue
            together = group_of[a] == group_of[b]
            if together and not wanted_together:
                broken_apart += 1
                warnings.append(
                    Notice(f"Could not keep {a} and {b} apart: no split of this cohort allows it.", "apart", a=a, b=b)
                )
            elif wanted_together and not together:
                split_together += 1
                warnings.append(Notice(f"Could not keep {a} and {b} together.", "together", a=a, b=b))
    score += APART_WEIGHT * broken_apart + TOGETHER_WEIGHT * split_together
    if repeated:
        warnings.append(
            Notice(f"{_plural(repeated, 'pair')} of learners have already worked together.", "repeats", count=repeated)
        )
    missed = len(groups) - in_target
    if missed and n >= 2:
        what = "tutor-tutee level gap" if format == "tutoring" else "level spread"
        warnings.append(
            Notice(
                f"{_plural(missed, 'group')} of {len(groups)} miss the target {what} of "
                f"{level_target[0]}-{level_target[1]}.",
                "level_gap" if format == "tutoring" else "level_spread",
                count=missed,
                total=len(groups),
                low=level_target[0],
                high=level_target[1],
            )
        )
    return Grouping(
        groups=tuple(groups),
        warnings=tuple(warnings),
        left_out=tuple(left_out),
        repeated_pairs=repeated,
        level_target_met=in_target / len(groups),
        score=round(score, 6),
    )
