"""Fakes for the crashes tests need: real platform behaviour, with a failure at one chosen instant."""

from __future__ import annotations

from typing import Any

from adapters.local.platform import LocalPlatform
from bot.messages import Message
from bot.refs import MessageRef, UserRef


class SimulatedCrash(Exception):
    """The process 'dies' here: nothing after this point of the use case runs."""


class CrashAfterDm:
    """The local platform, except that the process dies right after a DM is delivered, before the core can
    record it: the worst moment for an outbox."""

    def __init__(self, inner: LocalPlatform) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    async def send_dm(self, user: UserRef, message: Message) -> MessageRef:
        await self.inner.send_dm(user, message)
        raise SimulatedCrash("simulated crash between the DM and its bookkeeping")


class CrashAt:
    """The local platform, except that the process dies at the first call of `method`: before the call
    reaches the platform (`done=False`) or right after it did (`done=True`)."""

    def __init__(self, inner: LocalPlatform, method: str, *, done: bool) -> None:
        self.inner, self.method, self.done = inner, method, done
        self.name = inner.name

    def __getattr__(self, attribute: str) -> Any:
        real = getattr(self.inner, attribute)
        if attribute != self.method:
            return real

        async def crash(*args: Any, **kwargs: Any) -> Any:
            if self.done:
                await real(*args, **kwargs)
            raise SimulatedCrash(f"simulated crash {'after' if self.done else 'before'} {attribute}")

        return crash
