"""The service layer: every use case of a peer-learning session, platform-neutral.

Adapters call the `Core` facade with an `Actor` and get a neutral `Reply` back. Each use case is one
transaction; platform calls happen outside the transaction (they can take seconds under rate limits) and
are written back in small transactions, so check-ins are never blocked behind channel creation.

`Core` is composed of one mixin per concern over `CoreBase` (see `base`): `views` (what people see),
`groups` (formation, trainer control, breakouts), `pairs` (a cohort's keep-apart and keep-together rules),
`attendance` (prep, check-in, absence), `outbox` (the DMs that must arrive once), `forms` (questionnaires
and takeaways), `timeline` (the session's steps), `commands` (the other `/peer` commands) and `facade`
(`Core` and its entry points). This package re-exports what other modules import, so
`from bot.core import Core, Actor, CHECKIN_OPENS` works as before.
"""

from bot.core.base import (
    ACTIVE_STATES,
    CHECK_EMOJI,
    CHECKIN_OPENS,
    DELIVERY_LEASE,
    LATE_AFTER,
    MAX_ATTEMPTS,
    PREP_REMINDER_BEFORE,
    SURVEY_OPEN_FOR,
    SURVEY_REMINDER_AFTER,
    WRAPUP_BEFORE_END,
    SchedulerPort,
    StepResult,
)
from bot.core.facade import Core
from bot.core.groups import FORMAT_TEXTS, GROUND_RULES
from bot.core.outbox import PREP_REMINDER
from bot.core.timeline import CHECKIN_ANNOUNCE, PREP_POST
from bot.inbound import Actor

__all__ = [
    "ACTIVE_STATES",
    "CHECKIN_ANNOUNCE",
    "CHECKIN_OPENS",
    "CHECK_EMOJI",
    "DELIVERY_LEASE",
    "FORMAT_TEXTS",
    "GROUND_RULES",
    "LATE_AFTER",
    "MAX_ATTEMPTS",
    "PREP_POST",
    "PREP_REMINDER",
    "PREP_REMINDER_BEFORE",
    "SURVEY_OPEN_FOR",
    "SURVEY_REMINDER_AFTER",
    "WRAPUP_BEFORE_END",
    "Actor",
    "Core",
    "SchedulerPort",
    "StepResult",
]
