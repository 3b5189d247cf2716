"""Thresholds, levels, cluster aggregate and the tolerance table (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodefsm import CommunicationStats, ConfigurationError, classify
from nodefsm._config import (
    DegradationLevel as L,
)
from nodefsm._config import (
    DegradationMode,
    DegradationPolicy,
    LoadReport,
    NodeThresholds,
    cluster_level,
    latency_ratio,
    node_level,
    should_tolerate,
)

T = NodeThresholds()
TEMP = classify(TimeoutError())
PERSIST = classify(PermissionError())


def test_defaults_are_the_seeds() -> None:
    """3 / 5 failures, 80 % CPU, 10 active requests, ratios 1.5 / 3 / 6."""
    assert (3, 5, 2, 80.0, 10, 1.5, 3.0, 6.0) == (
        T.degrade_after,
        T.offline_after,
        T.recover_after,
        T.busy_cpu_percent,
        T.busy_active_requests,
        T.latency_minor,
        T.latency_moderate,
        T.latency_severe,
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"degrade_after": 0}, "degrade_after=0"),
        ({"degrade_after": 6}, "must be <= offline_after"),
        ({"latency_minor": 4.0}, "latency ratios"),
        ({"busy_cpu_percent": float("nan")}, "busy_cpu_percent"),
        ({"recover_after": True}, "recover_after"),
    ],
)
def test_bad_thresholds(kwargs: dict[str, object], fragment: str) -> None:
    """Invalid thresholds name the field."""
    with pytest.raises(ConfigurationError, match=fragment):
        NodeThresholds(**kwargs)  # type: ignore[arg-type]


def test_bad_degradation_policy() -> None:
    """The share threshold must be a fraction; the mode a known one."""
    with pytest.raises(ConfigurationError, match="max_degraded_fraction"):
        DegradationPolicy(max_degraded_fraction=0)
    with pytest.raises(ValueError, match="loose"):
        DegradationPolicy(mode="loose")  # type: ignore[arg-type]


def test_overloaded_is_the_seeds_rule() -> None:
    """CPU over 80 % or more than 10 active requests."""
    assert LoadReport(cpu_percent=80.5).overloaded(T)
    assert LoadReport(active_requests=11).overloaded(T)
    assert not LoadReport(cpu_percent=80.0, active_requests=10).overloaded(T)
    assert not LoadReport().overloaded(T)


@pytest.mark.parametrize(
    ("failures", "ratio", "expected"),
    [
        (0, 1.0, L.NONE),
        (1, 1.0, L.MINOR),
        (3, 1.0, L.MODERATE),
        (5, 1.0, L.SEVERE),
        (0, 1.5, L.MINOR),
        (0, 3.0, L.MODERATE),
        (0, 6.0, L.SEVERE),
        (1, 6.0, L.SEVERE),
        (5, 1.5, L.SEVERE),
    ],
)
def test_node_level_is_the_worse_rule(failures: int, ratio: float, expected: L) -> None:
    """The failure and latency rules combine by maximum (the seed overwrote)."""
    assert expected == node_level(failures, ratio, T)


def test_failed_node_is_critical() -> None:
    """A failed node is at the critical level."""
    assert L.CRITICAL == node_level(0, 1.0, T, failed=True)


def test_latency_ratio_needs_a_baseline() -> None:
    """1 until enough samples; then min(last two) / 25th percentile; small deltas ignored."""
    s = CommunicationStats()
    for _ in range(6):
        s = s.record_success(0.1, now=0)
    assert 1.0 == latency_ratio(s, T)
    s = s.record_success(0.4, now=0)
    assert 1.0 == latency_ratio(s, T)  # a single spike
    s = s.record_success(0.5, now=0)
    assert pytest.approx(4.0) == latency_ratio(s, T)
    tiny = CommunicationStats()
    for v in [0.001] * 7 + [0.004, 0.004]:
        tiny = tiny.record_success(v, now=0)
    assert 1.0 == latency_ratio(tiny, T)  # 4x, but only 3 ms more
    z = CommunicationStats()
    for _ in range(9):
        z = z.record_success(0.0, now=0)
    assert 1.0 == latency_ratio(z, T)


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ([], L.NONE),
        ([L.NONE] * 10, L.NONE),
        ([L.CRITICAL] + [L.NONE] * 20, L.CRITICAL),
        ([L.SEVERE, L.SEVERE] + [L.NONE] * 20, L.SEVERE),
        ([L.SEVERE] + [L.NONE] * 20, L.MODERATE),
        ([L.MODERATE] * 3 + [L.NONE] * 20, L.MODERATE),
        ([L.MODERATE] + [L.NONE] * 20, L.MINOR),
        ([L.MINOR] * 4 + [L.NONE] * 20, L.MINOR),
        ([L.MINOR] * 3 + [L.NONE] * 20, L.NONE),
    ],
)
def test_cluster_level_counting_rule(levels: list[L], expected: L) -> None:
    """The seed's absolute counting rule, on clusters big enough for shares not to matter."""
    assert expected == cluster_level(levels)


def test_cluster_level_share_rule() -> None:
    """More than 30 % moderate (severe) raises the level to at least moderate (severe)."""
    assert L.MODERATE == cluster_level([L.MODERATE, L.NONE])
    assert L.SEVERE == cluster_level([L.SEVERE, L.NONE])
    assert L.MINOR == cluster_level([L.MODERATE] + [L.NONE] * 3)
    assert L.MODERATE == cluster_level([L.MODERATE] + [L.NONE] * 2)


@given(st.lists(st.sampled_from(list(L)), max_size=50))
def test_cluster_level_is_monotone(levels: list[L]) -> None:
    """Making one node worse never makes the cluster better."""
    base = cluster_level(levels)
    for i in range(len(levels)):
        worse = list(levels)
        worse[i] = L(min(L.CRITICAL, levels[i] + 1))
        assert cluster_level(worse) >= base


# The seed's decision table, row by row.
TOLERATE = [
    (DegradationMode.STRICT, None, L.NONE, L.NONE, True),
    (DegradationMode.STRICT, TEMP, L.NONE, L.NONE, False),
    (DegradationMode.TOLERANT, TEMP, L.CRITICAL, L.CRITICAL, True),
    (DegradationMode.TOLERANT, PERSIST, L.NONE, L.NONE, False),
    (DegradationMode.ADAPTIVE, TEMP, L.NONE, L.SEVERE, True),
    (DegradationMode.ADAPTIVE, TEMP, L.MINOR, L.SEVERE, True),
    (DegradationMode.ADAPTIVE, TEMP, L.MODERATE, L.MODERATE, True),
    (DegradationMode.ADAPTIVE, TEMP, L.MODERATE, L.SEVERE, False),
    (DegradationMode.ADAPTIVE, TEMP, L.SEVERE, L.NONE, False),
    (DegradationMode.ADAPTIVE, TEMP, L.CRITICAL, L.NONE, False),
    (DegradationMode.ADAPTIVE, PERSIST, L.NONE, L.NONE, False),
]


@pytest.mark.parametrize(("mode", "c", "cluster", "node", "expected"), TOLERATE)
def test_should_tolerate_is_the_seeds_table(mode, c, cluster, node, expected) -> None:  # type: ignore[no-untyped-def]
    """should_tolerate follows SEED-NOTES section 6 exactly."""
    assert expected == should_tolerate(c, mode=mode, cluster=cluster, node=node)


def test_level_labels() -> None:
    """Levels have the lower-case labels the degradation spec uses."""
    assert ["none", "minor", "moderate", "severe", "critical"] == [lv.label for lv in L]
