"""`/peer export`, `/peer note` and the chart of `/peer report`: documents a trainer gets in their DM, and the
notes that are the evidence of Qualiopi indicator 32.

Documents are built by `bot.documents` from the same rows as the CSV files; the drawing runs in a worker thread
(`export_bytes`, `audit_pack_bytes`), so a long export leaves the event loop free and the adapter defers its ack
as for any slow command. A file the platform refuses for its size gets a polite answer naming the shell command
that writes it instead; nothing is recorded by an export besides its line in the audit trail.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sqlmodel import col, select

from bot import grammar
from bot.core import queries
from bot.core.context import Context, log
from bot.documents.targets import Target
from bot.errors import Invalid, NotFound
from bot.i18n import _, t
from bot.inbound import Actor
from bot.messages import Reply
from bot.port import FileTooLarge, PlatformError, Undeliverable, Upload
from bot.refs import ChannelRef
from bot.reports import collect, session_notes
from storage.models import PeerSession, SessionNote

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "application/zip",
    "audit": "application/zip",
}


def file_name(target: Target, fmt: str) -> str:
    """The name of the uploaded file: what it is and what it covers, as `peerbot export` names its files."""
    if fmt == "audit":
        return f"{target.name}-audit-pack.zip"
    if fmt == "csv":
        return f"{target.name}-evidence-csv.zip"
    return f"{target.name}-evidence.{fmt}"


def megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f}"


class Exports:
    """Documents sent to a trainer's DM, and the trainers' notes."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def resolve(self, actor: Actor, command: grammar.Command) -> grammar.Command:
        """`export <name>`: a session of the actor's workspace with that short id wins over a cohort of that
        name (as in `peerbot export`); the command then names one or the other, for the authorization check."""
        async with self.ctx.db.transaction() as tx:
            try:
                await queries.peer_session(tx, actor, command.cohort)
            except NotFound:
                return command
        return replace(command, session=command.cohort, cohort="")

    async def _target(self, actor: Actor, command: grammar.Command) -> Target:
        async with self.ctx.db.transaction() as tx:
            if command.session:
                peer_session = await queries.peer_session(tx, actor, command.session)
                return Target("session", peer_session.short_id, [peer_session.short_id])
            cohort = await queries.cohort(tx, actor, command.cohort)
            shorts = await tx.exec(
                select(PeerSession.short_id)
                .where(PeerSession.cohort_id == cohort.id)
                .order_by(col(PeerSession.starts_at), col(PeerSession.id))
            )
            return Target("cohort", cohort.name, list(shorts.all()))

    async def export(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        """`/peer export <cohort|session> [pdf|xlsx|csv|audit]`: the file goes to the trainer's DM."""
        fmt = command.texts[0]
        target = await self._target(actor, command)
        locale = self.ctx.reply_locale(actor)
        if fmt == "audit" and target.kind == "session":
            raise Invalid(
                _("The audit pack covers a whole cohort, not one session."),
                _("Type `/peer export <cohort> audit`, or export this session as pdf, xlsx or csv."),
            )
        if not target.sessions:
            raise NotFound(
                _("Cohort `{cohort}` has no session yet, so there is nothing to export.", cohort=target.name),
                _("Plan one with `/peer session plan {cohort} …`.", cohort=target.name),
            )
        # Imported here: the documents read the core's queries, so a module-level import would be circular.
        from bot.documents.export import export_bytes
        from bot.documents.pack import audit_pack_bytes

        if fmt == "audit":
            data = await audit_pack_bytes(self.ctx.db, self.ctx.settings, target, self.ctx.clock.now(), locale)
        else:
            data = await export_bytes(self.ctx.db, self.ctx.settings, target, fmt, locale)
        name = file_name(target, fmt)
        what = {
            "pdf": t(locale, "the attendance sheets (PDF)"),
            "xlsx": t(locale, "the evidence workbook (XLSX)"),
            "csv": t(locale, "the three CSV files (attendance, feedback, retention) in a ZIP"),
            "audit": t(locale, "the audit pack (ZIP, open index.html first)"),
        }[fmt]
        comment = t(locale, "Export of `{target}`: {what}.", target=target.name, what=what)
        upload = Upload(name, data, title=name, comment=comment, content_type=CONTENT_TYPES[fmt])
        shell = f"peerbot audit-pack {target.name}" if fmt == "audit" else f"peerbot export {target.name} {fmt}"
        problem = await self._send(actor, upload, shell=shell, locale=locale)
        if problem is not None:
            return Reply(problem, ok=False)
        async with self.ctx.db.transaction() as tx:
            session_id = None
            if target.kind == "session":
                session_id = (await queries.peer_session(tx, actor, target.name)).id
            self.ctx.audit(tx, actor.user.key, "export", session_id, target=target.name, format=fmt, size=len(data))
        return Reply(
            t(
                locale,
                "I have sent you `{name}` ({size} MB) by DM.",
                name=name,
                size=megabytes(len(data)),
            )
        )

    async def _send(self, actor: Actor, upload: Upload, *, shell: str, locale: str) -> str | None:
        """Upload to the actor's DM; None when it went, else what to tell them (the file is not lost: the
        shell command writes the same file)."""
        platform = self.ctx.platform(actor.user.platform)
        try:
            await platform.upload_file(actor.user, upload)
        except FileTooLarge as exc:
            limit = t(locale, " (at most {limit} MB)", limit=megabytes(exc.limit)) if exc.limit else ""
            return t(
                locale,
                "`{name}` is {size} MB, more than this chat platform lets me upload{limit}. Ask whoever runs "
                "peerbot to write it from the shell with `{command}`, or export less (one session, or pdf or "
                "csv instead of the audit pack).",
                name=upload.name,
                size=megabytes(len(upload.data)),
                limit=limit,
                command=shell,
            )
        except Undeliverable:
            return t(
                locale,
                "I cannot send you a direct message, so I could not give you `{name}`. Allow direct messages "
                "from this app, then ask again.",
                name=upload.name,
            )
        except PlatformError as exc:
            log.warning("upload of %s to %s refused: %s", upload.name, actor.user.key, exc)
            return t(
                locale,
                "The chat platform refused the file `{name}` ({reason}). Try again in a minute; the shell command "
                "`{command}` writes the same file.",
                name=upload.name,
                reason=exc.code,
                command=shell,
            )
        return None

    async def chart(self, actor: Actor, short_id: str, summary: str, locale: str) -> str | None:
        """`/peer report`'s chart, uploaded with the report's text to the trainer's DM; None when it went, else
        the line the reply adds (the text report is the reply itself, so nothing is lost)."""
        from bot.documents.charts import session_chart

        evidence = await collect(self.ctx.db, [short_id])
        image = await asyncio.to_thread(session_chart, evidence, locale)
        upload = Upload(f"{short_id}-chart.png", image, title=f"{short_id}-chart.png", comment=summary,
                        content_type="image/png")  # fmt: skip
        return await self._send(actor, upload, shell=f"peerbot export {short_id} pdf", locale=locale)

    async def note(self, actor: Actor, command: grammar.Command, channel: ChannelRef | None) -> Reply:
        """`/peer note <session> "<text>"`: stored with its author and time; shown in `/peer report` and listed
        in the audit pack under indicator 32."""
        text = command.texts[0]
        async with self.ctx.db.transaction() as tx:
            peer_session = await queries.peer_session(tx, actor, command.session)
            author = await queries.actor_member(tx, actor)
            assert peer_session.id is not None and author.id is not None
            tx.add(
                SessionNote(session_id=peer_session.id, author_id=author.id, text=text, created_at=self.ctx.clock.now())
            )
            self.ctx.audit(tx, actor.user.key, "note", peer_session.id, length=len(text))
            count = await queries.count(tx, SessionNote, SessionNote.session_id == peer_session.id)
        return Reply(
            t(
                self.ctx.reply_locale(actor),
                "Note saved on `{session}` ({count} note(s) so far). It shows in `/peer report {session}` and in the "
                "audit pack.",
                session=peer_session.short_id,
                count=count,
            )
        )

    async def note_lines(self, short_id: str, locale: str) -> list[str]:
        """The report's lines for the session's notes."""
        notes = await session_notes(self.ctx.db, [short_id])
        if not notes:
            return []
        lines = [t(locale, "*Trainer's notes*")]
        lines += [
            t(
                locale,
                "• {when}, {author}: {text}",
                when=self.ctx.fallback(n.written_at),
                author=n.author,
                text=n.text,
            )
            for n in notes
        ]
        return lines
