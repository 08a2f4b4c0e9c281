"""The adaptive in-flight limit: a semaphore that backs off under sustained rate limiting (AIMD, like TCP)."""

from __future__ import annotations

import asyncio
import collections
import math


class AdaptiveLimit:
    """A semaphore whose limit shrinks under sustained rate limiting and grows back on success.

    Additive increase, multiplicative decrease, as TCP does, but a cut needs
    *sustained* limiting: at least ``max(2, threshold × limit)`` of the last
    ``limit`` replies were 429/503. A provider's occasional 429 (1 % of replies,
    say) is retried after its Retry-After and leaves the limit alone; a hard rate
    cap (every other reply a 429) halves it within one round. ``acquire`` returns
    the limit's epoch; a rate limit seen by a request sent in an older epoch does
    not cut again, so one burst of 429s halves the limit once. After a cut the
    limit grows by one per ``limit // 8`` successes (about 12 % per round).
    """

    def __init__(self, limit: int, threshold: float = 0.05) -> None:
        self.max = self.limit = self.lowest = max(1, int(limit))
        self.threshold = threshold
        self.in_flight = 0
        self.epoch = 0
        self.cuts = 0
        self._credit = 0
        self._recent: collections.deque[bool] = collections.deque(maxlen=self.max)  # True = rate limited
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> int:
        """Wait for a free slot; return the current epoch."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return self.epoch
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was granted just before the cancel
            elif waiter in self._waiters:  # _wake may already have dropped the cancelled waiter
                self._waiters.remove(waiter)
            raise
        return self.epoch

    def release(self) -> None:
        """Give a slot back and wake waiters while there is room."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def rate_limited(self, epoch: int) -> None:
        """Record a 429/503; halve the limit if rate limiting is sustained (once per epoch)."""
        self._recent.append(True)
        if epoch != self.epoch:
            return
        window = list(self._recent)[-self.limit :]
        if sum(window) < max(2, math.ceil(self.threshold * self.limit)):
            return
        self.epoch += 1
        self.cuts += 1
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self._credit = 0
        self._recent.clear()  # the next cut needs fresh evidence

    def succeeded(self) -> None:
        """Record a success; below the maximum, allow one more in flight per ``limit // 8`` successes."""
        self._recent.append(False)
        if self.limit >= self.max:
            return
        self._credit += 1
        if self._credit >= max(1, self.limit // 8):
            self._credit = 0
            self.limit += 1
            self._wake()
