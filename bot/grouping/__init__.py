"""Group formation for peer-learning sessions: pure code, no I/O, deterministic for a seed.

`form_groups` splits a cohort for one round of a format ("groups", "tutoring", "review", "sharing"),
balancing a banded level mix, few and evenly spread repeated pairs (recent meetings weigh more), and
the trainer's keep-apart (hard) and keep-together (soft) pairs.
"""

from bot.grouping.engine import form_groups
from bot.grouping.model import FORMATS, Constraints, Group, Grouping, Learner, Meeting, Notice
from bot.grouping.sizes import size_bounds

__all__ = [
    "FORMATS",
    "Constraints",
    "Group",
    "Grouping",
    "Learner",
    "Meeting",
    "Notice",
    "form_groups",
    "size_bounds",
]
