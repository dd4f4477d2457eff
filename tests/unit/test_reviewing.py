"""Peer review's assignment and outliers, as pure functions: balanced load, the constraints, determinism."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.reviewing import assign_reviewers, review_outliers


def check(authors: list[int], k: int, apart: list[tuple[int, int]], seed: int) -> None:
    plan = assign_reviewers(authors, k, apart, seed=seed)
    people = sorted(set(authors))
    assert sorted(plan.reviewers) == people
    forbidden = {frozenset(p) for p in apart}
    for author, reviewers in plan.reviewers.items():
        assert author not in reviewers  # nobody reviews themselves
        assert len(set(reviewers)) == len(reviewers)  # k different people
        assert not any(frozenset((author, r)) in forbidden for r in reviewers)  # nor a keep-apart partner
        assert len(reviewers) + plan.missing.get(author, 0) == k


def test_two_reviewers_each_and_everyone_reviews_two() -> None:
    plan = assign_reviewers(list(range(1, 9)), 2, seed=3)
    assert all(len(r) == 2 for r in plan.reviewers.values()) and not plan.missing
    assert set(plan.load().values()) == {2}  # perfectly balanced
    assert plan == assign_reviewers(list(range(8, 0, -1)), 2, seed=3)  # deterministic, whatever the input order
    assert plan != assign_reviewers(list(range(1, 9)), 2, seed=4)  # another session, another draw


def test_keep_apart_partners_never_review_each_other() -> None:
    apart = [(1, 2), (3, 4), (1, 5)]
    plan = assign_reviewers([1, 2, 3, 4, 5, 6], 2, apart, seed=1)
    check([1, 2, 3, 4, 5, 6], 2, apart, 1)
    assert not plan.missing and set(plan.load().values()) == {2}


def test_a_small_class_gets_as_many_reviewers_as_it_has_others() -> None:
    plan = assign_reviewers([7, 9], 2, seed=0)
    assert plan.reviewers == {7: (9,), 9: (7,)} and plan.missing == {7: 1, 9: 1}
    assert assign_reviewers([7], 2).reviewers == {7: ()}
    assert assign_reviewers([], 2).reviewers == {}


def test_rules_that_leave_no_reviewer_are_reported() -> None:
    plan = assign_reviewers([1, 2, 3], 2, [(1, 2), (1, 3)], seed=0)
    assert plan.reviewers[1] == () and plan.missing[1] == 2
    check([1, 2, 3], 2, [(1, 2), (1, 3)], 0)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 40), min_size=0, max_size=25, unique=True),
    st.integers(1, 4),
    st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), max_size=10),
    st.integers(0, 1000),
)
def test_constraints_hold_for_any_class(authors: list[int], k: int, apart: list[tuple[int, int]], seed: int) -> None:
    apart = [p for p in apart if p[0] != p[1]]
    check(authors, k, apart, seed)
    if not apart and len(authors) > k:  # without rules, everyone reviews exactly k
        assert set(assign_reviewers(authors, k, seed=seed).load().values()) == {k}


def test_outliers_are_the_reviews_far_from_the_others() -> None:
    scores = {10: {1: 3.5, 2: 3.0, 3: 1.0}, 11: {1: 2.0, 2: 2.5}, 12: {4: 4.0}, 13: {1: 1.5, 3: 3.5}}
    assert review_outliers(scores) == [(10, 3), (13, 1), (13, 3)]  # a lone review is no outlier
