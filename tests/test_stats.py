"""CommunicationStats and the RFC 6298 estimator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodefsm import (
    Category,
    CommunicationStats,
    ConfigurationError,
    RttEstimator,
    classify,
)
from nodefsm.strategies import classifications

REFUSED = classify(ConnectionRefusedError())
TIMEOUT = classify(TimeoutError())


def test_empty_stats_have_no_sentinels() -> None:
    """Before any sample, min/max/percentiles/rates are None, not 24 h."""
    s = CommunicationStats()
    assert (None, None, None, None, None) == (
        s.min_latency,
        s.max_latency,
        s.p50,
        s.success_rate,
        s.mean_attempts,
    )
    d = s.to_dict()
    assert d["latency_min"] is None
    assert 1.0 == s.timeout


def test_success_and_failure_counting() -> None:
    """Counts, streaks, retries and categories follow the records."""
    s = CommunicationStats()
    s = s.record_success(0.1, now=1.0)
    s = s.record_failure(REFUSED, now=2.0)
    s = s.record_failure(REFUSED, now=3.0, attempts=3)
    assert (1, 2, 2, 0) == (
        s.successes,
        s.failures,
        s.consecutive_failures,
        s.consecutive_successes,
    )
    assert (1, 0, 1) == (
        s.first_attempt_successes,
        s.successful_retries,
        s.failed_retries,
    )
    assert {Category.CONNECTION_REFUSED: 2} == dict(s.errors_by_category)
    assert (1.0, 3.0) == (s.last_success, s.last_failure)
    assert REFUSED == s.last_classification
    s = s.record_success(0.2, now=4.0, attempts=2)
    assert (0, 1, 1) == (
        s.consecutive_failures,
        s.consecutive_successes,
        s.successful_retries,
    )
    assert pytest.approx(7 / 4) == s.mean_attempts
    assert 0.5 == s.success_rate
    assert "connection_refused" in s.to_dict()["errors_by_category"]


def test_local_failures_do_not_count() -> None:
    """The monitor's own failures do not touch the node's streaks."""
    import httpx

    s = CommunicationStats().record_success(0.1, now=0)
    s = s.record_failure(classify(httpx.PoolTimeout("p")), now=1)
    assert (0, 1, 1) == (s.failures, s.local_failures, s.consecutive_successes)


def test_latency_history_is_bounded_and_ema() -> None:
    """History keeps the last 50; EMA uses alpha 0.2; min/max track extremes."""
    s = CommunicationStats()
    for i in range(60):
        s = s.record_success(float(i), now=float(i))
    assert 50 == len(s.latencies)
    assert 10.0 == s.latencies[0]
    assert (0.0, 59.0) == (s.min_latency, s.max_latency)
    s2 = CommunicationStats().record_success(1.0, now=0).record_success(2.0, now=1)
    assert pytest.approx(1.2) == s2.ema


def test_percentiles_nearest_rank() -> None:
    """p50/p95/p99 use nearest rank over the history."""
    s = CommunicationStats()
    for v in range(1, 21):
        s = s.record_success(v / 100, now=0)
    assert (0.10, 0.19, 0.20) == (s.p50, s.p95, s.p99)


def test_rfc6298_first_and_later_samples() -> None:
    """SRTT=R, RTTVAR=R/2 first; then the 1/8, 1/4 updates; RTO=SRTT+4 RTTVAR."""
    e = RttEstimator().sample(1.0)
    assert (1.0, 0.5, 3.0) == (e.srtt, e.rttvar, e.rto)
    e = e.sample(2.0)
    assert pytest.approx(1.125) == e.srtt
    assert pytest.approx(0.625) == e.rttvar
    assert pytest.approx(1.125 + 2.5) == e.rto


def test_rto_floor_ceiling_and_backoff() -> None:
    """RTO is clamped to [floor, ceiling] and doubles on timeouts."""
    e = RttEstimator(floor=0.2, ceiling=5.0).sample(0.001)
    assert 0.2 == e.rto
    e = e.timed_out()
    assert 0.2 == e.rto  # 2 * 0.003 is still below the floor
    e = RttEstimator(ceiling=5.0).sample(1.0)
    assert [3.0, 5.0, 5.0] == [e.rto, e.timed_out().rto, e.timed_out().timed_out().rto]
    assert 2.5 == e.timed_out().sample(1.0).rto  # a new sample ends the backoff


def test_karn_no_sample_from_retries() -> None:
    """A success after retries does not feed the estimator."""
    s = CommunicationStats().record_success(9.0, now=0, attempts=2)
    assert s.rtt.srtt is None


def test_timeouts_back_off_the_probe_timeout() -> None:
    """A timeout failure doubles the adaptive timeout."""
    s = CommunicationStats().record_success(0.5, now=0)
    assert 2 * s.timeout == s.record_failure(TIMEOUT, now=1).timeout


def test_estimator_validation() -> None:
    """floor above ceiling or negative values are configuration errors."""
    with pytest.raises(ConfigurationError, match="floor"):
        RttEstimator(floor=10, ceiling=1)
    with pytest.raises(ConfigurationError, match="granularity"):
        RttEstimator(granularity=-1)


outcomes = st.one_of(
    st.tuples(
        st.just("ok"), st.floats(-1, 100) | st.just(float("nan")), st.integers(-2, 5)
    ),
    st.tuples(st.just("fail"), classifications(origin=None), st.integers(-2, 5)),
)


@given(st.lists(outcomes, max_size=120))
def test_stats_invariants(events: list[tuple[str, object, int]]) -> None:
    """Counts never go negative; min <= p50 <= max; rates within [0, 1]."""
    s = CommunicationStats()
    for i, (kind, value, attempts) in enumerate(events):
        if kind == "ok":
            s = s.record_success(value, now=float(i), attempts=attempts)  # type: ignore[arg-type]
        else:
            s = s.record_failure(value, now=float(i), attempts=attempts)  # type: ignore[arg-type]
    assert min(s.successes, s.failures, s.consecutive_failures, s.local_failures) >= 0
    assert s.consecutive_failures == 0 or s.consecutive_successes == 0
    assert len(s.latencies) <= 50
    assert sum(s.errors_by_category.values()) == s.failures
    if s.latencies:
        assert s.min_latency is not None
        assert s.max_latency is not None
        assert s.min_latency <= s.p50 <= s.max_latency  # type: ignore[operator]
    if s.success_rate is not None:
        assert 0.0 <= s.success_rate <= 1.0
    assert s.rtt.floor <= s.timeout <= s.rtt.ceiling


def test_last_severity() -> None:
    """last_severity follows the last node failure."""
    assert CommunicationStats().last_severity is None
    assert (
        REFUSED.severity
        == CommunicationStats().record_failure(REFUSED, now=0).last_severity
    )
