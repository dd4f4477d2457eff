"""Where learners who arrive after the start go: pure code, so the rule is tested without a database.

The rule, in the order it is tried for each waiting learner (oldest check-in first):
1. join the smallest group below the format's maximum that holds nobody they are kept apart from;
2. when no group can take them, waiting learners form a new group as soon as enough of them (the format's
   minimum) can be together without breaking a keep-apart rule;
3. a learner who has waited alone longer than `wait_alone` joins the smallest group they may join, even a
   full one, rather than miss the session; a keep-apart rule is never broken, so one whose every group
   holds someone they are kept apart from keeps waiting (and the trainer is told).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Waiting:
    """A learner checked in and in no group yet, since `since`."""

    member: str
    since: datetime


@dataclass
class ArrivalPlan:
    """What to do now: `joins` (member, group key), `new_groups` (their members), who keeps waiting, and
    who of them waits only because of a keep-apart rule (`blocked`)."""

    joins: list[tuple[str, int]] = field(default_factory=list)
    new_groups: list[list[str]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def _clash(member: str, others: set[str] | list[str], apart: frozenset[frozenset[str]]) -> bool:
    return any(frozenset({member, other}) in apart for other in others)


def plan_arrivals(
    groups: Mapping[int, set[str]],
    waiting: Sequence[Waiting],
    apart: frozenset[frozenset[str]],
    *,
    low: int,
    high: int,
    now: datetime,
    wait_alone: timedelta,
) -> ArrivalPlan:
    """Place the waiting learners in `groups` (group key → members); deterministic for the same input."""
    members = {key: set(ids) for key, ids in groups.items()}
    plan = ArrivalPlan()
    queue = sorted(waiting, key=lambda w: (w.since, w.member))

    def smallest(who: str, *, below: int | None) -> int | None:
        fits = [
            key for key, ids in members.items() if not _clash(who, ids, apart) and (below is None or len(ids) < below)
        ]
        return min(fits, key=lambda key: (len(members[key]), key)) if fits else None

    left: list[Waiting] = []
    for person in queue:
        key = smallest(person.member, below=high)
        if key is None:
            left.append(person)
            continue
        members[key].add(person.member)
        plan.joins.append((person.member, key))

    while len(left) >= low:
        chosen: list[Waiting] = []
        for person in left:
            if len(chosen) < high and not _clash(person.member, [c.member for c in chosen], apart):
                chosen.append(person)
        if len(chosen) < low:
            break
        plan.new_groups.append([c.member for c in chosen])
        left = [p for p in left if p not in chosen]

    for person in left:
        if now - person.since >= wait_alone and (key := smallest(person.member, below=None)) is not None:
            members[key].add(person.member)
            plan.joins.append((person.member, key))
            continue
        plan.waiting.append(person.member)
        if members and all(_clash(person.member, ids, apart) for ids in members.values()):
            plan.blocked.append(person.member)
    return plan
