"""Quality and speed figures of the group-formation engine (a script that prints, not a test).

For each Social Golfer instance it schedules rounds one after the other, each formed with the previous
rounds as history, and counts the consecutive rounds with no repeated pair, next to the best known
number of rounds (all levels equal, "review" format so groups have exactly the asked size, one round a
day as in an intensive course, so recency weighs little and every past meeting counts). Then the
time of one round for 1,000 learners and the share of groups meeting the level-spread target.

The SGP rounds get a 5 s budget by default (the bot's default is 0.2 s): with less, the search for
the cyclic schedules of the larger cohorts in fours (`bot/grouping/designs.py`) may not finish, and
those instances fall back to fewer rounds.

    .venv/bin/python benchmarks/grouping.py [--budget 5.0] [--runs 5] [--only 8x4]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from itertools import combinations

from bot.grouping import Learner, Meeting, form_groups

# (groups, size, best known number of rounds without a repeated pair)
INSTANCES = [
    (8, 4, 10),
    (5, 3, 7),
    (7, 3, 10),
    (6, 3, 8),
    (10, 3, 14),
    (4, 4, 5),
    (7, 4, 9),
    (10, 4, 13),
    (5, 5, 6),
    (10, 2, 19),
]
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def zero_repeat_rounds(groups: int, size: int, best: int, budget: float, seed: int) -> int:
    learners = [Learner(f"p{i:02d}", 3) for i in range(groups * size)]
    history: list[Meeting] = []
    for week in range(best):
        when = START + timedelta(days=week)
        grouping = form_groups(learners, "review", size, history, seed=seed + week, now=when, time_budget=budget)
        if grouping.repeated_pairs:
            return week
        history += [Meeting(a, b, when) for g in grouping.groups for a, b in combinations(g.members, 2)]
    return best


def round_times(n: int, rounds: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    learners = [Learner(f"l{i:04d}", rng.randint(1, 5)) for i in range(n)]
    history: list[Meeting] = []
    times = []
    for week in range(rounds):
        when = START + timedelta(weeks=week)
        t0 = time.perf_counter()
        grouping = form_groups(learners, "groups", 4, history, seed=week, now=when)
        times.append(time.perf_counter() - t0)
        history += [Meeting(a, b, when) for g in grouping.groups for a, b in combinations(g.members, 2)]
    return times


def level_share(format: str, cohorts: int, seed: int) -> tuple[float, int]:
    rng = random.Random(seed)
    met = total = 0
    for c in range(cohorts):
        n = rng.randint(6, 120)
        learners = [Learner(f"l{i}", rng.randint(1, 5)) for i in range(n)]
        grouping = form_groups(learners, format, rng.choice([3, 4, 5]), seed=c)
        total += len(grouping.groups)
        met += round(grouping.level_target_met * len(grouping.groups))
    return met / total, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=5.0, help="time budget per SGP round (s)")
    parser.add_argument("--runs", type=int, default=5, help="1,000-learner rounds to time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="", help="run only these instances, e.g. 8x4,5x3")
    args = parser.parse_args()

    ratios = []
    for groups, size, best in INSTANCES:
        name = f"{groups}x{size}"
        if args.only and name not in args.only.split(","):
            continue
        t0 = time.perf_counter()
        rounds = zero_repeat_rounds(groups, size, best, args.budget, args.seed)
        ratios.append(rounds / best)
        print(
            f"{name} best={best} rounds={rounds} ratio={rounds / best:.2f}  ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    if ratios:
        print(f"mean ratio={statistics.mean(ratios):.3f} min ratio={min(ratios):.2f}")
    times = round_times(1000, args.runs, args.seed)
    print(
        f"1000 learners: median {statistics.median(times) * 1000:.0f} ms per round "
        f"(max {max(times) * 1000:.0f} ms, {args.runs} consecutive rounds, default budget)"
    )
    for fmt in ("groups", "tutoring"):
        share, count = level_share(fmt, 200, args.seed)
        print(f"level target met ({fmt}, random cohorts of 6-120, levels 1-5): {share:.1%} of {count} groups")


if __name__ == "__main__":
    main()
