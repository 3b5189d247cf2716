"""nodefsm: explicit finite-state machines for the health of cluster nodes."""

from ._aretry import Attempt, retry
from ._classify import Category, Classification, Origin, Severity, classify
from ._retry import Jitter, RetryBudget, RetryPolicy
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
    "CommunicationError",
    "CommunicationStats",
    "ConfigurationError",
    "Jitter",
    "NodeFSMError",
    "Origin",
    "RetriesExhausted",
    "RetryBudget",
    "RetryPolicy",
    "RttEstimator",
    "Severity",
    "SpecError",
    "TransitionNotAllowed",
    "classify",
    "retry",
]
