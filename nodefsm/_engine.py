"""The engine: a ``transitions.Machine`` built from a spec, behind a typed facade.

One shared ``Machine`` per machine type; nodes are its models. The machine
is synchronous and deterministic: nothing here awaits, sleeps or reads a
clock (the caller passes ``now``). ``transitions`` stays an implementation
detail: no ``to_<state>()`` methods (``auto_transitions=False``), and its
``MachineError`` never escapes (it becomes :class:`TransitionNotAllowed`).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs
from transitions import Machine, MachineError

from ._classify import Classification
from ._guards import GUARDS, Guard, GuardContext
from ._spec import MachineSpec, TransitionSpec, load_spec
from .exceptions import TransitionNotAllowed

__all__ = [
    "DegradationEvent",
    "Engine",
    "NodeEvent",
    "NodeStatus",
    "ReconnectEvent",
    "ReconnectState",
    "TransitionRecord",
]


class NodeStatus(enum.StrEnum):
    """States of the ``node_status`` machine (the seed's eight statuses)."""

    STARTING = "starting"
    ONLINE = "online"
    BUSY = "busy"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    MAINTENANCE = "maintenance"
    STOPPING = "stopping"
    FAILED = "failed"


class NodeEvent(enum.StrEnum):
    """Triggers of the ``node_status`` machine."""

    PROBE_FAILED = "probe_failed"
    PROBE_SUCCEEDED = "probe_succeeded"
    RESET = "reset"
    START_MAINTENANCE = "start_maintenance"
    END_MAINTENANCE = "end_maintenance"
    STOP = "stop"
    FAIL = "fail"


class ReconnectState(enum.StrEnum):
    """States of the ``reconnection`` machine."""

    IDLE = "idle"
    WAITING = "waiting"
    CONNECTING = "connecting"
    GIVEN_UP = "given_up"


class ReconnectEvent(enum.StrEnum):
    """Triggers of the ``reconnection`` machine."""

    NODE_OFFLINE = "node_offline"
    TIMER_FIRED = "timer_fired"
    ATTEMPT_SUCCEEDED = "attempt_succeeded"
    ATTEMPT_FAILED = "attempt_failed"
    NODE_ONLINE = "node_online"
    RESET = "reset"


class DegradationEvent(enum.StrEnum):
    """Triggers of the ``degradation`` machine."""

    EVALUATE = "evaluate"


@attrs.frozen(kw_only=True)
class TransitionRecord:
    """What one fired event did. Every transition of every machine is one.

    Attributes:
        ts: the time passed by the caller (Unix seconds in the runtime).
        machine: ``node_status``, ``reconnection`` or ``degradation``.
        node: the node id (``cluster`` for the degradation machine).
        trigger: the event fired.
        source: the state before.
        dest: the state after (equal to ``source`` for an internal transition).
        internal: True when the state did not change.
        guards: ``(guard name, result)`` for every guard evaluated, in order.
        classification: the failure that drove the event, if any.
        reason: why, in words.
        line: the spec line of the transition taken.
    """

    ts: float
    machine: str
    node: str
    trigger: str
    source: str
    dest: str
    internal: bool
    guards: tuple[tuple[str, bool], ...] = ()
    classification: Classification | None = None
    reason: str = ""
    line: int = 0

    @property
    def changed(self) -> bool:
        """True when the state changed."""
        return not self.internal

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON event object (one line of ``--json`` output)."""
        c = self.classification
        return {
            "ts": self.ts,
            "node": self.node,
            "machine": self.machine,
            "trigger": self.trigger,
            "source": self.source,
            "dest": self.dest,
            "category": c.category.value if c is not None else None,
            "severity": c.severity.value if c is not None else None,
            "reason": self.reason,
            "guards": dict(self.guards),
        }


class _Model:
    """One node's slot in a shared machine (transitions sets ``state``)."""

    # Added by transitions.Machine.add_model; declared for the type checker.
    trigger: Any

    def __init__(self, node: str) -> None:
        self.node = node
        self.state = ""

    def __repr__(self) -> str:
        return f"<{self.node}: {self.state}>"


class Engine:
    """A machine type built from a spec; nodes are added as models.

    Args:
        spec: a :class:`MachineSpec` or a built-in name / spec path.
        guards: the guard registry (default: nodefsm's).

    Example::

        engine = Engine("node_status")
        engine.add("10.0.0.5:11434")
        record = engine.fire("10.0.0.5:11434", NodeEvent.PROBE_SUCCEEDED, now=0.0)
        assert record.dest == NodeStatus.ONLINE
    """

    def __init__(
        self, spec: MachineSpec | str, *, guards: Mapping[str, Guard] = GUARDS
    ) -> None:
        self.spec = (
            spec if isinstance(spec, MachineSpec) else load_spec(spec, guards=guards)
        )
        self._guards = guards
        self._models: dict[str, _Model] = {}
        self._evaluated: list[tuple[str, bool]] = []
        self._taken: list[TransitionSpec] = []
        #: How often each edge fired: ``(spec line, source state) -> count``.
        self.edge_hits: Counter[tuple[int, str]] = Counter()
        self._machine = Machine(
            model=None,
            states=list(self.spec.state_names),
            initial=self.spec.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for t in self.spec.transitions:
            for source in t.sources:
                self._machine.add_transition(
                    t.trigger,
                    source,
                    t.dest,  # None: an internal transition
                    conditions=[self._guard_callback(g) for g in t.conditions],
                    unless=[self._guard_callback(g) for g in t.unless],
                    after=[self._taken_callback(t, source)],
                )

    def __repr__(self) -> str:
        return f"Engine({self.spec.name!r}, nodes={len(self._models)})"

    # -- callbacks given to transitions ------------------------------------

    def _guard_callback(self, name: str) -> Any:
        guard = self._guards[name]

        def check(event: Any) -> bool:
            ctx = event.kwargs["ctx"]
            result = guard(ctx)
            self._evaluated.append((name, result))
            return result

        check.__name__ = name
        return check

    def _taken_callback(self, t: TransitionSpec, source: str) -> Any:
        def taken(event: Any) -> None:
            self._taken.append(t)
            self.edge_hits[(t.line, source)] += 1

        return taken

    # -- models ----------------------------------------------------------

    @property
    def name(self) -> str:
        """The machine name."""
        return self.spec.name

    def add(self, node: str, *, state: str | None = None) -> None:
        """Add a node in the initial state (or ``state``)."""
        if node in self._models:
            raise ValueError(f"{self.name}: node {node!r} is already present")
        initial = str(state) if state is not None else self.spec.initial
        if initial not in self.spec.state_names:
            raise ValueError(f"{self.name}: unknown state {initial!r}")
        model = _Model(node)
        self._machine.add_model(model, initial=initial)
        self._models[node] = model

    def remove(self, node: str) -> None:
        """Remove a node and everything the machine held for it."""
        model = self._models.pop(node, None)
        if model is not None:
            self._machine.remove_model(model)

    def __contains__(self, node: object) -> bool:
        return node in self._models

    def __len__(self) -> int:
        return len(self._models)

    def nodes(self) -> tuple[str, ...]:
        """Node ids, in insertion order."""
        return tuple(self._models)

    def state(self, node: str) -> str:
        """The node's current state."""
        return self._model(node).state

    def counts(self) -> dict[str, int]:
        """How many nodes are in each state (every state listed)."""
        result = dict.fromkeys(self.spec.state_names, 0)
        for m in self._models.values():
            result[m.state] += 1
        return result

    def _model(self, node: str) -> _Model:
        try:
            return self._models[node]
        except KeyError:
            raise KeyError(f"{self.name}: unknown node {node!r}") from None

    # -- events ----------------------------------------------------------

    def allowed(self, node: str) -> tuple[str, ...]:
        """The triggers the node's current state accepts."""
        return self.spec.allowed(self.state(node))

    def fire(
        self,
        node: str,
        trigger: str,
        *,
        now: float,
        ctx: GuardContext | None = None,
        reason: str = "",
    ) -> TransitionRecord | None:
        """Fire ``trigger`` for ``node``.

        Args:
            node: the node id.
            trigger: the event (a string or one of the event enums).
            now: the time to stamp on the record (the caller's clock).
            ctx: what the guards see (default: an empty context).
            reason: a reason to put on the record (default: the transition's
                description).

        Returns:
            The :class:`TransitionRecord`, or None when the state has edges
            for the trigger but every guard said no (only possible where the
            guards are not enumerable and the spec has no fallback).

        Raises:
            TransitionNotAllowed: the state has no transition for ``trigger``.
        """
        model = self._model(node)
        trigger = str(trigger)
        source = model.state
        if trigger not in self.spec.allowed(source):
            raise TransitionNotAllowed(
                machine=self.name,
                node=node,
                state=source,
                event=trigger,
                allowed=self.spec.allowed(source),
            )
        ctx = (
            attrs.evolve(ctx, state=source)
            if ctx is not None
            else GuardContext(state=source)
        )
        self._evaluated = []
        self._taken = []
        try:
            model.trigger(trigger, ctx=ctx)
        except MachineError as exc:  # pragma: no cover - prevented by the check above
            allowed = self.spec.allowed(source)
            raise TransitionNotAllowed(
                machine=self.name,
                node=node,
                state=source,
                event=trigger,
                allowed=allowed,
            ) from exc
        if not self._taken:
            return None
        taken = self._taken[-1]
        dest = model.state
        return TransitionRecord(
            ts=now,
            machine=self.name,
            node=node,
            trigger=trigger,
            source=source,
            dest=dest,
            internal=taken.dest is None,
            guards=tuple(self._evaluated),
            classification=ctx.classification,
            reason=reason or taken.description,
            line=taken.line,
        )
