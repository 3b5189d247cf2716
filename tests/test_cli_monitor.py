"""`nodefsm monitor`: config files, flags, JSON events, metrics, a real subprocess."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from nodefsm import ConfigurationError, load_config
from nodefsm._cli import main
from nodefsm._metrics import TransitionCounter, render_metrics, serve_metrics
from nodefsm._monitor import MonitorConfig
from nodefsm._run import Output, run_monitor
from nodefsm.testing import fake_node


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nodefsm.toml"
    path.write_text(text)
    return path


def test_config_file_loads(tmp_path: Path) -> None:
    """A full config file builds every policy."""
    path = write(
        tmp_path,
        """
nodes = ["http://127.0.0.1:11434"]

[[node]]
url = "http://127.0.0.2:11434"

[monitor]
interval = 2.5
profile = "ollama-cluster"
duration = 30

[thresholds]
degrade_after = 2
offline_after = 4

[retry]
retries = 3
mode = "full"

[degradation]
mode = "strict"

[suspicion]
min_nodes = 4
""",
    )
    loaded = load_config(path)
    assert ("http://127.0.0.1:11434", "http://127.0.0.2:11434") == loaded.nodes
    assert 2.5 == loaded.config.interval
    assert "ollama-cluster" == loaded.config.probe.profile
    assert (2, 4) == (
        loaded.config.thresholds.degrade_after,
        loaded.config.thresholds.offline_after,
    )
    assert 3 == loaded.config.reconnect_policy.retries
    assert "strict" == loaded.config.degradation.mode
    assert 4 == loaded.config.suspicion.min_nodes
    assert 30.0 == loaded.duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[thresholds]\ndegrade_after = 0\n",
            "nodefsm.toml:2: [thresholds] NodeThresholds: degrade_after=0",
        ),
        ("[thresholds]\nx = 1\n", "nodefsm.toml:2: [thresholds] unknown key 'x'"),
        (
            "[monitor]\ninterval = -1\n",
            "nodefsm.toml:2: [monitor] MonitorConfig: interval=-1",
        ),
        ("[monitor]\nprofile = 'grpc'\n", "nodefsm.toml:2: [monitor] profile='grpc'"),
        ("[monitor]\nspeed = 1\n", "nodefsm.toml:2: [monitor] unknown key 'speed'"),
        ("[monitor]\nduration = 0\n", "nodefsm.toml:2: [monitor] duration=0"),
        ("[retry]\nfactor = 0.5\n", "[retry] RetryPolicy: factor=0.5"),
        ("nodes = 'x'\n", "nodefsm.toml:1: nodes must be a list"),
        ("nodes = ['ftp://x']\n", "nodefsm.toml:1: URL 'ftp://x': scheme 'ftp'"),
        ("[[node]]\nname = 'a'\n", "nodefsm.toml:1: each [[node]] needs url"),
        ("extra = 1\n", "nodefsm.toml:1: unknown key 'extra'"),
        ("thresholds = 3\n", "[thresholds] must be a table"),
        ("[monitor\n", "nodefsm.toml:1: invalid TOML"),
    ],
)
def test_config_errors_name_file_line_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Each bad config is one line naming the file, line and key."""
    with pytest.raises(ConfigurationError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_config_missing_and_unreadable(tmp_path: Path) -> None:
    """Missing or binary config files are clear errors."""
    with pytest.raises(ConfigurationError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "b.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_config(bad)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["monitor"], "give at least one URL"),
        (["monitor", "ftp://127.0.0.1:1"], "scheme 'ftp' is not supported"),
        (
            ["monitor", "--interval", "0", "http://127.0.0.1:1"],
            "argument --interval: --interval must be > 0",
        ),
        (
            ["monitor", "--interval", "fast", "http://127.0.0.1:1"],
            "--interval must be a number",
        ),
        (
            ["monitor", "--metrics-port", "99999", "http://127.0.0.1:1"],
            "argument --metrics-port: must be within",
        ),
        (
            ["monitor", "--metrics-port", "x", "http://127.0.0.1:1"],
            "must be a port number",
        ),
        (["monitor", "--config", "/no/such.toml"], "/no/such.toml: no such file"),
        (
            ["monitor", "http://u:secret@127.0.0.1:bad"],
            "URL 'http://***@127.0.0.1:bad'",
        ),
    ],
)
def test_monitor_usage_errors(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad flags and inputs: exit 2, one line naming the flag or value, no secrets."""
    assert 2 == main(argv, out=io.StringIO())
    err = capsys.readouterr().err
    assert fragment in err
    assert 1 == len(err.strip().splitlines())
    assert "secret" not in err


def test_monitor_in_process_plain_lines(tmp_path: Path) -> None:
    """Without --json on a pipe: one line per transition and a final table."""

    async def scenario() -> str:
        async with fake_node() as a:
            out = io.StringIO()
            config = MonitorConfig(interval=0.2)
            await run_monitor(
                [a.url],
                config=config,
                output=Output(out, json_mode=False, live=False),
                duration=0.5,
                handle_signals=False,
            )
            return out.getvalue()

    text = trio.run(scenario)
    assert "starting -> online" in text
    assert "final state:" in text
    assert "cluster: online 1; degradation none (adaptive)" in text


def test_monitor_live_view_redraws() -> None:
    """On a terminal the table is redrawn in place with ANSI codes."""

    async def scenario() -> str:
        async with fake_node() as a:
            out = io.StringIO()
            config = MonitorConfig(interval=0.2)
            await run_monitor(
                [a.url],
                config=config,
                output=Output(out, json_mode=False, live=True),
                duration=1.2,
                handle_signals=False,
            )
            return out.getvalue()

    text = trio.run(scenario)
    assert text.count("\x1b[H\x1b[2J") >= 2
    assert "recent transitions:" in text
    assert "p50 ms" in text


def test_metrics_server_serves_prometheus_text() -> None:
    """--metrics-port serves the text exposition with per-node status and transitions."""

    async def scenario() -> tuple[str, int]:
        async with fake_node() as a, trio.open_nursery() as nursery:
            from nodefsm import open_monitor

            async with open_monitor([a.url], config=MonitorConfig(interval=0.2)) as m:
                counter = TransitionCounter()
                sub = m.subscribe()
                port = await nursery.start(
                    serve_metrics, lambda: render_metrics(m.summary(), counter), 0
                )
                await trio.sleep(0.5)
                while True:
                    try:
                        counter.add([sub.receive_nowait()])
                    except trio.WouldBlock:
                        break
                async with httpx.AsyncClient() as client:
                    r = await client.get(f"http://127.0.0.1:{port}/metrics")
                    missing = await client.get(f"http://127.0.0.1:{port}/other")
            nursery.cancel_scope.cancel()
        return r.text, missing.status_code

    text, missing = trio.run(scenario)
    assert 404 == missing
    assert 'nodefsm_node_status{node="127.0.0.1:' in text
    assert 'status="online"} 1' in text
    assert "nodefsm_cluster_degradation_level 0" in text
    assert (
        'nodefsm_transitions_total{machine="node_status",trigger="probe_succeeded",dest="online"} 1'
        in text
    )
    assert "nodefsm_node_latency_seconds{node=" in text


def test_monitor_json_subprocess(tmp_path: Path) -> None:
    """A real `nodefsm monitor --json` process against loopback nodes, parsed."""

    async def scenario() -> tuple[list[dict[str, object]], int, str, str]:
        async with fake_node() as a, fake_node() as b:
            cmd = [
                sys.executable,
                "-m",
                "nodefsm",
                "monitor",
                "--json",
                "--interval",
                "0.2",
                "--duration",
                "6",
                a.url,
                "http://user:secret@" + b.node,
            ]
            async with trio.open_nursery() as nursery:
                proc = await nursery.start(
                    lambda task_status: trio.run_process(
                        cmd,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        check=False,
                        task_status=task_status,
                    )
                )
                await trio.sleep(2.5)
                await b.stop()
                out = b""
                err = b""

                async def read_out() -> None:
                    nonlocal out
                    async for chunk in proc.stdout:
                        out += chunk

                async def read_err() -> None:
                    nonlocal err
                    async for chunk in proc.stderr:
                        err += chunk

                nursery.start_soon(read_out)
                nursery.start_soon(read_err)
                await proc.wait()
            events = [json.loads(line) for line in out.decode().splitlines()]
            return events, proc.returncode, err.decode(), b.node

    events, code, err, b_node = trio.run(scenario)
    assert 0 == code, err
    keys = {
        "ts",
        "node",
        "machine",
        "trigger",
        "source",
        "dest",
        "category",
        "severity",
        "reason",
    }
    assert all(keys <= set(e) for e in events)
    assert all(isinstance(e["ts"], float) for e in events)
    b_status = [
        e["dest"]
        for e in events
        if e["node"] == b_node and e["machine"] == "node_status"
    ]
    assert ["online", "degraded", "offline"] == b_status[:3]
    offline = next(e for e in events if e["node"] == b_node and e["dest"] == "offline")
    assert ("connection_refused", "temporary") == (
        offline["category"],
        offline["severity"],
    )
    assert "secret" not in json.dumps(events) + err


def test_monitor_sigterm_exits_zero() -> None:
    """SIGTERM stops the monitor cleanly with exit status 0."""

    async def scenario() -> tuple[int, str]:
        async with fake_node() as a:
            proc = await trio.lowlevel.open_process(
                [
                    sys.executable,
                    "-m",
                    "nodefsm",
                    "monitor",
                    "--interval",
                    "0.2",
                    a.url,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            await trio.sleep(2.0)
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                code = await proc.wait()
            assert proc.stdout is not None
            out = await proc.stdout.receive_some(1 << 20)
            return code, out.decode()

    code, out = trio.run(scenario)
    assert 0 == code
    assert "final state:" in out


def test_monitor_self_id_json() -> None:
    """--self-id reports the monitor's own node: online at start, stopping at the end."""

    async def scenario() -> list[dict[str, object]]:
        async with fake_node() as a:
            out = io.StringIO()
            config = MonitorConfig(interval=0.2)
            output = Output(out, json_mode=True, live=False)
            monitor = await run_monitor(
                [a.url],
                config=config,
                output=output,
                duration=0.5,
                handle_signals=False,
                self_node="mon-1",
            )
            assert "mon-1" not in monitor.nodes()
            return [json.loads(line) for line in out.getvalue().splitlines()]

    events = trio.run(scenario)
    mine = [e["dest"] for e in events if e["node"] == "mon-1"]
    assert ["online", "stopping"] == mine
