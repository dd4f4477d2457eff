"""Group sizes: the bounds per format and the split of a cohort into group sizes.

Bounds per format and asked size (every cohort of at least `min` learners can be split inside them):

==========  ======  ======  ======  ======  ======
format      size 2  size 3  size 4  size 5  size 6
==========  ======  ======  ======  ======  ======
groups      2..3    3..5    3..6    4..7    4..7
sharing     same as groups
review      2..3    2..4    2..5    3..6    4..7
tutoring    2..3 whatever the size (pairs, one trio when the count is odd)
==========  ======  ======  ======  ======  ======

The upper bound is only reached on small cohorts (5 learners at size 4 make one group of 5, since a
pair would be left otherwise); the split always stays as close to the asked size as it can.
"""

from __future__ import annotations

from typing import Final

from bot.grouping.model import FORMATS

MIN_SIZE: Final = 2
MAX_SIZE: Final = 6

_DISCUSSION_BOUNDS: Final[dict[int, tuple[int, int]]] = {
    2: (2, 3),
    3: (3, 5),
    4: (3, 6),
    5: (4, 7),
    6: (4, 7),
}


def check_request(format: str, size: int) -> None:
    """Reject what the engine cannot honour, with a message the trainer can act on."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"group size must be a whole number from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")


def size_bounds(format: str, size: int) -> tuple[int, int]:
    """Smallest and largest group the engine forms for this format and asked size."""
    check_request(format, size)
    if format == "tutoring":
        return (2, 3)
    if format == "review":
        return (max(2, size - 2), size + 1)
    return _DISCUSSION_BOUNDS[size]


def _split(n: int, count: int) -> list[int]:
    base, extra = divmod(n, count)
    return [base + 1] * extra + [base] * (count - extra)


def plan_sizes(format: str, size: int, n: int) -> list[int]:
    """Sizes of the groups for `n` learners, largest first.

    Below the format's minimum the whole cohort becomes one group (the caller warns the trainer).
    """
    low, high = size_bounds(format, size)
    if n <= 0:
        return []
    if n < low:
        return [n]
    if format == "tutoring":
        return [3] + [2] * ((n - 3) // 2) if n % 2 else [2] * (n // 2)

    def preference(count: int) -> tuple[bool, bool, float, int]:
        sizes = _split(n, count)
        if format == "review":
            # Review wants the asked size exactly; the remainder goes to groups one smaller if it can.
            return (min(sizes) < size - 1, max(sizes) > size, abs(n / count - size), -count)
        return (False, False, abs(n / count - size), -count)

    feasible = [c for c in range(1, n // low + 1) if c * low <= n <= c * high]
    return _split(n, min(feasible, key=preference))
