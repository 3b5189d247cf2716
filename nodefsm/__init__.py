"""nodefsm: explicit finite-state machines for the health of cluster nodes."""

from ._aretry import Attempt, retry
from ._classify import Category, Classification, Origin, Severity, classify
from ._cluster import (
    ClusterState,
    ClusterSummary,
    NodeSnapshot,
    Route,
    SuspicionPolicy,
)
from ._config import (
    DegradationLevel,
    DegradationMode,
    DegradationPolicy,
    LoadReport,
    NodeThresholds,
    cluster_level,
    latency_ratio,
    node_level,
    should_tolerate,
)
from ._diagram import to_dot, to_mermaid
from ._engine import (
    DegradationEvent,
    Engine,
    NodeEvent,
    NodeStatus,
    ReconnectEvent,
    ReconnectState,
    TransitionRecord,
)
from ._guards import GUARDS, Guard, GuardContext
from ._retry import Jitter, RetryBudget, RetryPolicy
from ._spec import MachineSpec, TransitionSpec, load_spec, load_spec_text
from ._stats import CommunicationStats, RttEstimator
from .exceptions import (
    BodyValidationError,
    CommunicationError,
    ConfigurationError,
    NodeFSMError,
    RetriesExhausted,
    SpecError,
    TransitionNotAllowed,
)

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "BodyValidationError",
    "Category",
    "Classification",
    "ClusterState",
    "ClusterSummary",
    "CommunicationError",
    "CommunicationStats",
    "ConfigurationError",
    "DegradationEvent",
    "DegradationLevel",
    "DegradationMode",
    "DegradationPolicy",
    "Engine",
    "GUARDS",
    "Guard",
    "GuardContext",
    "Jitter",
    "LoadReport",
    "MachineSpec",
    "NodeEvent",
    "NodeFSMError",
    "NodeSnapshot",
    "NodeStatus",
    "NodeThresholds",
    "Origin",
    "ReconnectEvent",
    "ReconnectState",
    "RetriesExhausted",
    "RetryBudget",
    "RetryPolicy",
    "Route",
    "RttEstimator",
    "Severity",
    "SpecError",
    "SuspicionPolicy",
    "TransitionNotAllowed",
    "TransitionRecord",
    "TransitionSpec",
    "classify",
    "cluster_level",
    "latency_ratio",
    "load_spec",
    "load_spec_text",
    "node_level",
    "retry",
    "should_tolerate",
    "to_dot",
    "to_mermaid",
]
