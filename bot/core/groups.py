"""Groups: forming them with the grouping engine (draft before the start, final at the start), the trainer's
control over them (`/peer group show|move|swap|reshuffle`), a late learner joining the smallest group,
and the breakout channels that follow them. One module, because a draft, a move and a breakout all read
and write the same `PeerGroup`/`GroupMembership` rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions, grammar
from bot.core import queries, rules
from bot.core.context import Context
from bot.errors import Invalid, NotFound
from bot.grouping import Constraints, Grouping, Learner, Meeting, size_bounds
from bot.grouping.arrivals import Waiting, plan_arrivals
from bot.grouping.course import Plan
from bot.grouping.live import AHEAD_EVERY, form_ahead, form_at_start, plan_ahead
from bot.i18n import GROUP_ROLES, N_, SESSION_STATES, Text, _, label, t
from bot.inbound import Actor
from bot.messages import Button, ButtonStyle, Message, Reply, Section
from bot.port import ChannelsRestricted, LeftOut, OpensThreads, Platform, PlatformError, ReportsLeftOut
from bot.refs import ChannelRef, UserRef
from storage.models import (
    Attendance,
    AuditEvent,
    Cohort,
    Enrollment,
    GroupMembership,
    Member,
    PairConstraint,
    PeerGroup,
    PeerSession,
)

log = logging.getLogger(__name__)

FORMAT_TEXTS = {
    "groups": N_(
        "*How to work*: each of you shares what you prepared (3 min each), then solve the exercise together; one of "
        "you notes the group's takeaways."
    ),
    "tutoring": N_("*How to work*: {tutor} guides, the others explain their reasoning out loud; swap roles halfway."),
    "review": N_(
        "*How to work*: review each other's work in turn: one thing that works, one question, one suggestion."
    ),
    "sharing": N_(
        "*How to work*: each of you shares a practice or a case from your work; the group picks one to adopt."
    ),
}
GROUND_RULES = N_(
    "*Ground rules*: every question is welcome · speak in turn and listen fully · critique ideas, never people · "
    "what is said here stays here · ask the trainer any time with `/peer raise`."
)


@dataclass(frozen=True)
class Course:
    """A session's course: `key` = (cohort id, its sessions' ids in order, learners, constraints), and the
    session's `index` among them."""

    key: tuple[int, tuple[int, ...], tuple[Learner, ...], Constraints]
    index: int


@dataclass(frozen=True)
class Draft:
    """Groups computed ahead for a session (`Groups.prepare`), for the learners in `pool`, at `score`."""

    pool: frozenset[str]
    groups: tuple[tuple[str, ...], ...]
    score: float


class Groups:
    """Group formation, trainer adjustments and breakout channels.

    Work done ahead lives in this process's memory only: the draft of each session not yet started and
    the cohorts' course plans. Another replica that starts a session without them forms its groups from
    scratch at the live budget (a course plan is recomputed the same, deterministically, when that
    replica opens a check-in): nothing needs them, they only make a start faster and better.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.drafts: dict[int, Draft] = {}
        self._plans: dict[tuple[object, ...], Plan] = {}
        self._ahead: dict[int, asyncio.Task[None]] = {}
        self._poked: dict[int, float] = {}
        self._steps: dict[int, int] = {}

    async def _history(self, tx: AsyncSession, peer_session: PeerSession) -> list[Meeting]:
        rows = await tx.exec(
            select(GroupMembership.group_id, GroupMembership.member_id, PeerSession.starts_at)
            .join(PeerSession, col(PeerSession.id) == col(GroupMembership.session_id))
            .where(PeerSession.cohort_id == peer_session.cohort_id, PeerSession.id != peer_session.id)
        )
        by_group: dict[int, tuple[datetime, list[int]]] = {}
        for group_id, member_id, when in rows.all():
            by_group.setdefault(group_id, (when, []))[1].append(member_id)
        meetings: list[Meeting] = []
        for when, members in by_group.values():
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    meetings.append(Meeting(str(a), str(b), when))
        return meetings

    async def _constraints(self, tx: AsyncSession, cohort_id: int) -> Constraints:
        """The rules as the engine reads them: member ids as strings, like its learner ids."""
        rules = (await tx.exec(select(PairConstraint).where(PairConstraint.cohort_id == cohort_id))).all()
        pairs: dict[str, set[frozenset[str]]] = {"apart": set(), "together": set()}
        for rule in rules:
            pairs[rule.kind].add(frozenset({str(rule.member_a_id), str(rule.member_b_id)}))
        return Constraints(apart=frozenset(pairs["apart"]), together=frozenset(pairs["together"]))

    async def _refuse_apart(
        self, tx: AsyncSession, peer_session: PeerSession, member_id: int, user_id: str, group_id: int, leaving: int = 0
    ) -> None:
        """Refuse to put `member_id` into `group_id` next to someone they are kept apart from (`leaving`
        is the member a swap takes out of that group)."""
        partners = await queries.apart_from(tx, peer_session.cohort_id, member_id)
        if not partners:
            return
        clash = (
            await tx.exec(
                select(Member)
                .join(GroupMembership, col(GroupMembership.member_id) == col(Member.id))
                .where(
                    GroupMembership.group_id == group_id,
                    col(GroupMembership.member_id).in_(partners - {leaving}),
                )
                .order_by(col(Member.id))
            )
        ).first()
        if clash is None:
            return
        cohort = await tx.get(Cohort, peer_session.cohort_id)
        assert cohort is not None
        raise Invalid(
            _(
                "<@{first}> and <@{second}> are kept apart in cohort `{cohort}`: I will not put them in the same "
                "group. Nothing changed.",
                first=user_id,
                second=clash.user_id,
                cohort=cohort.name,
            ),
            _(
                "Pick another group, or lift the rule first with `/peer cohort unpair {cohort} <@{first}> "
                "<@{second}>`.",
                cohort=cohort.name,
                first=user_id,
                second=clash.user_id,
            ),
        )

    async def pool(self, tx: AsyncSession, peer_session: PeerSession, *, preview: bool = False) -> list[Learner]:
        """Who is grouped: the learners checked in (or all enrolled, per session); a preview before anyone
        has checked in uses all enrolled learners."""
        enrolled = await queries.learners(tx, peer_session.cohort_id)
        present = {
            a.member_id
            for a in (
                await tx.exec(
                    select(Attendance).where(
                        Attendance.session_id == peer_session.id, col(Attendance.status).in_(rules.PRESENT)
                    )
                )
            ).all()
        }
        everyone = peer_session.groups_from == "enrolled" or (preview and not present)
        return [Learner(str(m.id), e.level) for e, m in enrolled if everyone or m.id in present]

    async def form(
        self, tx: AsyncSession, peer_session: PeerSession, learners: list[Learner], seed: int, *, fresh: bool = False
    ) -> Grouping:
        """Run the grouping engine off the event loop and store its groups (draft or final) in the open
        transaction. It starts from the work done ahead (this session's draft, else its round of the course
        plan) unless `fresh` (a reshuffle asks for new groups)."""
        assert peer_session.id is not None
        now = self.ctx.clock.now()
        plan: Sequence[Sequence[str]] = ()
        if not fresh:
            draft = self.drafts.get(peer_session.id)
            plan = (
                draft.groups
                if draft is not None
                else await self._planned_round(peer_session, await self._course(tx, peer_session), compute=False)
            )
        grouping = await form_at_start(
            learners,
            peer_session.format,
            peer_session.group_size,
            await self._history(tx, peer_session),
            await self._constraints(tx, peer_session.cohort_id),
            seed=seed,
            now=now,
            plan=plan,
            time_budget=self.ctx.grouping_budget,
        )
        for number, group in enumerate(grouping.groups, start=1):
            row = PeerGroup(
                session_id=peer_session.id,
                number=number,
                level_spread=group.level_spread,
                repeated_pairs=group.repeated_pairs,
            )
            tx.add(row)
            await tx.flush()
            assert row.id is not None
            for member_id in group.members:
                role = "tutor" if member_id == group.tutor else "tutee" if member_id == group.tutee else "member"
                tx.add(
                    GroupMembership(
                        session_id=peer_session.id, group_id=row.id, member_id=int(member_id), role=role, joined_at=now
                    )
                )
        return grouping

    # ------------------------------------------------------------------ work done ahead of the start

    def prepare_soon(self, peer_session: PeerSession) -> None:
        """Compute or refine the session's draft in the background (check-in opened, a learner checked in).

        The search competes with the event loop for the one interpreter, so it waits for a lull: a step
        runs once check-ins have paused for `ahead_quiet`, or AHEAD_EVERY after the first request it serves
        when they never pause; requests that come while a step runs are served by one more step after it.
        A class checking in at 9:00 is then written at full speed, and its draft refined just after."""
        if self.ctx.settings.grouping_ahead == "off":
            return
        session_id = peer_session.id
        assert session_id is not None
        self._poked[session_id] = asyncio.get_running_loop().time()
        running = self._ahead.get(session_id)
        if running is None or running.done():
            self._ahead[session_id] = asyncio.create_task(
                self._prepare_loop(peer_session.short_id, session_id), name=f"peerbot-draft-{peer_session.short_id}"
            )

    async def _prepare_loop(self, short_id: str, session_id: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            while session_id in self._poked:
                first = self._poked[session_id]
                while True:  # a lull: AHEAD_QUIET since the last check-in, or AHEAD_EVERY since the first
                    wait = min(self.ctx.ahead_quiet + self._poked[session_id], AHEAD_EVERY + first) - loop.time()
                    if wait <= 0:
                        break
                    await asyncio.sleep(wait)
                del self._poked[session_id]  # a check-in during the step pokes again: one more step
                await self.prepare(short_id)
        except Exception:  # the draft only speeds the start up: a failure must not reach anyone
            log.exception("session %s: the draft could not be computed ahead", short_id)
        finally:
            self._ahead.pop(session_id, None)

    async def prepare(self, short_id: str) -> Draft | None:
        """One anytime step of the draft: from the last draft (else the course plan's round), search for the
        learners checked in so far (all expected ones while fewer than a group have); keep the result unless
        the last draft was better for the same learners. The step's budget is AHEAD_BUDGET, less when the
        start is near (a quarter of the time left), none once it is due: work ahead never outlives its use."""
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
            session_id = peer_session.id
            assert session_id is not None
            if not rules.can_start(peer_session.state):
                return None
            budget = min(self.ctx.ahead_budget, (peer_session.starts_at - self.ctx.clock.now()).total_seconds() / 4)
            if budget <= 0:
                return None
            checked_in = await self.pool(tx, peer_session)  # everyone enrolled when the session groups them all
            low, _high = size_bounds(peer_session.format, peer_session.group_size)
            learners = checked_in if len(checked_in) >= low else await self._expected(tx, peer_session)
            previous = self.drafts.get(session_id)
            course = await self._course(tx, peer_session)
            history = await self._history(tx, peer_session)
            constraints = await self._constraints(tx, peer_session.cohort_id)
        if not learners:
            return None
        plan = previous.groups if previous is not None else await self._planned_round(peer_session, course)
        self._steps[session_id] = step = self._steps.get(session_id, 0) + 1
        grouping = await form_ahead(
            learners,
            peer_session.format,
            peer_session.group_size,
            history,
            constraints,
            seed=session_id * 1000 + step,
            now=peer_session.starts_at,
            plan=plan,
            time_budget=budget,
        )
        pool = frozenset(learner.id for learner in learners)
        draft = Draft(pool, tuple(g.members for g in grouping.groups), grouping.score)
        latest = self.drafts.get(session_id)
        if latest is not None and latest.pool == pool and latest.score <= draft.score:
            return latest
        self.drafts[session_id] = draft
        return draft

    async def _expected(self, tx: AsyncSession, peer_session: PeerSession) -> list[Learner]:
        """The enrolled learners but those who said they would be absent."""
        excused = set(
            (
                await tx.exec(
                    select(Attendance.member_id).where(
                        Attendance.session_id == peer_session.id, Attendance.status == rules.AttendanceStatus.EXCUSED
                    )
                )
            ).all()
        )
        enrolled = await queries.learners(tx, peer_session.cohort_id)
        return [Learner(str(m.id), e.level) for e, m in enrolled if m.id not in excused]

    async def _course(self, tx: AsyncSession, peer_session: PeerSession) -> Course | None:
        """The course this session belongs to: the cohort's sessions of the same format and size (not
        cancelled), in order, when there are at least two; planned together for every enrolled learner."""
        ids = list(
            (
                await tx.exec(
                    select(PeerSession.id)
                    .where(
                        PeerSession.cohort_id == peer_session.cohort_id,
                        PeerSession.format == peer_session.format,
                        PeerSession.group_size == peer_session.group_size,
                        PeerSession.state != rules.SessionState.CANCELLED,
                    )
                    .order_by(col(PeerSession.starts_at), col(PeerSession.id))
                )
            ).all()
        )
        if len(ids) < 2 or peer_session.id not in ids:
            return None
        learners = tuple(
            sorted(
                (Learner(str(m.id), e.level) for e, m in await queries.learners(tx, peer_session.cohort_id)),
                key=lambda learner: learner.id,
            )
        )
        constraints = await self._constraints(tx, peer_session.cohort_id)
        key = (peer_session.cohort_id, tuple(i for i in ids if i is not None), learners, constraints)
        return Course(key, ids.index(peer_session.id))

    async def _planned_round(
        self, peer_session: PeerSession, course: Course | None, *, compute: bool = True
    ) -> tuple[tuple[str, ...], ...]:
        """This session's round of its course plan, computed once per process (when `compute`) and kept; a
        start never computes it (too slow for a start), it only reads a plan already there. The plan is made
        from scratch, not from the history: each start repairs its round against the real history."""
        if course is None:
            return ()
        plan = self._plans.get(course.key)
        if plan is None:
            if not compute:
                return ()
            cohort_id, ids, learners, constraints = course.key
            budget = min(self.ctx.course_budget, (peer_session.starts_at - self.ctx.clock.now()).total_seconds() / 4)
            if budget <= 0:
                return ()
            plan = await plan_ahead(
                learners,
                peer_session.format,
                peer_session.group_size,
                len(ids),
                (),
                constraints,
                seed=cohort_id,
                now=None,
                time_budget=budget,
            )
            self._plans[course.key] = plan
        return plan[course.index] if course.index < len(plan) else ()

    async def ahead_settled(self) -> None:
        """Wait until the work done ahead has caught up (tests, and a demo that wants the best draft)."""
        while self._ahead:
            await asyncio.gather(*self._ahead.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop the work done ahead (the process is stopping): a search already running ends on its own."""
        tasks = list(self._ahead.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def clear(self, tx: AsyncSession, session_id: int) -> None:
        for membership in (
            await tx.exec(select(GroupMembership).where(GroupMembership.session_id == session_id))
        ).all():
            await tx.delete(membership)
        await tx.flush()
        for group in (await tx.exec(select(PeerGroup).where(PeerGroup.session_id == session_id))).all():
            await tx.delete(group)
        await tx.flush()

    async def apply_draft(
        self, tx: AsyncSession, peer_session: PeerSession, learners: list[Learner]
    ) -> list[Text | str]:
        """Keep the trainer's draft at start: absentees leave it, newcomers join the smallest groups they may."""
        assert peer_session.id is not None
        wanted = {int(learner.id) for learner in learners}
        groups = await queries.groups(tx, peer_session.id)
        memberships = (
            await tx.exec(select(GroupMembership).where(GroupMembership.session_id == peer_session.id))
        ).all()
        placed = set()
        for membership in memberships:
            if membership.member_id in wanted:
                placed.add(membership.member_id)
            else:
                await tx.delete(membership)
        await tx.flush()
        members_of = {g.id: {m.id for m, _ in ms if m.id in wanted} for g, ms in groups}
        sizes = {gid: len(ids) for gid, ids in members_of.items()}
        apart = (await self._constraints(tx, peer_session.cohort_id)).apart

        def clashes(member_id: int, gid: int | None) -> int:
            return sum(frozenset({str(member_id), str(other)}) in apart for other in members_of[gid])

        for member_id in sorted(wanted - placed):
            # The smallest group holding nobody they are kept apart from; none free: they wait for a group
            # (`place_arrivals`), a keep-apart rule is never broken.
            free = [gid for gid in sizes if not clashes(member_id, gid)]
            if not free:
                continue
            group_id = min(free, key=lambda gid: (sizes[gid], gid or 0))
            assert group_id is not None
            tx.add(
                GroupMembership(
                    session_id=peer_session.id, group_id=group_id, member_id=member_id, joined_at=self.ctx.clock.now()
                )
            )
            sizes[group_id] += 1
            members_of[group_id].add(member_id)
        low, high = size_bounds(peer_session.format, peer_session.group_size)
        warnings: list[Text | str] = [
            _(
                "Group {number} has {count} learner(s), outside {low}–{high}.",
                number=g.number,
                count=sizes[g.id],
                low=low,
                high=high,
            )
            for g, _members in groups
            if not low <= sizes[g.id] <= high
        ]
        return warnings + await self._apart_warnings(tx, [(g.number, members_of[g.id]) for g, _ms in groups], apart)

    async def _apart_warnings(
        self, tx: AsyncSession, groups: Sequence[tuple[int, Collection[int | None]]], apart: frozenset[frozenset[str]]
    ) -> list[Text | str]:
        """A kept draft can hold a pair the trainer has since kept apart: say so, so they can move one."""
        found: list[tuple[int, int, int]] = []
        for number, ids in groups:
            ordered = sorted(i for i in ids if i is not None)
            found += [
                (number, a, b)
                for x, a in enumerate(ordered)
                for b in ordered[x + 1 :]
                if frozenset({str(a), str(b)}) in apart
            ]
        if not found:
            return []
        users = {
            m.id: m.user_id
            for m in (await tx.exec(select(Member).where(col(Member.id).in_({i for f in found for i in f[1:]})))).all()
        }
        return [
            _(
                "Group {number} holds <@{first}> and <@{second}>, who are kept apart: move one of them with "
                "`/peer group move`.",
                number=number,
                first=users[a],
                second=users[b],
            )
            for number, a, b in found
        ]

    async def place_arrivals(self, tx: AsyncSession, peer_session: PeerSession) -> Arrivals:
        """Place the learners who checked in after the groups were formed (`bot.grouping.arrivals`): join a
        group, form a new one with other waiting learners, or keep waiting. The session row is locked first
        (`FOR NO KEY UPDATE`: it does not wait for the rows that merely reference the session), so
        simultaneous check-ins on PostgreSQL see each other's placements (SQLite has one writer anyway)."""
        assert peer_session.id is not None
        await tx.exec(select(PeerSession.id).where(PeerSession.id == peer_session.id).with_for_update(key_share=True))
        groups = await queries.groups(tx, peer_session.id)
        layout = {g.id or 0: {str(m.id) for m, _role in ms} for g, ms in groups}
        placed = {m for ids in layout.values() for m in ids}
        present = await tx.exec(
            select(Attendance.member_id, Attendance.checked_in_at).where(
                Attendance.session_id == peer_session.id, col(Attendance.status).in_(rules.PRESENT)
            )
        )
        waiting = [
            Waiting(str(member_id), since or self.ctx.clock.now())
            for member_id, since in present.all()
            if str(member_id) not in placed
        ]
        if not waiting:
            return Arrivals()
        low, high = size_bounds(peer_session.format, peer_session.group_size)
        plan = plan_arrivals(
            layout,
            waiting,
            (await self._constraints(tx, peer_session.cohort_id)).apart,
            low=low,
            high=high,
            now=self.ctx.clock.now(),
            wait_alone=rules.WAIT_ALONE,
        )
        by_id = {g.id or 0: g for g, _ms in groups}
        result = Arrivals(waiting=[int(m) for m in plan.waiting], blocked=[int(m) for m in plan.blocked])
        for member_id, key in plan.joins:
            self._join(tx, peer_session, int(member_id), key)
            result.joined.append((int(member_id), by_id[key]))
        number = max((g.number for g in by_id.values()), default=0)
        for new_members in plan.new_groups:
            number += 1
            levels = await self._levels(tx, peer_session.cohort_id, [int(m) for m in new_members])
            group = PeerGroup(session_id=peer_session.id, number=number, level_spread=max(levels) - min(levels))
            tx.add(group)
            await tx.flush()
            assert group.id is not None
            for member_id in new_members:
                self._join(tx, peer_session, int(member_id), group.id)
                result.joined.append((int(member_id), group))
            result.formed += 1
        if result.joined:  # the periodic sweep finds the same waiting learners often: log placements only
            self.ctx.audit(
                tx,
                "peerbot",
                "arrivals.placed",
                peer_session.id,
                joined=[(m, g.number) for m, g in result.joined],
                waiting=result.waiting,
            )
        return result

    def _join(self, tx: AsyncSession, peer_session: PeerSession, member_id: int, group_id: int) -> None:
        assert peer_session.id is not None
        tx.add(
            GroupMembership(
                session_id=peer_session.id, group_id=group_id, member_id=member_id, joined_at=self.ctx.clock.now()
            )
        )

    @staticmethod
    async def _levels(tx: AsyncSession, cohort_id: int, member_ids: list[int]) -> list[int]:
        rows = await tx.exec(
            select(Enrollment.level).where(Enrollment.cohort_id == cohort_id, col(Enrollment.member_id).in_(member_ids))
        )
        return list(rows.all()) or [0]

    async def announce_arrivals(
        self, peer_session: PeerSession, arrivals: Arrivals, *, skip: Collection[str] = ()
    ) -> None:
        """After the commit: breakouts for the new groups, the joiners added to theirs, and a DM to each placed
        learner (but those in `skip`, who read it in their reply) and to the trainers about learners a keep-apart rule
        keeps waiting (once each)."""
        if arrivals.formed:
            await self.ensure_breakouts(peer_session.short_id)
        platform = await self.ctx.platform_of(peer_session)
        async with self.ctx.db.transaction() as tx:
            rows = [(await tx.get(Member, m), await tx.get(PeerGroup, g.id), g.channel_id) for m, g in arrivals.joined]
            blocked = [await tx.get(Member, m) for m in arrivals.blocked]
            told = await self._already_told(tx, peer_session, blocked)
            trainers = await queries.trainers(tx, peer_session) if len(told) < len(blocked) else []
        for member, group, had_breakout in rows:
            if member is None or group is None:
                continue
            if had_breakout:  # a breakout made just now (`ensure_breakouts`) was created with its members
                await platform.add_members(ChannelRef(platform.name, group.channel_id), [queries.ref(member)])
            if member.user_id not in skip:
                text = t(
                    self.ctx.locale_of(member),
                    "You are in group {number} of “{title}”.",
                    number=group.number,
                    title=peer_session.title,
                )
                await self.ctx.safe_dm(platform, member, Message(text))
        for member in blocked:
            if member is None or member.id in told:
                continue
            for trainer in trainers:
                text = t(
                    self.ctx.locale_of(trainer),
                    "<@{user}> checked in to `{session}` but every group holds someone they are kept apart from: "
                    "they wait for a new group. Move someone with `/peer group move`, or lift the rule.",
                    user=member.user_id,
                    session=peer_session.short_id,
                )
                await self.ctx.safe_dm(platform, trainer, Message(text))

    async def _already_told(
        self, tx: AsyncSession, peer_session: PeerSession, blocked: list[Member | None]
    ) -> set[int]:
        """Learners the trainers were already told about (an audit row each), marking the others as told."""
        told: set[int] = set()
        for member in blocked:
            if member is None or member.id is None:
                continue
            seen = await queries.count(
                tx,
                AuditEvent,
                AuditEvent.session_id == peer_session.id,
                AuditEvent.action == "arrivals.blocked",
                AuditEvent.actor == str(member.id),
            )
            if seen:
                told.add(member.id)
            else:
                self.ctx.audit(tx, str(member.id), "arrivals.blocked", peer_session.id)
        return told

    # ------------------------------------------------------------------ group commands (trainer control)

    async def group_show(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
            assert peer_session.id is not None
            groups = await queries.groups(tx, peer_session.id)
            draft = rules.groups_are_draft(peer_session.state)
            if not groups and draft:
                await self.form(tx, peer_session, await self.pool(tx, peer_session, preview=True), seed=peer_session.id)
                groups = await queries.groups(tx, peer_session.id)
        locale = self.ctx.reply_locale(actor)
        if not groups:
            return Reply(
                t(locale, "Session `{session}` has no groups (nobody to group).", session=peer_session.short_id)
            )
        lines = [
            t(locale, "*Draft groups of `{session}`*", session=peer_session.short_id)
            if draft
            else t(locale, "*Groups of `{session}`*", session=peer_session.short_id)
        ]
        for group, members in groups:
            names = ", ".join(
                f"<@{m.user_id}>" + (f" ({label(locale, GROUP_ROLES, role)})" if role != "member" else "")
                for m, role in members
            )
            lines.append(
                t(
                    locale,
                    "{number}. {names} — level spread {spread}, repeated pairs {repeated}",
                    number=group.number,
                    names=names,
                    spread=group.level_spread,
                    repeated=group.repeated_pairs,
                )
            )
        if draft:
            lines.append(
                t(
                    locale,
                    "At start, learners who have not checked in leave their group and late check-ins join the "
                    "smallest. Adjust with `/peer group move|swap|reshuffle {session}`.",
                    session=peer_session.short_id,
                )
            )
        return Reply("\n".join(lines))

    async def group_reshuffle(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
            assert peer_session.id is not None
            if not rules.groups_are_draft(peer_session.state):
                raise Invalid(
                    _(
                        "Session `{session}` has started: its groups can only be adjusted with `/peer group move` or "
                        "`/peer group swap`.",
                        session=peer_session.short_id,
                    )
                )
            rounds = await queries.count(
                tx, AuditEvent, AuditEvent.session_id == peer_session.id, AuditEvent.action == "group.reshuffle"
            )
            await self.clear(tx, peer_session.id)
            await self.form(
                tx,
                peer_session,
                await self.pool(tx, peer_session, preview=True),
                seed=peer_session.id * 1000 + rounds + 1,
                fresh=True,
            )
            self.ctx.audit(tx, actor.user.key, "group.reshuffle", peer_session.id)
        return await self.group_show(actor, command, channel)

    async def _membership_of(
        self, tx: AsyncSession, peer_session: PeerSession, platform: str, user_id: str
    ) -> GroupMembership:
        row = (
            await tx.exec(
                select(GroupMembership)
                .join(Member, col(Member.id) == col(GroupMembership.member_id))
                .where(
                    GroupMembership.session_id == peer_session.id,
                    Member.platform == platform,
                    Member.user_id == user_id,
                )
            )
        ).first()
        if row is None:
            raise NotFound(
                _("<@{user}> is in no group of `{session}`.", user=user_id, session=peer_session.short_id),
                _("See the groups with `/peer group show {session}`.", session=peer_session.short_id),
            )
        return row

    async def _editable_groups(self, tx: AsyncSession, actor: Actor, short_id: str) -> PeerSession:
        peer_session = await queries.peer_session(tx, actor, short_id)
        if not rules.groups_editable(peer_session.state):
            raise Invalid(
                _(
                    "Session `{session}` is {state}; its groups can no longer change.",
                    session=peer_session.short_id,
                    state=Text(SESSION_STATES[peer_session.state]),
                )
            )
        assert peer_session.id is not None
        if not await queries.groups(tx, peer_session.id):
            raise Invalid(
                _("Session `{session}` has no groups yet.", session=peer_session.short_id),
                _("See the draft with `/peer group show {session}` first.", session=peer_session.short_id),
            )
        return peer_session

    async def group_move(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        user_id = command.users[0][0]
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            peer_session = await self._editable_groups(tx, actor, command.session)
            target = (
                await tx.exec(
                    select(PeerGroup).where(PeerGroup.session_id == peer_session.id, PeerGroup.number == command.group)
                )
            ).first()
            if target is None:
                raise NotFound(
                    _(
                        "Session `{session}` has no group {number}.",
                        session=peer_session.short_id,
                        number=command.group,
                    ),
                    _("See the groups with `/peer group show {session}`.", session=peer_session.short_id),
                )
            membership = await self._membership_of(tx, peer_session, actor.user.platform, user_id)
            old = await tx.get(PeerGroup, membership.group_id)
            assert old is not None and target.id is not None
            if old.id == target.id:
                return Reply(t(locale, "<@{user}> is already in group {number}.", user=user_id, number=target.number))
            await self._refuse_apart(tx, peer_session, membership.member_id, user_id, target.id)
            membership.group_id, membership.role = target.id, "member"
            self.ctx.audit(tx, actor.user.key, "group.move", peer_session.id, user=user_id, to=target.number)
        note = await self._follow_breakout(actor.user.platform, user_id, old, target, locale)
        return Reply(
            t(
                locale,
                "<@{user}> moved from group {old} to group {new}.",
                user=user_id,
                old=old.number,
                new=target.number,
            )
            + note
        )

    async def group_swap(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        (a, _level_a), (b, _level_b) = command.users
        locale = self.ctx.reply_locale(actor)
        if a == b:
            raise Invalid(_("Mention two different people to swap."), grammar.usage_hint("group swap"))
        async with self.ctx.db.transaction() as tx:
            peer_session = await self._editable_groups(tx, actor, command.session)
            first = await self._membership_of(tx, peer_session, actor.user.platform, a)
            second = await self._membership_of(tx, peer_session, actor.user.platform, b)
            group_a, group_b = await tx.get(PeerGroup, first.group_id), await tx.get(PeerGroup, second.group_id)
            assert group_a is not None and group_b is not None
            if group_a.id == group_b.id:
                return Reply(t(locale, "<@{first}> and <@{second}> are already in the same group.", first=a, second=b))
            assert group_a.id is not None and group_b.id is not None
            await self._refuse_apart(tx, peer_session, first.member_id, a, group_b.id, leaving=second.member_id)
            await self._refuse_apart(tx, peer_session, second.member_id, b, group_a.id, leaving=first.member_id)
            first.group_id, second.group_id = second.group_id, first.group_id
            first.role, second.role = second.role, first.role
            self.ctx.audit(tx, actor.user.key, "group.swap", peer_session.id, users=[a, b])
        notes = await self._follow_breakout(actor.user.platform, a, group_a, group_b, locale)
        notes += await self._follow_breakout(actor.user.platform, b, group_b, group_a, locale)
        return Reply(
            t(
                locale,
                "<@{first}> (now group {first_group}) and <@{second}> (now group {second_group}) swapped.",
                first=a,
                first_group=group_b.number,
                second=b,
                second_group=group_a.number,
            )
            + notes
        )

    # ------------------------------------------------------------------ breakouts

    async def _follow_breakout(
        self, platform_name: str, user_id: str, old: PeerGroup, new: PeerGroup, locale: str
    ) -> str:
        """During a session the breakout membership follows the group. The move is recorded already: when the
        workspace does not let the app remove members (admins only), the person joins the new breakout anyway
        and the returned note (else "") tells the trainer they are still in the old one."""
        platform = self.ctx.platform(platform_name)
        ref = UserRef(platform_name, user_id)
        note = ""
        if old.channel_id:
            try:
                await platform.remove_member(ChannelRef(platform_name, old.channel_id), ref)
            except PlatformError as exc:
                log.warning("could not remove %s from group %s's breakout: %s", user_id, old.number, exc)
                note = " " + t(
                    locale,
                    "They are still in group {number}'s channel: the platform refused to remove them ({code}).",
                    number=old.number,
                    code=exc.code,
                )
        if new.channel_id:
            await platform.add_members(ChannelRef(platform_name, new.channel_id), [ref])
        return note

    async def _reach_left_out(
        self,
        platform: Platform,
        left_out: list[LeftOut],
        peer_session: PeerSession,
        group: PeerGroup,
        members: Sequence[tuple[Member, str]],
        trainers: Sequence[Member],
        video: str,
    ) -> None:
        """A member the breakout refused (a guest…) does not stop the group: they get a DM with their group's
        members and the video room, and the trainers are told who and why. A DM that fails is logged."""
        if not left_out:
            return
        by_id = {m.user_id: m for m, _role in members}
        everyone = ", ".join(f"<@{m.user_id}>" for m, _role in members)
        for out in left_out:
            member = by_id.get(out.user.id)
            if member is None:  # a trainer: they are told below with the others
                continue
            locale = self.ctx.locale_of(member)
            sections = (Section(t(locale, "Video room: {url}", url=video)),) if video else ()
            text = t(
                locale,
                "You could not be added to the private channel of group {number} of “{title}”, so here is your "
                "group: {members}. Reach them by DM or in the video room.",
                number=group.number,
                title=peer_session.title,
                members=everyone,
            )
            try:
                await platform.send_dm(out.user, Message(text, sections=sections))
            except PlatformError as exc:
                log.warning("could not DM %s, left out of group %s: %s", out.user.id, group.number, exc)
        for trainer in trainers:
            locale = self.ctx.locale_of(trainer)
            who = "; ".join(
                f"<@{out.user.id}>: {t(locale, LEFT_OUT_REASONS.get(out.reason, LEFT_OUT_REASONS['refused']))}"
                for out in left_out
            )
            text = t(
                locale,
                "Group {number} of “{title}” runs without some of its members in its channel ({who}). "
                "Each learner left out got a DM with the group's members and the video room.",
                number=group.number,
                title=peer_session.title,
                who=who,
            )
            try:
                await platform.send_dm(queries.ref(trainer), Message(text))
            except PlatformError as exc:
                log.warning("could not tell trainer %s about group %s: %s", trainer.user_id, group.number, exc)

    async def _tell_threads(
        self,
        platform: Platform,
        peer_session: PeerSession,
        trainers: Sequence[Member],
        exc: ChannelsRestricted,
    ) -> None:
        """One sentence to the trainers: why the groups are in threads, and which admin setting would change it."""
        log.warning("session %s: channels cannot be created (%s); groups run in threads", peer_session.short_id, exc)
        for trainer in trainers:
            text = t(
                self.ctx.locale_of(trainer),
                "Only workspace admins may create channels here, so the groups of “{title}” work in threads of the "
                "cohort channel; for private breakout channels, ask an admin to let members create them ({setting}).",
                title=peer_session.title,
                setting=exc.setting or exc.code,
            )
            await self.ctx.safe_dm(platform, trainer, Message(text))

    async def ensure_breakouts(self, short_id: str) -> int:
        """Create the missing breakout channels; resumable after a crash or a rate-limit failure."""
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, None, short_id)
            assert peer_session.id is not None
            groups = [(g, ms) for g, ms in await queries.groups(tx, peer_session.id) if not g.channel_id]
            trainers = await queries.trainers(tx, peer_session)
        if not groups:
            return 0
        platform = await self.ctx.platform_of(peer_session)
        locale = self.ctx.settings.locale
        created = 0
        restricted: ChannelsRestricted | None = None
        for group, members in groups:
            name = f"peer-{peer_session.short_id}-g{group.number}"
            refs = [queries.ref(m) for m, _ in members] + [queries.ref(t_) for t_ in trainers]
            if restricted is None:
                try:
                    channel = await platform.create_private_channel(
                        name, refs, peer_session.title[:250], group_key=f"{peer_session.short_id}:{group.number}"
                    )
                except ChannelsRestricted as exc:
                    if not isinstance(platform, OpensThreads) or not peer_session.channel_id:
                        raise
                    restricted = exc
                    await self._tell_threads(platform, peer_session, trainers, exc)
            if restricted is not None:
                assert isinstance(platform, OpensThreads)
                channel = await platform.open_thread(
                    ChannelRef(platform.name, peer_session.channel_id),
                    Message(
                        t(
                            locale,
                            "🧵 Group {number} of “{title}”: {members}. Your group works in this thread.",
                            number=group.number,
                            title=peer_session.title,
                            members=", ".join(f"<@{m.user_id}>" for m, _role in members),
                        )
                    ),
                )
            async with self.ctx.db.transaction() as tx:
                await tx.exec(
                    update(PeerGroup)
                    .where(col(PeerGroup.id) == group.id)  # type: ignore[call-overload]
                    .values(channel_id=channel.id)
                )
            created += 1
            video = (
                self.ctx.settings.video_url_template.replace("{room}", name)
                if self.ctx.settings.video_url_template
                else ""
            )
            if isinstance(platform, ReportsLeftOut):
                await self._reach_left_out(
                    platform, platform.take_left_out(channel), peer_session, group, members, trainers, video
                )
            tutor = next((m for m, role in members if role == "tutor"), None)
            sections = [
                Section(
                    t(
                        locale,
                        FORMAT_TEXTS[peer_session.format],
                        tutor=f"<@{tutor.user_id}>" if tutor else t(locale, "the most experienced of you"),
                    )
                )
            ]
            if peer_session.objectives:
                sections.insert(0, Section(t(locale, "*Objectives*: {objectives}", objectives=peer_session.objectives)))
            sections.append(Section(t(locale, GROUND_RULES)))
            if video:
                sections.append(Section(t(locale, "Video room: {url}", url=video)))
            await platform.post(
                channel,
                Message(
                    t(
                        locale,
                        "👋 Welcome to group {number} of “{title}”: {members}.",
                        number=group.number,
                        title=peer_session.title,
                        members=", ".join(f"<@{m.user_id}>" for m, _role in members),
                    ),
                    sections=tuple(sections),
                    buttons=(check_in_button(peer_session.short_id, locale),),
                ),
            )
        return created


LEFT_OUT_REASONS = {
    "single_channel_guest": N_("a single-channel guest can be in only one channel"),
    "guest": N_("guest accounts cannot be added to channels by the app"),
    "deactivated": N_("the account is deactivated"),
    "refused": N_("the platform refused to add them"),
}


def check_in_button(short_id: str, locale: str) -> Button:
    """The check-in button, on the announcement and again in each breakout for whoever has not yet."""
    return Button(str(actions.CheckIn(short_id)), t(locale, "Check in"), ButtonStyle.PRIMARY)


@dataclass
class Arrivals:
    """What `Groups.place_arrivals` did: who joined which group (new groups included), how many groups it
    formed, who still waits, and who waits only because of a keep-apart rule."""

    joined: list[tuple[int, PeerGroup]] = field(default_factory=list)
    formed: int = 0
    waiting: list[int] = field(default_factory=list)
    blocked: list[int] = field(default_factory=list)

    def group_of(self, member_id: int) -> PeerGroup | None:
        return next((g for m, g in self.joined if m == member_id), None)
