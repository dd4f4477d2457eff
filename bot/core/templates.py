"""The trainer's own questionnaires: `/peer questionnaire edit <cohort>` opens the cohort's template as one
editable text (see `bot.templates` for why one text), its submission replaces the template, and
`peerbot questionnaire import` does the same from YAML. Sessions copy the template when they end
(`items_for`), so an edit never changes what a session already asked.
"""

from __future__ import annotations

import json

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import actions, grammar, templates
from bot.core import queries
from bot.core.context import Context
from bot.errors import Invalid, NotFound, PeerError
from bot.i18n import _, t
from bot.inbound import Actor
from bot.messages import Form, Reply, TextField
from bot.refs import ChannelRef
from bot.templates import TemplateItem
from storage.models import Cohort, QuestionnaireTemplate, Workspace


async def items_for(tx: AsyncSession, cohort_id: int) -> list[TemplateItem]:
    """The cohort's questionnaire as it stands now: its template, or the default."""
    row = (await tx.exec(select(QuestionnaireTemplate).where(QuestionnaireTemplate.cohort_id == cohort_id))).first()
    if row is None or row.items_json in {"", "[]"}:
        return templates.default_items()
    return [TemplateItem.from_json(entry) for entry in json.loads(row.items_json)]


class Templates:
    """Edit and import cohort questionnaire templates."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def edit_form(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        """The form, prefilled with the last refused draft if there is one, else the current questionnaire."""
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            cohort = await queries.cohort(tx, actor, command.cohort)
            assert cohort.id is not None
            row = await self._row(tx, cohort.id)
            items = await items_for(tx, cohort.id)
        draft = row.draft if row is not None else ""
        intro = [
            t(
                locale,
                "Questionnaire of cohort `{cohort}`, asked after each session that ends from now on; sessions "
                "already ended keep the questions they asked.",
                cohort=cohort.name,
            ),
            t(locale, templates.SYNTAX),
        ]
        if draft:
            intro.append(t(locale, "This is the draft you submitted last; it had a mistake to fix."))
        form = Form(
            str(actions.SaveQuestionnaire(cohort.id)),
            t(locale, "Questionnaire"),
            (
                TextField(
                    "items",
                    t(locale, "Items, one a line"),
                    multiline=True,
                    required=True,
                    initial=draft or templates.render(items),
                ),
            ),
            submit_label=t(locale, "Save"),
            intro="\n".join(intro),
        )
        return Reply("\n".join(intro), form=form)

    async def save(self, actor: Actor, cohort_id: int, text: str) -> Reply:
        """The submitted form: the new template, or a polite error naming the line (the draft is kept)."""
        locale = self.ctx.reply_locale(actor)
        async with self.ctx.db.transaction() as tx:
            cohort = await self._cohort(tx, actor, cohort_id)
        try:
            items = templates.parse(text)
        except PeerError as exc:
            await self._keep_draft(actor, cohort, text)
            hint = _(
                "{syntax}\nYour text is kept: run `/peer questionnaire edit {cohort}` again to fix it.",
                syntax=_(templates.SYNTAX),
                cohort=cohort.name,
            )
            raise Invalid(exc.message_text, hint, field="items") from None
        await self.store(cohort, items, by=actor.user.key)
        return Reply(
            t(
                locale,
                "Questionnaire of `{cohort}` saved: {count} items, asked after each session that ends from now on.",
                cohort=cohort.name,
                count=len(items),
            )
        )

    async def store(self, cohort: Cohort, items: list[TemplateItem], *, by: str) -> None:
        """Replace the cohort's template (and drop any refused draft); the audit trail keeps the items."""
        assert cohort.id is not None
        payload = json.dumps([item.as_json() for item in items], ensure_ascii=False)
        async with self.ctx.db.transaction() as tx:
            row = await self._row(tx, cohort.id)
            if row is None:
                row = QuestionnaireTemplate(cohort_id=cohort.id, updated_at=self.ctx.clock.now())
                tx.add(row)
            row.items_json, row.draft, row.updated_at, row.updated_by = payload, "", self.ctx.clock.now(), by
            self.ctx.audit(tx, by, "questionnaire.save", None, cohort=cohort.name, items=json.loads(payload))

    async def import_yaml(self, cohort_name: str, data: str, *, workspace: str = "") -> tuple[Cohort, int]:
        """`peerbot questionnaire import`: the admin on the server replaces a cohort's template from YAML."""
        items = templates.parse_yaml(data)
        async with self.ctx.db.transaction() as tx:
            query = select(Cohort, Workspace).join(Workspace, col(Workspace.id) == col(Cohort.workspace_id))
            found = (await tx.exec(query.where(Cohort.name == cohort_name))).all()
            if workspace:
                found = [(c, w) for c, w in found if workspace in {w.external_id, f"{w.platform}:{w.external_id}"}]
        if not found:
            raise NotFound(_("No cohort named `{cohort}`.", cohort=cohort_name))
        if len(found) > 1:
            names = ", ".join(f"{w.platform}:{w.external_id}" for _c, w in found)
            raise Invalid(
                _("Several workspaces have a cohort named `{cohort}`: {names}.", cohort=cohort_name, names=names),
                _("Say which with --workspace."),
            )
        cohort = found[0][0]
        await self.store(cohort, items, by="cli")
        return cohort, len(items)

    async def _keep_draft(self, actor: Actor, cohort: Cohort, text: str) -> None:
        assert cohort.id is not None
        async with self.ctx.db.transaction() as tx:
            row = await self._row(tx, cohort.id)
            if row is None:
                row = QuestionnaireTemplate(cohort_id=cohort.id, updated_at=self.ctx.clock.now(), updated_by="")
                tx.add(row)
            row.draft = text[: templates.MAX_TEXT * 2]

    @staticmethod
    async def _row(tx: AsyncSession, cohort_id: int) -> QuestionnaireTemplate | None:
        query = select(QuestionnaireTemplate).where(QuestionnaireTemplate.cohort_id == cohort_id)
        return (await tx.exec(query)).first()

    @staticmethod
    async def _cohort(tx: AsyncSession, actor: Actor, cohort_id: int) -> Cohort:
        """The form's cohort, in the actor's workspace, which they train (a form outlives its opening)."""
        cohort = await tx.get(Cohort, cohort_id)
        home = await queries.workspace(tx, actor)
        if cohort is None or cohort.workspace_id != home.id:
            raise NotFound(_("This cohort no longer exists."))
        await queries.require_trainer(tx, actor, cohort)
        return cohort
