"""Rolling-horizon planning for small cohorts: plan the coming rounds together, commit the first.

Forming each round on its own walks into dead ends: three rounds of 16 learners in fours can be free
of repeats and still leave no fourth round without one (a cyclic Latin square has no orthogonal mate).
So for small cohorts the engine plans the current round together with the rounds the cohort can still
have without repeats, and returns only the current one; the next call plans again from the real history.

The planner is Dotú & Van Hentenryck's tabu search for the Social Golfer Problem, run on the whole
plan at once: a move swaps two learners of different groups in the same planned round, one of them in
conflict; the cost of the schedule is the number of repeated meetings (past meetings included), so a
swap's delta only involves the two learners' group-mates. Meetings are kept as bitsets (learner ->
partners met at least once / at least twice), which prices a swap with a few popcounts. Levels, the
trainer's constraints and repeats of past meetings in the current round are priced as well, the
current round's far above the future's, so the future is never bought with the present.

The plan grows one round at a time, up to the rounds the cohort can still have without a repeat
((n - 1 - most partners met) / (size - 1)): each solved horizon gets a greedy extra round and the
search goes on from there, until a horizon is not solved within the budget; the current round of the
longest repeat-free plan is returned. Completing a fixed past is much harder than planning from
scratch (solutions get rare), so the budget goes to the horizon that decides, not to hopeless ones.
When levels are all equal, the rounds of a cyclic schedule (`designs`) that repeat no past meeting
are a second start, taken when the swap search stalls below their length.
"""

from __future__ import annotations

import random
from typing import Final

from bot.grouping.designs import constructed_schedule, design_schedule
from bot.grouping.objective import APART_WEIGHT, LEVELS, REPEAT_WEIGHT, TOGETHER_WEIGHT, Problem
from bot.grouping.search import EPS, greedy

MAX_LEARNERS: Final = 64
MAX_ROUNDS: Final = 24
MAX_CELLS: Final = 800  # learners x planned rounds, to keep each step cheap
# A repeat, a level miss or a broken constraint in the current round costs this many times more than
# the same in a planned round.
CURRENT_EMPHASIS: Final = 8.0
# Share of the remaining budget the swap search gets on a horizon a cyclic schedule also reaches.
HORIZON_SHARE: Final = 0.5
# A cyclic schedule's search step costs about this many planner steps; it gets at most 1/DESIGN_SHARE
# of the budget, and none below DESIGN_MIN_BUDGET (the default 0.2 s budget leaves it out).
DESIGN_WORK_COST: Final = 6
DESIGN_SHARE: Final = 2
DESIGN_MIN_BUDGET: Final = 1_000_000
# Tabu tenure of a learner's move back into a group: TENURE_LOW + random(0..n / TENURE_SPREAD).
TENURE_LOW: Final = 3
TENURE_SPREAD: Final = 3
# Steps without a new best before a restart from the best plan, kicked by random swaps whose number
# grows with each fruitless restart (rounds x groups / KICK_DIV per restart).
STALL_BASE: Final = 100
STALL_PER_LEARNER: Final = 4
KICK_DIV: Final = 4

FREEDOM_WEIGHT: Final = 0.02
# A repair (attendance broke the course plan's round) weighs freedom as much as a third of a fresh repeat:
# by then the plan no longer sees the future, and at mixed levels the learners at either end of the scale
# run out of partners within reach in a course's last sessions unless the early ones spend them well.
REPAIR_FREEDOM_WEIGHT: Final = 1.0
# The planner's priced swap is a few popcounts, about a third of the one-round search's cost.
WORK_SCALE: Final = 3


def add_freedom_costs(
    problem: Problem, partners: dict[int, set[int]], *, weight: float = FREEDOM_WEIGHT, spread: int | None = None
) -> None:
    """Make unmet pairs with few common unmet partners cheaper to group now.

    A pair that has not met can only meet later in a group of learners none of whom has met either
    of them; when few such learners remain, that chance is about to vanish, so the pair is used now
    (Triska & Musliu's "freedom" idea). The default weight keeps this a tie-breaker below levels and
    repeats. With `spread` (the level target's widest), only partners within that spread of both count,
    and pairs further apart are left alone: a group meeting the target cannot hold them anyway.
    """
    n = problem.n
    if n > MAX_LEARNERS or not partners:
        return
    empty: set[int] = set()
    levels = problem.levels
    if spread is not None:
        per_level = [0] * (max(levels) + 1)
        for level in levels:
            per_level[level] += 1
        # Learners within the spread of both levels, the pair itself included.
        reach = [
            [
                sum(c for m, c in enumerate(per_level) if abs(m - a) <= spread and abs(m - b) <= spread)
                for b in range(len(per_level))
            ]
            for a in range(len(per_level))
        ]
    for i in range(n):
        met_i = partners.get(i, empty)
        for k in range(i + 1, n):
            if k in met_i:
                continue
            gone = met_i | partners.get(k, empty)
            if spread is None:
                freedom = n - 2 - len(gone - {i, k})
            else:
                a, b = levels[i], levels[k]
                if abs(a - b) > spread:
                    continue
                near = sum(
                    1
                    for m in gone
                    if m != i and m != k and abs(levels[m] - a) <= spread and abs(levels[m] - b) <= spread
                )
                freedom = reach[a][b] - 2 - near
            cost = weight * freedom / n
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
    met: dict[tuple[int, int], int],
    rounds: int,
    rng: random.Random,
    budget: int,
) -> list[list[int]]:
    """The current round of the best plan found within `budget` priced swaps.

    `met` counts past meetings per pair. The plan starts with `rounds` rounds and loses its most
    conflicted planned round each time a horizon's share of the budget is spent without a plan free of
    repeats; it stops as soon as the plan costs nothing avoidable.
    """
    return _Planner(problem, met, rounds, rng).run(budget * WORK_SCALE)


class _Planner:
    """A plan of several rounds with the incremental tables that price a swap in O(1) popcounts."""

    def __init__(self, problem: Problem, met: dict[tuple[int, int], int], rounds: int, rng: random.Random) -> None:
        n = problem.n
        self.p = problem
        self.rng = rng
        self.n = n
        self.ngroups = len(problem.sizes)
        self.bit = [1 << i for i in range(n)]
        self.hist_count = [0] * (n * n)
        history = [0] * n
        for (i, j), c in met.items():
            self.hist_count[i * n + j] = self.hist_count[j * n + i] = c
            history[i] |= 1 << j
            history[j] |= 1 << i
        apart = [0] * n
        together = [0] * n
        for i in range(n):
            for k in problem.apart[i]:
                apart[i] |= 1 << k
            for k in problem.together[i]:
                together[i] |= 1 << k
        self.apart, self.together = apart, together
        self.levels_vary = len(set(problem.levels)) > 1
        # Pair terms other than repeats, per round: (weight, partner masks).
        common: list[tuple[float, list[int]]] = []
        if any(apart):
            common.append((APART_WEIGHT, apart))
        if any(together):
            common.append((-TOGETHER_WEIGHT, together))
        current = list(common)
        if any(history):
            current.append((CURRENT_EMPHASIS * REPEAT_WEIGHT, history))
        self.current_extras = current
        self.common_extras = common
        self.history = history
        self.rounds = rounds
        self.max_rounds = rounds
        # Live state, filled by load().
        self.count: list[int] = []
        self.once: list[int] = []
        self.twice: list[int] = []
        self.masks: list[list[int]] = []
        self.members: list[list[list[int]]] = []
        self.group_of: list[list[int]] = []
        self.level_counts: list[list[list[int]]] = []
        self.level_costs: list[list[float]] = []
        self.total = 0.0

    # --- state ---------------------------------------------------------------------------------------

    def level_weight(self, r: int) -> float:
        return CURRENT_EMPHASIS if r == 0 else 1.0

    def extras(self, r: int) -> list[tuple[float, list[int]]]:
        return self.current_extras if r == 0 else self.common_extras

    def next_round(self, plan: list[list[list[int]]]) -> list[list[int]]:
        """A greedy round after `plan`, avoiding the meetings past and planned."""
        p, n = self.p, self.n
        count = list(self.hist_count)
        for groups in plan:
            for g in groups:
                for x, i in enumerate(g):
                    for k in g[x + 1 :]:
                        count[i * n + k] += 1
                        count[k * n + i] += 1
        pair: list[dict[int, float]] = [{} for _ in range(n)]
        for i in range(n):
            row = pair[i]
            for k in range(n):
                c = count[i * n + k]
                if c:
                    row[k] = REPEAT_WEIGHT * c
            for w, masks in self.extras(len(plan)):
                m = masks[i]
                while m:
                    low = m & -m
                    k = low.bit_length() - 1
                    row[k] = row.get(k, 0.0) + w
                    m ^= low
        sub = Problem(p.ids, p.levels, p.sizes, p.level_cost, p.target, pair, p.together, p.apart)
        return greedy(sub, self.rng)

    def load(self, plan: list[list[list[int]]]) -> None:
        """Rebuild every table from a plan (the start, the best plan on a restart, a shorter plan)."""
        n, p = self.n, self.p
        self.rounds = len(plan)
        count = list(self.hist_count)
        self.members = [[list(g) for g in groups] for groups in plan]
        self.group_of = [[0] * n for _ in plan]
        self.masks = [[0] * self.ngroups for _ in plan]
        self.level_counts = [[[0] * LEVELS for _ in groups] for groups in plan]
        for r, groups in enumerate(self.members):
            for g, mem in enumerate(groups):
                for x, i in enumerate(mem):
                    self.group_of[r][i] = g
                    self.masks[r][g] |= 1 << i
                    self.level_counts[r][g][p.levels[i]] += 1
                    for k in mem[x + 1 :]:
                        count[i * n + k] += 1
                        count[k * n + i] += 1
        self.count = count
        self.once = [0] * n
        self.twice = [0] * n
        for i in range(n):
            for k in range(n):
                c = count[i * n + k]
                if c >= 1:
                    self.once[i] |= 1 << k
                if c >= 2:
                    self.twice[i] |= 1 << k
        self.level_costs = [[p.level_cost(tuple(c)) for c in rnd] for rnd in self.level_counts]
        self.total = self.cost()

    def cost(self) -> float:
        """The plan's cost from scratch, less what no plan can avoid (repeats within past meetings)."""
        n = self.n
        repeats = 0
        for i in range(n):
            for k in range(i + 1, n):
                repeats += max(0, self.count[i * n + k] - 1) - max(0, self.hist_count[i * n + k] - 1)
        total = REPEAT_WEIGHT * repeats
        for r, groups in enumerate(self.members):
            for mem in groups:
                for x, i in enumerate(mem):
                    for k in mem[x + 1 :]:
                        for w, masks in self.extras(r):
                            if masks[i] >> k & 1:
                                total += w
            if self.levels_vary:
                total += self.level_weight(r) * sum(self.level_costs[r])
        return total

    def snapshot(self) -> list[list[list[int]]]:
        return [[list(g) for g in groups] for groups in self.members]

    def penalised(self, r: int, i: int) -> bool:
        """Whether learner i pays for something in round r: a repeat, a level miss, a constraint."""
        g = self.group_of[r][i]
        mask = self.masks[r][g]
        if self.twice[i] & mask:
            return True
        if self.levels_vary and self.level_costs[r][g] > EPS:
            return True
        if r == 0 and self.history[i] & mask:
            return True
        if self.apart[i] & mask:
            return True
        return bool(self.together[i] & ~mask)

    def level_after(self, r: int, g: int, out: int, into: int) -> float:
        cnt = list(self.level_counts[r][g])
        cnt[out] -= 1
        cnt[into] += 1
        return self.p.level_cost(tuple(cnt))

    def delta(self, r: int, a: int, b: int) -> float:
        """Cost change of swapping a and b (in different groups) in round r; the search inlines it."""
        group_of, masks = self.group_of[r], self.masks[r]
        ga, gb = group_of[a], group_of[b]
        mask_a, mask_b = masks[ga] ^ self.bit[a], masks[gb] ^ self.bit[b]
        once, twice = self.once, self.twice
        repeats = (
            (once[b] & mask_a).bit_count()
            - (twice[a] & mask_a).bit_count()
            + (once[a] & mask_b).bit_count()
            - (twice[b] & mask_b).bit_count()
        )
        d = REPEAT_WEIGHT * repeats
        for w, m in self.extras(r):
            d += w * (
                (m[b] & mask_a).bit_count()
                - (m[a] & mask_a).bit_count()
                + (m[a] & mask_b).bit_count()
                - (m[b] & mask_b).bit_count()
            )
        la, lb = self.p.levels[a], self.p.levels[b]
        if self.levels_vary and la != lb:
            costs = self.level_costs[r]
            d += self.level_weight(r) * (
                self.level_after(r, ga, la, lb) - costs[ga] + self.level_after(r, gb, lb, la) - costs[gb]
            )
        return d

    def swap(self, r: int, a: int, b: int, d: float) -> None:
        n = self.n
        group_of, masks, rows = self.group_of[r], self.masks[r], self.members[r]
        ga, gb = group_of[a], group_of[b]
        count, once, twice, bit = self.count, self.once, self.twice, self.bit
        mem_a, mem_b = rows[ga], rows[gb]
        for x, y, mem in ((a, b, mem_a), (b, a, mem_b)):
            # x leaves this group, y joins it.
            for k in mem:
                if k == x:
                    continue
                c = count[x * n + k] - 1
                count[x * n + k] = count[k * n + x] = c
                if c == 0:
                    once[x] &= ~bit[k]
                    once[k] &= ~bit[x]
                elif c == 1:
                    twice[x] &= ~bit[k]
                    twice[k] &= ~bit[x]
                c = count[y * n + k] + 1
                count[y * n + k] = count[k * n + y] = c
                if c == 1:
                    once[y] |= bit[k]
                    once[k] |= bit[y]
                elif c == 2:
                    twice[y] |= bit[k]
                    twice[k] |= bit[y]
        la, lb = self.p.levels[a], self.p.levels[b]
        if la != lb:
            counts = self.level_counts[r]
            counts[ga][la] -= 1
            counts[ga][lb] += 1
            counts[gb][lb] -= 1
            counts[gb][la] += 1
            self.level_costs[r][ga] = self.p.level_cost(tuple(counts[ga]))
            self.level_costs[r][gb] = self.p.level_cost(tuple(counts[gb]))
        both = bit[a] | bit[b]
        masks[ga] ^= both
        masks[gb] ^= both
        mem_a[mem_a.index(a)] = b
        mem_b[mem_b.index(b)] = a
        group_of[a], group_of[b] = gb, ga
        self.total += d

    # --- search --------------------------------------------------------------------------------------

    def cyclic_rounds(self, budget: int) -> tuple[list[list[list[int]]], int]:
        """Rounds of the cohort's design (constructed or cyclic) that repeat no past meeting, and the work
        spent.

        Learners take the schedule's points in order of id, so the schedule does not depend on the
        order they are listed in. A schedule ignores levels and constraints: it is only offered when
        levels are all equal and no keep-apart pair would meet. A construction costs no search, so a
        start's small budget gets one too (a start without its course plan, on another replica).
        """
        p, n = self.p, self.n
        sizes = p.sizes
        if self.levels_vary or len(set(sizes)) != 1:
            return [], 0
        if budget < DESIGN_MIN_BUDGET:
            schedule, work = constructed_schedule(n, sizes[0], len(sizes)), 0
        else:
            schedule, work = design_schedule(n, sizes[0], len(sizes), budget // (DESIGN_WORK_COST * DESIGN_SHARE))
        if schedule is None:
            return [], work * DESIGN_WORK_COST
        order = sorted(range(n), key=lambda i: p.ids[i])
        count, apart = self.hist_count, self.apart
        rounds = []
        for rnd in schedule:
            groups = [[order[x] for x in g] for g in rnd]
            if not any(
                count[i * n + k] or apart[i] >> k & 1 for g in groups for x, i in enumerate(g) for k in g[x + 1 :]
            ):
                rounds.append(groups)
        return rounds[: self.max_rounds], work * DESIGN_WORK_COST

    def run(self, budget: int) -> list[list[int]]:
        """Grow the plan one round at a time while each horizon is solved within the budget.

        A cyclic schedule's rounds are the fallback when the swap search solves fewer rounds than
        they give, and the whole answer when they reach the horizon.
        """
        cyclic, spent = self.cyclic_rounds(budget)
        plan = [self.next_round([])]
        if len(cyclic) >= self.max_rounds:
            plan = cyclic
        solved: list[list[list[int]]] | None = None
        while True:
            self.load(plan)
            fallback = bool(cyclic) and len(cyclic) >= len(plan) - 1 and plan is not cyclic
            share = budget - spent if not fallback else int((budget - spent) * HORIZON_SHARE)
            used, ok, plan = self.tabu(share)
            spent += used
            if not ok:
                if fallback and len(cyclic) >= len(solved or []):
                    plan = cyclic  # a longer (or as long) repeat-free start elsewhere
                    cyclic = []
                    continue
                return (solved or plan)[0]
            solved = plan
            if len(plan) >= self.max_rounds or spent >= budget:
                return plan[0]
            plan = [*plan, self.next_round(plan)]

    def tabu(self, budget: int) -> tuple[int, bool, list[list[list[int]]]]:
        """Tabu search on the loaded plan until it has no repeat and no broken keep-apart, or `budget`
        priced swaps are spent; returns (work, whether it got there, that plan or the cheapest seen)."""
        best, best_total = self.snapshot(), self.total
        rng = self.rng
        n, ngroups = self.n, self.ngroups
        levels, bit = self.p.levels, self.bit
        levels_vary = self.levels_vary
        tabu = [0] * (self.rounds * n * ngroups)
        stall_limit = STALL_BASE + STALL_PER_LEARNER * n
        tenure_low, tenure_high = TENURE_LOW, TENURE_LOW + n // TENURE_SPREAD
        kicks = max(2, self.rounds * ngroups // KICK_DIV)
        evals = step = last_gain = kicks_made = 0
        inf = float("inf")
        while evals < budget:
            step += 1
            once, twice = self.once, self.twice
            sources: list[tuple[int, int]] = []
            hard = 0
            history, apart = self.history, self.apart
            own = [0] * (self.rounds * n)
            for r in range(self.rounds):
                group_of, masks = self.group_of[r], self.masks[r]
                extras = self.extras(r)
                costs = self.level_costs[r]
                rn = r * n
                for a in range(n):
                    ga = group_of[a]
                    mask_a = masks[ga] ^ bit[a]
                    rep = (twice[a] & mask_a).bit_count()
                    own[rn + a] = rep
                    if rep or apart[a] & mask_a or (r == 0 and history[a] & mask_a):
                        hard += 1
                    if (
                        rep
                        or (levels_vary and costs[ga] > EPS)
                        or any(m[a] & (mask_a if w > 0 else ~mask_a) for w, m in extras)
                    ):
                        sources.append((r, a))
            evals += self.rounds * n // 4  # the scan costs about as much as pricing that many swaps
            if not hard:
                return evals, True, self.snapshot()
            best_d = inf
            chosen_r = chosen_a = chosen_b = -1
            ties = 0
            aspiration = best_total - self.total - EPS
            for r, a in sources:
                group_of, masks, rows = self.group_of[r], self.masks[r], self.members[r]
                extras = self.extras(r)
                level_weight = self.level_weight(r)
                costs = self.level_costs[r]
                ga = group_of[a]
                mask_a = masks[ga] ^ bit[a]
                once_a = once[a]
                base = -own[r * n + a]
                own_r = own[r * n : r * n + n]
                extra_a = sum(w * (m[a] & mask_a).bit_count() for w, m in extras)
                la = levels[a]
                tabu_row = (r * n + a) * ngroups
                for gb in range(ngroups):
                    if gb == ga:
                        continue
                    mask_b = masks[gb]
                    a_into_b = base + (once_a & mask_b).bit_count()
                    for b in rows[gb]:
                        d = REPEAT_WEIGHT * (a_into_b - (once_a >> b & 1) - own_r[b] + (once[b] & mask_a).bit_count())
                        if extras:
                            for w, m in extras:
                                mb = m[b]
                                d += w * (
                                    (mb & mask_a).bit_count()
                                    + (m[a] & mask_b).bit_count()
                                    - (m[a] >> b & 1)
                                    - (mb & mask_b).bit_count()
                                )
                            d -= extra_a
                        if levels_vary:
                            lb = levels[b]
                            if la != lb:
                                d += level_weight * (
                                    self.level_after(r, ga, la, lb)
                                    - costs[ga]
                                    + self.level_after(r, gb, lb, la)
                                    - costs[gb]
                                )
                        if d > best_d + EPS:
                            continue
                        if d >= aspiration and (tabu[tabu_row + gb] > step or tabu[(r * n + b) * ngroups + ga] > step):
                            continue
                        if d < best_d - EPS:
                            best_d, ties = d, 1
                            chosen_r, chosen_a, chosen_b = r, a, b
                        else:
                            ties += 1
                            if rng.randrange(ties) == 0:
                                chosen_r, chosen_a, chosen_b = r, a, b
                evals += n
            if chosen_r < 0:
                continue  # every move is tabu: let tenures expire
            r, a, b = chosen_r, chosen_a, chosen_b
            ga, gb = self.group_of[r][a], self.group_of[r][b]
            self.swap(r, a, b, best_d)
            tabu[(r * n + a) * ngroups + ga] = step + rng.randint(tenure_low, tenure_high)
            tabu[(r * n + b) * ngroups + gb] = step + rng.randint(tenure_low, tenure_high)
            if self.total < best_total - EPS:
                best_total, last_gain, kicks_made = self.total, step, 0
                best = self.snapshot()
            elif step - last_gain > stall_limit:
                # Restart from the best plan, shaken by a few random swaps.
                self.load(best)
                kicks_made += 1
                for _ in range(min(kicks * kicks_made, self.rounds * n)):
                    r = rng.randrange(self.rounds)
                    x, y = rng.randrange(n), rng.randrange(n)
                    if self.group_of[r][x] != self.group_of[r][y]:
                        self.swap(r, x, y, self.delta(r, x, y))
                tabu = [0] * (self.rounds * n * ngroups)
                last_gain = step
                evals += self.rounds * n * 4
        return evals, False, best
