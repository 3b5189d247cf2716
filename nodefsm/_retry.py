"""Retry policy and retry budget: pure, with the randomness injected.

The Go design's ``CalculateBackoff`` added its jitter after the cap (so the
delay could pass ``MaxDelay``), one caller added a second jitter on top, and
``MaxRetries`` meant different things in different places. Here:

- ``RetryPolicy.delay(attempt, rng)`` is the delay *before* retry number
  ``attempt + 1`` (``attempt`` counts from 0, as the seed's sequence does:
  100, 150, 225 ... ms). It is never negative and never above ``cap``.
- Jitter is kept at the cap: once the exponential term saturates, the delay
  is still spread over ``[cap / (1 + jitter), cap]`` so that a fleet of
  clients does not retry in lockstep.
- ``retries`` is the number of *retries*; a call makes ``retries + 1``
  attempts in all.
- No ``**`` on large exponents: attempts up to ``10**9`` and beyond never
  overflow.
"""

from __future__ import annotations

import enum
import math
import random
from typing import Self

import attrs

from ._classify import Category, Classification
from .exceptions import ConfigurationError

__all__ = ["Jitter", "RetryBudget", "RetryPolicy"]


class Jitter(enum.Enum):
    """How the random part of a delay is drawn.

    - ``PROPORTIONAL``: the seed's, ``d * (1 + U[0, j))``.
    - ``SYMMETRIC``: ``d * (1 + U[-j, j))`` (gRPC's connection backoff).
    - ``FULL``: ``U[0, d)`` (AWS "full jitter").
    - ``EQUAL``: ``d/2 + U[0, d/2)`` (AWS "equal jitter").
    - ``DECORRELATED``: ``min(cap, U[base, 3 * previous))`` (AWS).
    - ``NONE``: ``d`` exactly.
    """

    PROPORTIONAL = "proportional"
    SYMMETRIC = "symmetric"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"
    NONE = "none"


def _check_policy(p: RetryPolicy) -> None:
    problems = []
    if p.retries < 0:
        problems.append(f"retries={p.retries!r} must be >= 0")
    if not (p.base > 0 and math.isfinite(p.base)):
        problems.append(f"base={p.base!r} must be a finite number > 0")
    if not (math.isfinite(p.cap) and p.cap >= p.base):
        problems.append(f"cap={p.cap!r} must be finite and >= base ({p.base!r})")
    if not (math.isfinite(p.factor) and p.factor >= 1.0):
        problems.append(f"factor={p.factor!r} must be finite and >= 1")
    if not (0.0 <= p.jitter <= 1.0):
        problems.append(f"jitter={p.jitter!r} must be within [0, 1]")
    if problems:
        raise ConfigurationError("RetryPolicy: " + "; ".join(problems))


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter. ``RetryPolicy()`` is the seed's policy.

    Args:
        retries: retries after the first attempt (seed: 10).
        base: the first delay, seconds (seed: 0.1).
        cap: no delay exceeds this, seconds (seed: 30).
        factor: growth per attempt (seed: 1.5).
        jitter: the random fraction (seed: 0.15).
        mode: how jitter is drawn (seed: proportional).
    """

    retries: int = 10
    base: float = attrs.field(default=0.1, converter=float)
    cap: float = attrs.field(default=30.0, converter=float)
    factor: float = attrs.field(default=1.5, converter=float)
    jitter: float = attrs.field(default=0.15, converter=float)
    mode: Jitter = attrs.field(default=Jitter.PROPORTIONAL, converter=Jitter)

    def __attrs_post_init__(self) -> None:
        _check_policy(self)

    @classmethod
    def seed(cls) -> Self:
        """The Go design's policy (same as ``RetryPolicy()``)."""
        return cls()

    @classmethod
    def grpc(cls) -> Self:
        """gRPC's connection backoff: 1 s, x1.6, +-20 %, 120 s cap."""
        return cls(base=1.0, factor=1.6, jitter=0.2, cap=120.0, mode=Jitter.SYMMETRIC)

    @property
    def attempts(self) -> int:
        """Total attempts a call makes: ``retries + 1``."""
        return self.retries + 1

    def should_retry(self, attempt: int) -> bool:
        """Whether retry number ``attempt + 1`` is allowed (``attempt`` from 0)."""
        return 0 <= attempt < self.retries

    def base_delay(self, attempt: int) -> float:
        """The delay without jitter: ``min(cap, base * factor**attempt)``.

        Computed in log space so that huge ``attempt`` values cannot overflow.
        """
        if attempt <= 0:
            return self.base
        if self.factor == 1.0:
            return min(self.base, self.cap)
        # base * factor**attempt >= cap  <=>  attempt >= log(cap/base)/log(factor)
        saturate = math.log(self.cap / self.base) / math.log(self.factor)
        if attempt >= saturate:
            return self.cap
        return min(self.cap, self.base * self.factor**attempt)

    def delay(
        self,
        attempt: int,
        rng: random.Random,
        *,
        previous: float | None = None,
        retry_after: float | None = None,
    ) -> float:
        """The delay before the next attempt, in seconds, within ``[0, cap]``.

        Args:
            attempt: retries made so far (0 before the first retry).
            rng: the source of randomness (inject a seeded one in tests).
            previous: the previous delay, for ``DECORRELATED`` jitter.
            retry_after: a server's ``Retry-After`` in seconds; it raises the
                delay, bounded by ``cap``.

        Returns:
            Seconds to wait.
        """
        d = self.base_delay(attempt)
        j = self.jitter
        mode = self.mode
        if mode is Jitter.PROPORTIONAL:
            # Scale down near the cap so jitter survives saturation (the
            # seed's delay exceeded its cap instead).
            result = min(d, self.cap / (1.0 + j)) * (1.0 + j * rng.random())
        elif mode is Jitter.SYMMETRIC:
            result = min(d, self.cap / (1.0 + j)) * (
                1.0 + j * (2.0 * rng.random() - 1.0)
            )
        elif mode is Jitter.FULL:
            result = d * rng.random()
        elif mode is Jitter.EQUAL:
            result = d / 2.0 + d / 2.0 * rng.random()
        elif mode is Jitter.DECORRELATED:
            prev = self.base if previous is None or attempt <= 0 else previous
            high = max(self.base, min(self.cap, 3.0 * prev))
            result = self.base + (high - self.base) * rng.random()
        else:
            result = d
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            result = max(result, retry_after)
        return min(self.cap, max(0.0, result))

    def delay_for(
        self,
        attempt: int,
        rng: random.Random,
        classification: Classification | None,
        *,
        now: float,
        previous: float | None = None,
    ) -> float:
        """Like :meth:`delay`, honouring the classification's ``Retry-After``.

        Args:
            attempt: retries made so far.
            rng: the source of randomness.
            classification: the failure that prompts the retry, if any.
            now: the current Unix time (to resolve an HTTP-date Retry-After).
            previous: the previous delay, for ``DECORRELATED`` jitter.
        """
        retry_after = (
            classification.retry_after_seconds(now=now) if classification else None
        )
        return self.delay(attempt, rng, previous=previous, retry_after=retry_after)


@attrs.define(kw_only=True)
class RetryBudget:
    """A token bucket shared by callers so a sick cluster is not hammered.

    Modelled on the AWS SDKs' retry quota: the bucket holds ``capacity``
    tokens; a retry costs ``retry_cost`` (``timeout_cost`` after a timeout);
    a success refunds ``success_refund`` (never above capacity). When the
    bucket cannot pay, the caller must not retry.

    Args:
        capacity: the full bucket (500).
        retry_cost: tokens a retry takes (5).
        timeout_cost: tokens a retry after a timeout takes (10).
        success_refund: tokens a success returns (1).
    """

    capacity: int = 500
    retry_cost: int = 5
    timeout_cost: int = 10
    success_refund: int = 1
    tokens: int = attrs.field(default=-1)
    denied: int = 0

    def __attrs_post_init__(self) -> None:
        for name in ("capacity", "retry_cost", "timeout_cost", "success_refund"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigurationError(
                    f"RetryBudget: {name}={value!r} must be an int >= 0"
                )
        if self.tokens < 0:
            self.tokens = self.capacity
        self.tokens = min(self.tokens, self.capacity)

    def cost(self, classification: Classification | None) -> int:
        """Tokens a retry after ``classification`` costs."""
        if classification is not None and classification.category is Category.TIMEOUT:
            return self.timeout_cost
        return self.retry_cost

    def try_acquire(self, classification: Classification | None = None) -> bool:
        """Take the tokens for one retry; False (and nothing taken) if short."""
        cost = self.cost(classification)
        if cost > self.tokens:
            self.denied += 1
            return False
        self.tokens -= cost
        return True

    def record_success(self) -> None:
        """Refund ``success_refund`` tokens, up to ``capacity``."""
        self.tokens = min(self.capacity, self.tokens + self.success_refund)
