"""The exceptions nodefsm raises.

Every exception derives from one root, so ``except nodefsm.NodeFSMError``
catches everything the library raises on purpose::

    NodeFSMError
    ├── CommunicationError          a call to a node failed (carries a Classification)
    │   └── RetriesExhausted        the retry helper gave up (carries the history)
    ├── BodyValidationError         a node answered well-formed data with wrong fields
    ├── ResponseTooLarge            a node's answer exceeded the probe's size cap
    ├── ConfigurationError (+ValueError)   bad thresholds, policy or config file
    │   └── SpecError               a machine or scenario spec is invalid
    └── TransitionNotAllowed        an event was fired in a state that has no edge for it

Argument errors also derive from :class:`ValueError` so that callers that
validate input generically keep working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._classify import Classification

__all__ = [
    "BodyValidationError",
    "CommunicationError",
    "ConfigurationError",
    "NodeFSMError",
    "ResponseTooLarge",
    "RetriesExhausted",
    "SpecError",
    "TransitionNotAllowed",
]


class NodeFSMError(Exception):
    """Root of every exception nodefsm raises on purpose."""


class ConfigurationError(NodeFSMError, ValueError):
    """A threshold, policy, option or configuration file is invalid.

    The message names the offending value, the rule, and what would be valid.
    """


class SpecError(ConfigurationError):
    """A machine or scenario spec failed validation.

    Attributes:
        problems: one ``file:line: what is wrong; what would be right`` line
            per problem found; the exception message joins them.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class BodyValidationError(NodeFSMError):
    """A node answered well-formed data whose fields are missing or mistyped.

    ``classify`` maps it to ``validation_failure`` / ``persistent``.

    Attributes:
        field: the dotted name of the offending field, if known.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class ResponseTooLarge(NodeFSMError):
    """A node's answer exceeded the probe's body size cap.

    ``classify`` maps it to ``protocol_violation`` / ``temporary``.
    """


class TransitionNotAllowed(NodeFSMError):
    """An event was fired in a state that has no transition for it.

    Attributes:
        machine: the machine name; node: the node id; state: the current
        state; event: the trigger fired; allowed: the triggers the state
        accepts.
    """

    def __init__(
        self, *, machine: str, node: str, state: str, event: str, allowed: Sequence[str]
    ) -> None:
        self.machine = machine
        self.node = node
        self.state = state
        self.event = event
        self.allowed = tuple(allowed)
        allowed_txt = ", ".join(self.allowed) or "none (final state)"
        super().__init__(
            f"{machine}: node {node!r} is {state!r}, which has no transition for "
            f"{event!r}; allowed here: {allowed_txt}"
        )


class CommunicationError(NodeFSMError):
    """A call to a node failed; the classification says how and whether to retry.

    Unlike the Go design this carries its cause as ``__cause__`` (so
    ``classify`` and tracebacks see it), and every field is keyword-only so
    that no argument can land in the wrong slot.

    Args:
        message: what was attempted and what went wrong.
        node: the node id (``host:port`` for a URL).
        endpoint: the URL or address called.
        operation: a short name of the operation, e.g. ``health-check``.
        classification: the :class:`~nodefsm.Classification` of the failure.
        attempt: the 1-based attempt number that failed.
        next_retry_at: when the next attempt is due (caller's clock), if any.
        metadata: free-form string pairs, copied.
        cause: the underlying exception; set as ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        endpoint: str | None = None,
        operation: str | None = None,
        classification: Classification | None = None,
        attempt: int = 1,
        next_retry_at: float | None = None,
        metadata: Mapping[str, str] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.endpoint = endpoint
        self.operation = operation
        if classification is None:
            from ._classify import classify

            classification = classify(cause) if cause is not None else None
        self.classification = classification
        self.attempt = attempt
        self.next_retry_at = next_retry_at
        self.metadata: dict[str, str] = dict(metadata or {})
        if cause is not None:
            self.__cause__ = cause

    @property
    def retryable(self) -> bool:
        """Whether the failure is worth retrying (from the classification)."""
        return self.classification is not None and self.classification.retryable

    def __str__(self) -> str:
        parts = []
        if self.classification is not None:
            c = self.classification
            parts.append(f"[{c.severity.value}:{c.category.value}]")
        if self.node is not None:
            parts.append(f"node {self.node}:")
        parts.append(self.message)
        if self.operation is not None:
            parts.append(f"(operation {self.operation}")
            parts[-1] += f", endpoint {self.endpoint})" if self.endpoint else ")"
        elif self.endpoint is not None:
            parts.append(f"(endpoint {self.endpoint})")
        if self.attempt > 1:
            parts.append(f"after {self.attempt} attempts")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, node={self.node!r}, "
            f"endpoint={self.endpoint!r}, operation={self.operation!r}, "
            f"classification={self.classification!r}, attempt={self.attempt!r})"
        )

    def with_metadata(self, **pairs: str) -> CommunicationError:
        """Merge ``pairs`` into the metadata and return ``self`` (for chaining)."""
        self.metadata.update(pairs)
        return self


class RetriesExhausted(CommunicationError):
    """The retry helper stopped; ``history`` holds every attempt.

    Attributes:
        history: a tuple of :class:`~nodefsm.Attempt` records, oldest first.
    """

    def __init__(self, message: str, *, history: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.history = tuple(history)
