"""Acting as a person on the local platform: the adapter half of `adapters/local/`."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.local.platform import LocalPlatform, find_button, latest
from bot import actions
from bot.inbound import Actor, CoreAPI
from bot.messages import Form, Reply
from bot.refs import ChannelRef, MessageRef, UserRef

WORKSPACE = "local-workspace"


@dataclass
class LocalUser:
    """A person in the local workspace: every method goes through the core's adapter entry points."""

    core: CoreAPI
    platform: LocalPlatform
    user_id: str
    name: str = ""
    trainer: bool = False
    admin: bool = False
    workspace: str = WORKSPACE

    @property
    def actor(self) -> Actor:
        return Actor(
            UserRef(self.platform.name, self.user_id),
            self.name or self.user_id,
            self.trainer,
            self.workspace,
            is_admin=self.admin,
        )

    async def command(self, text: str, channel: ChannelRef | None = None) -> Reply:
        return await self.core.handle_command(self.actor, text, channel)

    async def click(self, action: str | actions.Action, channel: ChannelRef | None = None) -> Reply:
        """A button click: `action` as built by `bot.actions` (e.g. `CheckIn(short)`) or a button's raw id."""
        return await self.core.handle_action(self.actor, str(action), channel)

    async def react(self, message: MessageRef, emoji: str = "white_check_mark") -> Reply | None:
        return await self.core.handle_reaction(self.actor, message, emoji)

    async def open_form(self, action: str | actions.Action) -> Form:
        form = await self.core.form_for(self.actor, str(action))
        if not isinstance(form, Form):
            raise AssertionError(f"expected a form, got {form.text}")
        return form

    async def submit(self, form: Form, values: dict[str, str]) -> Reply:
        return await self.core.handle_form(self.actor, form.form_id, values)

    def dm_button(self, prefix: str) -> str:
        """The newest DM button of this person starting with `prefix` (e.g. `survey:open:`)."""
        return find_button(latest(self.platform.dms_to(self.user_id), prefix), prefix)

    def invite(self, questionnaire: actions.Questionnaire) -> actions.OpenQuestionnaire:
        """The "Answer" button of the newest invitation to `questionnaire` in this person's DMs."""
        for posted in reversed(self.platform.dms_to(self.user_id)):
            for button in posted.message.buttons:
                try:
                    action = actions.parse_click(button.action_id)
                except actions.BadActionId:
                    continue
                if isinstance(action, actions.OpenQuestionnaire) and action.questionnaire is questionnaire:
                    return action
        raise LookupError(f"no {questionnaire} invitation in the DMs of {self.user_id}")
