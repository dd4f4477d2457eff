"""Every button and form id, built and parsed in this one module.

One scheme serves every platform, `"<feature>:<verb>:<entity>"` (Slack `action_id`/`callback_id`, Discord
`custom_id`), so a click after a restart still finds its session, delivery or group. The code that makes a
button and the code that handles its click name the same class here, and `parse` is the only reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class BadActionId(ValueError):
    """The id is not one of ours (an old button, a forged click): answered politely, never raised further."""


class Questionnaire(StrEnum):
    """The feature word of a questionnaire's ids; `kind` is what storage calls it."""

    SURVEY = "survey"
    QUIZ = "quiz"
    FOLLOWUP = "followup"

    @classmethod
    def of_kind(cls, kind: str) -> Questionnaire:
        """The questionnaire that delivers `kind` (both retention quizzes → quiz, the follow-up and the
        observer's → followup, feedback and its reminder → survey)."""
        if kind in {"retention", "retention2"}:
            return cls.QUIZ
        if kind in {"followup", "observation"}:
            return cls.FOLLOWUP
        return cls.SURVEY


@dataclass(frozen=True, slots=True)
class PrepDone:
    """ "I have prepared" on the prep post or its reminder."""

    session: str

    def __str__(self) -> str:
        return f"prep:done:{self.session}"


@dataclass(frozen=True, slots=True)
class CheckIn:
    """The check-in button on the announcement and in each breakout."""

    session: str

    def __str__(self) -> str:
        return f"checkin:in:{self.session}"


@dataclass(frozen=True, slots=True)
class OpenQuestionnaire:
    """ "Answer" under a questionnaire DM: opens the whole form."""

    questionnaire: Questionnaire
    delivery: int

    def __str__(self) -> str:
        return f"{self.questionnaire}:open:{self.delivery}"


@dataclass(frozen=True, slots=True)
class SubmitQuestionnaire:
    """The id of the questionnaire form itself; its item buttons derive from it."""

    questionnaire: Questionnaire
    delivery: int

    def __str__(self) -> str:
        return f"{self.questionnaire}:submit:{self.delivery}"

    def answer(self, item: str, value: str) -> AnswerItem:
        return AnswerItem(self.questionnaire, self.delivery, item, value)

    def open_text(self, item: str) -> OpenTextItem:
        return OpenTextItem(self.questionnaire, self.delivery, item)


@dataclass(frozen=True, slots=True)
class AnswerItem:
    """One answer button, for platforms that show a form one item at a time (Discord: at most 5 components
    per modal): the click records that item's answer."""

    VERBS: ClassVar[dict[Questionnaire, str]] = {
        Questionnaire.SURVEY: "rate",
        Questionnaire.QUIZ: "pick",
        Questionnaire.FOLLOWUP: "rate",
    }

    questionnaire: Questionnaire
    delivery: int
    item: str
    value: str

    def __str__(self) -> str:
        verb = self.VERBS[self.questionnaire]
        return f"{self.questionnaire}:{verb}:{self.delivery}.{self.item}.{self.value}"


@dataclass(frozen=True, slots=True)
class OpenTextItem:
    """A button that opens a one-field form for an open question (item-at-a-time rendering)."""

    questionnaire: Questionnaire
    delivery: int
    item: str

    def __str__(self) -> str:
        return f"{self.questionnaire}:text:{self.delivery}.{self.item}"

    @property
    def form(self) -> SubmitQuestionnaire:
        return SubmitQuestionnaire(self.questionnaire, self.delivery)


@dataclass(frozen=True, slots=True)
class OpenTakeaways:
    """ "Share takeaways" in a breakout at wrap-up."""

    group: int

    def __str__(self) -> str:
        return f"takeaways:open:{self.group}"


@dataclass(frozen=True, slots=True)
class SubmitTakeaways:
    """The takeaways form."""

    group: int

    def __str__(self) -> str:
        return f"takeaways:submit:{self.group}"


@dataclass(frozen=True, slots=True)
class Nudge:
    """ "Send a friendly check-in" next to a learner at risk: opens the editable message."""

    cohort: int
    member: int

    def __str__(self) -> str:
        return f"alerts:nudge:{self.cohort}.{self.member}"


@dataclass(frozen=True, slots=True)
class SendNudge:
    """The form of that message: submitting it sends the DM."""

    cohort: int
    member: int

    def __str__(self) -> str:
        return f"alerts:send:{self.cohort}.{self.member}"


@dataclass(frozen=True, slots=True)
class SaveQuestionnaire:
    """The form of `/peer questionnaire edit`: submitting it replaces the cohort's questionnaire."""

    cohort: int

    def __str__(self) -> str:
        return f"template:save:{self.cohort}"


@dataclass(frozen=True, slots=True)
class AcceptAgreement:
    """ "I agree" under a tutoring pair's objectives in its breakout."""

    group: int

    def __str__(self) -> str:
        return f"tutoring:accept:{self.group}"


@dataclass(frozen=True, slots=True)
class ReportMeeting:
    """One answer under the end-of-session DM to a tutoring pair member: `minutes` 0 means they did not meet."""

    group: int
    minutes: int

    def __str__(self) -> str:
        return f"tutoring:met:{self.group}.{self.minutes}"


@dataclass(frozen=True, slots=True)
class OpenWork:
    """ "Submit my work" (peer review): opens the submission form of the session."""

    session: str

    def __str__(self) -> str:
        return f"review:work:{self.session}"


@dataclass(frozen=True, slots=True)
class SubmitWork:
    """The submission form (peer review)."""

    session: str

    def __str__(self) -> str:
        return f"review:hand:{self.session}"


@dataclass(frozen=True, slots=True)
class OpenReview:
    """ "Review" under a reviewer's DM: opens the rubric form of one assignment."""

    assignment: int

    def __str__(self) -> str:
        return f"review:open:{self.assignment}"


@dataclass(frozen=True, slots=True)
class SubmitReview:
    """The rubric form of one assignment."""

    assignment: int

    def __str__(self) -> str:
        return f"review:rate:{self.assignment}"


@dataclass(frozen=True, slots=True)
class ForgetMe:
    """The confirmation form of `/peer forget-me` (the person is the one who submits it, never an id in it)."""

    def __str__(self) -> str:
        return "forget:submit:me"


Action = (
    PrepDone
    | CheckIn
    | OpenQuestionnaire
    | SubmitQuestionnaire
    | AnswerItem
    | OpenTextItem
    | OpenTakeaways
    | SubmitTakeaways
    | Nudge
    | SendNudge
    | SaveQuestionnaire
    | ForgetMe
    | AcceptAgreement
    | ReportMeeting
    | OpenWork
    | SubmitWork
    | OpenReview
    | SubmitReview
)
Click = (
    PrepDone
    | CheckIn
    | OpenQuestionnaire
    | AnswerItem
    | OpenTextItem
    | OpenTakeaways
    | Nudge
    | AcceptAgreement
    | ReportMeeting
    | OpenWork
    | OpenReview
)
"""What a button can carry (the others are form ids)."""
Submit = SubmitQuestionnaire | SubmitTakeaways | SendNudge | SaveQuestionnaire | ForgetMe | SubmitWork | SubmitReview
"""What a submitted form can carry."""

_MAX_ID = 255  # Slack's action_id limit; Discord's custom_id allows 100, our ids stay well under both


def _number(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BadActionId(raw)
    return int(raw)


def _session(raw: str, whole: str) -> str:
    """A session short id as the grammar writes them: lower-case letters and digits, at most 16."""
    if not (raw.isascii() and raw.isalnum() and raw == raw.lower() and len(raw) <= 16):
        raise BadActionId(whole)
    return raw


def parse(raw: str) -> Action:
    """The action an id names; `BadActionId` for anything we did not build."""
    if len(raw) > _MAX_ID:
        raise BadActionId(raw[:40])
    feature, _sep, rest = raw.partition(":")
    verb, _sep2, entity = rest.partition(":")
    if not entity:
        raise BadActionId(raw)
    match feature, verb:
        case "prep", "done":
            return PrepDone(entity)
        case "checkin", "in":
            return CheckIn(entity)
        case "takeaways", "open":
            return OpenTakeaways(_number(entity))
        case "takeaways", "submit":
            return SubmitTakeaways(_number(entity))
        case "template", "save":
            return SaveQuestionnaire(_number(entity))
        case "forget", "submit" if entity == "me":
            return ForgetMe()
        case "tutoring", "accept":
            return AcceptAgreement(_number(entity))
        case "tutoring", "met":
            group, _dot, minutes = entity.partition(".")
            return ReportMeeting(_number(group), _number(minutes))
        case "review", "work":
            return OpenWork(_session(entity, raw))
        case "review", "hand":
            return SubmitWork(_session(entity, raw))
        case "review", "open":
            return OpenReview(_number(entity))
        case "review", "rate":
            return SubmitReview(_number(entity))
        case (("survey" | "quiz" | "followup"), _):
            return _parse_questionnaire(Questionnaire(feature), verb, entity, raw)
        case ("alerts", ("nudge" | "send")):
            cohort, _dot, member = entity.partition(".")
            pair = (_number(cohort), _number(member))
            return Nudge(*pair) if verb == "nudge" else SendNudge(*pair)
    raise BadActionId(raw)


def _parse_questionnaire(questionnaire: Questionnaire, verb: str, entity: str, raw: str) -> Action:
    if verb == "open":
        return OpenQuestionnaire(questionnaire, _number(entity))
    if verb == "submit":
        return SubmitQuestionnaire(questionnaire, _number(entity))
    if verb == "text":
        delivery, _sep, item = entity.partition(".")
        if item:
            return OpenTextItem(questionnaire, _number(delivery), item)
    if verb == AnswerItem.VERBS[questionnaire]:
        parts = entity.split(".", 2)
        if len(parts) == 3 and parts[1]:
            return AnswerItem(questionnaire, _number(parts[0]), parts[1], parts[2])
    raise BadActionId(raw)


def parse_click(raw: str) -> Click:
    """A button's action; a form id arriving as a click is not ours either."""
    action = parse(raw)
    if isinstance(action, Submit):
        raise BadActionId(raw)
    return action


def parse_submit(raw: str) -> Submit:
    """A form's action; a button id arriving as a form is not ours either."""
    action = parse(raw)
    if not isinstance(action, Submit):
        raise BadActionId(raw)
    return action
