"""The multi-round planner and the cyclic schedules behind the engine's lookahead."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import combinations

import pytest

from bot.grouping import Constraints, Learner, Meeting, form_groups
from bot.grouping.course import plan_course
from bot.grouping.designs import (
    affine_plane,
    constructed_schedule,
    cyclic_schedule,
    doubled_triples,
    rotational_bases,
    rotational_schedule,
)
from bot.grouping.lookahead import _Planner, plan_first_round
from bot.grouping.objective import Problem, build_problem, decayed_meetings
from bot.grouping.sizes import plan_sizes

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _problem(rng: random.Random, n: int, size: int, mixed: bool) -> tuple[Problem, dict[tuple[int, int], int]]:
    learners = [Learner(f"u{i:02d}", rng.randint(1, 5) if mixed else 3) for i in range(n)]
    ids = [lr.id for lr in learners]
    history = [
        Meeting(a, b, NOW - timedelta(weeks=rng.randint(0, 10))) for a, b in combinations(ids, 2) if rng.random() < 0.15
    ]
    weights, met = decayed_meetings(history, {x: i for i, x in enumerate(ids)}, NOW)
    pairs = list(combinations(ids, 2))
    apart = frozenset(frozenset(p) for p in rng.sample(pairs, 2))
    together = frozenset(frozenset(p) for p in rng.sample(pairs, 2)) - apart
    sizes = plan_sizes("review", size, n)
    return build_problem(learners, "review", sizes, weights, Constraints(apart, together), (1, 2)), met


@pytest.mark.parametrize(("n", "size", "mixed"), [(12, 3, True), (16, 4, False), (18, 4, True), (10, 2, True)])
def test_incremental_costs_match_a_full_recount(n: int, size: int, mixed: bool) -> None:
    # The search prices swaps from bitsets and adds the deltas up; a recount must agree with both.
    rng = random.Random(n * size)
    problem, met = _problem(rng, n, size, mixed)
    planner = _Planner(problem, met, 3, rng)
    plan: list[list[list[int]]] = []
    for _ in range(3):
        plan.append(planner.next_round(plan))
    planner.load(plan)
    for _ in range(200):
        r, a, b = rng.randrange(3), rng.randrange(n), rng.randrange(n)
        if planner.group_of[r][a] == planner.group_of[r][b]:
            continue
        before = planner.total
        d = planner.delta(r, a, b)
        planner.swap(r, a, b, d)
        assert planner.total == pytest.approx(before + d)
        assert planner.cost() == pytest.approx(planner.total, abs=1e-6)
    used, _ok, best = planner.tabu(20_000)  # the inlined pricing of the search
    assert used > 0
    assert planner.cost() == pytest.approx(planner.total, abs=1e-6)
    planner.load(best)
    assert sorted(i for groups in best for g in groups for i in g) == sorted(list(range(n)) * 3)


def test_planned_round_is_a_partition_of_the_asked_sizes() -> None:
    rng = random.Random(3)
    problem, met = _problem(rng, 14, 4, True)
    found = plan_first_round(problem, met, 3, rng, 50_000)
    assert sorted(len(g) for g in found) == sorted(problem.sizes)
    assert sorted(i for g in found for i in g) == list(range(14))


@pytest.mark.parametrize(
    ("groups", "size", "rounds"),
    [(10, 2, 19), (5, 3, 7), (4, 4, 5), (10, 3, 14), (6, 3, 7)],
)
def test_cyclic_schedules_repeat_no_pair(groups: int, size: int, rounds: int) -> None:
    n = groups * size
    schedule, work = cyclic_schedule(n, size, groups, 300_000)
    assert schedule is not None and work > 0
    assert len(schedule) == rounds
    _assert_repeat_free(schedule, n, size)


def test_cyclic_schedule_declines_uneven_groups() -> None:
    assert cyclic_schedule(10, 4, 3, 1000) == (None, 0)


def _zero_repeat_rounds(groups: int, size: int, wanted: int, budget: float) -> int:
    learners = [Learner(f"p{i:02d}", 3) for i in range(groups * size)]
    history: list[Meeting] = []
    for week in range(wanted):
        when = NOW + timedelta(days=week)
        grouping = form_groups(learners, "review", size, history, seed=week, now=when, time_budget=budget)
        if grouping.repeated_pairs:
            return week
        history += [Meeting(a, b, when) for g in grouping.groups for a, b in combinations(g.members, 2)]
    return wanted


def test_twenty_learners_in_pairs_meet_everyone_once() -> None:
    # A round-robin: 19 rounds of pairs, every pair exactly once, each round planned afresh.
    assert _zero_repeat_rounds(10, 2, 19, 0.5) == 19


def test_kirkman_fifteen_schoolgirls_walk_seven_days() -> None:
    assert _zero_repeat_rounds(5, 3, 7, 0.5) == 7


def test_the_plan_follows_a_past_it_did_not_make() -> None:
    # A history the planner did not produce (rows of a grid) still leaves three repeat-free rounds.
    learners = [Learner(f"p{i:02d}", 3) for i in range(16)]
    ids = [lr.id for lr in learners]
    history = [Meeting(a, b, NOW) for r in range(4) for a, b in combinations(ids[4 * r : 4 * r + 4], 2)]
    for week in range(1, 4):
        when = NOW + timedelta(days=week)
        grouping = form_groups(learners, "review", 4, history, seed=week, now=when, time_budget=0.5)
        assert grouping.repeated_pairs == 0, week
        history += [Meeting(a, b, when) for g in grouping.groups for a, b in combinations(g.members, 2)]


def _assert_repeat_free(schedule: list[list[list[int]]], n: int, size: int) -> None:
    seen: set[tuple[int, int]] = set()
    for rnd in schedule:
        assert sorted(p for g in rnd for p in g) == list(range(n))
        assert all(len(g) == size for g in rnd)
        for g in rnd:
            for pair in combinations(sorted(g), 2):
                assert pair not in seen, pair
                seen.add(pair)


@pytest.mark.parametrize(
    ("groups", "size", "rounds"),
    [(2, 2, 3), (3, 3, 4), (5, 5, 6), (7, 7, 8), (6, 3, 8), (10, 4, 13)],
)
def test_constructed_schedules_repeat_no_pair_and_reach_the_most_rounds(groups: int, size: int, rounds: int) -> None:
    n = groups * size
    schedule = constructed_schedule.__wrapped__(n, size, groups)
    assert schedule is not None
    assert len(schedule) == rounds == (n - 1) // (size - 1)
    _assert_repeat_free(schedule, n, size)
    assert constructed_schedule.__wrapped__(n, size, groups) == schedule  # no randomness


@pytest.mark.parametrize(("n", "size"), [(9, 3), (16, 4), (25, 5), (20, 2)])
def test_rotational_bases_give_repeat_free_schedules(n: int, size: int) -> None:
    bases = rotational_bases(n, size, 10_000)
    assert bases is not None
    schedule = rotational_schedule(n, size, bases)
    assert len(schedule) == (n - 1) // (size - 1)
    _assert_repeat_free(schedule, n, size)


def test_rotational_bases_report_shapes_without_one() -> None:
    # The exact cover is exhaustive: no 1-rotational design over Z_20 for 21 learners in threes.
    assert rotational_bases(21, 3, 100_000) is None
    assert rotational_bases(18, 3, 100_000) is None  # 17 is not a multiple of 2


def test_constructions_decline_shapes_they_do_not_cover() -> None:
    assert constructed_schedule(16, 4, 4) is None  # order 4 is not prime
    assert constructed_schedule(36, 3, 12) is None  # 18 is even: no Kirkman schedule to double
    assert constructed_schedule(10, 4, 3) is None


def test_doubling_pairs_each_collinear_pair_once_on_every_combination_of_sides() -> None:
    base = affine_plane(3)
    doubled = doubled_triples(base, 9)
    assert doubled is not None
    met = {frozenset(p) for rnd in doubled for g in rnd for p in combinations(g, 2)}
    # Every pair of different base points meets on all four combinations of sides; x and x' never do.
    assert met == {
        frozenset((x + 9 * s, y + 9 * t)) for x, y in combinations(range(9), 2) for s in (0, 1) for t in (0, 1)
    }


def test_a_course_of_eighteen_in_threes_is_planned_for_eight_rounds_without_a_repeat() -> None:
    # 6 groups of 3: the cyclic search cannot reach 8 rounds; the doubled affine plane does.
    learners = [Learner(f"p{i:02d}", 3) for i in range(18)]
    plan = plan_course(learners, "review", 3, 8, time_budget=0.5)
    assert len(plan) == 8
    ids = sorted(lr.id for lr in learners)
    index = {x: i for i, x in enumerate(ids)}
    _assert_repeat_free([[[index[x] for x in g] for g in rnd] for rnd in plan], 18, 3)


def test_starts_without_a_course_plan_follow_a_construction_at_the_live_budget() -> None:
    # A start on a replica without the course plan has 0.2 s: too little for the cyclic search, but a
    # construction costs none, so 40 learners in fours still get 13 sessions without a repeated pair.
    learners = [Learner(f"p{i:02d}", 3) for i in range(40)]
    history: list[Meeting] = []
    met: set[frozenset[str]] = set()
    for week in range(13):
        when = NOW + timedelta(weeks=week)
        grouping = form_groups(learners, "review", 4, history, seed=week, now=when)
        pairs = {frozenset(p) for g in grouping.groups for p in combinations(g.members, 2)}
        assert not pairs & met, f"a pair met again in session {week + 1}"
        met |= pairs
        history += [Meeting(*sorted(p), when) for p in pairs]
    assert len(met) == 40 * 39 // 2
