"""Discovery: nodes found by mDNS (DNS-SD ``_ollama._tcp``) join the monitor.

The Go design registered every mDNS entry as *online*, every 5 s, and never
pruned its map. Here a discovered node is only *added* to the monitor: it
starts in ``starting`` and must pass probes like any other node; discovery
never writes a status. A node that stops being announced is removed after a
TTL, with all its state.

The mDNS side needs the optional ``zeroconf`` package
(``pip install 'nodefsm[mdns]'``). Everything else here is independent of
it, so a program can feed its own discovery events (a service registry,
Kubernetes endpoints...) through :func:`run_discovery`.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import trio

from ._monitor import Monitor
from ._probe import Target, parse_target
from .exceptions import ConfigurationError

__all__ = [
    "OLLAMA_SERVICE",
    "DiscoveredNode",
    "DiscoveryEvent",
    "EventKind",
    "MdnsListener",
    "mdns_events",
    "parse_service",
    "run_discovery",
]

#: The seed's service type (DNS-SD), fully qualified for zeroconf.
OLLAMA_SERVICE = "_ollama._tcp.local."


class EventKind(enum.StrEnum):
    """What happened to an announced service."""

    SEEN = "seen"
    GONE = "gone"


@attrs.frozen
class DiscoveredNode:
    """A node announced by discovery.

    Attributes:
        name: the service instance name (unique per announcement).
        node_id: the TXT ``id`` (the seed's), or ``mdns-<name>``.
        target: where to probe it.
        txt: the TXT record, decoded (the seed's keys: id, name, role,
            api_port, cluster_port, version, auto_discovery, cpu_cores, ...).
    """

    name: str
    node_id: str
    target: Target
    txt: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class DiscoveryEvent:
    """A service was seen (announced or refreshed) or said goodbye."""

    kind: EventKind
    name: str
    node: DiscoveredNode | None = None


def _decode(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_service(
    name: str,
    addresses: list[str],
    port: int,
    txt: Mapping[bytes | str, bytes | str | None],
    *,
    self_id: str | None = None,
) -> DiscoveredNode | None:
    """Turn a resolved DNS-SD service into a :class:`DiscoveredNode`.

    IPv4 addresses are preferred (as the seed did); the TXT ``api_port``
    overrides the service port. The monitor's own announcement (TXT ``id``
    equal to ``self_id``) and services without a usable address are skipped
    (None).
    """
    decoded = {_decode(k): _decode(v) for k, v in txt.items()}
    node_id = decoded.get("id") or f"mdns-{name}"
    if self_id is not None and node_id == self_id:
        return None
    usable = []
    for a in addresses:
        try:
            usable.append(ipaddress.ip_address(a))
        except ValueError:
            continue
    if not usable:
        return None
    usable.sort(key=lambda ip: ip.version)  # IPv4 first
    api_port = port
    if decoded.get("api_port", "").isdigit():
        api_port = int(decoded["api_port"])
    if not 0 < api_port < 65536:
        return None
    host = str(usable[0])
    url = (
        f"http://{host}:{api_port}"
        if usable[0].version == 4
        else f"http://[{host}]:{api_port}"
    )
    return DiscoveredNode(
        name=name, node_id=node_id, target=parse_target(url), txt=decoded
    )


async def run_discovery(
    monitor: Monitor,
    events: AsyncIterator[DiscoveryEvent],
    *,
    ttl: float = 30.0,
) -> None:
    """Add discovered nodes to ``monitor``; remove them ``ttl`` s after they go.

    A node is removed when it said goodbye, or was not seen again, for
    ``ttl`` seconds (announcements refresh it). Runs until cancelled.
    """
    last_seen: dict[str, float] = {}
    gone_since: dict[str, float] = {}
    owned: dict[str, str] = {}  # service name -> monitor node id
    added: set[str] = set()  # node ids discovery added (others are left alone)

    async def expire() -> None:
        while True:
            await trio.sleep(min(ttl / 4, 5.0))
            now = trio.current_time()
            for name in list(owned):
                stale = now - last_seen.get(name, now) > ttl
                said_goodbye = name in gone_since and now - gone_since[name] >= ttl
                if stale or said_goodbye:
                    node = owned.pop(name)
                    last_seen.pop(name, None)
                    gone_since.pop(name, None)
                    if node in added and node not in owned.values():
                        added.discard(node)
                        monitor.remove_node(node)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(expire)
        async for event in events:
            now = trio.current_time()
            if event.kind is EventKind.GONE:
                if event.name in owned:
                    gone_since[event.name] = now
                continue
            found = event.node
            if found is None:
                continue
            last_seen[event.name] = now
            gone_since.pop(event.name, None)
            if event.name in owned:
                continue
            if found.target.node in monitor.nodes():
                owned[event.name] = found.target.node
                continue
            monitor.add_node(found.target)
            added.add(found.target.node)
            owned[event.name] = found.target.node
        nursery.cancel_scope.cancel()


class MdnsListener:
    """A zeroconf ``ServiceListener`` that forwards to trio.

    zeroconf calls it from its own thread; it hands the service names to the
    trio side, which resolves them in a worker thread (zeroconf forbids
    blocking resolution on its event-loop thread).
    """

    def __init__(
        self,
        send: trio.MemorySendChannel[tuple[str, str, str]],
        token: trio.lowlevel.TrioToken,
    ) -> None:
        self._send = send
        self._token = token

    def _forward(self, kind: str, type_: str, name: str) -> None:
        # Full or shutting down: drop it; the next announcement will do.
        with contextlib.suppress(
            trio.WouldBlock, trio.RunFinishedError, trio.ClosedResourceError
        ):
            trio.from_thread.run_sync(
                self._send.send_nowait, (kind, type_, name), trio_token=self._token
            )

    def add_service(self, zc: Any, type_: str, name: str) -> None:
        """A service appeared."""
        self._forward("seen", type_, name)

    def update_service(self, zc: Any, type_: str, name: str) -> None:
        """A service was re-announced or changed."""
        self._forward("seen", type_, name)

    def remove_service(self, zc: Any, type_: str, name: str) -> None:
        """A service said goodbye (or its records expired)."""
        self._forward("gone", type_, name)


async def mdns_events(
    *,
    service: str = OLLAMA_SERVICE,
    self_id: str | None = None,
    zeroconf: Any = None,
) -> AsyncIterator[DiscoveryEvent]:
    """Browse ``service`` with zeroconf and yield discovery events.

    Args:
        service: the DNS-SD type (the seed's ``_ollama._tcp``).
        self_id: our own TXT ``id``, skipped.
        zeroconf: a ``zeroconf.Zeroconf`` instance to use (default: a new one,
            closed at the end).

    Raises:
        ConfigurationError: zeroconf is not installed.
    """
    try:
        import zeroconf as zc_module
    except ImportError:
        raise ConfigurationError(
            "mDNS discovery needs the mdns extra: pip install 'nodefsm[mdns]'"
        ) from None
    owns = zeroconf is None
    zc = zeroconf or zc_module.Zeroconf()
    send, receive = trio.open_memory_channel[tuple[str, str, str]](256)
    listener = MdnsListener(send, trio.lowlevel.current_trio_token())
    browser = zc_module.ServiceBrowser(zc, service, listener)  # type: ignore[arg-type]
    try:
        async with receive:
            async for kind, type_, name in receive:
                if kind == "gone":
                    yield DiscoveryEvent(EventKind.GONE, name)
                    continue
                info = await trio.to_thread.run_sync(
                    zc.get_service_info, type_, name, 2000
                )
                if info is None:
                    continue
                found = parse_service(
                    name,
                    list(info.parsed_addresses()),
                    info.port or 0,
                    info.properties or {},
                    self_id=self_id,
                )
                if found is not None:
                    yield DiscoveryEvent(EventKind.SEEN, name, found)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(browser.cancel)
            if owns:
                await trio.to_thread.run_sync(zc.close)
