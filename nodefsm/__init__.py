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
from ._configfile import MonitorFile, load_config
from ._diagram import to_dot, to_mermaid
from ._discovery import (
    DiscoveredNode,
    DiscoveryEvent,
    EventKind,
    mdns_events,
    parse_service,
    run_discovery,
)
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
from ._monitor import (
    RECONNECT_POLICY,
    Monitor,
    MonitorConfig,
    Subscription,
    Verdict,
    open_monitor,
)
from ._probe import Probe, ProbeResult, Profile, Target, parse_target, run_probe
from ._retry import Jitter, RetryBudget, RetryPolicy
from ._scenario import Report, Scenario, load_scenario, load_scenario_text
from ._sim import SimulationResult, seed_policy, simulate
from ._spec import MachineSpec, TransitionSpec, load_spec, load_spec_text
from ._stats import CommunicationStats, RttEstimator
from .exceptions import (
    BodyValidationError,
    CommunicationError,
    ConfigurationError,
    NodeFSMError,
    ResponseTooLarge,
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
    "DiscoveredNode",
    "DiscoveryEvent",
    "Engine",
    "EventKind",
    "GUARDS",
    "Guard",
    "GuardContext",
    "Jitter",
    "LoadReport",
    "MachineSpec",
    "Monitor",
    "MonitorConfig",
    "MonitorFile",
    "NodeEvent",
    "NodeFSMError",
    "NodeSnapshot",
    "NodeStatus",
    "NodeThresholds",
    "Origin",
    "Probe",
    "ProbeResult",
    "Profile",
    "RECONNECT_POLICY",
    "ReconnectEvent",
    "ReconnectState",
    "Report",
    "ResponseTooLarge",
    "RetriesExhausted",
    "RetryBudget",
    "RetryPolicy",
    "Route",
    "RttEstimator",
    "Scenario",
    "Severity",
    "SimulationResult",
    "SpecError",
    "Subscription",
    "SuspicionPolicy",
    "Target",
    "TransitionNotAllowed",
    "TransitionRecord",
    "TransitionSpec",
    "Verdict",
    "classify",
    "cluster_level",
    "latency_ratio",
    "load_config",
    "load_scenario",
    "load_scenario_text",
    "load_spec",
    "load_spec_text",
    "mdns_events",
    "node_level",
    "open_monitor",
    "parse_service",
    "parse_target",
    "retry",
    "run_discovery",
    "run_probe",
    "seed_policy",
    "should_tolerate",
    "simulate",
    "to_dot",
    "to_mermaid",
]
