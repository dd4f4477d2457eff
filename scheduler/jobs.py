"""The jobs APScheduler stores: module-level functions carrying ids only; they call core use cases.

APScheduler persists a job as a reference to one of these functions plus its arguments, so a restarted
process finds them again; the running `Core` is looked up at call time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)
_core: Core | None = None


def bind(core: Core | None) -> None:
    """Attach the process's core (the composition root calls this before the scheduler starts)."""
    global _core
    _core = core


def _require() -> Core:
    if _core is None:
        raise RuntimeError("scheduler job fired before a Core was bound")
    return _core


async def run_session_step(short_id: str, step: str) -> None:
    results = await _require().advance_session(short_id)
    log.info("session %s step %s: %s", short_id, step, [r.detail for r in results])


async def drain_outbox() -> None:
    """The periodic sweep: learners waiting for a group too long are placed, then due DMs go out."""
    sent = await _require().sweep()
    if sent:
        log.info("outbox: %d DM(s) sent", sent)
