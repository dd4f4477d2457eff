"""Value types exchanged between the core and the grouping engine.

They are frozen dataclasses of plain ids and numbers so the engine stays pure: the core maps its own
rows to them and back, and nothing here knows about storage or platforms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

FORMATS: Final = ("groups", "tutoring", "review", "sharing")
MIN_LEVEL: Final = 1
MAX_LEVEL: Final = 5


@dataclass(frozen=True)
class Learner:
    """A learner to place; `level` is the trainer's 1..5 estimate."""

    id: str
    level: int

    def __post_init__(self) -> None:
        if not MIN_LEVEL <= self.level <= MAX_LEVEL:
            raise ValueError(f"learner {self.id!r} has level {self.level}; levels go from {MIN_LEVEL} to {MAX_LEVEL}")


@dataclass(frozen=True)
class Meeting:
    """One past co-membership of learners `a` and `b` (aware UTC time), the raw material of repeats."""

    a: str
    b: str
    when: datetime


def _check_pairs(name: str, pairs: frozenset[frozenset[str]]) -> None:
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"every {name} constraint names two different learners, got {sorted(pair)}")


@dataclass(frozen=True)
class Constraints:
    """Trainer's pair constraints: `apart` is hard, `together` is soft but weighs far more than levels."""

    apart: frozenset[frozenset[str]] = frozenset()
    together: frozenset[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        _check_pairs("apart", self.apart)
        _check_pairs("together", self.together)


@dataclass(frozen=True)
class Group:
    """One formed group; in tutoring the tutor comes first and `tutee` is set only for pairs."""

    members: tuple[str, ...]
    tutor: str | None = None
    tutee: str | None = None
    level_spread: int = 0
    repeated_pairs: int = 0


class Notice(str):
    """A warning for the trainer: an English sentence (logs, tests) that also carries a `code` and its
    `values` (learner ids among them), so a caller can word it in the reader's language with names."""

    code: str
    values: dict[str, object]

    def __new__(cls, text: str, code: str, **values: object) -> Notice:
        notice = super().__new__(cls, text)
        notice.code = code
        notice.values = values
        return notice


@dataclass(frozen=True)
class Grouping:
    """The engine's answer with the figures the trainer sees.

    `score` is the objective the search minimised (0 = every level target met, no repeat, every
    constraint kept; lower is better). `level_target_met` is the share of groups whose level spread (in
    tutoring: the tutor-tutee gap) sits in the target band.
    """

    groups: tuple[Group, ...]
    warnings: tuple[Notice, ...]
    left_out: tuple[tuple[str, str], ...]
    repeated_pairs: int
    level_target_met: float
    score: float
