"""The trio retry helper: attempts, per-attempt deadlines, backoff, budget."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import trio

from ._classify import Classification, Severity, classify
from ._retry import RetryBudget, RetryPolicy
from .exceptions import RetriesExhausted

__all__ = ["Attempt", "retry"]

T = TypeVar("T")


@attrs.frozen
class Attempt:
    """One failed attempt in a retry history.

    Attributes:
        number: 1-based attempt number.
        classification: the verdict on its failure.
        error: ``repr`` of the exception (the object itself is not kept).
        delay: the wait chosen before the next attempt (None for the last).
        started: ``trio.current_time()`` when the attempt began.
    """

    number: int
    classification: Classification
    error: str
    delay: float | None
    started: float


async def retry(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
    timeout: float | None = None,
    budget: RetryBudget | None = None,
    node: str | None = None,
    operation: str | None = None,
) -> T:
    """Call ``fn`` until it succeeds, at most ``policy.retries + 1`` times.

    Each attempt runs under ``trio.fail_after(timeout)`` when ``timeout`` is
    given (the Go loop had no per-attempt timeout). Retrying stops at once on
    a persistent or critical failure, when the budget cannot pay for a retry,
    or when attempts run out. Cancellation is never caught: ``trio.Cancelled``
    propagates untouched. Failures of the monitor's own side (``Origin.LOCAL``)
    are retried like temporary ones but do not cost budget.

    Args:
        fn: the async callable to run, without arguments.
        policy: the backoff policy (default: the seed's).
        rng: randomness for jitter (default: a fresh ``random.Random()``).
        timeout: per-attempt deadline in seconds, or None.
        budget: a shared :class:`RetryBudget`, or None for unlimited.
        node: the node id, for the error raised.
        operation: the operation name, for the error raised.

    Returns:
        What ``fn`` returned.

    Raises:
        RetriesExhausted: with ``history`` holding every failed attempt and
            the last exception as ``__cause__``.
    """
    policy = policy or RetryPolicy()
    rng = rng or random.Random()
    history: list[Attempt] = []
    previous: float | None = None
    attempt = 0
    while True:
        started = trio.current_time()
        try:
            if timeout is None:
                result = await fn()
            else:
                with trio.fail_after(timeout):
                    result = await fn()
        except Exception as exc:  # trio.Cancelled is a BaseException: never caught.
            c = classify(exc)
            stop_reason = None
            if c.severity in (Severity.PERSISTENT, Severity.CRITICAL):
                stop_reason = f"{c.severity.value} failure, not retried"
            elif not policy.should_retry(attempt):
                stop_reason = f"all {policy.attempts} attempts failed"
            elif (
                budget is not None
                and c.counts_against_node
                and not budget.try_acquire(c)
            ):
                stop_reason = "retry budget exhausted"
            if stop_reason is not None:
                history.append(Attempt(attempt + 1, c, repr(exc), None, started))
                raise RetriesExhausted(
                    stop_reason,
                    history=history,
                    node=node,
                    operation=operation,
                    classification=c,
                    attempt=attempt + 1,
                    cause=exc,
                ) from exc
            # Retry-After dates are wall-clock; everything else uses trio's clock.
            wait = policy.delay_for(attempt, rng, c, now=time.time(), previous=previous)
            history.append(Attempt(attempt + 1, c, repr(exc), wait, started))
            previous = wait
            attempt += 1
            await trio.sleep(wait)
        else:
            if budget is not None:
                budget.record_success()
            return result
