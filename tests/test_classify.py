"""Unit and property tests of nodefsm.classify (no network)."""

from __future__ import annotations

import errno
import json
import socket
import ssl
from pathlib import Path

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import nodefsm
from nodefsm import Category, Origin, Severity, classify
from nodefsm._classify import RULES, rules_markdown
from nodefsm.strategies import exception_trees, status_codes

C, S = Category, Severity
ROOT = Path(__file__).resolve().parent.parent


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def trio_connect_failure(*members: OSError) -> Exception:
    """The shape httpx raises under trio: ConnectError <- OSError <- ExceptionGroup."""
    group = ExceptionGroup("all attempts to connect failed", list(members))
    middle = OSError("all attempts to connect to 127.0.0.1:1 failed")
    middle.__cause__ = group
    return chained(httpx.ConnectError("all attempts to connect"), middle)


REQUEST = httpx.Request("GET", "http://127.0.0.1:1/api/version")

# One example per documented row; the table test checks rows and examples agree.
EXAMPLES: dict[str, list[object]] = {
    RULES[0].cause: [
        httpx.ConnectTimeout("t"),
        httpx.ReadTimeout("t"),
        httpx.WriteTimeout("t"),
        trio.TooSlowError(),
        TimeoutError(),
        OSError(errno.ETIMEDOUT, "timed out"),
    ],
    RULES[1].cause: [
        trio_connect_failure(ConnectionRefusedError(errno.ECONNREFUSED, "refused")),
        ConnectionRefusedError(),
    ],
    RULES[2].cause: [socket.gaierror(socket.EAI_AGAIN, "Temporary failure")],
    RULES[3].cause: [
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        chained(httpx.ConnectError("x"), socket.gaierror(socket.EAI_FAIL, "fail")),
    ],
    RULES[4].cause: [
        OSError(errno.ENETUNREACH, "x"),
        trio_connect_failure(OSError(errno.EHOSTUNREACH, "x")),
        502,
        504,
    ],
    RULES[5].cause: [BrokenPipeError(), httpx.WriteError("w")],
    RULES[6].cause: [
        ConnectionResetError(),
        httpx.ReadError("r"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    RULES[7].cause: [PermissionError(), OSError(errno.EPERM, "x"), 401, 403],
    RULES[8].cause: [429, 503],
    RULES[9].cause: [500, 599],
    RULES[10].cause: [
        httpx.RemoteProtocolError("illegal status line"),
        json.JSONDecodeError("Expecting value", "x", 0),
        httpx.DecodingError("gzip"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        nodefsm.ResponseTooLarge("over 262144 bytes"),
    ],
    RULES[11].cause: [nodefsm.BodyValidationError("version missing", field="version")],
    RULES[12].cause: [
        httpx.UnsupportedProtocol("ftp"),
        httpx.InvalidURL("bad"),
        404,
        405,
        400,
        301,
        nodefsm.ConfigurationError("bad"),
    ],
    RULES[13].cause: [
        chained(trio.BrokenResourceError(), ssl.SSLCertVerificationError(1, "verify"))
    ],
    RULES[14].cause: [chained(trio.BrokenResourceError(), ssl.SSLEOFError(8, "EOF"))],
    RULES[15].cause: [RuntimeError("boom"), ValueError("x"), Exception()],
}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.category.value)
def test_every_documented_row_holds(rule: nodefsm._classify.Rule) -> None:
    """Each documented row's examples classify to the row's category and severity."""
    examples = EXAMPLES[rule.cause]
    assert examples
    for example in examples:
        c = classify(example)
        assert (rule.category, rule.severity) == (c.category, c.severity), example
        assert (rule.severity is Severity.TEMPORARY) == c.retryable


def test_docs_table_matches_code() -> None:
    """docs/errors.md holds exactly the table the code documents."""
    text = (ROOT / "docs" / "errors.md").read_text()
    assert rules_markdown() in text


def test_docs_table_covers_every_category() -> None:
    """Every category appears in some documented row."""
    assert set(Category) == {r.category for r in RULES}


def test_refused_wins_over_wrapper_in_mixed_group() -> None:
    """An errno deep in a group beats the httpx wrapper's generic verdict."""
    exc = trio_connect_failure(
        ConnectionRefusedError(errno.ECONNREFUSED, "v6"), OSError("no errno here")
    )
    assert Category.CONNECTION_REFUSED == classify(exc).category


def test_own_communication_error_keeps_its_category() -> None:
    """A CommunicationError's classification is trusted, not re-derived."""
    inner = classify(429)
    err = nodefsm.CommunicationError(
        "busy", classification=inner, cause=RuntimeError("x")
    )
    assert inner == classify(err)
    assert inner == classify(chained(RuntimeError("wrapper"), err))


def test_http_status_error_uses_its_response() -> None:
    """httpx.HTTPStatusError is classified by its response's status."""
    response = httpx.Response(503, headers={"Retry-After": "7"}, request=REQUEST)
    err = httpx.HTTPStatusError("x", request=REQUEST, response=response)
    c = classify(err)
    assert (C.RESOURCE_BUSY, 7.0) == (c.category, c.retry_after)


def test_retry_after_seconds_and_date() -> None:
    """Retry-After is kept in both delta-seconds and HTTP-date forms."""
    seconds = classify(httpx.Response(429, headers={"Retry-After": "120"}))
    assert 120.0 == seconds.retry_after
    assert 120.0 == seconds.retry_after_seconds(now=0.0)
    dated = classify(
        httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    )
    assert 1445412480.0 == dated.retry_at
    assert 10.0 == dated.retry_after_seconds(now=1445412470.0)
    assert 0.0 == dated.retry_after_seconds(now=1445412490.0)
    assert classify(httpx.Response(503)).retry_after_seconds(now=0) is None


@pytest.mark.parametrize(
    "value", ["soon", "-5", "", "Wed, 21 Oct 2015 07:28:00", "1.5"]
)
def test_bad_retry_after_is_ignored(value: str) -> None:
    """An unparseable Retry-After leaves the result without one."""
    c = classify(httpx.Response(503, headers={"Retry-After": value}))
    assert (None, None) == (c.retry_after, c.retry_at)
    assert Category.RESOURCE_BUSY == c.category


def test_success_status_is_not_a_failure() -> None:
    """A 2xx status has origin NONE and does not count against a node."""
    c = classify(httpx.Response(200))
    assert Origin.NONE == c.origin
    assert not c.counts_against_node


@pytest.mark.parametrize("code", [408, 501, 505, 99, 600, -1])
def test_odd_statuses(code: int) -> None:
    """408 is a timeout, 501/505 configuration, out-of-range a protocol violation."""
    expected = {408: C.TIMEOUT, 501: C.CONFIGURATION_ERROR, 505: C.CONFIGURATION_ERROR}
    assert expected.get(code, C.PROTOCOL_VIOLATION) == classify(code).category


@pytest.mark.parametrize(
    "exc",
    [
        httpx.PoolTimeout("pool"),
        OSError(errno.EMFILE, "Too many open files"),
        MemoryError(),
        trio.ClosedResourceError(),
        httpx.StreamConsumed(),
    ],
)
def test_monitor_side_failures_are_local(exc: BaseException) -> None:
    """The monitor's own failures are marked LOCAL and never count against a node."""
    c = classify(exc)
    assert Origin.LOCAL == c.origin
    assert not c.counts_against_node


@pytest.mark.parametrize(
    "exc",
    [
        KeyboardInterrupt(),
        SystemExit(1),
        GeneratorExit(),
        BaseExceptionGroup("g", [ValueError(), KeyboardInterrupt()]),
    ],
)
def test_cancellation_is_never_a_node_failure(exc: BaseException) -> None:
    """Interrupts and exits (also inside groups) are CANCELLED, not retryable."""
    c = classify(exc)
    assert Origin.CANCELLED == c.origin
    assert not c.retryable
    assert not c.counts_against_node


async def test_trio_cancelled_is_cancellation() -> None:
    """A real trio.Cancelled is classified as cancellation."""
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.sleep(1)
        except trio.Cancelled as exc:
            assert Origin.CANCELLED == classify(exc).origin
            raise


def test_handled_cancellation_in_context_is_not_cancellation() -> None:
    """A cancellation only in __context__ was converted (httpx's ReadTimeout)."""
    timeout = httpx.ReadTimeout("")
    timeout.__context__ = KeyboardInterrupt()
    assert Category.TIMEOUT == classify(timeout).category


def test_non_failures_are_unknown() -> None:
    """Objects that are not failures classify as unknown without raising."""
    for obj in [None, "text", 1.5, True, object(), [1]]:
        assert Category.UNKNOWN == classify(obj).category


def test_hostile_objects_do_not_escape() -> None:
    """Objects whose attributes raise still classify."""

    class Hostile:
        @property
        def status_code(self) -> int:
            raise RuntimeError("no")

    class BadHeaders(dict[str, str]):
        def get(self, *a: object, **k: object) -> str:
            raise RuntimeError("no")

    class Resp:
        status_code = 503
        headers = BadHeaders()

    class NoStatus:
        status_code = "200"

    assert Category.UNKNOWN == classify(Hostile()).category
    assert Category.RESOURCE_BUSY == classify(Resp()).category
    assert Category.PROTOCOL_VIOLATION == classify(NoStatus()).category


def test_deep_and_cyclic_chains_terminate() -> None:
    """A very long or cyclic chain is walked within bounds."""
    exc: BaseException = ValueError("root")
    for _ in range(10_000):
        exc = chained(RuntimeError("wrap"), exc)
    assert Category.UNKNOWN == classify(exc).category
    a, b = RuntimeError("a"), ConnectionResetError()
    a.__cause__, b.__context__ = b, a
    assert Category.NETWORK_RECEIVE == classify(a).category


def test_classification_to_dict_is_json() -> None:
    """to_dict gives plain JSON values."""
    assert (
        "resource_busy" == json.loads(json.dumps(classify(503).to_dict()))["category"]
    )


@given(exception_trees())
def test_classify_is_total_over_exception_trees(exc: BaseException) -> None:
    """classify never raises and always returns contract values."""
    c = classify(exc)
    assert c.category in Category
    assert c.severity in Severity
    assert c.retryable == (
        c.severity is Severity.TEMPORARY and c.origin is not Origin.CANCELLED
    )


@given(status_codes())
def test_classify_is_total_over_status_codes(code: int) -> None:
    """Every integer status classifies; only 2xx is not a failure."""
    c = classify(code)
    assert (200 <= code < 300) == (c.origin is Origin.NONE)


@given(st.from_type(type).flatmap(lambda t: st.just(t)))
def test_classify_is_total_over_types(obj: object) -> None:
    """Even classes (not instances) classify without raising."""
    assert classify(obj).category in Category


def test_communication_error_text_and_chain() -> None:
    """CommunicationError chains its cause and names the node and operation."""
    cause = ConnectionRefusedError(errno.ECONNREFUSED, "refused")
    err = nodefsm.CommunicationError(
        "health check failed",
        node="a:1",
        endpoint="http://a:1/api/version",
        operation="health-check",
        attempt=3,
        cause=cause,
    ).with_metadata(k="v")
    assert cause is err.__cause__
    assert err.retryable
    assert {"k": "v"} == err.metadata
    text = str(err)
    assert "[temporary:connection_refused] node a:1: health check failed" in text
    assert "after 3 attempts" in text
    assert "CommunicationError('health check failed'" in repr(err)
    bare = nodefsm.CommunicationError("x", endpoint="e")
    assert "x (endpoint e)" == str(bare)
    assert not bare.retryable
    assert "node n: x (operation op)" == str(
        nodefsm.CommunicationError("x", node="n", operation="op")
    )


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (httpx.TooManyRedirects("r"), C.CONFIGURATION_ERROR),
        (httpx.LocalProtocolError("l"), C.CONFIGURATION_ERROR),
        (httpx.ProxyError("p"), C.NETWORK_TEMPORARY),
        (httpx.CloseError("c"), C.NETWORK_TEMPORARY),
    ],
)
def test_other_httpx_errors(exc: BaseException, category: Category) -> None:
    """The rest of httpx's exception tree maps to sensible categories."""
    assert category == classify(exc).category


def test_response_with_non_mapping_headers() -> None:
    """A response-like object whose headers are not a mapping still classifies."""

    class Resp:
        status_code = 429
        headers = ("Retry-After: 3",)

    assert (C.RESOURCE_BUSY, None) == (
        classify(Resp()).category,
        classify(Resp()).retry_after,
    )


def test_classify_in_process_without_trio_or_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With trio and httpx absent from sys.modules, stdlib errors still classify."""
    import sys

    monkeypatch.delitem(sys.modules, "trio")
    monkeypatch.delitem(sys.modules, "httpx")
    assert C.CONNECTION_REFUSED == classify(ConnectionRefusedError()).category
    assert C.UNKNOWN == classify(RuntimeError()).category
