"""Error classification: any failure -> (category, severity, retryable).

This is the pure core every machine guard calls. It does no I/O, reads no
clock and imports neither trio nor httpx: it recognises their exception
types only when the embedding program has already imported them (looked up
in ``sys.modules``), so the core stays importable on its own.

The Go design matched case-sensitive substrings of the top-level error text,
ignored its own errors' categories and never mapped an HTTP status. Here the
whole cause tree is walked (``__cause__``, ``__context__``, exception
arguments and exception-group members) and the most specific finding wins:
an errno or an ``ssl`` error beats a typed wrapper such as
``httpx.ConnectError``, which beats a bare ``OSError`` message.
"""

from __future__ import annotations

import email.utils
import enum
import errno
import json
import socket
import ssl
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from .exceptions import (
    BodyValidationError,
    CommunicationError,
    ConfigurationError,
    ResponseTooLarge,
)

__all__ = [
    "Category",
    "Classification",
    "Origin",
    "RULES",
    "Rule",
    "Severity",
    "classify",
]


class Category(enum.Enum):
    """What kind of failure it was (the contract's names)."""

    TIMEOUT = "timeout"
    CONNECTION_REFUSED = "connection_refused"
    NAME_RESOLUTION = "name_resolution"
    NETWORK_TEMPORARY = "network_temporary"
    NETWORK_SEND = "network_send"
    NETWORK_RECEIVE = "network_receive"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_BUSY = "resource_busy"
    INTERNAL = "internal"
    PROTOCOL_VIOLATION = "protocol_violation"
    VALIDATION_FAILURE = "validation_failure"
    CONFIGURATION_ERROR = "configuration_error"
    TLS = "tls"
    UNKNOWN = "unknown"


class Severity(enum.Enum):
    """How long the failure is expected to last."""

    TEMPORARY = "temporary"
    PERSISTENT = "persistent"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


class Origin(enum.Enum):
    """Whose fault it is.

    Only ``NODE`` failures count against a node. ``LOCAL`` failures are the
    monitor's own (a full connection pool, no file descriptors left);
    ``CANCELLED`` is cancellation or interpreter shutdown, which is never a
    failure at all; ``NONE`` is a success (a 2xx status).
    """

    NODE = "node"
    LOCAL = "local"
    CANCELLED = "cancelled"
    NONE = "none"


@attrs.frozen
class Classification:
    """The verdict on one failure.

    Attributes:
        category: what kind of failure.
        severity: how long it is expected to last.
        retryable: whether retrying can help (temporary node or local failure).
        origin: whose fault it is; only ``Origin.NODE`` counts against a node.
        reason: a short human explanation, e.g. ``"errno ECONNREFUSED"``.
        status_code: the HTTP status, when the failure was an HTTP answer.
        retry_after: the server's ``Retry-After`` in seconds (delta form).
        retry_at: the server's ``Retry-After`` as a Unix time (HTTP-date form).
    """

    category: Category
    severity: Severity
    retryable: bool
    origin: Origin = Origin.NODE
    reason: str = ""
    status_code: int | None = None
    retry_after: float | None = None
    retry_at: float | None = None

    @property
    def counts_against_node(self) -> bool:
        """True when the failure is the node's (not ours, not a cancellation)."""
        return self.origin is Origin.NODE

    def retry_after_seconds(self, *, now: float) -> float | None:
        """The server's requested wait from ``now`` (Unix seconds), if it sent one.

        Args:
            now: the current Unix time, supplied by the caller's clock.

        Returns:
            Seconds to wait (never negative), or ``None`` without ``Retry-After``.
        """
        if self.retry_after is not None:
            return self.retry_after
        if self.retry_at is not None:
            return max(0.0, self.retry_at - now)
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of the classification."""
        return {
            "category": self.category.value,
            "severity": self.severity.value,
            "retryable": self.retryable,
            "origin": self.origin.value,
            "reason": self.reason,
            "status_code": self.status_code,
            "retry_after": self.retry_after,
            "retry_at": self.retry_at,
        }


def _make(
    category: Category,
    severity: Severity,
    reason: str,
    *,
    origin: Origin = Origin.NODE,
    **extra: Any,
) -> Classification:
    retryable = severity is Severity.TEMPORARY and origin in (Origin.NODE, Origin.LOCAL)
    return Classification(category, severity, retryable, origin, reason, **extra)


# --------------------------------------------------------------------------
# The documented table. ``docs/errors.md`` renders exactly these rows, and a
# test keeps the document, this table and the behaviour of classify() equal.


@attrs.frozen
class Rule:
    """One row of the documented classification table."""

    cause: str
    category: Category
    severity: Severity


_C, _S = Category, Severity
RULES: tuple[Rule, ...] = (
    Rule(
        "connect/read/write timeout (httpx, trio.TooSlowError, TimeoutError, ETIMEDOUT)",
        _C.TIMEOUT,
        _S.TEMPORARY,
    ),
    Rule(
        "ECONNREFUSED anywhere in the chain or group",
        _C.CONNECTION_REFUSED,
        _S.TEMPORARY,
    ),
    Rule(
        "DNS: socket.gaierror EAI_AGAIN (try again)", _C.NAME_RESOLUTION, _S.TEMPORARY
    ),
    Rule(
        "DNS: socket.gaierror EAI_NONAME and other resolver errors",
        _C.NAME_RESOLUTION,
        _S.PERSISTENT,
    ),
    Rule(
        "ENETUNREACH, EHOSTUNREACH, ENETDOWN, EHOSTDOWN; HTTP 502, 504",
        _C.NETWORK_TEMPORARY,
        _S.TEMPORARY,
    ),
    Rule("EPIPE, httpx.WriteError (write side)", _C.NETWORK_SEND, _S.TEMPORARY),
    Rule(
        "ECONNRESET, ECONNABORTED, httpx.ReadError, server closed mid-response (read side)",
        _C.NETWORK_RECEIVE,
        _S.TEMPORARY,
    ),
    Rule("EACCES, EPERM; HTTP 401, 403, 407", _C.PERMISSION_DENIED, _S.PERSISTENT),
    Rule(
        "HTTP 429, 503 (Retry-After kept on the result)", _C.RESOURCE_BUSY, _S.TEMPORARY
    ),
    Rule("HTTP 500 and other 5xx not listed", _C.INTERNAL, _S.TEMPORARY),
    Rule(
        "malformed HTTP, undecodable body, invalid JSON, body over the size cap",
        _C.PROTOCOL_VIOLATION,
        _S.TEMPORARY,
    ),
    Rule(
        "well-formed body with wrong fields or types (BodyValidationError)",
        _C.VALIDATION_FAILURE,
        _S.PERSISTENT,
    ),
    Rule(
        "bad URL, unsupported scheme, HTTP 3xx, 404, 405 and other 4xx",
        _C.CONFIGURATION_ERROR,
        _S.PERSISTENT,
    ),
    Rule("certificate verification failure", _C.TLS, _S.CRITICAL),
    Rule("other TLS failure (handshake cut, protocol alert)", _C.TLS, _S.TEMPORARY),
    Rule("anything else", _C.UNKNOWN, _S.TEMPORARY),
)


# --------------------------------------------------------------------------
# Walking the cause tree.

_MAX_NODES = 256  # bounds the walk: a hostile or cyclic chain cannot hang us.


def _walk(exc: BaseException) -> Iterator[BaseException]:
    """Breadth-first over the exception, its causes, args and group members."""
    seen: set[int] = set()
    queue: list[BaseException] = [exc]
    i = 0
    while i < len(queue) and i < _MAX_NODES:
        current = queue[i]
        i += 1
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        children: list[BaseException] = []
        if isinstance(current, BaseExceptionGroup):
            children.extend(current.exceptions)
        args = current.args if isinstance(current.args, tuple) else ()
        children.extend(a for a in args if isinstance(a, BaseException))
        if current.__cause__ is not None:
            children.append(current.__cause__)
        if current.__context__ is not None:
            children.append(current.__context__)
        queue.extend(c for c in children if id(c) not in seen)


# Specificity: higher wins; ties go to the outermost (first found) finding.
_ERRNO = 3  # an errno, a resolver code, an ssl error: the root cause itself
_TYPED = 2  # a typed library exception that says what happened
_WRAPPER = 1  # a wrapper that only says "something failed here"

_LOCAL_ERRNOS = {
    errno.EMFILE: "EMFILE",
    errno.ENFILE: "ENFILE",
    errno.ENOBUFS: "ENOBUFS",
    errno.ENOMEM: "ENOMEM",
    errno.EADDRINUSE: "EADDRINUSE",
}
_ERRNO_TABLE: dict[int, tuple[Category, Severity]] = {
    errno.ETIMEDOUT: (_C.TIMEOUT, _S.TEMPORARY),
    errno.ECONNREFUSED: (_C.CONNECTION_REFUSED, _S.TEMPORARY),
    errno.ENETUNREACH: (_C.NETWORK_TEMPORARY, _S.TEMPORARY),
    errno.EHOSTUNREACH: (_C.NETWORK_TEMPORARY, _S.TEMPORARY),
    errno.ENETDOWN: (_C.NETWORK_TEMPORARY, _S.TEMPORARY),
    errno.EHOSTDOWN: (_C.NETWORK_TEMPORARY, _S.TEMPORARY),
    errno.EADDRNOTAVAIL: (_C.NETWORK_TEMPORARY, _S.TEMPORARY),
    errno.EPIPE: (_C.NETWORK_SEND, _S.TEMPORARY),
    errno.ECONNRESET: (_C.NETWORK_RECEIVE, _S.TEMPORARY),
    errno.ECONNABORTED: (_C.NETWORK_RECEIVE, _S.TEMPORARY),
    errno.EACCES: (_C.PERMISSION_DENIED, _S.PERSISTENT),
    errno.EPERM: (_C.PERMISSION_DENIED, _S.PERSISTENT),
}
_TYPE_TABLE: tuple[tuple[type[OSError], int], ...] = (
    (ConnectionRefusedError, errno.ECONNREFUSED),
    (ConnectionResetError, errno.ECONNRESET),
    (ConnectionAbortedError, errno.ECONNABORTED),
    (BrokenPipeError, errno.EPIPE),
    (PermissionError, errno.EACCES),
)


def _errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def _from_oserror(exc: OSError) -> tuple[int, Classification] | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _ERRNO, _make(
            _C.TLS,
            _S.CRITICAL,
            f"certificate verification failed: {getattr(exc, 'verify_message', None) or exc}",
        )
    if isinstance(exc, ssl.SSLError):
        return _ERRNO, _make(
            _C.TLS, _S.TEMPORARY, f"TLS failure: {getattr(exc, 'reason', None) or exc}"
        )
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:
            return _ERRNO, _make(
                _C.NAME_RESOLUTION, _S.TEMPORARY, "resolver: try again (EAI_AGAIN)"
            )
        return _ERRNO, _make(
            _C.NAME_RESOLUTION, _S.PERSISTENT, f"resolver: {exc.strerror or exc}"
        )
    code = exc.errno if isinstance(exc.errno, int) else None
    if code is None:
        for typ, implied in _TYPE_TABLE:
            if isinstance(exc, typ):
                code = implied
                break
    if code is not None:
        if code in _LOCAL_ERRNOS:
            return _ERRNO, _make(
                _C.RESOURCE_BUSY,
                _S.TEMPORARY,
                f"local resource exhausted ({_LOCAL_ERRNOS[code]})",
                origin=Origin.LOCAL,
            )
        found = _ERRNO_TABLE.get(code)
        if found is not None:
            return _ERRNO, _make(*found, f"errno {_errno_name(code)}")
    if isinstance(exc, TimeoutError):
        return _TYPED, _make(_C.TIMEOUT, _S.TEMPORARY, "timed out")
    return None


def _from_httpx(exc: BaseException, httpx: Any) -> tuple[int, Classification] | None:
    name = type(exc).__name__
    if isinstance(exc, httpx.PoolTimeout):
        return _TYPED, _make(
            _C.TIMEOUT,
            _S.TEMPORARY,
            "connection pool exhausted (PoolTimeout)",
            origin=Origin.LOCAL,
        )
    if isinstance(exc, httpx.TimeoutException):
        return _TYPED, _make(_C.TIMEOUT, _S.TEMPORARY, f"httpx {name}")
    if isinstance(exc, httpx.HTTPStatusError):
        return _TYPED, _from_response(exc.response)
    if isinstance(exc, httpx.RemoteProtocolError):
        text = str(exc).lower()
        if "disconnect" in text or "closed connection" in text:
            return _TYPED, _make(
                _C.NETWORK_RECEIVE, _S.TEMPORARY, f"server closed the connection: {exc}"
            )
        return _TYPED, _make(
            _C.PROTOCOL_VIOLATION, _S.TEMPORARY, f"malformed HTTP: {exc}"
        )
    if isinstance(exc, httpx.DecodingError):
        return _TYPED, _make(
            _C.PROTOCOL_VIOLATION, _S.TEMPORARY, f"undecodable body: {exc}"
        )
    if isinstance(exc, httpx.ReadError):
        return _TYPED, _make(_C.NETWORK_RECEIVE, _S.TEMPORARY, f"httpx {name}")
    if isinstance(exc, httpx.WriteError):
        return _TYPED, _make(_C.NETWORK_SEND, _S.TEMPORARY, f"httpx {name}")
    if isinstance(exc, httpx.ConnectError):
        return _WRAPPER, _make(
            _C.NETWORK_TEMPORARY, _S.TEMPORARY, f"connect failed: {exc}"
        )
    if isinstance(exc, httpx.TooManyRedirects):
        return _TYPED, _make(
            _C.CONFIGURATION_ERROR, _S.PERSISTENT, "too many redirects"
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return _TYPED, _make(_C.CONFIGURATION_ERROR, _S.PERSISTENT, f"bad URL: {exc}")
    if isinstance(exc, httpx.LocalProtocolError):
        return _TYPED, _make(
            _C.CONFIGURATION_ERROR, _S.PERSISTENT, f"request rejected locally: {exc}"
        )
    if isinstance(exc, httpx.ProxyError):
        return _TYPED, _make(_C.NETWORK_TEMPORARY, _S.TEMPORARY, f"proxy: {exc}")
    if isinstance(exc, httpx.StreamError):
        return _TYPED, _make(
            _C.UNKNOWN, _S.TEMPORARY, f"stream misuse: {exc}", origin=Origin.LOCAL
        )
    if isinstance(exc, httpx.NetworkError):
        return _WRAPPER, _make(_C.NETWORK_TEMPORARY, _S.TEMPORARY, f"httpx {name}")
    return None


def _from_trio(exc: BaseException, trio: Any) -> tuple[int, Classification] | None:
    if isinstance(exc, trio.TooSlowError):
        return _TYPED, _make(
            _C.TIMEOUT, _S.TEMPORARY, "deadline passed (trio.TooSlowError)"
        )
    if isinstance(exc, trio.BrokenResourceError):
        return _WRAPPER, _make(_C.NETWORK_RECEIVE, _S.TEMPORARY, "stream broken")
    if isinstance(exc, trio.ClosedResourceError):
        return _TYPED, _make(
            _C.UNKNOWN, _S.TEMPORARY, "stream closed locally", origin=Origin.LOCAL
        )
    return None


def _is_cancellation(exc: BaseException) -> bool:
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        return True
    trio = sys.modules.get("trio")
    if trio is not None and isinstance(exc, trio.Cancelled):
        return True
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def _classify_one(exc: BaseException) -> tuple[int, Classification] | None:
    if isinstance(exc, CommunicationError) and exc.classification is not None:
        # The Go design ignored its own errors' categories; we trust them.
        return _ERRNO + 1, exc.classification
    if isinstance(exc, BodyValidationError):
        return _ERRNO, _make(
            _C.VALIDATION_FAILURE, _S.PERSISTENT, f"invalid body: {exc}"
        )
    if isinstance(exc, ResponseTooLarge):
        return _ERRNO, _make(_C.PROTOCOL_VIOLATION, _S.TEMPORARY, str(exc))
    if isinstance(exc, ConfigurationError):
        return _ERRNO, _make(_C.CONFIGURATION_ERROR, _S.PERSISTENT, str(exc))
    httpx = sys.modules.get("httpx")
    if httpx is not None:
        found = _from_httpx(exc, httpx)
        if found is not None:
            return found
    trio = sys.modules.get("trio")
    if trio is not None:
        found = _from_trio(exc, trio)
        if found is not None:
            return found
    if isinstance(exc, OSError):
        return _from_oserror(exc)
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return _TYPED, _make(
            _C.PROTOCOL_VIOLATION, _S.TEMPORARY, f"undecodable body: {exc}"
        )
    if isinstance(exc, MemoryError):
        return _TYPED, _make(
            _C.RESOURCE_BUSY, _S.TEMPORARY, "out of memory", origin=Origin.LOCAL
        )
    return None


def _propagating_cancellation(
    exc: BaseException, depth: int = 0
) -> BaseException | None:
    """A cancellation that is itself propagating: the object or a group member.

    A cancellation found only in ``__context__`` or ``__cause__`` was handled
    and turned into something else (httpx turns trio's deadline cancellation
    into ``ReadTimeout``), so it does not make the failure a cancellation.
    """
    if _is_cancellation(exc):
        return exc
    if isinstance(exc, BaseExceptionGroup) and depth < 32:
        for member in exc.exceptions:
            found = _propagating_cancellation(member, depth + 1)
            if found is not None:
                return found
    return None


def _classify_exception(exc: BaseException) -> Classification:
    cancelled = _propagating_cancellation(exc)
    if cancelled is not None:
        return Classification(
            _C.UNKNOWN,
            _S.UNKNOWN,
            False,
            Origin.CANCELLED,
            f"cancelled ({type(cancelled).__name__})",
        )
    best: tuple[int, Classification] | None = None
    for item in _walk(exc):
        found = _classify_one(item)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    if best is not None:
        return best[1]
    return _make(_C.UNKNOWN, _S.TEMPORARY, f"unrecognised {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------
# HTTP answers.


def _parse_retry_after(value: str) -> dict[str, float]:
    value = value.strip()
    if value.isdigit():
        return {"retry_after": float(int(value))}
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return {}
    if parsed.tzinfo is None:  # RFC 9110 dates are GMT; be lenient.
        return {}
    return {"retry_at": parsed.timestamp()}


def _from_status(code: int, headers: Mapping[str, str] | None = None) -> Classification:
    reason = f"HTTP {code}"
    if 200 <= code < 300:
        return Classification(
            _C.UNKNOWN, _S.UNKNOWN, False, Origin.NONE, f"{reason} is a success", code
        )
    if code in (429, 503):
        extra: dict[str, float] = {}
        if headers is not None:
            raw = headers.get("retry-after") or headers.get("Retry-After")
            if isinstance(raw, str):
                extra = _parse_retry_after(raw)
        return _make(
            _C.RESOURCE_BUSY,
            _S.TEMPORARY,
            reason,
            status_code=code,
            retry_after=extra.get("retry_after"),
            retry_at=extra.get("retry_at"),
        )
    if code in (401, 403, 407):
        return _make(_C.PERMISSION_DENIED, _S.PERSISTENT, reason, status_code=code)
    if code == 408:
        return _make(_C.TIMEOUT, _S.TEMPORARY, reason, status_code=code)
    if code in (502, 504):
        return _make(_C.NETWORK_TEMPORARY, _S.TEMPORARY, reason, status_code=code)
    if code in (501, 505):
        return _make(_C.CONFIGURATION_ERROR, _S.PERSISTENT, reason, status_code=code)
    if 500 <= code < 600:
        return _make(_C.INTERNAL, _S.TEMPORARY, reason, status_code=code)
    if 300 <= code < 500:
        return _make(_C.CONFIGURATION_ERROR, _S.PERSISTENT, reason, status_code=code)
    return _make(
        _C.PROTOCOL_VIOLATION,
        _S.TEMPORARY,
        f"{reason} is not a valid status",
        status_code=code,
    )


def _from_response(response: Any) -> Classification:
    code = getattr(response, "status_code", None)
    if not isinstance(code, int) or isinstance(code, bool):
        return _make(
            _C.PROTOCOL_VIOLATION, _S.TEMPORARY, "response without a status code"
        )
    headers = getattr(response, "headers", None)
    if not isinstance(headers, Mapping):
        headers = None
    try:
        return _from_status(code, headers)
    except Exception:  # noqa: BLE001 - a hostile headers object must not escape.
        return _from_status(code, None)


def classify(obj: object) -> Classification:
    """Classify a failure. Total: it never raises.

    Args:
        obj: any exception (the whole cause chain and exception groups are
            searched), an ``httpx.Response`` (or any object with an integer
            ``status_code``), or an HTTP status code.

    Returns:
        The :class:`Classification`. Cancellation, ``KeyboardInterrupt`` and
        ``SystemExit`` anywhere in the tree give ``Origin.CANCELLED``; the
        monitor's own resource failures give ``Origin.LOCAL``; a 2xx status
        gives ``Origin.NONE``. None of these counts against a node.
    """
    try:
        if isinstance(obj, BaseException):
            return _classify_exception(obj)
        if isinstance(obj, bool):
            return _make(_C.UNKNOWN, _S.TEMPORARY, f"not a failure: {obj!r}")
        if isinstance(obj, int):
            return _from_status(obj)
        if hasattr(obj, "status_code"):
            return _from_response(obj)
        return _make(_C.UNKNOWN, _S.TEMPORARY, f"not a failure: {type(obj).__name__}")
    except Exception as exc:  # noqa: BLE001 - totality is the contract.
        return _make(
            _C.UNKNOWN, _S.TEMPORARY, f"classification failed: {type(exc).__name__}"
        )


def rules_markdown() -> str:
    """The documented classification table as Markdown (kept in docs/errors.md)."""
    lines = ["| cause | category | severity |", "|---|---|---|"]
    lines += [f"| {r.cause} | {r.category.value} | {r.severity.value} |" for r in RULES]
    return "\n".join(lines)
