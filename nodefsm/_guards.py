"""Guards: named pure predicates over (classification, stats, configuration).

A spec names its guards; the loader resolves every name here, at load time.
A guard never does I/O and never reads a clock: all it sees is the
:class:`GuardContext` the caller built.

Some guards test an *enumerable* domain (the severity or category of the
classification, or the direction the degradation level must move). For
those the loader can prove, per (state, trigger), that every value of the
domain leads to exactly one transition: no gaps, no overlaps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import attrs

from ._classify import Category, Classification, Severity
from ._config import DegradationLevel, LoadReport, NodeThresholds, latency_ratio
from ._retry import RetryPolicy
from ._stats import CommunicationStats

__all__ = ["DOMAINS", "GUARDS", "Guard", "GuardContext"]


@attrs.frozen(kw_only=True)
class GuardContext:
    """Everything a guard may look at. Built by the caller, never by a guard.

    Attributes:
        classification: the failure that prompted the event, if any.
        stats: the node's communication stats *after* the outcome.
        thresholds: the node status thresholds.
        load: the node's last load report, if any.
        attempt: failed reconnection attempts so far (reconnection machine).
        policy: the reconnection retry policy.
        give_up_on_persistent: reconnection gives up on persistent errors.
        target: the level the degradation machine should reach.
        recover_needed: successes needed to recover now (flap damping);
            None means ``thresholds.recover_after``.
        state: the machine's current state (filled in by the engine).
    """

    classification: Classification | None = None
    stats: CommunicationStats = attrs.field(factory=CommunicationStats)
    thresholds: NodeThresholds = attrs.field(factory=NodeThresholds)
    load: LoadReport | None = None
    attempt: int = 0
    policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    give_up_on_persistent: bool = False
    target: DegradationLevel | None = None
    recover_needed: int | None = None
    state: str = ""


def _severity(ctx: GuardContext) -> str:
    c = ctx.classification
    return c.severity.value if c is not None else Severity.UNKNOWN.value


def _category(ctx: GuardContext) -> str:
    c = ctx.classification
    return c.category.value if c is not None else Category.UNKNOWN.value


def _direction(ctx: GuardContext) -> str:
    if ctx.target is None:
        return "same"
    try:
        current = DegradationLevel[ctx.state.upper()]
    except KeyError:
        return "same"
    if ctx.target > current:
        return "up"
    return "down" if ctx.target < current else "same"


#: Enumerable domains: name -> (all values, how to read the value from a context).
DOMAINS: Mapping[str, tuple[tuple[str, ...], Callable[[GuardContext], str]]] = (
    MappingProxyType(
        {
            "severity": (tuple(s.value for s in Severity), _severity),
            "category": (tuple(c.value for c in Category), _category),
            "direction": (("up", "down", "same"), _direction),
        }
    )
)


@attrs.frozen
class Guard:
    """A named pure predicate.

    Attributes:
        name: the name specs use.
        doc: one line saying what it tests.
        fn: the predicate, ``fn(ctx) -> bool``.
        domain: for enumerable guards, the domain it tests, else None.
        admits: for enumerable guards, the domain values that make it true.
    """

    name: str
    doc: str
    fn: Callable[[GuardContext], bool]
    domain: str | None = None
    admits: frozenset[str] = frozenset()

    def __call__(self, ctx: GuardContext) -> bool:
        return bool(self.fn(ctx))


def _enum_guard(name: str, doc: str, domain: str, values: set[str]) -> Guard:
    read = DOMAINS[domain][1]
    admits = frozenset(values)
    return Guard(name, doc, lambda ctx: read(ctx) in admits, domain, admits)


def _g(name: str, doc: str, fn: Callable[[GuardContext], bool]) -> Guard:
    return Guard(name, doc, fn)


def _overloaded(ctx: GuardContext) -> bool:
    return ctx.load is not None and ctx.load.overloaded(ctx.thresholds)


def _recovered(ctx: GuardContext) -> bool:
    needed = (
        ctx.recover_needed
        if ctx.recover_needed is not None
        else ctx.thresholds.recover_after
    )
    return ctx.stats.consecutive_successes >= needed


def _slow(ctx: GuardContext) -> bool:
    return latency_ratio(ctx.stats, ctx.thresholds) >= ctx.thresholds.latency_moderate


_ALL_GUARDS = [
    _enum_guard(
        "is_critical",
        "the failure is critical (e.g. an untrusted certificate)",
        "severity",
        {"critical"},
    ),
    _enum_guard(
        "is_persistent",
        "the failure is persistent (retrying will not help soon)",
        "severity",
        {"persistent"},
    ),
    _enum_guard(
        "is_transient",
        "the failure is temporary (or of unknown severity)",
        "severity",
        {"temporary", "unknown"},
    ),
    _enum_guard(
        "is_overload",
        "the node said it is overloaded (429/503: resource_busy)",
        "category",
        {"resource_busy"},
    ),
    _enum_guard(
        "level_rises",
        "the cluster's computed level is above the current one",
        "direction",
        {"up"},
    ),
    _enum_guard(
        "level_falls",
        "the cluster's computed level is below the current one",
        "direction",
        {"down"},
    ),
    _g(
        "reached_degrade_after",
        "consecutive failures >= degrade_after",
        lambda c: c.stats.consecutive_failures >= c.thresholds.degrade_after,
    ),
    _g(
        "reached_offline_after",
        "consecutive failures >= offline_after",
        lambda c: c.stats.consecutive_failures >= c.thresholds.offline_after,
    ),
    _g(
        "recovered",
        "consecutive successes >= recover_after (doubled per flap beyond flap_limit)",
        _recovered,
    ),
    _g(
        "is_overloaded",
        "the load report says CPU or active requests are over the limit",
        _overloaded,
    ),
    _g(
        "is_slow",
        "the last latency is at least latency_moderate x the node's baseline",
        _slow,
    ),
    _g(
        "attempts_exhausted",
        "reconnection attempts >= the policy's retries + 1",
        lambda c: c.attempt >= c.policy.attempts,
    ),
    _g(
        "give_up_on_persistent",
        "configured to give up on persistent errors",
        lambda c: c.give_up_on_persistent,
    ),
]

#: Every guard a spec may name.
GUARDS: Mapping[str, Guard] = MappingProxyType({g.name: g for g in _ALL_GUARDS})
