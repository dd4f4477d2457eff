"""Designs for the planner: constructed schedules (affine planes, doubled Kirkman schedules, a listed
1-rotational design) where one covers the cohort's shape, else cyclic schedules, many repeat-free rounds
from one base round.

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
import itertools
import random
from typing import Final

STALL: Final = 1000
FIXED_SHAPES: Final = 2  # shapes with fixed points tried before the plain one
TENURE: Final = 6


@functools.lru_cache(maxsize=32)
def cyclic_schedule(
    n: int, size: int, groups: int, work_cap: int, min_rounds: int = 0
) -> tuple[list[list[list[int]]] | None, int]:
    """Rounds of point indices 0..n-1 (each a list of groups) repeating no pair, or None if not found
    within `work_cap` priced swaps; and the work spent. Only shapes giving at least `min_rounds` rounds
    are tried (a course plan wants its length; the lookahead takes the first schedule found). A pure
    function, so memoising it changes no answer, only the time (callers charge the returned work either
    way).

    Shapes: size - 1 rows over Z_m plus f fixed points (f = 1 reaches (n-1)/(size-1) rounds, the
    most any schedule has); `size` rows over Z_groups plus one round of pairs of half rows (even
    groups and size: groups + 1 rounds); `size` rows over Z_groups. The single fixed point is tried
    first, then the extra round, then more fixed points, then plain rows; the first found wins.
    """
    if size < 2 or groups < 2 or n != size * groups:
        return None, 0
    shapes = [((n - f) // (size - 1), f, False) for f in range(1, groups + 1) if (n - f) % (size - 1) == 0]
    shapes = [shape for shape in shapes if shape[0] > groups][:FIXED_SHAPES]
    if groups % 2 == 0 and size % 2 == 0:
        # Found far more often than the fixed-point shapes, except the one of a single fixed point.
        shapes.insert(1 if shapes and shapes[0][1] == 1 else 0, (groups, 0, True))
    shapes.append((groups, 0, False))
    shapes = [shape for shape in shapes if shape[0] + shape[2] >= min_rounds]
    work = 0
    for x, (m, f, extra) in enumerate(shapes):
        if x == len(shapes) - 1:
            share = work_cap - work
        elif f == 1:
            share = work_cap // 5
        elif extra:
            share = (work_cap - work) * 3 // 4
        else:
            share = (work_cap - work) // (len(shapes) - x)
        found, used = _search(n, size, groups, m, f, share, extra)
        work += used
        if found is not None:
            return found, work
    return None, work


def _search(
    n: int, size: int, groups: int, m: int, fixed: int, work_cap: int, extra: bool = False
) -> tuple[list[list[list[int]]] | None, int]:
    """Search a base round over Z_m plus `fixed` fixed points whose m shifts repeat no pair.

    Points below rows * m are (x, row); the last `fixed` points never move, so two of them must
    never share a group, and each meets a whole row over the m rounds. With `extra` (even m and
    size, no fixed point) the base round also leaves unmet the pairs of one more round: groups
    {(x, i), (x + m/2, i) : i in one half of the rows}.
    """
    if m < 2:
        return None, 0
    rows = (n - fixed) // m
    first_fixed = rows * m
    row = [p // m if p < first_fixed else p - first_fixed for p in range(n)]
    col = [p % m for p in range(n)]
    fixed_base = rows * rows * m
    half = fixed_base + fixed * rows  # keys from here on are always bad
    keys = [0] * (n * n)
    for p in range(n):
        for q in range(n):
            if p == q:
                continue
            if p >= first_fixed and q >= first_fixed:
                k = half + rows  # two fixed points together meet in every round
            elif p >= first_fixed or q >= first_fixed:
                f, other = (p, q) if p >= first_fixed else (q, p)
                k = fixed_base + row[f] * rows + row[other]
            else:
                i, j = row[p], row[q]
                d = (col[q] - col[p]) % m
                if i > j:
                    i, j, d = j, i, (m - d) % m
                if i == j and 2 * d == m:
                    k = half + i  # a half orbit: the pair meets twice
                else:
                    if i == j:
                        d = min(d, m - d)
                    k = (i * rows + j) * m + d
            keys[p * n + q] = k
    # Excess of a key's count: every use of a half orbit, every use but one of a full orbit.
    limit = [1] * half + [0] * (rows + 1)
    halves = [range(0, rows // 2), range(rows // 2, rows)]
    if extra:
        for part in halves:
            for i in part:
                for j in part:
                    if i < j:
                        limit[(i * rows + j) * m] = limit[(i * rows + j) * m + m // 2] = 0
    rng = random.Random(n * 7919 + size)
    work = 0
    while work < work_cap:
        blocks, used = _attempt(n, size, groups, keys, limit, rng, work_cap - work)
        work += used
        if blocks is not None:

            def shift(p: int, t: int) -> int:
                return p if p >= first_fixed else row[p] * m + (col[p] + t) % m

            schedule = [[sorted(shift(p, t) for p in blk) for blk in blocks] for t in range(m)]
            if extra:
                schedule.append(
                    [sorted(i * m + y for i in part for y in (x, x + m // 2)) for part in halves for x in range(m // 2)]
                )
            return schedule, work
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


# --- Constructions ------------------------------------------------------------------------------------
# Schedules a direct construction gives with the most rounds any schedule can have; where one applies
# it replaces the searches above, which find such tight schedules only slowly or not at all.

# Base blocks of 1-rotational resolvable designs over Z_(n-1) (see `rotational_schedule`), keyed by
# (learners, size): the one listed design, found by `rotational_bases` (an exact cover that takes about
# 20 s for 40 learners, too long to run at each course plan, so its answer is kept here; a test checks
# it repeats no pair). 10 groups of 4 get all 13 rounds, where the cyclic search stalls at 11.
ROTATIONAL_BASES: Final[dict[tuple[int, int], tuple[tuple[int, ...], ...]]] = {
    (40, 4): ((2, 3, 11, 36), (4, 6, 22, 33), (1, 5, 8, 25)),
}


def design_schedule(
    n: int, size: int, groups: int, work_cap: int, min_rounds: int = 0
) -> tuple[list[list[list[int]]] | None, int]:
    """The constructed schedule when one covers the shape (no work), else `cyclic_schedule`'s."""
    built = constructed_schedule(n, size, groups)
    if built is not None:
        return built, 0
    return cyclic_schedule(n, size, groups, work_cap, min_rounds)


def construction_name(n: int, size: int, groups: int) -> str | None:
    """Which construction `constructed_schedule` uses for the shape (the benchmark says so), or None."""
    if constructed_schedule(n, size, groups) is None:
        return None
    if n == size * size:
        return "affine plane"
    if (n, size) in ROTATIONAL_BASES:
        return "listed 1-rotational design"
    return "doubled Kirkman schedule"


@functools.lru_cache(maxsize=32)
def constructed_schedule(n: int, size: int, groups: int) -> list[list[list[int]]] | None:
    """A repeat-free schedule of (n - 1) // (size - 1) rounds (the most there can be) by construction, or
    None when no construction here covers the shape.

    - an affine plane of prime order q (q groups of q): q + 1 rounds, every pair meets once;
    - a listed 1-rotational design (`ROTATIONAL_BASES`): (n - 1) / (size - 1) rounds, every pair once;
    - the doubling of a Kirkman schedule on an odd number v = n / 2 of learners with an even number
      (v - 1) / 2 of rounds (size 3): v - 1 rounds on n learners, where only the v pairs (x, x') never
      meet. 6 groups of 3 get 8 rounds from the affine plane of order 3, where the cyclic search cannot
      succeed (no base round over Z_8 with two fixed points exists: an exhaustive search finds none).
    """
    if size < 2 or groups < 2 or n != size * groups:
        return None
    if n == size * size and _is_prime(size):
        return affine_plane(size)
    if (n, size) in ROTATIONAL_BASES:
        return rotational_schedule(n, size, ROTATIONAL_BASES[n, size])
    if size == 3 and n % 6 == 0 and n // 2 % 2:
        v = n // 2
        base = constructed_schedule(v, 3, v // 3)
        if base is not None and len(base) == (v - 1) // 2 and len(base) % 2 == 0:
            return doubled_triples(base, v)
    return None


def _is_prime(q: int) -> bool:
    return q >= 2 and all(q % d for d in range(2, int(q**0.5) + 1))


def affine_plane(q: int) -> list[list[list[int]]]:
    """The q + 1 parallel classes of AG(2, q), q prime: point (x, y) is x * q + y; class s < q holds the
    lines y = s * x + b, class q the lines x = c."""
    rounds = [[sorted(x * q + (s * x + b) % q for x in range(q)) for b in range(q)] for s in range(q)]
    rounds.append([[c * q + y for y in range(q)] for c in range(q)])
    return rounds


def doubled_triples(base: list[list[list[int]]], v: int) -> list[list[list[int]]] | None:
    """2 * len(base) rounds of triples on 2v points (x, side) = x + side * v, from a resolvable schedule of
    triples on v points with an even number of rounds; None if its classes cannot be paired up.

    Classes go in pairs (A, B). Each point x gets a 4-bit word w(x) of weight 2 such that two points on a
    common line of A or B get words neither equal nor complementary (a proper 3-colouring of the graph of
    those lines, colour c giving the word 0b11, 0b101 or 0b1001). Round k of the pair puts the line
    {x, y, z} of A on the sides given by bit k of each word and the line of B on the other sides: each
    point then sits once on each side, and the two words of collinear points take all four pairs of bit
    values over the four rounds, so the pair meets once on each combination of sides.
    """
    words = (0b0011, 0b0101, 0b1001)
    rounds: list[list[list[int]]] = []
    for a, b in zip(base[0::2], base[1::2], strict=True):
        colour = _three_colouring(v, [*a, *b])
        if colour is None:
            return None
        bits = [words[c] for c in colour]
        for k in range(4):
            rounds.append(
                sorted(
                    [sorted(x + v * (bits[x] >> k & 1) for x in line) for line in a]
                    + [sorted(x + v * (~bits[x] >> k & 1) for x in line) for line in b]
                )
            )
    return rounds


def _three_colouring(v: int, lines: list[list[int]]) -> list[int] | None:
    """A colouring of 0..v-1 in 3 colours where no line holds a colour twice (backtracking), or None."""
    near: list[set[int]] = [set() for _ in range(v)]
    for line in lines:
        for x in line:
            near[x].update(y for y in line if y != x)
    colour = [-1] * v

    def place(x: int) -> bool:
        if x == v:
            return True
        for c in range(3):
            if all(colour[y] != c for y in near[x]):
                colour[x] = c
                if place(x + 1):
                    return True
        colour[x] = -1
        return False

    return colour if place(0) else None


def rotational_schedule(n: int, size: int, bases: tuple[tuple[int, ...], ...]) -> list[list[list[int]]]:
    """The R = (n - 1) / (size - 1) rounds of a 1-rotational design: points Z_v (v = n - 1) and the fixed
    point v; H = {0, R, 2R, ...} is the subgroup of order size - 1. Round t holds {v} + H + t and B + h + t
    for each base block B and h in H. It is a partition when the blocks' residues mod R are the nonzero
    ones, each once, and it repeats no pair when the blocks' differences are the elements of Z_v outside
    H, each once (what `rotational_bases` searches for)."""
    v = n - 1
    rounds_count = v // (size - 1)
    subgroup = [h * rounds_count for h in range(size - 1)]
    rounds = []
    for t in range(rounds_count):
        groups = [sorted([v] + [(h + t) % v for h in subgroup])]
        groups += [sorted((x + h + t) % v for x in block) for block in bases for h in subgroup]
        rounds.append(sorted(groups))
    return rounds


def rotational_bases(n: int, size: int, node_cap: int) -> tuple[tuple[int, ...], ...] | None:
    """Base blocks for `rotational_schedule` by an exact cover (Knuth's algorithm X, fewest candidates
    first): columns are the nonzero residues mod R and the differences +-d outside H, rows the blocks of
    `size` elements of Z_v with distinct nonzero residues and distinct differences (the smallest residue
    taken below R, since H's shifts give the same round). None if there is none or `node_cap` is reached.
    Not run live: it produced `ROTATIONAL_BASES`."""
    v = n - 1
    if size < 2 or n % size or v % (size - 1) or (n // size - 1) % (size - 1):
        return None
    period = v // (size - 1)
    subgroup = {h * period for h in range(size - 1)}
    blocks: list[tuple[int, ...]] = []
    columns: dict[tuple[str, int], set[int]] = {("r", r): set() for r in range(1, period)}
    columns.update((("d", d), set()) for d in range(1, v // 2 + 1) if d not in subgroup and 2 * d != v)
    rows: list[list[tuple[str, int]]] = []
    for block in itertools.combinations(range(1, v), size):
        residues = [x % period for x in block]
        diffs = [min((x - y) % v, (y - x) % v) for x, y in itertools.combinations(block, 2)]
        if (
            0 in residues
            or len(set(residues)) < size
            or len(set(diffs)) < len(diffs)
            or any(d in subgroup or 2 * d == v for d in diffs)
            or min(block, key=lambda x: x % period) >= period
        ):
            continue
        rows.append([("r", r) for r in residues] + [("d", d) for d in diffs])
        blocks.append(block)
        for column in rows[-1]:
            columns[column].add(len(rows) - 1)
    chosen: list[int] = []
    nodes = 0

    def select(row: int) -> list[set[int]]:
        removed = []
        for column in rows[row]:
            for other in columns[column]:
                for c in rows[other]:
                    if c != column:
                        columns[c].discard(other)
            removed.append(columns.pop(column))
        return removed

    def deselect(row: int, removed: list[set[int]]) -> None:
        for column in reversed(rows[row]):
            columns[column] = removed.pop()
            for other in columns[column]:
                for c in rows[other]:
                    if c != column:
                        columns[c].add(other)

    def solve() -> bool:
        nonlocal nodes
        nodes += 1
        if not columns:
            return True
        if nodes > node_cap:
            return False
        column = min(columns, key=lambda c: (len(columns[c]), c))
        for row in sorted(columns[column]):
            chosen.append(row)
            removed = select(row)
            if solve():
                return True
            deselect(row, removed)
            chosen.pop()
        return False

    return tuple(blocks[r] for r in chosen) if solve() else None
