"""Peer review's pure rules: who reviews whose work, and which reviews stand out. No I/O, unit-tested alone.

The assignment is a circulant design: the authors sit in a (seeded) circle and, for each of k distinct offsets,
everyone reviews the author that many seats further on. Every submission then has k different reviewers, nobody
reviews their own work, and everyone reviews exactly k submissions (the fairest load there is). A keep-apart pair
only rules out the offsets that would put them face to face, so other seatings are tried (deterministically)
until k offsets fit; when none does (dense rules in a small class), a greedy pass takes the least-loaded
eligible reviewer for each slot and reports the slots it could not fill.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from statistics import median

SEATINGS_TRIED = 200  # circles tried before the greedy fallback; each try is O(n·k)
OUTLIER_GAP = 1.0  # a review whose mean score is this far (on 1–4) from the submission's median stands out


@dataclass(frozen=True, slots=True)
class ReviewPlan:
    """`reviewers[author]`: who reviews that author's work; `missing[author]`: slots left empty (k too large for
    the class or its keep-apart rules)."""

    reviewers: dict[int, tuple[int, ...]]
    missing: dict[int, int]

    def load(self) -> dict[int, int]:
        """How many submissions each person reviews."""
        counts: dict[int, int] = {}
        for reviewers in self.reviewers.values():
            for reviewer in reviewers:
                counts[reviewer] = counts.get(reviewer, 0) + 1
        return counts


def _apart_set(apart: Collection[tuple[int, int]]) -> set[frozenset[int]]:
    return {frozenset(pair) for pair in apart if pair[0] != pair[1]}


def assign_reviewers(
    authors: Sequence[int], k: int, apart: Collection[tuple[int, int]] = (), *, seed: int = 0
) -> ReviewPlan:
    """k reviewers per author, drawn from the authors themselves (see the module's docstring)."""
    people = sorted(set(authors))
    n = len(people)
    want = max(0, min(k, n - 1))
    forbidden = _apart_set(apart)
    rng = random.Random(seed)
    for _attempt in range(SEATINGS_TRIED if want else 1):
        circle = people[:]
        rng.shuffle(circle)
        offsets = list(range(1, n))
        rng.shuffle(offsets)
        usable = [
            d for d in offsets if all(frozenset((circle[i], circle[(i + d) % n])) not in forbidden for i in range(n))
        ][:want]
        if len(usable) == want:
            plan = {circle[i]: tuple(circle[(i - d) % n] for d in sorted(usable)) for i in range(n)}
            return ReviewPlan({a: plan[a] for a in people}, {a: k - want for a in people if k > want})
    return _greedy(people, k, forbidden, rng)


def _greedy(people: list[int], k: int, forbidden: set[frozenset[int]], rng: random.Random) -> ReviewPlan:
    rank = {p: rng.random() for p in people}
    load = dict.fromkeys(people, 0)
    chosen: dict[int, list[int]] = {p: [] for p in people}
    for _round in range(k):
        for author in sorted(people, key=lambda p: (len(chosen[p]), rank[p])):
            eligible = [
                r for r in people if r != author and r not in chosen[author] and frozenset((r, author)) not in forbidden
            ]
            if eligible:
                reviewer = min(eligible, key=lambda r: (load[r], rank[r]))
                chosen[author].append(reviewer)
                load[reviewer] += 1
    missing = {a: k - len(rs) for a, rs in chosen.items() if len(rs) < k}
    return ReviewPlan({a: tuple(rs) for a, rs in chosen.items()}, missing)


def review_outliers(scores: Mapping[int, Mapping[int, float]], gap: float = OUTLIER_GAP) -> list[tuple[int, int]]:
    """(submission, reviewer) pairs whose mean score is at least `gap` from the median of that submission's
    reviews: the reviews a trainer should read first (with two reviews, both when they disagree by 2 points).
    `scores[submission][reviewer]` is a review's mean score."""
    found: list[tuple[int, int]] = []
    for submission, by_reviewer in sorted(scores.items()):
        if len(by_reviewer) < 2:
            continue
        middle = median(by_reviewer.values())
        found += [(submission, r) for r, mean in sorted(by_reviewer.items()) if abs(mean - middle) >= gap]
    return found
