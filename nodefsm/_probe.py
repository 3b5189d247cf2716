"""Health probes: one HTTP request per probe, every outcome classified.

A probe is an ``async def`` taking an ``httpx.AsyncClient``. It never raises
for a node failure: it returns a :class:`ProbeResult` whose classification
says what went wrong. ``trio.Cancelled`` (and any other ``BaseException``)
is never caught. Response bodies are read up to a cap, decoded and validated;
a bad body is a classification, not a crash.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import trio

from ._classify import Classification, classify
from ._config import LoadReport
from .exceptions import BodyValidationError, ConfigurationError, ResponseTooLarge

__all__ = [
    "MAX_BODY",
    "Probe",
    "ProbeResult",
    "Profile",
    "Target",
    "parse_target",
    "run_probe",
]

#: Bodies larger than this are a protocol violation (a health answer is small).
MAX_BODY = 256 * 1024
_MAX_REDIRECTS = 3


class Profile(enum.StrEnum):
    """What a probe asks and how it reads the answer.

    - ``ollama``: ``GET /api/version`` (and ``/api/ps`` for loaded models
      and VRAM when ``models=True``).
    - ``ollama-cluster``: ``GET /api/health`` with the seed's headers; the
      seed's ``NodeHealthStatus`` JSON is the load report that drives busy.
    - ``http``: any 2xx on a given path.
    """

    OLLAMA = "ollama"
    OLLAMA_CLUSTER = "ollama-cluster"
    HTTP = "http"


@attrs.frozen
class Target:
    """A node to probe.

    Attributes:
        node: the node id, ``host:port`` (``[v6]:port`` for IPv6).
        base_url: the URL without credentials, path or query.
        auth: ``(user, password)`` taken from the URL, never shown anywhere.
    """

    node: str
    base_url: str
    auth: tuple[str, str] | None = attrs.field(default=None, repr=False)

    @property
    def display(self) -> str:
        """The URL safe to show: no credentials."""
        return self.base_url


def parse_target(url: str, *, default_port: int | None = None) -> Target:
    """Parse a node URL into a :class:`Target`.

    Args:
        url: ``http(s)://[user:pass@]host[:port][/path]``; a bare ``host:port``
            means ``http://host:port``.
        default_port: the port when the URL gives none (default: the scheme's).

    Raises:
        ConfigurationError: the URL is not usable; the message names it
            (without its credentials).
    """
    raw = url.strip()
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"URL {_redact(url)!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"URL {_redact(url)!r}: scheme {parts.scheme!r} is not supported; use http or https"
        )
    host = parts.hostname
    if not host:
        raise ConfigurationError(f"URL {_redact(url)!r}: no host")
    if port is None:
        port = default_port or (443 if parts.scheme == "https" else 80)
    shown_host = f"[{host}]" if ":" in host else host
    auth = None
    if parts.username is not None:
        auth = (parts.username, parts.password or "")
    return Target(
        node=f"{shown_host}:{port}",
        base_url=f"{parts.scheme}://{shown_host}:{port}",
        auth=auth,
    )


def _redact(url: str) -> str:
    if "@" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    return (scheme + "://" if sep else "") + "***@" + rest.rpartition("@")[2]


@attrs.frozen(kw_only=True)
class ProbeResult:
    """The outcome of one probe.

    Attributes:
        node: the node id.
        ok: True when the node answered well.
        latency: seconds from sending to the validated answer (or failure).
        classification: why it failed (None on success).
        status_code: the HTTP status, when there was one.
        load: the node's load report (``ollama-cluster``), if any.
        version: the server's version string, if reported.
        models: names of loaded models (``ollama`` with ``models=True``).
        vram_bytes: VRAM used by loaded models, if reported.
    """

    node: str
    ok: bool
    latency: float
    classification: Classification | None = None
    status_code: int | None = None
    load: LoadReport | None = None
    version: str | None = None
    models: tuple[str, ...] = ()
    vram_bytes: int | None = None


@attrs.frozen(kw_only=True)
class Probe:
    """How to probe: the profile and its options.

    Args:
        profile: ``ollama``, ``ollama-cluster`` or ``http``.
        path: the path for the ``http`` profile (default ``/``).
        models: with ``ollama``, also ask ``/api/ps`` for loaded models.
        source_node: the ``X-Source-Node`` header (``ollama-cluster``).
        max_body: the body size cap in bytes.
    """

    profile: Profile = attrs.field(default=Profile.OLLAMA, converter=Profile)
    path: str = "/"
    models: bool = False
    source_node: str = "nodefsm"
    max_body: int = MAX_BODY

    def first_path(self) -> str:
        """The path of the first request."""
        if self.profile is Profile.OLLAMA:
            return "/api/version"
        if self.profile is Profile.OLLAMA_CLUSTER:
            return "/api/health"
        return self.path if self.path.startswith("/") else "/" + self.path

    def headers(
        self, timeout: float, attempt: int | None = None, attempts: int | None = None
    ) -> dict[str, str]:
        """The request headers (the seed's cluster and reconnection headers)."""
        headers = {"User-Agent": "nodefsm", "Accept": "application/json"}
        if self.profile is Profile.OLLAMA_CLUSTER:
            headers["X-Cluster-Health-Check"] = "true"
            headers["X-Source-Node"] = self.source_node
            headers["X-Request-Timeout"] = str(max(1, int(timeout * 1000)))
        if attempt is not None:
            headers["X-Reconnection-Attempt"] = str(attempt)
            if attempts is not None:
                headers["X-Reconnection-Max"] = str(attempts)
        return headers


async def _get(
    client: httpx.AsyncClient,
    target: Target,
    path: str,
    headers: Mapping[str, str],
    max_body: int,
) -> tuple[httpx.Response, bytes]:
    url = target.base_url + path
    for _ in range(_MAX_REDIRECTS + 1):
        request = client.build_request("GET", url, headers=headers)
        auth = httpx.BasicAuth(*target.auth) if target.auth is not None else None
        response = await client.send(
            request, stream=True, follow_redirects=False, auth=auth
        )
        try:
            if response.is_redirect and "location" in response.headers:
                nxt = response.url.join(response.headers["location"])
                # Never follow a redirect to another host: credentials and
                # trust must not leak to a place the operator did not name.
                if (nxt.host, nxt.port, nxt.scheme) != (
                    response.url.host,
                    response.url.port,
                    response.url.scheme,
                ):
                    return response, b""
                url = str(nxt)
                continue
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_body:
                    raise ResponseTooLarge(
                        f"response body over {max_body} bytes from {target.node}{path}"
                    )
            return response, bytes(body)
        finally:
            await response.aclose()
    return response, b""


def _json(body: bytes) -> Any:
    # UnicodeDecodeError / JSONDecodeError classify as protocol_violation.
    return json.loads(body.decode("utf-8"))


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        raise BodyValidationError(
            f"field {key!r} must be a number, got {value!r:.40}", field=key
        )
    if value < 0:
        raise BodyValidationError(
            f"field {key!r} must be >= 0, got {value!r}", field=key
        )
    return float(value)


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = _number(data, key)
    return None if value is None else int(value)


def _numbers(data: Mapping[str, Any], key: str) -> tuple[float, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BodyValidationError(f"field {key!r} must be a list of numbers", field=key)
    return tuple(_number({key: v}, key) or 0.0 for v in value)


def parse_health(data: object) -> LoadReport:
    """Validate the seed's ``NodeHealthStatus`` JSON into a :class:`LoadReport`.

    Raises:
        BodyValidationError: naming the field that is missing or mistyped.
    """
    if not isinstance(data, dict):
        raise BodyValidationError("health answer must be a JSON object")
    if "status" in data and not isinstance(data["status"], str):
        raise BodyValidationError("field 'status' must be a string", field="status")
    return LoadReport(
        cpu_percent=_number(data, "cpu_usage_percent"),
        memory_mb=_number(data, "memory_usage_mb"),
        active_requests=_int(data, "active_requests"),
        queued_requests=_int(data, "queued_requests"),
        gpu_utilization=_numbers(data, "gpu_utilization"),
        gpu_memory_mb=_numbers(data, "gpu_memory_usage_mb"),
        latency_ms=_number(data, "latency_ms"),
        model_count=_int(data, "model_load_count"),
    )


def _version(data: object) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        raise BodyValidationError(
            "answer must be an object with a string 'version'", field="version"
        )
    return str(data["version"])


def _models(data: object) -> tuple[tuple[str, ...], int]:
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise BodyValidationError(
            "answer must be an object with a 'models' list", field="models"
        )
    names: list[str] = []
    vram = 0
    for i, m in enumerate(data["models"]):
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            raise BodyValidationError(
                f"models[{i}] must have a string 'name'", field=f"models[{i}].name"
            )
        names.append(m["name"])
        size = m.get("size_vram", 0)
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            vram += size
    return tuple(names), vram


async def run_probe(
    client: httpx.AsyncClient,
    target: Target,
    probe: Probe,
    *,
    timeout: float,
    attempt: int | None = None,
    attempts: int | None = None,
) -> ProbeResult:
    """Probe ``target`` once, within ``timeout`` seconds. Never raises for a node failure.

    Args:
        client: the shared ``httpx.AsyncClient``.
        target: the node.
        probe: what to ask.
        timeout: the deadline for the whole probe (connect, answer, body).
        attempt: the reconnection attempt, sent as ``X-Reconnection-Attempt``.
        attempts: the most attempts reconnection makes (``X-Reconnection-Max``).

    Returns:
        The :class:`ProbeResult`.
    """
    start = trio.current_time()
    status: int | None = None
    try:
        with trio.fail_after(timeout):
            headers = probe.headers(timeout, attempt, attempts)
            response, body = await _get(
                client, target, probe.first_path(), headers, probe.max_body
            )
            status = response.status_code
            if not 200 <= status < 300:
                c = classify(response)
                return ProbeResult(
                    node=target.node,
                    ok=False,
                    latency=trio.current_time() - start,
                    classification=c,
                    status_code=status,
                )
            result = ProbeResult(
                node=target.node, ok=True, latency=0.0, status_code=status
            )
            if probe.profile is Profile.OLLAMA:
                result = attrs.evolve(result, version=_version(_json(body)))
                if probe.models:
                    _, ps_body = await _get(
                        client, target, "/api/ps", headers, probe.max_body
                    )
                    names, vram = _models(_json(ps_body))
                    result = attrs.evolve(result, models=names, vram_bytes=vram)
            elif probe.profile is Profile.OLLAMA_CLUSTER:
                result = attrs.evolve(result, load=parse_health(_json(body)))
            return attrs.evolve(result, latency=trio.current_time() - start)
    except Exception as exc:  # noqa: BLE001 - every node failure becomes a classification; trio.Cancelled is a BaseException and propagates.
        c = classify(exc)
        return ProbeResult(
            node=target.node,
            ok=False,
            latency=trio.current_time() - start,
            classification=c,
            status_code=status,
        )
