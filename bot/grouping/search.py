"""Greedy construction and tabu swap search over a fixed list of group sizes.

The greedy places the most constrained learners first (the spirit of Triska & Musliu's "freedom"
heuristic for the Social Golfer Problem): keep-apart, keep-together and many past meetings leave a
learner the fewest good groups, so they choose while the choice is still open. The tabu search then
swaps a learner of a penalised group with a learner of another group, as Dotú & Van Hentenryck do for
the SGP: best non-tabu swap each step, a move back into a group is tabu for a random tenure, a tabu
move is allowed when it beats the best solution, and a long stall restarts from the best solution with
a few random swaps.

The search stops on a count of priced swaps derived from the time budget, never on the clock, so one
seed always gives one answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Final

from bot.grouping.objective import APART_WEIGHT, LEVELS, TOGETHER_WEIGHT, Problem, band, spread_of

# Priced swaps per second of budget. Work, not time, bounds the search (so a seed fixes the answer);
# on the machine this was written on a budget took between 0.3x (plain search) and 1.3x (lookahead)
# its nominal time, so treat `time_budget` as an order of magnitude, not a deadline.
EVALS_PER_SECOND: Final = 1_000_000
# Up to this many learners, every swap of every penalised learner is priced at each step; above it a
# step looks at one penalised group and a sample of other groups, which keeps 1,000 learners fast.
FULL_NEIGHBOURHOOD: Final = 160
SAMPLED_GROUPS: Final = 24
EPS: Final = 1e-9


def lower_bound(problem: Problem) -> float:
    """A cost no partition beats: every together pair honoured, and all-equal groups if levels are."""
    together = sum(len(t) for t in problem.together) // 2
    bound = -TOGETHER_WEIGHT * together
    if len(set(problem.levels)) == 1:
        level = problem.levels[0]
        for size in problem.sizes:
            counts = [0] * LEVELS
            counts[level] = size
            bound += problem.level_cost(tuple(counts))
    return bound


def greedy(problem: Problem, rng: random.Random) -> list[list[int]]:
    """Most constrained learner first, each into the open group where it adds the least cost."""
    n, sizes, pair, levels = problem.n, problem.sizes, problem.pair, problem.levels
    low, high = problem.target
    members: list[list[int]] = [[] for _ in sizes]
    counts = [[0] * LEVELS for _ in sizes]
    room = list(sizes)
    open_groups = list(range(len(sizes)))
    group_of = [-1] * n

    def pressure(i: int) -> float:
        history = sum(c for c in pair[i].values() if 0 < c < APART_WEIGHT)
        return 1000.0 * len(problem.apart[i]) + 100.0 * len(problem.together[i]) + history

    tie = [rng.random() for _ in range(n)]
    order = sorted(range(n), key=lambda i: (-pressure(i), tie[i]))
    for i in order:
        if len(open_groups) <= SAMPLED_GROUPS:
            candidates: Iterable[int] = open_groups
        else:
            picked = {group_of[k] for k in pair[i] if group_of[k] >= 0 and room[group_of[k]] > 0}
            picked.update(open_groups[rng.randrange(len(open_groups))] for _ in range(SAMPLED_GROUPS))
            candidates = sorted(picked)
        best_key: tuple[float, int, float] | None = None
        best_group = -1
        pi, li = pair[i], levels[i]
        for g in candidates:
            cost = sum(pi.get(k, 0.0) for k in members[g]) if pi else 0.0
            cnt = counts[g]
            cnt[li] += 1
            if room[g] == 1:
                cost += problem.level_cost(tuple(cnt))
            else:
                spread = spread_of(cnt)
                if spread > high or (spread < low and room[g] == 2 and low - spread > 1):
                    cost += band(spread, problem.target)
            cnt[li] -= 1
            key = (cost, -room[g], rng.random())
            if best_key is None or key < best_key:
                best_key, best_group = key, g
        g = best_group
        members[g].append(i)
        counts[g][li] += 1
        group_of[i] = g
        room[g] -= 1
        if room[g] == 0:
            open_groups.remove(g)
    return members


def fit_plan(problem: Problem, plan: Sequence[Sequence[str]], index: dict[str, int]) -> list[list[int]]:
    """A partition of the problem's sizes as close to `plan` (groups of ids) as it gets.

    Planned groups keep their present members, the largest group taking the largest size; a group too
    big sheds the members who cost it most, surplus groups are dissolved, and the loose learners (those
    and the unplanned) go, keep-apart ones first, to the group with room where they add the least cost.
    """
    sizes = sorted(problem.sizes, reverse=True)
    seen: set[int] = set()
    groups: list[list[int]] = []
    for planned in plan:
        kept = [index[x] for x in planned if x in index and index[x] not in seen]
        seen.update(kept)
        if kept:
            groups.append(kept)
    groups.sort(key=len, reverse=True)
    loose = [i for i in range(problem.n) if i not in seen]
    while len(groups) > len(sizes):
        loose.extend(groups.pop())
    groups += [[] for _ in range(len(sizes) - len(groups))]
    pair = problem.pair

    def inner(i: int, group: list[int]) -> float:
        return sum(pair[i].get(k, 0.0) for k in group if k != i)

    for group, size in zip(groups, sizes, strict=True):
        while len(group) > size:
            worst = max(group, key=lambda i, g=group: (inner(i, g), i))  # type: ignore[misc]
            group.remove(worst)
            loose.append(worst)
    for i in sorted(loose, key=lambda i: (-len(problem.apart[i]), -len(problem.together[i]), i)):
        best_cost, best_group = float("inf"), -1
        for g, (group, size) in enumerate(zip(groups, sizes, strict=True)):
            if len(group) >= size:
                continue
            counts = [0] * LEVELS
            for k in group:
                counts[problem.levels[k]] += 1
            before = problem.level_cost(tuple(counts)) if group else 0.0
            counts[problem.levels[i]] += 1
            cost = inner(i, group) + problem.level_cost(tuple(counts)) - before
            if cost < best_cost - EPS:
                best_cost, best_group = cost, g
        groups[best_group].append(i)
    return groups


class _State:
    """Incremental bookkeeping of a partition: who is where, level counts, pair costs towards groups."""

    def __init__(self, problem: Problem, groups: list[list[int]]) -> None:
        self.p = problem
        self.members: list[list[int]] = []
        self.group_of = [0] * problem.n
        self.counts: list[list[int]] = []
        self.lcost: list[float] = []
        self.cache: list[dict[int, float]] = []
        self.conn: list[dict[int, float]] = []
        self.total = 0.0
        self.load(groups)

    def load(self, groups: list[list[int]]) -> None:
        p = self.p
        self.members = [list(m) for m in groups]
        self.counts = [[0] * LEVELS for _ in groups]
        for g, mem in enumerate(self.members):
            for i in mem:
                self.group_of[i] = g
                self.counts[g][p.levels[i]] += 1
        self.lcost = [p.level_cost(tuple(c)) for c in self.counts]
        self.cache = [{} for _ in groups]
        self.conn = [{} for _ in range(p.n)]
        inner = 0.0
        for i in range(p.n):
            ci = self.conn[i]
            for j, c in p.pair[i].items():
                g = self.group_of[j]
                ci[g] = ci.get(g, 0.0) + c
            inner += ci.get(self.group_of[i], 0.0)
        self.total = sum(self.lcost) + inner / 2

    def after(self, g: int, out: int, into: int) -> float:
        """Level cost of group g once a learner of level `out` leaves and one of level `into` joins."""
        key = out * LEVELS + into
        cost = self.cache[g].get(key)
        if cost is None:
            cnt = list(self.counts[g])
            cnt[out] -= 1
            cnt[into] += 1
            cost = self.p.level_cost(tuple(cnt))
            self.cache[g][key] = cost
        return cost

    def delta(self, i: int, j: int) -> float:
        a, b = self.group_of[i], self.group_of[j]
        ci, cj = self.conn[i], self.conn[j]
        d = ci.get(b, 0.0) - ci.get(a, 0.0) + cj.get(a, 0.0) - cj.get(b, 0.0) - 2 * self.p.pair[i].get(j, 0.0)
        li, lj = self.p.levels[i], self.p.levels[j]
        if li != lj:
            d += self.after(a, li, lj) - self.lcost[a] + self.after(b, lj, li) - self.lcost[b]
        return d

    def swap(self, i: int, j: int, d: float) -> None:
        p = self.p
        a, b = self.group_of[i], self.group_of[j]
        li, lj = p.levels[i], p.levels[j]
        if li != lj:
            self.lcost[a] = self.after(a, li, lj)
            self.lcost[b] = self.after(b, lj, li)
            self.counts[a][li] -= 1
            self.counts[a][lj] += 1
            self.counts[b][lj] -= 1
            self.counts[b][li] += 1
            self.cache[a].clear()
            self.cache[b].clear()
        ma, mb = self.members[a], self.members[b]
        ma[ma.index(i)] = j
        mb[mb.index(j)] = i
        self.group_of[i], self.group_of[j] = b, a
        conn = self.conn
        for k, c in p.pair[i].items():
            ck = conn[k]
            ck[a] -= c
            ck[b] = ck.get(b, 0.0) + c
        for k, c in p.pair[j].items():
            ck = conn[k]
            ck[b] -= c
            ck[a] = ck.get(a, 0.0) + c
        self.total += d

    def penalised(self, i: int) -> bool:
        """Whether learner i pays for something in its group: a level miss, a repeat, a split pair."""
        g = self.group_of[i]
        if self.lcost[g] > EPS or self.conn[i].get(g, 0.0) > EPS:
            return True
        return any(self.group_of[k] != g for k in self.p.together[i])


def budget_for(time_budget: float) -> int:
    """Priced swaps allowed for a time budget: the search counts work, so a seed fixes the answer."""
    return int(max(0.0, time_budget) * EVALS_PER_SECOND)


def search(problem: Problem, rng: random.Random, budget: int, start: list[list[int]] | None = None) -> list[list[int]]:
    """Best partition found within `budget` priced swaps, from `start` or from the greedy one."""
    groups = greedy(problem, rng) if start is None else start
    if budget <= 0 or len(groups) < 2:
        return groups
    return _tabu(problem, groups, rng, budget)


def _tabu(problem: Problem, groups: list[list[int]], rng: random.Random, budget: int) -> list[list[int]]:
    n, ngroups = problem.n, len(groups)
    state = _State(problem, groups)
    bound = lower_bound(problem)
    best_total = state.total
    best_groups = [list(m) for m in state.members]
    full = n <= FULL_NEIGHBOURHOOD
    tenure_low, tenure_high = (4, 4 + n // 4) if full else (2, 8)
    stall_limit = 40 + 4 * n if full else 10 * n
    tabu: dict[tuple[int, int], int] = {}
    members, group_of, conn = state.members, state.group_of, state.conn
    pair, levels = problem.pair, problem.levels
    evals = 0
    step = last_gain = 0
    while evals < budget and best_total > bound + EPS:
        step += 1
        if full:
            sources = [i for i in range(n) if state.penalised(i)]
        else:
            g0 = group_of[rng.randrange(n)]
            tries = 0
            while not any(state.penalised(i) for i in members[g0]) and tries < 64:
                g0 = group_of[rng.randrange(n)]
                tries += 1
            sources = [i for i in members[g0] if state.penalised(i)]
        if not sources:
            if full:
                break
            evals += 64
            continue
        best_d = float("inf")
        chosen: tuple[int, int] | None = None
        ties = 0
        aspiration = best_total - state.total - EPS
        for i in sources:
            a = group_of[i]
            li, ci, pi = levels[i], conn[i], pair[i]
            ci_a = ci.get(a, 0.0)
            lc_a = state.lcost[a]
            if full:
                targets: Iterable[int] = range(ngroups)
            else:
                picked = {group_of[k] for k in pi}
                picked.update(rng.randrange(ngroups) for _ in range(SAMPLED_GROUPS))
                targets = sorted(picked)
            for b in targets:
                if b == a:
                    continue
                base = ci.get(b, 0.0) - ci_a
                lc_b = state.lcost[b]
                for j in members[b]:
                    lj = levels[j]
                    cj = conn[j]
                    d = base + cj.get(a, 0.0) - cj.get(b, 0.0)
                    if pi:
                        d -= 2 * pi.get(j, 0.0)
                    if li != lj:
                        d += state.after(a, li, lj) - lc_a + state.after(b, lj, li) - lc_b
                    if d > best_d + EPS:
                        continue
                    if (tabu.get((i, b), 0) > step or tabu.get((j, a), 0) > step) and d >= aspiration:
                        continue
                    if d < best_d - EPS:
                        best_d, chosen, ties = d, (i, j), 1
                    else:
                        ties += 1
                        if rng.randrange(ties) == 0:
                            chosen = (i, j)
                evals += len(members[b])
        if chosen is None:
            continue
        i, j = chosen
        a, b = group_of[i], group_of[j]
        state.swap(i, j, best_d)
        tabu[(i, a)] = step + rng.randint(tenure_low, tenure_high)
        tabu[(j, b)] = step + rng.randint(tenure_low, tenure_high)
        if state.total < best_total - EPS:
            best_total = state.total
            best_groups = [list(m) for m in members]
            last_gain = step
        elif step - last_gain > stall_limit:
            state.load(best_groups)
            members, group_of, conn = state.members, state.group_of, state.conn
            for _ in range(max(2, ngroups // 2)):
                x, y = rng.randrange(n), rng.randrange(n)
                if group_of[x] != group_of[y]:
                    state.swap(x, y, state.delta(x, y))
            tabu.clear()
            last_gain = step
    return best_groups
