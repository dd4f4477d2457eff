"""Rolling-horizon planning for small cohorts: plan several rounds, commit the first.

Forming each round on its own walks into dead ends: three rounds of 16 learners in fours can be free
of repeats and still leave no fourth round without one (a cyclic Latin square has no orthogonal mate).
So for small cohorts the engine plans the current round together with the rounds the cohort can still
have without repeats, minimising sum over pairs of (weighted past meetings + planned meetings)^2 as
Dotú & Van Hentenryck do for the Social Golfer Problem, with the current round's own costs weighted
more so that its quality is never traded for the future. Only the current round is returned; the
next call plans again from the real history.
"""

from __future__ import annotations

import random
from typing import Final

from bot.grouping.objective import (
    APART_WEIGHT,
    LEVELS,
    REPEAT_WEIGHT,
    TOGETHER_WEIGHT,
    Problem,
)
from bot.grouping.search import EPS, greedy

MAX_LEARNERS: Final = 64
MAX_ROUNDS: Final = 20
MAX_CELLS: Final = 640  # learners x planned rounds, to keep each step cheap
CURRENT_EMPHASIS: Final = 4.0
# Penalised positions priced per step: a sample keeps steps cheap, so many more of them fit the budget.
SOURCES_PER_STEP: Final = 6


FREEDOM_WEIGHT: Final = 0.02


def add_freedom_costs(problem: Problem, partners: dict[int, set[int]]) -> None:
    """Make unmet pairs with few common unmet partners slightly cheaper to group now.

    A pair that has not met can only meet later in a group of learners none of whom has met either
    of them; when few such learners remain, that chance is about to vanish, so the pair is used now
    (Triska & Musliu's "freedom" idea). The weight keeps this a tie-breaker below levels and repeats.
    """
    n = problem.n
    if n > MAX_LEARNERS or not partners:
        return
    empty: set[int] = set()
    for i in range(n):
        met_i = partners.get(i, empty)
        for k in range(i + 1, n):
            if k in met_i:
                continue
            freedom = n - 2 - len(met_i | partners.get(k, empty) - {i, k})
            cost = FREEDOM_WEIGHT * freedom / n
            problem.pair[i][k] = problem.pair[i].get(k, 0.0) + cost
            problem.pair[k][i] = problem.pair[k].get(i, 0.0) + cost


def horizon(problem: Problem, partners: dict[int, set[int]]) -> int:
    """How many rounds to plan: those the most-met learner can still have without a repeat."""
    n, largest = problem.n, max(problem.sizes)
    if n > MAX_LEARNERS or largest < 2 or len(problem.sizes) < 2:
        return 1
    most_met = max((len(p) for p in partners.values()), default=0)
    remaining = (n - 1 - most_met) // (largest - 1)
    return max(1, min(remaining, MAX_ROUNDS, MAX_CELLS // n))


def plan_first_round(
    problem: Problem,
    weights: dict[tuple[int, int], float],
    rounds: int,
    rng: random.Random,
    budget: int,
) -> list[list[int]]:
    """The current round of the best plan of `rounds` rounds found within `budget` priced swaps."""
    n, sizes, levels = problem.n, problem.sizes, problem.levels
    r2 = 2 * REPEAT_WEIGHT
    hist = [[0.0] * n for _ in range(n)]
    for (i, j), w in weights.items():
        hist[i][j] = hist[j][i] = w
    cst = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for k in problem.apart[i]:
            cst[i][k] = APART_WEIGHT
        for k in problem.together[i]:
            cst[i][k] = -TOGETHER_WEIGHT
    emph = [[CURRENT_EMPHASIS * REPEAT_WEIGHT * w * w for w in row] for row in hist]
    met = [row[:] for row in hist]
    floor = _level_floor(problem)

    # Week-by-week greedy start: each round avoids the pairs already planned.
    plan: list[list[list[int]]] = []
    for r in range(rounds):
        pair = [
            {
                k: r2 * met[i][k] + cst[i][k] + (emph[i][k] if r == 0 else 0.0)
                for k in range(n)
                if k != i and (met[i][k] or cst[i][k])
            }
            for i in range(n)
        ]
        sub = Problem(
            problem.ids,
            levels,
            sizes,
            problem.level_cost,
            problem.target,
            pair,
            problem.together,
            problem.apart,
        )
        groups = greedy(sub, rng)
        for g in groups:
            for x, i in enumerate(g):
                for k in g[x + 1 :]:
                    met[i][k] += 1.0
                    met[k][i] += 1.0
        plan.append(groups)

    members: list[list[list[int]]] = []
    group_of = [[0] * n for _ in range(rounds)]
    counts: list[list[list[int]]] = []
    lcost: list[list[float]] = []

    # link[0][i][k] / link[1][i][k]: linear cost of i meeting k once more in the current / a later
    # round (the +2R per pair is added separately); kept in step with `met`.
    link: list[list[list[float]]] = [[], []]

    def bump(i: int, k: int, by: float) -> None:
        met[i][k] += by
        met[k][i] += by
        amount = r2 * by
        for table in link:
            table[i][k] += amount
            table[k][i] += amount

    def load(source: list[list[list[int]]]) -> None:
        """Rebuild every table from a plan (the start, or the best plan on a restart)."""
        members[:] = [[list(g) for g in groups] for groups in source]
        for i in range(n):
            met[i][:] = hist[i]
        counts[:] = [[[0] * LEVELS for _ in sizes] for _ in range(rounds)]
        lcost[:] = []
        for r in range(rounds):
            for g, mem in enumerate(members[r]):
                for x, i in enumerate(mem):
                    group_of[r][i] = g
                    counts[r][g][levels[i]] += 1
                    for k in mem[x + 1 :]:
                        met[i][k] += 1.0
                        met[k][i] += 1.0
            lcost.append([problem.level_cost(tuple(c)) for c in counts[r]])
        later = [[r2 * x + c for x, c in zip(met[i], cst[i], strict=True)] for i in range(n)]
        link[0] = [[x + e for x, e in zip(later[i], emph[i], strict=True)] for i in range(n)]
        link[1] = later

    def penalised(r: int, i: int) -> bool:
        g = group_of[r][i]
        if lcost[r][g] > floor[len(members[r][g])] + EPS:
            return True
        row, crow = met[i], cst[i]
        for k in members[r][g]:
            if k != i and (row[k] > 1.0 + EPS or crow[k] > 0):
                return True
        return any(group_of[r][k] != g for k in problem.together[i])

    def level_after(r: int, g: int, out: int, into: int) -> float:
        cnt = list(counts[r][g])
        cnt[out] -= 1
        cnt[into] += 1
        return problem.level_cost(tuple(cnt))

    def delta(r: int, i: int, j: int) -> float:
        a, b = group_of[r][i], group_of[r][j]
        mem_a = [k for k in members[r][a] if k != i]
        mem_b = [k for k in members[r][b] if k != j]
        li_, lj_ = link[min(r, 1)][i], link[min(r, 1)][j]
        d = sum(lj_[k] - li_[k] for k in mem_a)
        d += sum(li_[k] - lj_[k] for k in mem_b)
        d += r2 * (len(mem_a) + len(mem_b))
        li, lj = levels[i], levels[j]
        if li != lj:
            d += level_after(r, a, li, lj) - lcost[r][a] + level_after(r, b, lj, li) - lcost[r][b]
        return d

    def swap(r: int, i: int, j: int) -> None:
        a, b = group_of[r][i], group_of[r][j]
        ma, mb = members[r][a], members[r][b]
        for k in ma:
            if k != i:
                bump(i, k, -1.0)
                bump(j, k, 1.0)
        for k in mb:
            if k != j:
                bump(j, k, -1.0)
                bump(i, k, 1.0)
        li, lj = levels[i], levels[j]
        if li != lj:
            lcost[r][a] = level_after(r, a, li, lj)
            lcost[r][b] = level_after(r, b, lj, li)
            counts[r][a][li] -= 1
            counts[r][a][lj] += 1
            counts[r][b][lj] -= 1
            counts[r][b][li] += 1
        ma[ma.index(i)] = j
        mb[mb.index(j)] = i
        group_of[r][i], group_of[r][j] = b, a

    load(plan)
    total = best_total = 0.0
    best = plan
    tabu: dict[tuple[int, int, int], int] = {}
    evals = step = last_gain = 0
    stall_limit = 50 + 2 * n
    tenure_high = 4 + n // 3
    while evals < budget:
        step += 1
        sources = [(r, i) for r in range(rounds) for i in range(n) if penalised(r, i)]
        evals += rounds * n  # the scan costs about as much as pricing that many swaps
        if not sources:
            break
        if len(sources) > SOURCES_PER_STEP:
            sources = rng.sample(sources, SOURCES_PER_STEP)
        best_d = float("inf")
        chosen: tuple[int, int, int] | None = None
        ties = 0
        aspiration = best_total - total - EPS
        own_cache: dict[tuple[int, int], float] = {}
        for r, i in sources:
            a = group_of[r][i]
            rows = members[r]
            mem_a = [k for k in rows[a] if k != i]
            table = link[min(r, 1)]
            si = table[i]
            sum_a = sum(si[k] for k in mem_a)
            li, lc_a = levels[i], lcost[r][a]
            for b, mem_b in enumerate(rows):
                if b == a:
                    continue
                sum_b = sum(si[k] for k in mem_b)
                const = r2 * (len(mem_a) + len(mem_b) - 1)
                lc_b = lcost[r][b]
                for j in mem_b:
                    own = own_cache.get((r, j))
                    if own is None:
                        own = sum(table[j][k] for k in mem_b if k != j)
                        own_cache[(r, j)] = own
                    sj = table[j]
                    d = sum(sj[k] for k in mem_a) - sum_a + sum_b - si[j] - own + const
                    lj = levels[j]
                    if li != lj:
                        d += level_after(r, a, li, lj) - lc_a + level_after(r, b, lj, li) - lc_b
                    if d > best_d + EPS:
                        continue
                    if (tabu.get((r, i, b), 0) > step or tabu.get((r, j, a), 0) > step) and d >= aspiration:
                        continue
                    if d < best_d - EPS:
                        best_d, chosen, ties = d, (r, i, j), 1
                    else:
                        ties += 1
                        if rng.randrange(ties) == 0:
                            chosen = (r, i, j)
                evals += len(mem_b)
        if chosen is None:
            continue
        r, i, j = chosen
        a, b = group_of[r][i], group_of[r][j]
        swap(r, i, j)
        total += best_d
        tabu[(r, i, a)] = step + rng.randint(4, tenure_high)
        tabu[(r, j, b)] = step + rng.randint(4, tenure_high)
        if total < best_total - EPS:
            best_total, last_gain = total, step
            best = [[list(m) for m in rnd] for rnd in members]
        elif step - last_gain > stall_limit:
            # Restart from the best plan, shaken by a few random swaps.
            load(best)
            total = best_total
            for _ in range(max(2, n // 4)):
                r = rng.randrange(rounds)
                x, y = rng.randrange(n), rng.randrange(n)
                if group_of[r][x] != group_of[r][y]:
                    total += delta(r, x, y)
                    swap(r, x, y)
            tabu.clear()
            last_gain = step
    return best[0]


def _level_floor(problem: Problem) -> dict[int, float]:
    """Level cost no group of each size can avoid: that of an all-equal group when all levels are."""
    floor = {size: 0.0 for size in set(problem.sizes)}
    if len(set(problem.levels)) == 1:
        for size in floor:
            cnt = [0] * LEVELS
            cnt[problem.levels[0]] = size
            floor[size] = problem.level_cost(tuple(cnt))
    return floor
