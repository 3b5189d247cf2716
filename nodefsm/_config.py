"""Thresholds, degradation levels and the tolerance decision (pure).

The Go design's degradation code computed levels but never used them: the
consecutive-failure and latency rules overwrote each other, the 30 % share
threshold was declared and unused, and ``ShouldTolerateError`` was never
called. Here the levels are the maximum of both rules, the share threshold
counts, and ``should_tolerate`` is what routing and passive outcomes ask.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._classify import Classification, Severity
from ._stats import CommunicationStats
from .exceptions import ConfigurationError

__all__ = [
    "DegradationLevel",
    "DegradationMode",
    "DegradationPolicy",
    "LoadReport",
    "NodeThresholds",
    "cluster_level",
    "cluster_level_from_counts",
    "latency_ratio",
    "node_level",
    "should_tolerate",
]


class DegradationLevel(enum.IntEnum):
    """How degraded a node or the cluster is (the seed's five levels)."""

    NONE = 0
    MINOR = 1
    MODERATE = 2
    SEVERE = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """The lower-case name used in specs and events (``"moderate"``)."""
        return self.name.lower()


class DegradationMode(enum.StrEnum):
    """Which errors the cluster tolerates (the seed's three modes)."""

    STRICT = "strict"
    TOLERANT = "tolerant"
    ADAPTIVE = "adaptive"


def _positive_int(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(
            f"{type(instance).__name__}: {attribute.name}={value!r} must be an integer >= 1"
        )


def _positive_float(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(
            f"{type(instance).__name__}: {attribute.name}={value!r} must be a finite number > 0"
        )


@attrs.frozen(kw_only=True)
class NodeThresholds:
    """When a node's status changes. Defaults are the seed's values.

    Args:
        degrade_after: consecutive temporary failures before ``degraded`` (3).
        offline_after: consecutive temporary failures before ``offline`` (5).
        recover_after: consecutive successes needed to come back (2, like
            HAProxy's ``rise``), so a flapping node does not bounce.
        busy_cpu_percent: a load report above this CPU % means busy (80).
        busy_active_requests: more active requests than this means busy (10).
        latency_minor, latency_moderate, latency_severe: latency ratios to the
            node's baseline for each level (1.5, 3, 6); ``moderate`` or worse
            makes an online node ``degraded``.
        baseline_samples: latency samples needed before the ratio counts (5).
        latency_min_delta: latency increases smaller than this (seconds) never
            count as slow (0.01).
        flap_window: seconds over which losses of trust are counted (120).
        flap_limit: losses of trust within the window before damping (2);
            each further one doubles the successes needed to recover, up to
            16 x ``recover_after`` (route-flap damping, as in BGP).
    """

    degrade_after: int = attrs.field(default=3, validator=_positive_int)
    offline_after: int = attrs.field(default=5, validator=_positive_int)
    recover_after: int = attrs.field(default=2, validator=_positive_int)
    busy_cpu_percent: float = attrs.field(default=80.0, validator=_positive_float)
    busy_active_requests: int = attrs.field(default=10, validator=_positive_int)
    latency_minor: float = attrs.field(default=1.5, validator=_positive_float)
    latency_moderate: float = attrs.field(default=3.0, validator=_positive_float)
    latency_severe: float = attrs.field(default=6.0, validator=_positive_float)
    baseline_samples: int = attrs.field(default=5, validator=_positive_int)
    latency_min_delta: float = attrs.field(default=0.01, validator=_positive_float)
    flap_window: float = attrs.field(default=120.0, validator=_positive_float)
    flap_limit: int = attrs.field(default=2, validator=_positive_int)

    def recover_needed(self, recent_losses: int) -> int:
        """Successes needed to regain trust after ``recent_losses`` in the window."""
        excess = max(0, recent_losses - self.flap_limit)
        return int(self.recover_after * 2 ** min(excess, 4))

    def __attrs_post_init__(self) -> None:
        if self.degrade_after > self.offline_after:
            raise ConfigurationError(
                f"NodeThresholds: degrade_after={self.degrade_after} must be <= "
                f"offline_after={self.offline_after}"
            )
        if not self.latency_minor <= self.latency_moderate <= self.latency_severe:
            raise ConfigurationError(
                "NodeThresholds: latency ratios must satisfy "
                "latency_minor <= latency_moderate <= latency_severe"
            )


@attrs.frozen(kw_only=True)
class DegradationPolicy:
    """How the cluster's degradation level is computed and what it tolerates.

    Args:
        mode: strict, tolerant or adaptive (the monitor's default: adaptive).
        max_degraded_fraction: the seed's unused 30 %: when more than this
            share of the nodes is at a level (moderate or severe) or worse,
            the cluster is at least at that level.
    """

    mode: DegradationMode = attrs.field(
        default=DegradationMode.ADAPTIVE, converter=DegradationMode
    )
    max_degraded_fraction: float = attrs.field(default=0.30)

    @max_degraded_fraction.validator
    def _check_fraction(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not (isinstance(value, int | float) and 0.0 < value <= 1.0):
            raise ConfigurationError(
                f"DegradationPolicy: max_degraded_fraction={value!r} must be in (0, 1]"
            )


@attrs.frozen
class LoadReport:
    """What a node says about its own load (the seed's NodeHealthStatus fields).

    Only the fields a node sends are set; ``None`` means not reported.
    """

    cpu_percent: float | None = None
    memory_mb: float | None = None
    active_requests: int | None = None
    queued_requests: int | None = None
    gpu_utilization: tuple[float, ...] = ()
    gpu_memory_mb: tuple[float, ...] = ()
    latency_ms: float | None = None
    model_count: int | None = None

    def overloaded(self, thresholds: NodeThresholds) -> bool:
        """CPU above the limit or more active requests than allowed (the seed's rule)."""
        cpu = (
            self.cpu_percent is not None
            and self.cpu_percent > thresholds.busy_cpu_percent
        )
        active = self.active_requests is not None and (
            self.active_requests > thresholds.busy_active_requests
        )
        return cpu or active


def latency_ratio(stats: CommunicationStats, thresholds: NodeThresholds) -> float:
    """Recent latency over the node's baseline (1.0 until there is one).

    The baseline is the 25th percentile of the samples before the last two:
    robust to spikes and slow to drift, so a node that turns slow stays
    "slow" for a while instead of redefining normal within a few probes.
    "Recent" is the smaller of the last two samples, so one scheduling
    hiccup is not a slow node; and an increase smaller than
    ``thresholds.latency_min_delta`` never counts (on a LAN, 2 ms -> 6 ms
    is noise, not a degraded node).
    """
    history = stats.latencies
    if len(history) < thresholds.baseline_samples + 2:
        return 1.0
    earlier = sorted(history[:-2])
    baseline = earlier[max(0, math.ceil(0.25 * len(earlier)) - 1)]
    recent = min(history[-2:])
    if baseline <= 0 or recent - baseline < thresholds.latency_min_delta:
        return 1.0
    return recent / baseline


def node_level(
    consecutive_failures: int,
    ratio: float,
    thresholds: NodeThresholds,
    *,
    failed: bool = False,
) -> DegradationLevel:
    """A node's degradation level: the worse of the failure and latency rules.

    The seed's rules (failures >= 1/3/5 give minor/moderate/severe; latency
    ratio >= 1.5/3/6 likewise) overwrote each other; here the maximum wins.
    A failed node is critical.
    """
    if failed:
        return DegradationLevel.CRITICAL
    by_failures = DegradationLevel.NONE
    if consecutive_failures >= thresholds.offline_after:
        by_failures = DegradationLevel.SEVERE
    elif consecutive_failures >= thresholds.degrade_after:
        by_failures = DegradationLevel.MODERATE
    elif consecutive_failures >= 1:
        by_failures = DegradationLevel.MINOR
    by_latency = DegradationLevel.NONE
    if ratio >= thresholds.latency_severe:
        by_latency = DegradationLevel.SEVERE
    elif ratio >= thresholds.latency_moderate:
        by_latency = DegradationLevel.MODERATE
    elif ratio >= thresholds.latency_minor:
        by_latency = DegradationLevel.MINOR
    return max(by_failures, by_latency)


def cluster_level(
    levels: Iterable[DegradationLevel], policy: DegradationPolicy | None = None
) -> DegradationLevel:
    """The cluster's level from its nodes' levels.

    The seed's counting rule (any critical -> critical; more than one severe
    -> severe; one severe or more than two moderate -> moderate; any moderate
    or more than three minor -> minor), raised by the share rule of
    ``policy.max_degraded_fraction``.
    """
    count = dict.fromkeys(DegradationLevel, 0)
    for lvl in levels:
        count[DegradationLevel(lvl)] += 1
    return cluster_level_from_counts(count, policy)


def cluster_level_from_counts(
    count: Mapping[DegradationLevel, int], policy: DegradationPolicy | None = None
) -> DegradationLevel:
    """:func:`cluster_level` from ``level -> number of nodes`` (O(1) for big clusters)."""
    policy = policy or DegradationPolicy()
    n = sum(count.values())
    if not n:
        return DegradationLevel.NONE

    def c(level: DegradationLevel) -> int:
        return count.get(level, 0)

    if c(DegradationLevel.CRITICAL):
        return DegradationLevel.CRITICAL
    if c(DegradationLevel.SEVERE) > 1:
        result = DegradationLevel.SEVERE
    elif c(DegradationLevel.SEVERE) == 1 or c(DegradationLevel.MODERATE) > 2:
        result = DegradationLevel.MODERATE
    elif c(DegradationLevel.MODERATE) or c(DegradationLevel.MINOR) > 3:
        result = DegradationLevel.MINOR
    else:
        result = DegradationLevel.NONE
    severe_share = c(DegradationLevel.SEVERE) / n
    moderate_share = (c(DegradationLevel.MODERATE) + c(DegradationLevel.SEVERE)) / n
    if severe_share > policy.max_degraded_fraction:
        result = max(result, DegradationLevel.SEVERE)
    elif moderate_share > policy.max_degraded_fraction:
        result = max(result, DegradationLevel.MODERATE)
    return result


def should_tolerate(
    classification: Classification | None,
    *,
    mode: DegradationMode,
    cluster: DegradationLevel,
    node: DegradationLevel,
) -> bool:
    """Whether the cluster tolerates this error (the seed's decision table).

    - no error: tolerate; strict: never; any non-temporary error: never;
    - tolerant: temporary errors;
    - adaptive, temporary error: cluster none/minor -> yes; moderate -> only
      if this node is below severe; severe/critical -> no.
    """
    if classification is None:
        return True
    if mode is DegradationMode.STRICT:
        return False
    if classification.severity is not Severity.TEMPORARY:
        return False
    if mode is DegradationMode.TOLERANT:
        return True
    if cluster <= DegradationLevel.MINOR:
        return True
    if cluster == DegradationLevel.MODERATE:
        return node < DegradationLevel.SEVERE
    return False
