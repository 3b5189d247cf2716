"""Hypothesis strategies for property-testing code that embeds nodefsm.

Requires hypothesis (``pip install nodefsm[testing]``). Used by nodefsm's own
test suite, exported so users can test their embedding the same way::

    from hypothesis import given
    from nodefsm.strategies import classifications

    @given(classifications())
    def test_my_router_never_crashes(c): ...
"""

from __future__ import annotations

import errno
import json
import socket
import ssl
from typing import Any

from hypothesis import strategies as st

from ._classify import Category, Classification, Origin, Severity
from ._config import LoadReport
from ._probe import ProbeResult
from ._retry import Jitter, RetryPolicy
from ._scenario import FAULT_KINDS, Scenario
from ._scenario import Fault as ScenarioFault

__all__ = [
    "classifications",
    "exception_trees",
    "leaf_exceptions",
    "probe_outcomes",
    "retry_policies",
    "scenarios",
    "status_codes",
]


def classifications(
    *, origin: Origin | None = Origin.NODE
) -> st.SearchStrategy[Classification]:
    """Arbitrary classifications, node failures by default (``origin=None``: any)."""
    origins = st.sampled_from(Origin) if origin is None else st.just(origin)

    @st.composite
    def build(draw: st.DrawFn) -> Classification:
        severity = draw(st.sampled_from(Severity))
        o = draw(origins)
        return Classification(
            category=draw(st.sampled_from(Category)),
            severity=severity,
            retryable=severity is Severity.TEMPORARY
            and o in (Origin.NODE, Origin.LOCAL),
            origin=o,
            reason=draw(st.text(max_size=20)),
            status_code=draw(st.none() | st.integers(100, 599)),
            retry_after=draw(st.none() | st.floats(0, 3600)),
        )

    return build()


def status_codes() -> st.SearchStrategy[int]:
    """Any integer a server might send as a status, valid or not."""
    return st.integers(-1, 1000) | st.sampled_from(
        [200, 401, 403, 404, 429, 500, 502, 503, 504]
    )


_ERRNOS = [
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.EACCES,
    errno.EMFILE,
    0,
    99999,
]


def leaf_exceptions() -> st.SearchStrategy[BaseException]:
    """Single exceptions of the kinds a network call raises (no chains)."""
    return st.one_of(
        st.builds(
            lambda e, m: OSError(e, m), st.sampled_from(_ERRNOS), st.text(max_size=10)
        ),
        st.builds(OSError, st.text(max_size=20)),
        st.sampled_from(
            [
                ConnectionRefusedError(),
                ConnectionResetError(),
                BrokenPipeError(),
                TimeoutError(),
                PermissionError(),
                socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
                socket.gaierror(socket.EAI_AGAIN, "Temporary failure"),
                ssl.SSLError(1, "alert"),
                ssl.SSLCertVerificationError(1, "verify failed"),
                json.JSONDecodeError("bad", "{", 0),
                ValueError("x"),
                RuntimeError("boom"),
                KeyError("k"),
            ]
        ),
        st.builds(Exception, st.text(max_size=20)),
    )


@st.composite
def _tree(draw: st.DrawFn, depth: int) -> BaseException:
    if depth <= 0 or draw(st.booleans()):
        return draw(leaf_exceptions())
    kind = draw(st.sampled_from(["cause", "context", "group", "arg", "cycle"]))
    if kind == "group":
        members = draw(st.lists(_tree(depth - 1), min_size=1, max_size=4))
        return ExceptionGroup(
            "group", [m for m in members if isinstance(m, Exception)] or [ValueError()]
        )
    inner = draw(_tree(depth - 1))
    if kind == "arg":
        return OSError(inner)
    outer = draw(leaf_exceptions())
    if kind == "cause":
        outer.__cause__ = inner
    elif kind == "context":
        outer.__context__ = inner
    else:
        outer.__cause__ = inner
        inner.__context__ = outer  # a cycle: classify must still terminate
    return outer


def exception_trees(*, max_depth: int = 4) -> st.SearchStrategy[BaseException]:
    """Exceptions with causes, contexts, args, groups and even cycles."""
    return _tree(max_depth)


def retry_policies() -> st.SearchStrategy[RetryPolicy]:
    """Valid retry policies across every jitter mode, including extreme ones."""

    @st.composite
    def build(draw: st.DrawFn) -> RetryPolicy:
        base = draw(st.floats(1e-6, 1e3))
        cap = base * draw(st.floats(1.0, 1e6))
        return RetryPolicy(
            retries=draw(st.integers(0, 100)),
            base=base,
            cap=cap,
            factor=draw(st.floats(1.0, 10.0)),
            jitter=draw(st.floats(0.0, 1.0)),
            mode=draw(st.sampled_from(Jitter)),
        )

    return build()


def probe_outcomes(*, node: str = "n:1") -> st.SearchStrategy[ProbeResult]:
    """Probe results: successes with latency (and maybe a load report) or failures."""
    loads = st.none() | st.builds(
        LoadReport,
        cpu_percent=st.none() | st.floats(0, 100),
        active_requests=st.none() | st.integers(0, 50),
        queued_requests=st.none() | st.integers(0, 50),
    )
    ok = st.builds(
        ProbeResult,
        node=st.just(node),
        ok=st.just(True),
        latency=st.floats(0, 5),
        status_code=st.just(200),
        load=loads,
    )
    failed = st.builds(
        ProbeResult,
        node=st.just(node),
        ok=st.just(False),
        latency=st.floats(0, 30),
        classification=classifications(origin=None),
    )
    return st.one_of(ok, failed)


_KIND_PARAMS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "slow": {"delay": st.floats(0.001, 5)},
    "loss": {"loss": st.floats(0, 1)},
    "status": {"status": st.sampled_from([429, 500, 502, 503, 504])},
    "flap": {"period": st.floats(0.5, 10)},
}


def scenarios(
    *, max_nodes: int = 5, max_faults: int = 4, duration: float = 120.0
) -> st.SearchStrategy[Scenario]:
    """Valid scenarios (no expectations): random clusters and fault timelines.

    Run one with ``nodefsm._sim.simulate`` to property-test an embedding.
    """

    @st.composite
    def build(draw: st.DrawFn) -> Scenario:
        n = draw(st.integers(1, max_nodes))
        names = tuple(f"node-{i}" for i in range(1, n + 1))
        faults = []
        for i in range(draw(st.integers(0, max_faults))):
            kind = draw(st.sampled_from(sorted(FAULT_KINDS)))
            at = draw(st.floats(0, duration * 0.8))
            until = draw(st.none() | st.floats(at + 1, duration))
            targets = tuple(
                draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
            )
            params = {k: draw(v) for k, v in _KIND_PARAMS.get(kind, {}).items()}
            if kind == "monitor_network":
                targets = names
            faults.append(
                ScenarioFault(
                    label=f"f{i}",
                    at=at,
                    until=until,
                    nodes=targets,
                    kind=kind,
                    **params,
                )
            )
        return Scenario(
            name="generated",
            description="generated by nodefsm.strategies.scenarios",
            duration=duration,
            realtime=False,
            seed=draw(st.integers(0, 2**16)),
            nodes=names,
            profile="ollama",
            latency=draw(st.floats(0.0005, 0.05)),
            monitor={"interval": draw(st.sampled_from([1.0, 2.0, 5.0]))},
            faults=tuple(sorted(faults, key=lambda f: f.at)),
            expectations=(),
        )

    return build()
