"""What every adapter does the same way around a core call, written once.

Slack and Discord both want an interaction acknowledged within 3 seconds. `answer` runs the core call as a
task: when the reply comes within the budget it goes out in the acknowledgement itself (`ack_now`);
otherwise the adapter acknowledges at once (`defer`, "working on it") and the reply follows when it comes
(`follow_up`). Each adapter supplies those callbacks; the timing and the error handling live here.

Nothing raises out of here into the platform library: an unexpected exception of the core becomes a polite
error reply carrying a short reference, which is also logged with the traceback, so a person's report can
be matched to the log line.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.i18n import N_, t
from bot.messages import Reply

log = logging.getLogger(__name__)

FAILED = N_(
    "Something went wrong on my side: what you asked may be only partly done, so check before asking again. "
    "Please try again in a minute; if it keeps happening, tell your trainer the reference `{ref}`."
)
UNSHOWN = N_(
    "What you asked is done, but I could not show you my answer here. "
    "If you need it, ask again; if it keeps happening, tell your trainer the reference `{ref}`."
)

Deliver = Callable[[Reply], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ProbeLine:
    """One line of `peerbot check-config --probe`: a capability held or not, and when not, the fix."""

    ok: bool
    text: str
    fix: str = ""
    needed: bool = True  # False: informative only, does not change the exit status

    def render(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.needed else "note")
        return f"  {mark} {self.text}" + (f" — fix: {self.fix}" if self.fix and not self.ok else "")


def new_reference() -> str:
    """A short id that ties what a person was told to the traceback in the log."""
    return secrets.token_hex(3)


def failure(ref: str, locale: str = "") -> Reply:
    """The polite reply for a failure on our side; `extra["ref"]` is the reference it shows."""
    return Reply(t(locale, FAILED, ref=ref), ok=False, extra={"ref": ref})


def unshown(ref: str, locale: str = "") -> Reply:
    """The work was done but its answer could not be delivered: say so, so nobody does it twice."""
    return Reply(t(locale, UNSHOWN, ref=ref), ok=False, extra={"ref": ref})


async def guarded(work: Awaitable[Reply], what: str = "core call", locale: str = "") -> Reply:
    """The core's reply, or `failure(...)` when it raised (logged with its traceback and the reference)."""
    try:
        return await work
    except Exception:
        ref = new_reference()
        log.exception("%s failed (ref %s)", what, ref)
        return failure(ref, locale)


async def answer(
    work: Awaitable[Reply],
    *,
    budget: float,
    ack_now: Deliver,
    defer: Callable[[], Awaitable[None]],
    follow_up: Deliver,
    progress: Callable[[float], Awaitable[None]] | None = None,
    progress_every: float = 20.0,
    what: str = "core call",
    locale: str = "",
    on_failure: Deliver | None = None,
    on_ack: Callable[[float], None] | None = None,
) -> None:
    """Deliver `work`'s reply within the platform's acknowledgement window; never raises.

    - the reply settles within `budget` seconds: `ack_now(reply)`;
    - otherwise (always, when `budget <= 0`): `defer()` at once, then `follow_up(reply)`; meanwhile
      `progress(seconds_elapsed)` every `progress_every` seconds, when given.

    A failing callback (the platform refused the message, the interaction expired) is logged with a
    reference; the core call still runs to its end, then `on_failure` gets a short reply saying whether the
    work was done (`unshown`) or not (`failure`), so that the person is never left without an answer.

    `on_ack(seconds)` is told how long the acknowledgement (`ack_now` or `defer`) took from this call (for the
    ack-latency histogram).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.ensure_future(guarded(work, what, locale))
    try:
        if budget > 0:
            await asyncio.wait({task}, timeout=budget)
        if task.done():
            await ack_now(task.result())
            if on_ack is not None:
                on_ack(loop.time() - started)
            return
        await defer()
        if on_ack is not None:
            on_ack(loop.time() - started)
        if progress is not None:
            while not task.done():
                await asyncio.wait({task}, timeout=progress_every)
                if not task.done():
                    await progress(loop.time() - started)
        await follow_up(await task)
    except Exception:
        ref = new_reference()
        log.exception("could not deliver the reply to a %s (ref %s)", what, ref)
        reply = await task  # `guarded` never raises: the core's work completes even when its answer is lost
        if on_failure is not None:
            try:
                await on_failure(unshown(ref, locale) if reply.ok else failure(ref, locale))
            except Exception:
                log.exception("could not tell the person either (ref %s)", ref)
