"""`BriefCache`: what an async read returns, reused for a few seconds by everyone who asks."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BriefCache(Generic[T]):
    """The result of `read()`, read again only when it is `max_age` seconds old.

    One read at a time, however many callers ask meanwhile; `latest` is the last result (or
    `initial` before the first), for synchronous code that follows a `current()` without a pause.
    """

    def __init__(self, read: Callable[[], Awaitable[T]], max_age: float, initial: T):
        self._read = read
        self.max_age = max_age
        self.latest = initial
        self._read_at = -max_age
        self._reading: asyncio.Task | None = None

    async def current(self) -> T:
        if time.monotonic() - self._read_at >= self.max_age:
            if self._reading is None:
                self._reading = asyncio.create_task(self._refresh())
            # Shielded: a caller that gives up does not cancel the read the others wait for.
            await asyncio.shield(self._reading)
        return self.latest

    async def _refresh(self):
        try:
            started = time.monotonic()
            self.latest = await self._read()
            self._read_at = started
        finally:
            self._reading = None
