"""Exact tutoring pairing for small cohorts.

Tutoring is a maximum-weight matching: a pair's weight is the reward for a 1-2 level gap minus its
repeat and constraint costs, so we minimise the same cost the search uses. Up to EXACT_LIMIT learners a
dynamic programme over subsets finds the optimum (plus one trio when the count is odd); larger cohorts
go through the greedy and tabu search, which tests compare with this optimum.
"""

from __future__ import annotations

from typing import Final

from bot.grouping.objective import LEVELS, Problem

EXACT_LIMIT: Final = 12


def group_cost(problem: Problem, group: list[int]) -> float:
    """The search's cost of one group: its level cost plus the costs of its pairs."""
    counts = [0] * LEVELS
    for i in group:
        counts[problem.levels[i]] += 1
    cost = problem.level_cost(tuple(counts))
    for x, i in enumerate(group):
        for j in group[x + 1 :]:
            cost += problem.pair[i].get(j, 0.0)
    return cost


def exact_pairing(problem: Problem) -> list[list[int]]:
    """Optimal split into pairs (and one trio if the count is odd), by memoised subset recursion."""
    n = problem.n
    full = (1 << n) - 1
    memo: dict[tuple[int, bool], tuple[float, list[list[int]]]] = {}

    def best(mask: int, trio: bool) -> tuple[float, list[list[int]]]:
        if mask == full:
            return (0.0, []) if not trio else (float("inf"), [])
        key = (mask, trio)
        if key in memo:
            return memo[key]
        i = next(x for x in range(n) if not mask >> x & 1)
        rest = [x for x in range(i + 1, n) if not mask >> x & 1]
        answer: tuple[float, list[list[int]]] = (float("inf"), [])
        for y, j in enumerate(rest):
            options = [[i, j]]
            if trio:
                options += [[i, j, k] for k in rest[y + 1 :]]
            for group in options:
                bits = mask
                for x in group:
                    bits |= 1 << x
                sub_cost, sub_groups = best(bits, trio and len(group) == 2)
                cost = sub_cost + group_cost(problem, group)
                if cost < answer[0] - 1e-12:
                    answer = (cost, [group, *sub_groups])
        memo[key] = answer
        return answer

    return best(0, n % 2 == 1)[1]
