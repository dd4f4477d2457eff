"""The `peerbot` command line (typer): run, demo, db upgrade, check-config and the platform helpers."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from bot.errors import PeerError
from bot.i18n import LOCALES
from bot.settings import ConfigError, Settings, describe, load_settings

if TYPE_CHECKING:
    from bot.documents.verify import SessionCheck
    from storage.db import Database

T = TypeVar("T")

cli = typer.Typer(
    help="peerbot: peer-learning sessions on Slack and Discord.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database commands.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
questionnaire_cli = typer.Typer(help="A cohort's post-session questionnaire.", no_args_is_help=True)
cli.add_typer(questionnaire_cli, name="questionnaire")


@cli.command()
def run() -> None:
    """Start the adapters configured in the environment (.env)."""
    from bot.app import enabled_platforms
    from bot.app import run as run_app
    from bot.logs import configure

    settings = load_settings()
    configure(settings)
    if not enabled_platforms(settings):
        typer.echo(
            "peerbot: no chat platform is configured.\n"
            "  Slack: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode).\n"
            "  Discord: set DISCORD_TOKEN and DISCORD_GUILD_ID.\n"
            "Put them in .env (see .env.example). To see peerbot work without a platform, run `peerbot demo`.",
            err=True,
        )
        raise typer.Exit(2)
    asyncio.run(run_app(settings))  # a ConfigError (database, HTTP port, a refused token) ends in `main`


@cli.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the evidence files and the demo database.")] = Path(
        "peerbot-demo"
    ),
    learners: Annotated[int, typer.Option(min=4, max=26, help="How many learners (4–26).")] = 12,
    seed: Annotated[int, typer.Option(help="Seed for levels and learner behaviour.")] = 7,
) -> None:
    """Run a whole peer-learning cycle on SQLite and the local platform with an accelerated clock."""
    from bot.demo import run_demo

    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run_demo(out, learners=learners, seed=seed))
    typer.echo(
        f"\nDone. Open {result.out_dir.resolve()} for attendance.csv, feedback.csv, retention.csv, chart.png "
        f"and audit-pack.zip (index.html inside maps the Qualiopi indicators to the evidence)."
    )


def _open_database() -> tuple[Settings, Database]:
    from bot.app import check_database
    from storage.db import Database

    settings = load_settings()
    asyncio.run(check_database(settings))
    return settings, Database(settings.database_url)


def _refused(exc: PeerError) -> NoReturn:
    typer.echo(f"peerbot: {exc.text()}", err=True)
    raise typer.Exit(2)


@cli.command()
def verify(
    target: Annotated[str, typer.Argument(help="A session's short id, or a cohort's name (all its sessions).")],
) -> None:
    """Recompute the evidence hash chain of a session or cohort; exit 1 naming the first altered record."""
    from bot.documents.targets import resolve
    from bot.documents.verify import check

    _settings, db = _open_database()

    async def _verify() -> list[SessionCheck]:
        return await check(db, (await resolve(db, target)).sessions)

    checks = _run_with(db, _verify)
    for item in checks:
        verdict = item.verdict
        if verdict.ok:
            typer.echo(f"{item.session}: intact, {verdict.links} record version(s), chain head {verdict.head}")
        else:
            typer.echo(
                f"{item.session}: ALTERED, first: {item.first}; {len(verdict.problems)} problem(s) in "
                f"{verdict.links} link(s)"
            )
    if any(not item.verdict.ok for item in checks):
        raise typer.Exit(1)


def _run_with(db: Database, work: Callable[[], Awaitable[T]]) -> T:
    """Migrate, run `work`, close the engine; a polite refusal (no such cohort) ends in one line, exit 2."""

    async def _go() -> T:
        try:
            await db.upgrade()
            return await work()
        finally:
            await db.dispose()

    try:
        return asyncio.run(_go())
    except PeerError as exc:
        _refused(exc)


@cli.command()
def export(
    target: Annotated[str, typer.Argument(help="A session's short id, or a cohort's name (all its sessions).")],
    fmt: Annotated[str, typer.Argument(metavar="[csv|xlsx|pdf]", help="csv (three files), xlsx or pdf.")] = "pdf",
    out: Annotated[Path | None, typer.Option(help="Folder for csv, file for xlsx and pdf.")] = None,
    locale: Annotated[str, typer.Option(help="en or fr (default: PEERBOT_LOCALE).")] = "",
) -> None:
    """Write the evidence of a session or cohort: the CSV files, one workbook, or the attendance sheets in PDF."""
    from bot.documents.export import FORMATS
    from bot.documents.export import export as write
    from bot.documents.targets import resolve

    if fmt not in FORMATS:
        typer.echo(f"peerbot: the format is one of {', '.join(FORMATS)}, not {fmt!r}.", err=True)
        raise typer.Exit(2)
    settings, db = _open_database()
    language = _language(locale, settings)
    path = out or Path(f"{target}-evidence" if fmt == "csv" else f"{target}-evidence.{fmt}")

    async def _export() -> list[Path]:
        return await write(db, settings, await resolve(db, target), fmt, path, language)

    for written in _run_with(db, _export):
        typer.echo(f"Wrote {written.resolve()}")


@cli.command("audit-pack")
def audit_pack(
    cohort: Annotated[str, typer.Argument(help="The cohort's name.")],
    out: Annotated[Path, typer.Option(help="The ZIP file to write.")] = Path("audit-pack.zip"),
    locale: Annotated[str, typer.Option(help="en or fr (default: PEERBOT_LOCALE).")] = "",
) -> None:
    """Every document of a cohort in one ZIP, with an index mapping the Qualiopi indicators to their evidence."""
    from datetime import UTC, datetime

    from bot.documents.pack import audit_pack as write
    from bot.documents.targets import resolve

    settings, db = _open_database()
    language = _language(locale, settings)

    async def _pack() -> Path:
        return await write(db, settings, await resolve(db, cohort, cohort_only=True), out, datetime.now(UTC), language)

    typer.echo(f"Wrote {_run_with(db, _pack).resolve()}")


def _language(locale: str, settings: Settings) -> str:
    if locale and locale not in LOCALES:
        typer.echo(f"peerbot: --locale is one of {', '.join(LOCALES)}.", err=True)
        raise typer.Exit(2)
    return locale or settings.locale


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to DATABASE_URL."""
    from bot.app import check_database
    from storage.db import Database

    settings = load_settings()

    async def _upgrade() -> None:
        await check_database(settings)
        db = Database(settings.database_url)
        try:
            await db.upgrade()
        finally:
            await db.dispose()

    asyncio.run(_upgrade())
    typer.echo("Database is up to date.")


@questionnaire_cli.command("import")
def questionnaire_import(
    cohort: Annotated[str, typer.Argument(help="The cohort's name.")],
    file: Annotated[Path, typer.Argument(help="A YAML list of items: type (likert, choice, text), en, fr, options.")],
    workspace: Annotated[
        str, typer.Option(help="The workspace id (or platform:id) when several have a cohort of this name.")
    ] = "",
) -> None:
    """Replace a cohort's post-session questionnaire (3 to 10 items) from a YAML file; sessions that have
    already ended keep the questions they asked."""
    from bot.clock import SystemClock
    from bot.core import Context
    from bot.core.templates import Templates

    try:
        data = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"peerbot: cannot read {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    settings, db = _open_database()

    async def _import() -> str:
        found, count = await Templates(Context(db, settings, SystemClock())).import_yaml(
            cohort, data, workspace=workspace
        )
        return f"Questionnaire of {found.name}: {count} items saved; asked after each session that ends from now on."

    typer.echo(_run_with(db, _import))


@cli.command()
def erase(
    member: Annotated[str, typer.Option(help="The person as platform:user_id, e.g. slack:U012ABC or discord:1234.")],
) -> None:
    """Erase a person: their name and platform id become a pseudonym, their free-text answers are removed;
    attendance and scores stay under the pseudonym for the audit trail."""
    from bot.app import check_database
    from bot.clock import SystemClock
    from bot.core import Context
    from bot.core.privacy import Privacy
    from storage.db import Database

    platform, _, user_id = member.partition(":")
    if not platform or not user_id:
        typer.echo("peerbot: give the person as platform:user_id, e.g. --member slack:U012ABC", err=True)
        raise typer.Exit(2)
    settings = load_settings()

    async def _erase() -> None:
        await check_database(settings)
        db = Database(settings.database_url)
        try:
            await db.upgrade()
            erased = await Privacy(Context(db, settings, SystemClock())).erase_member(platform, user_id, by="cli")
        finally:
            await db.dispose()
        if erased is None:
            typer.echo(f"peerbot: No member {member} is stored.", err=True)
            raise typer.Exit(1)
        typer.echo(
            f"Erased {member}: now {platform}:{erased.pseudonym}; {erased.answers} free-text answer(s) removed, "
            f"{erased.audit} audit entr(y/ies) rewritten, {erased.deliveries} queued DM(s) skipped."
        )

    asyncio.run(_erase())


@cli.command("check-config")
def check_config(
    probe: Annotated[
        bool,
        typer.Option(
            "--probe", help="Also contact each configured platform and check, capability by capability, what it allows."
        ),
    ] = False,
) -> None:
    """Print what is configured (secrets masked), then open the database: exit 2 with one line if it fails.

    With --probe, one line per platform capability, each failing one naming its fix; exit 2 unless everything
    the configuration needs is there."""
    from bot.app import check_database, enabled_platforms

    settings = load_settings()
    rows = describe(settings)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name.ljust(width)}  {value}")
    platforms = enabled_platforms(settings)
    typer.echo(f"\nPlatforms enabled: {', '.join(platforms) if platforms else 'none (try `peerbot demo`)'}")
    asyncio.run(check_database(settings))
    typer.echo("Database: opened, answers queries.")
    if probe and not asyncio.run(_probe_platforms(settings, platforms)):
        raise typer.Exit(2)


async def _probe_platforms(settings: Settings, platforms: list[str]) -> bool:
    """Print each platform's probe lines; True when every needed capability is there."""
    all_ok = True
    for name in platforms:
        if name == "slack":
            from adapters.slack.probe import probe as probe_slack

            lines = await probe_slack(settings)
        else:
            from adapters.discord.probe import probe as probe_discord

            lines = await probe_discord(settings)
        typer.echo(f"\n{name}:")
        for line in lines:
            typer.echo(line.render())
            all_ok = all_ok and (line.ok or not line.needed)
    return all_ok


@cli.command("slack-manifest")
def slack_manifest(
    request_url: Annotated[
        str, typer.Argument(help="Public base URL for HTTP mode, e.g. https://bot.example.org")
    ] = "",
    socket_mode: Annotated[bool, typer.Option("--socket-mode", help="Manifest for Socket Mode (no URL).")] = False,
) -> None:
    """Print the Slack app manifest (JSON) to paste at api.slack.com/apps → Create New App → From a manifest."""
    import json

    from adapters.slack.manifest import manifest

    if not request_url and not socket_mode:
        typer.echo(
            "peerbot: give the public URL Slack will call (e.g. `peerbot slack-manifest https://bot.example.org`),"
            " or use --socket-mode.",
            err=True,
        )
        raise typer.Exit(2)
    typer.echo(json.dumps(manifest(request_url, socket_mode=socket_mode), indent=2, ensure_ascii=False))


@cli.command("discord-invite-url")
def discord_invite_url() -> None:
    """Print the OAuth2 URL that adds the bot to a server with exactly the permissions it needs."""
    from adapters.discord.invite import invite_url

    settings = load_settings()
    if settings.discord_application_id is None:
        typer.echo("peerbot: set DISCORD_APPLICATION_ID (Developer Portal → General Information).", err=True)
        raise typer.Exit(2)
    typer.echo(invite_url(settings.discord_application_id))


def main() -> None:
    """Every configuration problem, from any command, ends the same way: one line naming the variable, exit 2."""
    try:
        cli()
    except ConfigError as exc:
        print(f"peerbot: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
