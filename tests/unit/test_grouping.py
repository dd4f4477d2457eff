"""Group-formation engine: sizes, level mix, tutoring, repeats, constraints, determinism."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.grouping import Constraints, Grouping, Learner, Meeting, form_groups, size_bounds
from bot.grouping.lookahead import add_freedom_costs
from bot.grouping.matching import exact_pairing, group_cost
from bot.grouping.objective import build_problem, decayed_meetings
from bot.grouping.search import search
from bot.grouping.sizes import plan_sizes

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
FAST = 0.02


def cohort(levels: list[int]) -> list[Learner]:
    return [Learner(f"u{i:02d}", lv) for i, lv in enumerate(levels)]


def sizes_of(grouping: Grouping) -> list[int]:
    return sorted((len(g.members) for g in grouping.groups), reverse=True)


def meetings_of(grouping: Grouping, when: datetime) -> list[Meeting]:
    return [Meeting(a, b, when) for g in grouping.groups for a, b in combinations(g.members, 2)]


# --- sizes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format", "size", "bounds"),
    [("groups", 4, (3, 6)), ("sharing", 3, (3, 5)), ("groups", 2, (2, 3)), ("tutoring", 5, (2, 3))],
)
def test_size_bounds(format: str, size: int, bounds: tuple[int, int]) -> None:
    assert size_bounds(format, size) == bounds


@pytest.mark.parametrize(("format", "size"), [("debate", 4), ("groups", 1), ("groups", 7), ("review", 0)])
def test_bad_requests_raise(format: str, size: int) -> None:
    with pytest.raises(ValueError, match=r"format|size"):
        form_groups(cohort([3, 3, 3]), format, size)


def test_level_outside_scale_is_rejected() -> None:
    with pytest.raises(ValueError, match="level"):
        Learner("x", 6)


@pytest.mark.parametrize(("n", "expected"), [(5, [5]), (7, [4, 3]), (13, [5, 4, 4]), (6, [3, 3]), (9, [5, 4])])
def test_groups_sizes_by_hand(n: int, expected: list[int]) -> None:
    grouping = form_groups(cohort([3] * n), "groups", 4, time_budget=FAST)
    assert sizes_of(grouping) == expected


def test_tutoring_makes_pairs_and_one_trio() -> None:
    assert sizes_of(form_groups(cohort([1, 2, 3, 4, 5] * 2 + [3, 3, 2]), "tutoring")) == [3] + [2] * 5
    assert sizes_of(form_groups(cohort([2, 3] * 3), "tutoring")) == [2, 2, 2]


def test_review_keeps_the_asked_size() -> None:
    assert sizes_of(form_groups(cohort([3] * 12), "review", 3, time_budget=FAST)) == [3, 3, 3, 3]
    assert sizes_of(form_groups(cohort([3] * 10), "review", 4, time_budget=FAST)) == [4, 3, 3]


def test_no_learner_gives_no_group_and_a_warning() -> None:
    grouping = form_groups([], "groups")
    assert grouping.groups == ()
    assert grouping.warnings


def test_too_few_learners_give_one_group_and_a_warning() -> None:
    grouping = form_groups(cohort([2, 4]), "groups", 4)
    assert sizes_of(grouping) == [2]
    assert any("single group" in w for w in grouping.warnings)


def test_duplicate_learner_is_reported_not_dropped_silently() -> None:
    learners = [*cohort([3, 4, 2, 3]), Learner("u01", 4)]
    grouping = form_groups(learners, "groups", 4)
    assert grouping.left_out == (("u01", "listed more than once; placed once"),)
    assert sorted(m for g in grouping.groups for m in g.members) == ["u00", "u01", "u02", "u03"]


# --- level mix ---------------------------------------------------------------------------------------


def test_level_mix_reaches_the_target_band() -> None:
    rng = random.Random(7)
    grouping = form_groups(cohort([rng.randint(1, 5) for _ in range(40)]), "groups", 4, time_budget=FAST)
    assert grouping.level_target_met == 1.0
    assert all(1 <= g.level_spread <= 2 for g in grouping.groups)


def test_all_same_level_is_reported() -> None:
    grouping = form_groups(cohort([3] * 8), "groups", 4, time_budget=FAST)
    assert [g.level_spread for g in grouping.groups] == [0, 0]
    assert grouping.level_target_met == 0.0
    assert any("level spread" in w for w in grouping.warnings)


def test_only_ones_and_fives_are_not_mixed() -> None:
    # A 1 with a 5 (spread 4) costs more than an all-equal group: the engine keeps them apart.
    learners = cohort([1, 5] * 4)
    for format in ("groups", "tutoring"):
        grouping = form_groups(learners, format, 4, time_budget=FAST)
        assert all(g.level_spread == 0 for g in grouping.groups), format


def test_tutor_is_the_higher_level_and_gap_is_one_or_two() -> None:
    learners = cohort([1, 2, 3, 3, 4, 5, 5, 2])
    grouping = form_groups(learners, "tutoring")
    level = {lr.id: lr.level for lr in learners}
    for g in grouping.groups:
        assert g.tutor == g.members[0] and g.tutee == g.members[1]
        assert 1 <= level[g.tutor] - level[g.tutee] <= 2
    assert grouping.level_target_met == 1.0


# --- tutoring matching vs brute force ---------------------------------------------------------------


def _brute_force(problem_n: int, cost: object) -> float:
    assert callable(cost)

    def best(rest: tuple[int, ...], trio: bool) -> float:
        if not rest:
            return 0.0 if not trio else float("inf")
        i, others = rest[0], rest[1:]
        found = float("inf")
        for x, j in enumerate(others):
            left = others[:x] + others[x + 1 :]
            found = min(found, cost([i, j]) + best(left, trio))
            if trio:
                for y, k in enumerate(left):
                    found = min(found, cost([i, j, k]) + best(left[:y] + left[y + 1 :], False))
        return found

    return best(tuple(range(problem_n)), problem_n % 2 == 1)


def _random_tutoring_problem(rng: random.Random, n: int):  # type: ignore[no-untyped-def]
    learners = cohort([rng.randint(1, 5) for _ in range(n)])
    ids = [lr.id for lr in learners]
    history = [
        Meeting(a, b, NOW - timedelta(weeks=rng.randint(0, 20))) for a, b in combinations(ids, 2) if rng.random() < 0.3
    ]
    weights, _ = decayed_meetings(history, {x: i for i, x in enumerate(ids)}, NOW)
    apart = frozenset(frozenset(p) for p in combinations(ids, 2) if rng.random() < 0.05)
    together = frozenset(frozenset(p) for p in combinations(ids, 2) if rng.random() < 0.05)
    return build_problem(
        learners, "tutoring", plan_sizes("tutoring", 2, n), weights, Constraints(apart, together), (1, 2)
    )


@pytest.mark.parametrize("n", [4, 5, 6, 7, 8, 9])
def test_exact_pairing_matches_brute_force(n: int) -> None:
    rng = random.Random(n)
    for _ in range(5):
        problem = _random_tutoring_problem(rng, n)
        found = exact_pairing(problem)
        assert sorted(i for g in found for i in g) == list(range(n))
        total = sum(group_cost(problem, g) for g in found)
        assert total == pytest.approx(_brute_force(n, lambda g, p=problem: group_cost(p, g)))


@pytest.mark.parametrize("n", [6, 8, 9, 10])
def test_local_search_pairing_finds_the_optimum(n: int) -> None:
    rng = random.Random(100 + n)
    for trial in range(4):
        problem = _random_tutoring_problem(rng, n)
        found = search(problem, random.Random(trial), 30_000)
        total = sum(group_cost(problem, g) for g in found)
        assert total == pytest.approx(_brute_force(n, lambda g, p=problem: group_cost(p, g)))


# --- repeats, recency, constraints ------------------------------------------------------------------


def test_second_round_avoids_every_repeat() -> None:
    # 16 learners in fours: a second round can take each group's members from four different groups.
    learners = cohort([2, 3, 4, 3] * 4)
    first = form_groups(learners, "groups", 4, now=NOW, time_budget=FAST)
    second = form_groups(learners, "groups", 4, meetings_of(first, NOW), now=NOW + timedelta(days=7))
    assert second.repeated_pairs == 0
    assert all(g.repeated_pairs == 0 for g in second.groups)
    assert second.level_target_met == 1.0


def test_search_matches_brute_force_when_levels_and_repeats_compete() -> None:
    # With these levels no second round is both repeat-free and level-perfect: the engine must find
    # the cheapest trade-off, checked against all 5,775 splits of 12 learners into fours.
    learners = cohort([1, 2, 3, 4, 5, 2, 3, 4, 3, 2, 4, 3])
    first = form_groups(learners, "groups", 4, now=NOW, time_budget=FAST)
    later = NOW + timedelta(days=7)
    history = meetings_of(first, NOW)
    second = form_groups(learners, "groups", 4, history, now=later)
    weights, _ = decayed_meetings(history, {lr.id: i for i, lr in enumerate(learners)}, later)
    problem = build_problem(learners, "groups", [4, 4, 4], weights, Constraints(), (1, 2))
    optimum = float("inf")
    everyone = list(range(12))
    for g1 in combinations(everyone[1:], 3):
        first_group = [0, *g1]
        rest = [x for x in everyone if x not in first_group]
        for g2 in combinations(rest[1:], 3):
            second_group = [rest[0], *g2]
            third_group = [x for x in rest if x not in second_group]
            optimum = min(optimum, sum(group_cost(problem, g) for g in (first_group, second_group, third_group)))
    assert second.score == pytest.approx(optimum, abs=1e-5)


def test_recent_meetings_weigh_more_than_old_ones() -> None:
    learners = cohort([3, 3, 3, 3])
    a, b, c, d = (lr.id for lr in learners)
    old, recent = NOW - timedelta(weeks=52), NOW - timedelta(weeks=1)
    history = [Meeting(a, b, old), Meeting(c, d, old)]
    history += [Meeting(a, c, recent), Meeting(b, d, recent), Meeting(a, d, recent), Meeting(b, c, recent)]
    grouping = form_groups(learners, "tutoring", history=history, now=NOW)
    assert sorted(sorted(g.members) for g in grouping.groups) == [[a, b], [c, d]]
    assert grouping.repeated_pairs == 2
    assert any("already worked together" in w for w in grouping.warnings)


def test_keep_together_is_honoured() -> None:
    learners = cohort([1, 5, 3, 3, 2, 4, 3, 3])
    pair = frozenset({"u00", "u01"})
    grouping = form_groups(learners, "groups", 4, constraints=Constraints(together=frozenset({pair})))
    assert any(pair <= set(g.members) for g in grouping.groups)


def test_keep_together_survives_a_history_of_meeting_every_round() -> None:
    """The pair the trainer keeps together meets each round by request: that is no repeat to avoid."""
    learners = cohort([1, 5, 3, 3, 2, 4, 3, 3, 1, 5, 2, 4])
    pair = frozenset({"u00", "u07"})
    constraints = Constraints(together=frozenset({pair}))
    history: list[Meeting] = []
    for week in range(6):
        when = NOW - timedelta(days=6 - week)
        grouping = form_groups(learners, "groups", 4, history, constraints, seed=week, now=when)
        assert any(pair <= set(g.members) for g in grouping.groups), week
        assert not any(w.startswith("Could not keep") for w in grouping.warnings)
        history += meetings_of(grouping, when)


def test_impossible_keep_apart_is_warned() -> None:
    ids = ["u00", "u01", "u02"]
    apart = frozenset(frozenset(p) for p in combinations(ids, 2))
    grouping = form_groups(cohort([3, 3, 3]), "groups", constraints=Constraints(apart=apart))
    assert sum("apart" in w for w in grouping.warnings) == 3


def test_rolling_plan_reaches_four_rounds_of_sixteen_in_fours() -> None:
    # Myopic rounds often dead-end after three (a cyclic Latin square has no orthogonal mate).
    learners = cohort([3] * 16)
    history: list[Meeting] = []
    for week in range(4):
        when = NOW + timedelta(days=week)
        grouping = form_groups(learners, "review", 4, history, seed=week, now=when, time_budget=0.5)
        assert grouping.repeated_pairs == 0, week
        history += meetings_of(grouping, when)


# --- properties over random cohorts -----------------------------------------------------------------


@st.composite
def requests(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(0, 30))
    levels = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    learners = cohort(levels)
    ids = [lr.id for lr in learners]
    order = draw(st.permutations(ids)) if ids else []
    apart_count = draw(st.integers(0, len(ids) // 4))
    apart = frozenset(frozenset(order[2 * k : 2 * k + 2]) for k in range(apart_count))
    pairs = list(combinations(ids, 2))
    met = draw(st.lists(st.sampled_from(pairs), max_size=20)) if pairs else []
    history = [Meeting(a, b, NOW - timedelta(days=3 * k)) for k, (a, b) in enumerate(met)]
    return {
        "learners": learners,
        "format": draw(st.sampled_from(["groups", "tutoring", "review", "sharing"])),
        "size": draw(st.integers(2, 6)),
        "history": history,
        "constraints": Constraints(apart=apart),
        "seed": draw(st.integers(0, 1000)),
        "now": NOW,
        "time_budget": FAST,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_properties_over_random_cohorts(request: dict[str, object]) -> None:
    grouping = form_groups(**request)  # type: ignore[arg-type]
    learners: list[Learner] = request["learners"]  # type: ignore[assignment]
    format: str = request["format"]  # type: ignore[assignment]
    low, high = size_bounds(format, request["size"])  # type: ignore[arg-type]
    placed = Counter(m for g in grouping.groups for m in g.members)
    assert placed == Counter(lr.id for lr in learners), "every learner in exactly one group"
    if len(learners) >= low:
        assert all(low <= len(g.members) <= high for g in grouping.groups)
    if len(grouping.groups) >= 2:
        constraints: Constraints = request["constraints"]  # type: ignore[assignment]
        for g in grouping.groups:
            assert not any(p <= set(g.members) for p in constraints.apart)
    level = {lr.id: lr.level for lr in learners}
    for g in grouping.groups:
        levels = [level[m] for m in g.members]
        assert g.level_spread == max(levels) - min(levels)
        if format == "tutoring" and g.tutor is not None:
            assert all(level[g.tutor] >= lv for lv in levels)
    history: list[Meeting] = request["history"]  # type: ignore[assignment]
    met = {frozenset((m.a, m.b)) for m in history}
    assert grouping.repeated_pairs == sum(
        1 for g in grouping.groups for p in combinations(g.members, 2) if frozenset(p) in met
    )
    assert form_groups(**request) == grouping, "deterministic for a seed"  # type: ignore[arg-type]


def test_freedom_within_the_level_spread_counts_only_partners_within_reach_of_both() -> None:
    """Levels 1, 1, 3, 3, 5, 5 with a spread of 2: a pair of level-1 learners can still meet later with the two
    level-3 learners only, one fewer once one of them met the first; levels 1 and 5 never share a group."""
    learners = [Learner(f"p{i}", level) for i, level in enumerate([1, 1, 3, 3, 5, 5])]
    problem = build_problem(learners, "groups", [3, 3], {}, Constraints(), (1, 2))
    add_freedom_costs(problem, {0: {2}, 2: {0}}, weight=6.0, spread=2)
    assert problem.pair[0][1] == pytest.approx(6.0 * 1 / 6)  # p2 met p0: only p3 is left for them both
    assert problem.pair[2][4] == pytest.approx(6.0 * 2 / 6)  # levels 3 and 5: p3 and p5 within reach of both
    assert problem.pair[0].get(2, 0.0) == 0.0  # met already: no freedom to keep
    assert 4 not in problem.pair[0] and 5 not in problem.pair[1]  # too far apart for any group in the target
