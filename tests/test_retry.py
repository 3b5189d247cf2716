"""RetryPolicy, RetryBudget and the trio retry helper."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import nodefsm
from nodefsm import (
    Category,
    Jitter,
    RetriesExhausted,
    RetryBudget,
    RetryPolicy,
    classify,
)
from nodefsm.strategies import retry_policies


def test_default_policy_is_the_seeds() -> None:
    """RetryPolicy() is 10 retries, 0.1 s base, 30 s cap, x1.5, 15 % jitter."""
    p = RetryPolicy()
    assert (10, 0.1, 30.0, 1.5, 0.15, Jitter.PROPORTIONAL) == (
        p.retries,
        p.base,
        p.cap,
        p.factor,
        p.jitter,
        p.mode,
    )
    assert 11 == p.attempts
    assert RetryPolicy.seed() == p


def test_seed_sequence_without_jitter() -> None:
    """The jitter-free delays are the seed's 100, 150, 225 ... 5767 ms."""
    expected = [100, 150, 225, 338, 506, 759, 1139, 1709, 2563, 3844, 5767]
    assert expected == [round(RetryPolicy().base_delay(a) * 1000) for a in range(11)]


def test_proportional_jitter_matches_seed_below_cap() -> None:
    """Below the cap the seed's additive jitter is kept: d * (1 + U * 0.15)."""
    rng = random.Random(7)
    u = random.Random(7).random()
    assert pytest.approx(0.225 * (1 + 0.15 * u)) == RetryPolicy().delay(2, rng)


def test_grpc_preset() -> None:
    """The gRPC preset is 1 s, x1.6, +-20 %, 120 s cap."""
    p = RetryPolicy.grpc()
    assert (1.0, 1.6, 0.2, 120.0, Jitter.SYMMETRIC) == (
        p.base,
        p.factor,
        p.jitter,
        p.cap,
        p.mode,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retries": -1},
        {"base": 0},
        {"base": float("nan")},
        {"cap": 0.01},
        {"cap": float("inf")},
        {"factor": 0.5},
        {"jitter": 1.5},
        {"mode": "sideways"},
    ],
)
def test_invalid_policies_are_rejected(kwargs: dict[str, object]) -> None:
    """Invalid fields raise ConfigurationError (also a ValueError) naming the field."""
    with pytest.raises(
        ValueError, match=next(iter(kwargs)) if "mode" not in kwargs else "sideways"
    ):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@given(
    retry_policies(),
    st.integers(-5, 10**9),
    st.integers(0, 2**32),
    st.none() | st.floats(0, 1e6),
)
def test_delay_bounds(
    policy: RetryPolicy, attempt: int, seed: int, previous: float | None
) -> None:
    """A delay is never negative, never above the cap, never overflows."""
    d = policy.delay(attempt, random.Random(seed), previous=previous)
    assert 0.0 <= d <= policy.cap


@given(st.integers(10**6, 10**9), st.integers(0, 2**32))
def test_jitter_survives_at_the_cap(attempt: int, seed: int) -> None:
    """Saturated delays still spread over [cap/(1+j), cap] (no lockstep)."""
    p = RetryPolicy()
    d = p.delay(attempt, random.Random(seed))
    assert p.cap / 1.15 <= d <= p.cap


def test_saturated_delays_differ() -> None:
    """Many clients at the cap do not all pick the same delay."""
    rng = random.Random(1)
    assert len({RetryPolicy().delay(10**6, rng) for _ in range(50)}) > 40


@pytest.mark.parametrize("mode", list(Jitter))
def test_every_mode_bounded_and_seeded(mode: Jitter) -> None:
    """Each jitter mode is deterministic for a seed and stays within [0, cap]."""
    p = RetryPolicy(mode=mode)
    a = [p.delay(i, random.Random(3), previous=1.0) for i in range(30)]
    b = [p.delay(i, random.Random(3), previous=1.0) for i in range(30)]
    assert a == b
    assert all(0 <= d <= p.cap for d in a)


def test_none_and_equal_modes() -> None:
    """NONE is the plain exponential; EQUAL is within [d/2, d]."""
    assert (
        pytest.approx(RetryPolicy(mode=Jitter.NONE).delay(2, random.Random())) == 0.225
    )
    d = RetryPolicy(mode=Jitter.EQUAL).delay(2, random.Random(0))
    assert 0.1125 <= d <= 0.225


def test_decorrelated_grows_from_previous() -> None:
    """DECORRELATED draws from [base, 3 * previous], capped."""
    p = RetryPolicy(mode=Jitter.DECORRELATED)
    assert (
        p.base == p.delay(0, random.Random(0), previous=50.0)
        or p.delay(0, random.Random(0)) <= 0.3
    )
    d = p.delay(3, random.Random(0), previous=2.0)
    assert p.base <= d <= 6.0


def test_factor_one_is_constant() -> None:
    """factor=1 gives the base delay at every attempt."""
    p = RetryPolicy(factor=1.0, mode=Jitter.NONE)
    assert 0.1 == p.delay(10**9, random.Random())


def test_retry_after_raises_the_delay_within_cap() -> None:
    """Retry-After raises the delay, but never above the cap."""
    p = RetryPolicy(mode=Jitter.NONE)
    assert 7.0 == p.delay(0, random.Random(), retry_after=7.0)
    assert 30.0 == p.delay(0, random.Random(), retry_after=3600.0)
    assert 0.1 == p.delay(0, random.Random(), retry_after=float("nan"))
    busy = classify(httpx_response(503, "12"))
    assert 12.0 == p.delay_for(0, random.Random(), busy, now=0.0)
    assert 0.1 == p.delay_for(0, random.Random(), None, now=0.0)


def httpx_response(status: int, retry_after: str):  # type: ignore[no-untyped-def]
    import httpx

    return httpx.Response(status, headers={"Retry-After": retry_after})


def test_should_retry_counts_retries() -> None:
    """should_retry(a) allows exactly `retries` retries."""
    p = RetryPolicy(retries=3)
    assert [True, True, True, False] == [p.should_retry(a) for a in range(4)]
    assert not p.should_retry(-1)


def test_budget_costs_and_refunds() -> None:
    """A retry costs 5, 10 after a timeout; a success refunds 1 up to capacity."""
    b = RetryBudget()
    assert 500 == b.tokens
    assert b.try_acquire(classify(503))
    assert 495 == b.tokens
    assert b.try_acquire(classify(TimeoutError()))
    assert 485 == b.tokens
    b.record_success()
    assert 486 == b.tokens
    full = RetryBudget(tokens=10_000)
    full.record_success()
    assert 500 == full.tokens


def test_budget_runs_dry() -> None:
    """An empty budget denies retries and counts the denials."""
    b = RetryBudget(capacity=12)
    assert b.try_acquire()
    assert b.try_acquire()
    assert not b.try_acquire()
    assert (2, 1) == (b.tokens, b.denied)


def test_budget_rejects_bad_values() -> None:
    """Negative costs are a configuration error."""
    with pytest.raises(nodefsm.ConfigurationError, match="retry_cost"):
        RetryBudget(retry_cost=-1)


class Flaky:
    """Fails with the given exceptions in turn, then returns 'ok'."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


async def test_retry_succeeds_after_temporary_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Temporary failures are retried with the policy's delays."""
    fn = Flaky(ConnectionRefusedError(), ConnectionResetError())
    start = trio.current_time()
    p = RetryPolicy(mode=Jitter.NONE)
    assert "ok" == await nodefsm.retry(fn, policy=p)
    assert 3 == fn.calls
    assert pytest.approx(0.1 + 0.15) == trio.current_time() - start


async def test_retry_makes_retries_plus_one_attempts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With retries=2 a call is attempted 3 times, then RetriesExhausted."""
    fn = Flaky(*[ConnectionRefusedError() for _ in range(10)])
    with pytest.raises(RetriesExhausted) as info:
        await nodefsm.retry(
            fn, policy=RetryPolicy(retries=2), node="n1", operation="probe"
        )
    assert 3 == fn.calls
    err = info.value
    assert [1, 2, 3] == [a.number for a in err.history]
    assert err.history[-1].delay is None
    assert isinstance(err.__cause__, ConnectionRefusedError)
    assert ("n1", "probe", 3) == (err.node, err.operation, err.attempt)
    assert "all 3 attempts failed" in str(err)


@pytest.mark.parametrize("exc", [PermissionError(), nodefsm.BodyValidationError("x")])
async def test_retry_stops_on_persistent(
    exc: BaseException, autojump_clock: trio.testing.MockClock
) -> None:
    """A persistent failure stops retrying at once."""
    fn = Flaky(exc)
    with pytest.raises(RetriesExhausted, match="persistent failure"):
        await nodefsm.retry(fn)
    assert 1 == fn.calls


async def test_retry_per_attempt_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each attempt gets its own deadline; a hang is a timeout, then retried."""
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await trio.sleep_forever()
        return "ok"

    assert "ok" == await nodefsm.retry(slow_then_fast, timeout=2.0)
    assert 2 == calls


async def test_retry_never_swallows_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling the caller cancels the retry loop, during an attempt or a backoff."""
    fn = Flaky(*[ConnectionRefusedError() for _ in range(100)])
    with trio.move_on_after(5) as scope:
        await nodefsm.retry(fn)
    assert scope.cancelled_caught
    assert fn.calls > 1


async def test_retry_stops_when_budget_is_dry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A shared budget that cannot pay stops the retries."""
    budget = RetryBudget(capacity=5)
    fn = Flaky(*[ConnectionRefusedError() for _ in range(10)])
    with pytest.raises(RetriesExhausted, match="budget"):
        await nodefsm.retry(fn, budget=budget)
    assert 2 == fn.calls
    ok = Flaky()
    await nodefsm.retry(ok, budget=budget)
    assert 1 == budget.tokens


async def test_retry_honours_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A 503's Retry-After lengthens the wait before the next attempt."""
    import httpx

    request = httpx.Request("GET", "http://127.0.0.1:1/")
    response = httpx.Response(503, headers={"Retry-After": "4"}, request=request)
    fn = Flaky(httpx.HTTPStatusError("busy", request=request, response=response))
    start = trio.current_time()
    await nodefsm.retry(fn)
    assert pytest.approx(trio.current_time() - start) == 4.0
    assert Category.RESOURCE_BUSY == classify(response).category


async def test_local_failures_do_not_spend_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A pool timeout (our side) is retried without spending the node budget."""
    import httpx

    budget = RetryBudget(capacity=0)
    fn = Flaky(httpx.PoolTimeout("pool"))
    assert "ok" == await nodefsm.retry(fn, budget=budget)
