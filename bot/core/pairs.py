"""Pair rules of a cohort: `/peer cohort apart|together|unpair`. A trainer keeps two learners apart (the
engine never groups them together, and a move or swap that would is refused) or together (the engine
groups them when the split allows). One rule per pair: setting the other kind replaces it. The rules are
read where groups are formed (`groups`).
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import grammar
from bot.core import queries, rules
from bot.core.context import Context
from bot.errors import Invalid, NotFound
from bot.i18n import N_, _, t
from bot.inbound import Actor
from bot.messages import Reply
from bot.refs import ChannelRef
from storage.models import Cohort, Enrollment, GroupMembership, Member, PairConstraint, PeerGroup, PeerSession

# (kind, replaced) → the reply; the kinds stay English in storage and audit, the replies are msgids.
_SET = {
    ("apart", False): N_("<@{first}> and <@{second}> will be kept apart in the groups of cohort `{cohort}`."),
    ("together", False): N_(
        "<@{first}> and <@{second}> will be kept together in the groups of cohort `{cohort}` whenever the split allows."
    ),
    ("apart", True): N_(
        "<@{first}> and <@{second}> were kept together in cohort `{cohort}`; that rule is replaced: they will now "
        "be kept apart."
    ),
    ("together", True): N_(
        "<@{first}> and <@{second}> were kept apart in cohort `{cohort}`; that rule is replaced: they will now be "
        "kept together whenever the split allows."
    ),
}
_ALREADY = {
    "apart": N_("<@{first}> and <@{second}> are already kept apart in cohort `{cohort}`."),
    "together": N_("<@{first}> and <@{second}> are already kept together in cohort `{cohort}`."),
}
_LIFTED = {
    "apart": N_("<@{first}> and <@{second}> are no longer kept apart in cohort `{cohort}`."),
    "together": N_("<@{first}> and <@{second}> are no longer kept together in cohort `{cohort}`."),
}


class Pairs:
    """The trainer's keep-apart and keep-together rules, per cohort."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def _cohort_learner(self, tx: AsyncSession, actor: Actor, cohort: Cohort, user_id: str) -> Member:
        row = (
            await tx.exec(
                select(Member)
                .join(Enrollment, col(Enrollment.member_id) == col(Member.id))
                .where(
                    Member.platform == actor.user.platform,
                    Member.user_id == user_id,
                    Enrollment.cohort_id == cohort.id,
                    Enrollment.role == "learner",
                )
            )
        ).first()
        if row is None:
            raise Invalid(
                _(
                    "<@{user}> is not a learner of cohort `{cohort}`. Nothing changed.",
                    user=user_id,
                    cohort=cohort.name,
                ),
                _("Enroll them first with `/peer cohort add {cohort} <@{user}>`.", cohort=cohort.name, user=user_id),
            )
        return row

    async def _rule(self, tx: AsyncSession, cohort: Cohort, a: int, b: int) -> PairConstraint | None:
        low, high = sorted((a, b))
        found = await tx.exec(
            select(PairConstraint).where(
                PairConstraint.cohort_id == cohort.id,
                PairConstraint.member_a_id == low,
                PairConstraint.member_b_id == high,
            )
        )
        return found.first()

    async def cohort_pair(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        """`cohort apart` and `cohort together`."""
        kind = command.name.split()[1]
        (first, _level_a), (second, _level_b) = command.users
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            cohort = await queries.cohort(tx, actor, command.cohort)
            a = await self._cohort_learner(tx, actor, cohort, first)
            b = await self._cohort_learner(tx, actor, cohort, second)
            assert a.id is not None and b.id is not None
            rule = await self._rule(tx, cohort, a.id, b.id)
            if rule is not None and rule.kind == kind:
                return Reply(t(locale, _ALREADY[kind], first=first, second=second, cohort=cohort.name))
            trainer = await queries.actor_member(tx, actor)
            assert cohort.id is not None and trainer.id is not None
            replaced = rule is not None
            if rule is None:
                low, high = sorted((a.id, b.id))
                rule = PairConstraint(
                    cohort_id=cohort.id,
                    member_a_id=low,
                    member_b_id=high,
                    kind=kind,
                    created_at=self.ctx.clock.now(),
                    created_by=trainer.id,
                )
                tx.add(rule)
            else:
                rule.kind, rule.created_at, rule.created_by = kind, self.ctx.clock.now(), trainer.id
            self.ctx.audit(
                tx, actor.user.key, f"cohort.{kind}", None, cohort=cohort.name, users=[first, second], replaced=replaced
            )
            shared = await self._shared_groups(tx, cohort, a, b) if kind == "apart" else []
        lines = [t(locale, _SET[(kind, replaced)], first=first, second=second, cohort=cohort.name)]
        lines += [
            t(
                locale,
                "Session `{session}` already has them both in group {number}: move one of them with "
                "`/peer group move` (or `/peer group reshuffle {session}` before the start).",
                session=short_id,
                number=number,
            )
            for short_id, number in shared
        ]
        return Reply("\n".join(lines))

    async def _shared_groups(self, tx: AsyncSession, cohort: Cohort, a: Member, b: Member) -> list[tuple[str, int]]:
        """Groups not yet over (drafts and running sessions) that already hold both: the rule applies to the
        groups formed from now on, so the trainer is told which existing ones to fix."""
        rows = await tx.exec(
            select(PeerSession.short_id, PeerGroup.number, GroupMembership.member_id)
            .join(PeerGroup, col(PeerGroup.session_id) == col(PeerSession.id))
            .join(GroupMembership, col(GroupMembership.group_id) == col(PeerGroup.id))
            .where(
                PeerSession.cohort_id == cohort.id,
                col(PeerSession.state).in_(rules.UPCOMING),
                col(GroupMembership.member_id).in_((a.id, b.id)),
            )
            .order_by(col(PeerSession.starts_at), col(PeerGroup.number))
        )
        seen: dict[tuple[str, int], set[int]] = {}
        for short_id, number, member_id in rows.all():
            seen.setdefault((short_id, number), set()).add(member_id)
        return [key for key, members in seen.items() if len(members) == 2]

    async def cohort_unpair(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        (first, _level_a), (second, _level_b) = command.users
        async with self.ctx.db.transaction() as tx:
            cohort = await queries.cohort(tx, actor, command.cohort)
            found = await tx.exec(
                select(Member).where(Member.platform == actor.user.platform, col(Member.user_id).in_((first, second)))
            )
            ids = {m.user_id: m.id or 0 for m in found.all()}
            rule = await self._rule(tx, cohort, ids.get(first, 0), ids.get(second, 0))
            if rule is None:
                raise NotFound(
                    _(
                        "<@{first}> and <@{second}> have no pair rule in cohort `{cohort}`. Nothing changed.",
                        first=first,
                        second=second,
                        cohort=cohort.name,
                    ),
                    _("See the cohort's rules with `/peer cohort show {cohort}`.", cohort=cohort.name),
                )
            kind = rule.kind
            await tx.delete(rule)
            self.ctx.audit(
                tx, actor.user.key, "cohort.unpair", None, cohort=cohort.name, users=[first, second], kind=kind
            )
        return Reply(t(self.ctx.reply_locale(actor), _LIFTED[kind], first=first, second=second, cohort=cohort.name))
