"""Per-node communication statistics and the RFC 6298 timeout estimator.

Everything here is a frozen value updated by pure functions that take the
time as an argument. The Go design had three latency trackers with three
formulas, leaked a 24 h "minimum" sentinel into summaries, stored "now" as
``last_success`` on failures and recorded successes with 0 attempts and 0
latency. One tracker replaces them all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ._classify import Category, Classification, Severity
from .exceptions import ConfigurationError

__all__ = ["CommunicationStats", "RttEstimator"]

HISTORY = 50
EMA_ALPHA = 0.2


def _check_nonneg(
    instance: object, attribute: attrs.Attribute[Any], value: float
) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ConfigurationError(
            f"{type(instance).__name__}: {attribute.name}={value!r} must be a finite number >= 0"
        )


@attrs.frozen(kw_only=True)
class RttEstimator:
    """RFC 6298 retransmission-timeout estimator, used as a probe timeout.

    ``rto = srtt + max(granularity, 4 * rttvar)``, clamped to
    ``[floor, ceiling]``; doubled (up to the ceiling) on each timeout; samples
    from retried attempts are ignored (Karn's algorithm).

    Args:
        floor: the smallest timeout, seconds (0.2; RFC 6298 says 1 s for TCP,
            which is far too slow for a LAN health probe).
        ceiling: the largest timeout, seconds (60).
        initial: the timeout before any sample, seconds (1, as the RFC).
        granularity: the clock granularity G, seconds.
    """

    floor: float = attrs.field(default=0.2, validator=_check_nonneg)
    ceiling: float = attrs.field(default=60.0, validator=_check_nonneg)
    initial: float = attrs.field(default=1.0, validator=_check_nonneg)
    granularity: float = attrs.field(default=0.001, validator=_check_nonneg)
    srtt: float | None = None
    rttvar: float | None = None
    backoff: int = 0

    def __attrs_post_init__(self) -> None:
        if self.floor > self.ceiling:
            raise ConfigurationError(
                f"RttEstimator: floor={self.floor!r} must be <= ceiling={self.ceiling!r}"
            )

    @property
    def rto(self) -> float:
        """The current timeout in seconds, within ``[floor, ceiling]``."""
        if self.srtt is None or self.rttvar is None:
            base = self.initial
        else:
            base = self.srtt + max(self.granularity, 4.0 * self.rttvar)
        # Exponent capped so repeated timeouts cannot overflow the float.
        base *= 2.0 ** min(self.backoff, 64)
        return min(self.ceiling, max(self.floor, base))

    def sample(self, rtt: float) -> RttEstimator:
        """Take a round-trip sample (seconds) from a first-attempt success."""
        rtt = max(0.0, rtt)
        if self.srtt is None or self.rttvar is None:
            return attrs.evolve(self, srtt=rtt, rttvar=rtt / 2.0, backoff=0)
        rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
        srtt = 0.875 * self.srtt + 0.125 * rtt
        return attrs.evolve(self, srtt=srtt, rttvar=rttvar, backoff=0)

    def timed_out(self) -> RttEstimator:
        """Double the timeout (RFC 6298 section 5.5), up to the ceiling."""
        if self.rto >= self.ceiling:
            return self
        return attrs.evolve(self, backoff=self.backoff + 1)


def _freeze_counts(counts: Mapping[Category, int]) -> Mapping[Category, int]:
    return MappingProxyType(dict(counts))


def _percentile(sorted_values: tuple[float, ...], p: float) -> float | None:
    if not sorted_values:
        return None
    # Nearest rank: the smallest value with at least p % of samples <= it.
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@attrs.frozen(kw_only=True)
class CommunicationStats:
    """What is known about talking to one node. Immutable; updates return copies.

    Attributes:
        successes, failures: counts of calls that ended each way.
        consecutive_failures, consecutive_successes: the current streaks.
        first_attempt_successes: successes that needed one attempt.
        successful_retries: successes that needed more than one attempt.
        failed_retries: failures after more than one attempt.
        total_attempts: attempts over all calls (for ``mean_attempts``).
        errors_by_category: failures per category (node failures only).
        local_failures: failures of the monitor's own side (not counted above).
        latencies: the last 50 latencies, seconds, oldest first.
        ema: exponential moving average of latency (alpha 0.2), or None.
        min_latency, max_latency: extremes, None until the first sample.
        last_success, last_failure: times (caller's clock) or None.
        last_classification: the last failure's classification, or None.
        rtt: the RFC 6298 estimator that gives the probe timeout.
    """

    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    first_attempt_successes: int = 0
    successful_retries: int = 0
    failed_retries: int = 0
    total_attempts: int = 0
    errors_by_category: Mapping[Category, int] = attrs.field(
        factory=dict, converter=_freeze_counts
    )
    local_failures: int = 0
    latencies: tuple[float, ...] = ()
    ema: float | None = None
    min_latency: float | None = None
    max_latency: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_classification: Classification | None = None
    rtt: RttEstimator = attrs.field(factory=RttEstimator)

    # -- updates ---------------------------------------------------------

    def record_success(
        self, latency: float, *, now: float, attempts: int = 1
    ) -> CommunicationStats:
        """A call succeeded after ``attempts`` attempts taking ``latency`` s.

        Args:
            latency: seconds the successful attempt took (negative is clamped).
            now: the current time on the caller's clock.
            attempts: attempts the call needed (>= 1).
        """
        latency = max(0.0, float(latency)) if math.isfinite(latency) else 0.0
        attempts = max(1, attempts)
        latencies = (*self.latencies, latency)[-HISTORY:]
        ema = (
            latency
            if self.ema is None
            else (1 - EMA_ALPHA) * self.ema + EMA_ALPHA * latency
        )
        # Karn: a retried call's latency says nothing reliable about the RTT.
        rtt = self.rtt.sample(latency) if attempts == 1 else self.rtt
        return attrs.evolve(
            self,
            successes=self.successes + 1,
            consecutive_successes=self.consecutive_successes + 1,
            consecutive_failures=0,
            first_attempt_successes=self.first_attempt_successes + (attempts == 1),
            successful_retries=self.successful_retries + (attempts > 1),
            total_attempts=self.total_attempts + attempts,
            latencies=latencies,
            ema=ema,
            min_latency=latency
            if self.min_latency is None
            else min(self.min_latency, latency),
            max_latency=latency
            if self.max_latency is None
            else max(self.max_latency, latency),
            last_success=now,
            rtt=rtt,
        )

    def record_failure(
        self, classification: Classification, *, now: float, attempts: int = 1
    ) -> CommunicationStats:
        """A call failed with ``classification`` after ``attempts`` attempts.

        Failures that do not count against the node (the monitor's own, or
        cancellations) only bump ``local_failures``.
        """
        attempts = max(1, attempts)
        if not classification.counts_against_node:
            return attrs.evolve(self, local_failures=self.local_failures + 1)
        by_cat = dict(self.errors_by_category)
        by_cat[classification.category] = by_cat.get(classification.category, 0) + 1
        rtt = (
            self.rtt.timed_out()
            if classification.category is Category.TIMEOUT
            else self.rtt
        )
        return attrs.evolve(
            self,
            failures=self.failures + 1,
            consecutive_failures=self.consecutive_failures + 1,
            consecutive_successes=0,
            failed_retries=self.failed_retries + (attempts > 1),
            total_attempts=self.total_attempts + attempts,
            errors_by_category=by_cat,
            last_failure=now,
            last_classification=classification,
            rtt=rtt,
        )

    # -- derived values --------------------------------------------------

    @property
    def total(self) -> int:
        """Calls recorded (successes + node failures)."""
        return self.successes + self.failures

    @property
    def success_rate(self) -> float | None:
        """Successes / calls in ``[0, 1]``, or None before any call."""
        return self.successes / self.total if self.total else None

    @property
    def mean_attempts(self) -> float | None:
        """Mean attempts per call, or None before any call."""
        return self.total_attempts / self.total if self.total else None

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile (nearest rank) of the latency history."""
        return _percentile(tuple(sorted(self.latencies)), p)

    @property
    def p50(self) -> float | None:
        """Median latency of the history, seconds."""
        return self.percentile(50)

    @property
    def p95(self) -> float | None:
        """95th percentile latency of the history, seconds."""
        return self.percentile(95)

    @property
    def p99(self) -> float | None:
        """99th percentile latency of the history, seconds."""
        return self.percentile(99)

    @property
    def timeout(self) -> float:
        """The adaptive probe timeout (the estimator's RTO), seconds."""
        return self.rtt.rto

    @property
    def last_severity(self) -> Severity | None:
        """Severity of the last failure, if any."""
        c = self.last_classification
        return c.severity if c is not None else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no sentinels: absent values are null)."""
        return {
            "successes": self.successes,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "consecutive_successes": self.consecutive_successes,
            "first_attempt_successes": self.first_attempt_successes,
            "successful_retries": self.successful_retries,
            "failed_retries": self.failed_retries,
            "mean_attempts": self.mean_attempts,
            "success_rate": self.success_rate,
            "errors_by_category": {
                k.value: v for k, v in self.errors_by_category.items()
            },
            "local_failures": self.local_failures,
            "latency_ema": self.ema,
            "latency_min": self.min_latency,
            "latency_max": self.max_latency,
            "latency_p50": self.p50,
            "latency_p95": self.p95,
            "latency_p99": self.p99,
            "timeout": self.timeout,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
        }
