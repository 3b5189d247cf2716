"""Real failures produced on loopback, classified as the table says.

Each case is run through a plain ``httpx.AsyncClient`` on trio, and the
connection-level ones also through raw trio streams. Timeouts run on trio's
autojump MockClock, so a hung server costs no real time.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
import trio
import trustme
from servers import (
    close_at_once,
    close_midway,
    closed_port,
    garbage,
    hang,
    read_request,
    reset,
    respond,
    serve,
)

from nodefsm import BodyValidationError, Category, Severity, classify


async def get(url: str, **kwargs: object) -> BaseException | httpx.Response:
    try:
        async with httpx.AsyncClient(**kwargs) as client:  # type: ignore[arg-type]
            response = await client.get(url)
            response.raise_for_status()
            return response
    except Exception as exc:
        return exc


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_ctx(ca: trustme.CA) -> Iterator[ssl.SSLContext]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


def tls_handler(ctx: ssl.SSLContext):  # type: ignore[no-untyped-def]
    async def handler(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, ctx, server_side=True)
        try:
            await tls.do_handshake()
            await read_request(tls)  # type: ignore[arg-type]
        except (trio.BrokenResourceError, ssl.SSLError):
            pass

    return handler


async def test_closed_port_is_refused() -> None:
    """A closed loopback port gives connection_refused through httpx."""
    exc = await get(f"http://127.0.0.1:{closed_port()}/")
    c = classify(exc)
    assert (Category.CONNECTION_REFUSED, Severity.TEMPORARY) == (c.category, c.severity)


async def test_closed_port_raw_trio_is_refused() -> None:
    """The same through trio.open_tcp_stream (an OSError over a group)."""
    with pytest.raises(OSError) as info:
        await trio.open_tcp_stream("127.0.0.1", closed_port())
    assert Category.CONNECTION_REFUSED == classify(info.value).category


async def test_hung_server_times_out(autojump_clock: trio.testing.MockClock) -> None:
    """A server that accepts and never answers gives timeout (httpx read timeout)."""
    async with serve(hang) as port:
        exc = await get(f"http://127.0.0.1:{port}/", timeout=2.0)
    assert isinstance(exc, httpx.ReadTimeout)
    c = classify(exc)
    assert (Category.TIMEOUT, Severity.TEMPORARY) == (c.category, c.severity)


async def test_hung_server_raw_trio_times_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A raw read under trio.fail_after gives timeout too."""
    async with serve(hang) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        with pytest.raises(trio.TooSlowError) as info:
            with trio.fail_after(1):
                await stream.receive_some()
        await stream.aclose()
    assert Category.TIMEOUT == classify(info.value).category


async def test_reset_is_network_receive() -> None:
    """A reset (SO_LINGER 0) while reading is network_receive."""
    async with serve(reset) as port:
        exc = await get(f"http://127.0.0.1:{port}/")
    assert Category.NETWORK_RECEIVE == classify(exc).category


async def test_reset_raw_trio() -> None:
    """The reset seen on a raw trio stream is network_receive too."""
    async with serve(reset) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET / HTTP/1.1\r\n\r\n")
        with pytest.raises(trio.BrokenResourceError) as info:
            while await stream.receive_some():
                pass  # pragma: no cover - the reset arrives first
        await stream.aclose()
    assert Category.NETWORK_RECEIVE == classify(info.value).category


async def test_invalid_name_is_name_resolution() -> None:
    """A name under .invalid never resolves: name_resolution, persistent."""
    c = classify(await get("http://node.invalid:11434/"))
    assert (Category.NAME_RESOLUTION, Severity.PERSISTENT) == (c.category, c.severity)


async def test_untrusted_certificate_is_critical_tls(
    server_ctx: ssl.SSLContext,
) -> None:
    """A certificate the client does not trust: tls, critical."""
    async with serve(tls_handler(server_ctx)) as port:
        exc = await get(f"https://127.0.0.1:{port}/")
    c = classify(exc)
    assert (Category.TLS, Severity.CRITICAL) == (c.category, c.severity)


async def test_untrusted_certificate_raw_trio(server_ctx: ssl.SSLContext) -> None:
    """The same through trio.SSLStream: BrokenResourceError over an ssl error."""
    async with serve(tls_handler(server_ctx)) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        tls = trio.SSLStream(
            stream, ssl.create_default_context(), server_hostname="127.0.0.1"
        )
        with pytest.raises(trio.BrokenResourceError) as info:
            await tls.do_handshake()
        await stream.aclose()
    c = classify(info.value)
    assert (Category.TLS, Severity.CRITICAL) == (c.category, c.severity)


async def test_trusted_certificate_works(
    ca: trustme.CA, server_ctx: ssl.SSLContext
) -> None:
    """With the CA trusted the same server answers (the failure was the trust)."""

    async def ok(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, server_ctx, server_side=True)
        await tls.do_handshake()
        await read_request(tls)  # type: ignore[arg-type]
        await tls.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await tls.aclose()

    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with serve(ok) as port:
        response = await get(f"https://127.0.0.1:{port}/", verify=client_ctx)
    assert isinstance(response, httpx.Response)
    assert 200 == response.status_code


async def test_cut_handshake_is_temporary_tls() -> None:
    """A server that closes during the TLS handshake: tls, temporary."""
    async with serve(close_at_once) as port:
        c = classify(await get(f"https://127.0.0.1:{port}/"))
    assert (Category.TLS, Severity.TEMPORARY) == (c.category, c.severity)


async def test_503_keeps_retry_after() -> None:
    """A 503 with Retry-After: resource_busy, temporary, the delay kept."""
    async with serve(respond(503, b"full", {"Retry-After": "3"})) as port:
        exc = await get(f"http://127.0.0.1:{port}/")
    c = classify(exc)
    assert (Category.RESOURCE_BUSY, 3.0) == (c.category, c.retry_after)


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (401, Category.PERMISSION_DENIED),
        (404, Category.CONFIGURATION_ERROR),
        (500, Category.INTERNAL),
    ],
)
async def test_error_statuses(status: int, category: Category) -> None:
    """401, 404 and 500 from a real server map as documented."""
    async with serve(respond(status)) as port:
        exc = await get(f"http://127.0.0.1:{port}/")
    assert category == classify(exc).category


async def test_malformed_http_is_protocol_violation() -> None:
    """Bytes that are not HTTP: protocol_violation."""
    async with serve(garbage) as port:
        assert (
            Category.PROTOCOL_VIOLATION
            == classify(await get(f"http://127.0.0.1:{port}/")).category
        )


async def test_closed_mid_response_is_network_receive() -> None:
    """A body cut short by the server: network_receive."""
    async with serve(close_midway) as port:
        assert (
            Category.NETWORK_RECEIVE
            == classify(await get(f"http://127.0.0.1:{port}/")).category
        )


async def test_invalid_json_is_protocol_violation() -> None:
    """A 200 whose body is not JSON: protocol_violation when decoded."""
    async with serve(respond(200, b"{not json")) as port:
        response = await get(f"http://127.0.0.1:{port}/")
    assert isinstance(response, httpx.Response)
    with pytest.raises(ValueError) as info:
        response.json()
    assert Category.PROTOCOL_VIOLATION == classify(info.value).category


async def test_wrong_fields_is_validation_failure() -> None:
    """A well-formed body missing its field: validation_failure, persistent."""
    async with serve(respond(200, b'{"versio": "0.5"}')) as port:
        response = await get(f"http://127.0.0.1:{port}/")
    assert isinstance(response, httpx.Response)
    try:
        if "version" not in response.json():
            raise BodyValidationError("field 'version' is missing", field="version")
    except BodyValidationError as exc:
        c = classify(exc)
    assert (Category.VALIDATION_FAILURE, Severity.PERSISTENT) == (
        c.category,
        c.severity,
    )


async def test_unsupported_scheme_is_configuration_error() -> None:
    """A URL with a scheme httpx cannot speak: configuration_error."""
    assert (
        Category.CONFIGURATION_ERROR == classify(await get("ftp://127.0.0.1/")).category
    )


class RawResponse:
    """A response read off a raw trio stream (status line and headers only)."""

    def __init__(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.status_code = int(lines[0].split()[1])
        self.headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        }


@pytest.mark.parametrize(
    ("status", "headers", "category", "retry_after"),
    [
        (503, {"Retry-After": "3"}, Category.RESOURCE_BUSY, 3.0),
        (401, None, Category.PERMISSION_DENIED, None),
        (404, None, Category.CONFIGURATION_ERROR, None),
    ],
)
async def test_statuses_through_raw_trio_streams(
    status: int,
    headers: dict[str, str] | None,
    category: Category,
    retry_after: float | None,
) -> None:
    """The same answers read with raw trio streams classify the same way."""
    async with serve(respond(status, b"x", headers)) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /api/version HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await read_request(stream)
        await stream.aclose()
    c = classify(RawResponse(head.split(b"\r\n\r\n")[0]))
    assert (category, retry_after) == (c.category, c.retry_after)
