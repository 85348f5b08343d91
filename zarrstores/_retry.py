"""Bounded exponential backoff with jitter, shared by the backends' HTTP clients."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a request that failed transiently (5xx, reset, timeout).

    ``attempts`` counts the first try; delays grow as ``base * 2**n`` up to ``cap``, each
    multiplied by a random factor in [0.5, 1.5) so that many clients do not retry in step.
    """

    attempts: int = 5
    base: float = 0.1
    cap: float = 5.0
    timeout: float = 60.0
    """Seconds a request may go without progress (connecting, or no bytes moving either way)
    before it counts as failed; a large object that moves slowly is not cut off."""

    def delays(self) -> Iterator[float]:
        """The pauses between attempts (``attempts - 1`` of them)."""
        for n in range(self.attempts - 1):
            yield min(self.cap, self.base * 2**n) * (0.5 + random.random())


DEFAULT_RETRY = RetryPolicy()
