"""Cyclic schedules: many repeat-free rounds from one base round, as a seed for the planner.

A schedule invariant under a cyclic shift is found by searching its base round only (the approach of
1-rotational resolvable designs): label learners (x, j) with x in Z_m, plus a fixed point "inf" when
n - 1 is a multiple of size - 1; round t shifts every x by t. A pair in the base round stands for the
whole orbit of pairs it generates, so the m rounds repeat no pair exactly when no two base pairs share
an orbit (the same row pair and difference). That is a search over one round, cheap even in Python,
and it yields the round-robin for pairs, Kirkman-like schedules for trios and affine-plane-like ones
for fours, which the swap search over whole plans finds only slowly.

The base round depends only on the cohort's size and group size (its random source is seeded from
them), so every call rebuilds the same schedule; the planner uses the rounds of it that repeat no past
meeting, so a course that follows it keeps following it.
"""

from __future__ import annotations

import functools
import random
from typing import Final

STALL: Final = 1000
TENURE: Final = 6


@functools.lru_cache(maxsize=32)
def cyclic_schedule(n: int, size: int, groups: int, work_cap: int) -> tuple[list[list[list[int]]] | None, int]:
    """Rounds of point indices 0..n-1 (each a list of groups) repeating no pair, or None if not found
    within `work_cap` priced swaps; and the work spent. A pure function, so memoising it changes no
    answer, only the time (callers charge the returned work either way).

    Tries a fixed point first (up to (n-1)/(size-1) rounds, the most any schedule has), then rows
    over Z_groups (`groups` rounds).
    """
    if size < 2 or groups < 2 or n != size * groups:
        return None, 0
    work = 0
    if (n - 1) % (size - 1) == 0:
        found, work = _search(n, size, groups, (n - 1) // (size - 1), True, work_cap * 2 // 3)
        if found is not None:
            return found, work
    found, more = _search(n, size, groups, groups, False, work_cap - work)
    return found, work + more


def _search(
    n: int, size: int, groups: int, m: int, fixed: bool, work_cap: int
) -> tuple[list[list[list[int]]] | None, int]:
    """Search a base round over Z_m (plus a fixed point if `fixed`) whose m shifts repeat no pair."""
    rows = (n - 1) // m if fixed else size
    if m < 2:
        return None, 0
    inf = n - 1 if fixed else -1
    row = [p // m for p in range(n)]
    col = [p % m for p in range(n)]
    half = rows * rows * m + rows  # keys from here on are always bad: a half orbit meets its pair twice
    keys = [0] * (n * n)
    for p in range(n):
        for q in range(n):
            if p == q:
                continue
            if p == inf or q == inf:
                k = rows * rows * m + row[q if p == inf else p]
            else:
                i, j = row[p], row[q]
                d = (col[q] - col[p]) % m
                if i > j:
                    i, j, d = j, i, (m - d) % m
                if i == j and 2 * d == m:
                    k = half + i
                else:
                    if i == j:
                        d = min(d, m - d)
                    k = (i * rows + j) * m + d
            keys[p * n + q] = k
    # Excess of a key's count: every use of a half orbit, every use but one of a full orbit.
    limit = [1] * half + [0] * rows
    rng = random.Random(n * 7919 + size)
    work = 0
    while work < work_cap:
        blocks, used = _attempt(n, size, groups, keys, limit, rng, work_cap - work)
        work += used
        if blocks is not None:

            def shift(p: int, t: int) -> int:
                return p if p == inf else row[p] * m + (col[p] + t) % m

            return [[sorted(shift(p, t) for p in blk) for blk in blocks] for t in range(m)], work
    return None, work


def _attempt(
    n: int, size: int, groups: int, keys: list[int], limit: list[int], rng: random.Random, work_cap: int
) -> tuple[list[list[int]] | None, int]:
    """One tabu run from a random base round, given up after a stall; returns (blocks or None, work)."""
    points = list(range(n))
    rng.shuffle(points)
    blocks = [points[g * size : (g + 1) * size] for g in range(groups)]
    block_of = [0] * n
    for g, blk in enumerate(blocks):
        for p in blk:
            block_of[p] = g
    count = [0] * len(limit)
    for blk in blocks:
        for x, p in enumerate(blk):
            for q in blk[x + 1 :]:
                count[keys[p * n + q]] += 1
    cost = sum(max(0, c - lim) for c, lim in zip(count, limit, strict=True))
    best_cost = cost
    tabu = [0] * (n * n)
    step = last_gain = work = 0
    while cost and work < work_cap and step - last_gain < STALL:
        step += 1
        best_d, moves = 1 << 30, []
        for p in range(n):
            a = block_of[p]
            blk_a = blocks[a]
            if not any(count[keys[p * n + q]] > limit[keys[p * n + q]] for q in blk_a if q != p):
                continue
            for b in range(groups):
                if b == a:
                    continue
                blk_b = blocks[b]
                for q in blk_b:
                    # Apply the count changes in place (keys may repeat), price them, then undo.
                    d = 0
                    for r in blk_a:
                        if r != p:
                            k = keys[p * n + r]
                            c = count[k]
                            d -= c > limit[k]
                            count[k] = c - 1
                            k = keys[q * n + r]
                            c = count[k]
                            d += c >= limit[k]
                            count[k] = c + 1
                    for r in blk_b:
                        if r != q:
                            k = keys[q * n + r]
                            c = count[k]
                            d -= c > limit[k]
                            count[k] = c - 1
                            k = keys[p * n + r]
                            c = count[k]
                            d += c >= limit[k]
                            count[k] = c + 1
                    for r in blk_a:
                        if r != p:
                            count[keys[p * n + r]] += 1
                            count[keys[q * n + r]] -= 1
                    for r in blk_b:
                        if r != q:
                            count[keys[q * n + r]] += 1
                            count[keys[p * n + r]] -= 1
                    work += 1
                    if d > best_d or (tabu[p * n + q] >= step and cost + d > 0):
                        continue
                    if d < best_d:
                        best_d, moves = d, [(p, q)]
                    else:
                        moves.append((p, q))
        if not moves:
            break
        p, q = moves[rng.randrange(len(moves))]
        a, b = block_of[p], block_of[q]
        for out, into, blk in ((p, q, blocks[a]), (q, p, blocks[b])):
            for r in blk:
                if r != out:
                    count[keys[out * n + r]] -= 1
                    count[keys[into * n + r]] += 1
        blocks[a][blocks[a].index(p)] = q
        blocks[b][blocks[b].index(q)] = p
        block_of[p], block_of[q] = b, a
        cost += best_d
        tabu[p * n + q] = tabu[q * n + p] = step + TENURE + rng.randrange(TENURE)
        if cost < best_cost:
            best_cost, last_gain = cost, step
    return (blocks if cost == 0 else None), work
