"""The objective the search minimises, turned into index-based tables.

Everything a group costs is either a function of its level counts (the level mix) or a sum over its
pairs (repeats, keep-together bonus, keep-apart penalty). That split lets the search price a swap from
a few dictionary look-ups instead of re-scoring two groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from bot.grouping.model import MAX_LEVEL, MIN_LEVEL, Constraints, Learner, Meeting

LEVELS: Final = MAX_LEVEL - MIN_LEVEL + 1
DEFAULT_LEVEL_TARGET: Final = (1, 2)
HALF_LIFE: Final = timedelta(weeks=8)

# Weights, in order of precedence: a keep-apart breach dominates everything (the search accepts one
# only when no partition avoids it); splitting a keep-together pair comes next; then the level mix: a
# group one level step outside the target costs 1,000, more than any pile of repeats can (a pair that
# met every week of a course costs 3 x 8^2 = 192), so the target is met whenever a split allows it;
# repeats (3 for a fresh one, growing with the square of the decayed count, so they spread evenly) are
# then avoided among the splits that meet it. On small cohorts the last two compete: of 24 learners
# with levels 1-5, a level-1 learner has about 14 partners at levels 1-3 and meets about 19 in 8
# sessions, so some repeats are the price of the level mix.
LEVEL_WEIGHT: Final = 1000.0
REPEAT_WEIGHT: Final = 3.0
TOGETHER_WEIGHT: Final = 20_000.0
APART_WEIGHT: Final = 1_000_000.0

LevelCost = Callable[[tuple[int, ...]], float]


def band(distance: int, target: tuple[int, int]) -> float:
    """Quadratic penalty for a spread outside `target`: 0 inside, 1 one step out, 4 two steps out."""
    low, high = target
    if distance < low:
        return LEVEL_WEIGHT * (low - distance) ** 2
    if distance > high:
        return LEVEL_WEIGHT * (distance - high) ** 2
    return 0.0


def spread_of(counts: Sequence[int]) -> int:
    present = [lv for lv, c in enumerate(counts) if c]
    return present[-1] - present[0] if present else 0


def _levels_desc(counts: Sequence[int]) -> list[int]:
    return [lv for lv in range(len(counts) - 1, -1, -1) for _ in range(counts[lv])]


def make_level_cost(format: str, target: tuple[int, int]) -> LevelCost:
    """Level cost of a group from its counts per level, memoised (few distinct count vectors exist).

    Discussion formats price the spread of the whole group. Tutoring prices each tutee's gap to the
    tutor (the highest level), averaged so a trio weighs like a pair.
    """
    memo: dict[tuple[int, ...], float] = {}

    def discussion(counts: tuple[int, ...]) -> float:
        cost = memo.get(counts)
        if cost is None:
            cost = band(spread_of(counts), target) if sum(counts) > 1 else 0.0
            memo[counts] = cost
        return cost

    def tutoring(counts: tuple[int, ...]) -> float:
        cost = memo.get(counts)
        if cost is None:
            levels = _levels_desc(counts)
            gaps = [levels[0] - lv for lv in levels[1:]]
            cost = sum(band(g, target) for g in gaps) / len(gaps) if gaps else 0.0
            memo[counts] = cost
        return cost

    return tutoring if format == "tutoring" else discussion


def level_in_target(format: str, counts: Sequence[int], target: tuple[int, int]) -> bool:
    """Whether a group meets the level-mix target (all tutees within the band in tutoring)."""
    if sum(counts) < 2:
        return False
    low, high = target
    if format == "tutoring":
        levels = _levels_desc(counts)
        return all(low <= levels[0] - lv <= high for lv in levels[1:])
    return low <= spread_of(counts) <= high


@dataclass
class Problem:
    """A cohort in index form: learner i has level `levels[i]` (0-based) and pair costs `pair[i]`."""

    ids: list[str]
    levels: list[int]
    sizes: list[int]
    level_cost: LevelCost
    target: tuple[int, int]
    pair: list[dict[int, float]]
    together: list[list[int]] = field(default_factory=list)
    apart: list[list[int]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.ids)


def decayed_meetings(
    history: Sequence[Meeting], index: dict[str, int], now: datetime | None
) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], int]]:
    """Per pair of present learners: the sum of meeting weights (halving every HALF_LIFE) and the count.

    Without `now`, ages count from the latest meeting, so the result never depends on the clock.
    """
    relevant = [m for m in history if m.a in index and m.b in index and m.a != m.b]
    if not relevant:
        return {}, {}
    ref = now if now is not None else max(m.when for m in relevant)
    weights: dict[tuple[int, int], float] = {}
    counts: dict[tuple[int, int], int] = {}
    for m in relevant:
        i, j = index[m.a], index[m.b]
        key = (i, j) if i < j else (j, i)
        age = max(0.0, (ref - m.when) / HALF_LIFE)
        weights[key] = weights.get(key, 0.0) + 0.5**age
        counts[key] = counts.get(key, 0) + 1
    return weights, counts


def build_problem(
    learners: Sequence[Learner],
    format: str,
    sizes: list[int],
    weights: dict[tuple[int, int], float],
    constraints: Constraints,
    target: tuple[int, int],
) -> Problem:
    ids = [learner.id for learner in learners]
    index = {lid: i for i, lid in enumerate(ids)}
    pair: list[dict[int, float]] = [{} for _ in ids]

    def add(i: int, j: int, cost: float) -> None:
        pair[i][j] = pair[i].get(j, 0.0) + cost
        pair[j][i] = pair[j].get(i, 0.0) + cost

    for (i, j), w in sorted(weights.items()):
        add(i, j, REPEAT_WEIGHT * w * w)
    together: list[list[int]] = [[] for _ in ids]
    apart: list[list[int]] = [[] for _ in ids]
    for pairs, cost, partners in (
        (constraints.apart, APART_WEIGHT, apart),
        (constraints.together, -TOGETHER_WEIGHT, together),
    ):
        for a, b in sorted(tuple(sorted(p)) for p in pairs):
            if a in index and b in index:
                i, j = index[a], index[b]
                add(i, j, cost)
                partners[i].append(j)
                partners[j].append(i)
    return Problem(
        ids=ids,
        levels=[learner.level - MIN_LEVEL for learner in learners],
        sizes=sizes,
        level_cost=make_level_cost(format, target),
        target=target,
        pair=pair,
        together=together,
        apart=apart,
    )
