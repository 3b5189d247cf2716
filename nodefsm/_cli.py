"""The ``nodefsm`` command line.

Exit status: 0 done, 1 an expectation failed, 2 bad usage or bad input (a
one-line message on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TextIO

import attrs
import trio

from ._configfile import load_config
from ._demo import run_demo, scaled
from ._diagram import FORMATS, render
from ._discovery import mdns_events, run_discovery
from ._engine import TransitionRecord
from ._monitor import Monitor, MonitorConfig
from ._probe import Profile, parse_target
from ._run import Output, run_monitor
from ._scenario import load_scenario
from ._sim import POLICIES, simulate
from ._spec import builtin_spec_names, load_spec
from .exceptions import ConfigurationError, SpecError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or bad input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _positive(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a number of seconds, not {text!r}"
            ) from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be > 0, not {text!r}")
        return value

    return parse


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    sources = args.specs or list(builtin_spec_names())
    problems: list[str] = []
    for source in sources:
        try:
            spec = load_spec(source)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        out.write(
            f"{source}: ok ({spec.name}: {len(spec.states)} states, "
            f"{len(spec.transitions)} transitions, {len(spec.triggers)} triggers)\n"
        )
    if problems:
        for line in problems:
            sys.stderr.write(line + "\n")
        return EXIT_USAGE
    return EXIT_OK


def _load_counts(path: str, machine: str) -> dict[str, int]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--counts: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--counts: {path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--counts: {path}:{exc.lineno}: invalid JSON: {exc.msg}"
        ) from None
    # Accept {"online": 3}, {"node_status": {...}} or a monitor summary {"counts": {...}}.
    if isinstance(data, dict) and isinstance(data.get(machine), dict):
        data = data[machine]
    elif isinstance(data, dict) and isinstance(data.get("counts"), dict):
        data = data["counts"]
        if isinstance(data.get(machine), dict):
            data = data[machine]
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in data.items()
    ):
        raise UsageError(
            f"--counts: {path}: expected an object of state -> non-negative integer "
            f"(optionally under {machine!r} or 'counts')"
        )
    return data


def _cmd_diagram(args: argparse.Namespace, out: TextIO) -> int:
    spec = load_spec(args.machine)
    counts = _load_counts(args.counts, spec.name) if args.counts else None
    if counts is not None:
        unknown = sorted(set(counts) - set(spec.state_names))
        if unknown:
            raise UsageError(
                f"--counts: {args.counts}: unknown state(s) {', '.join(unknown)} for "
                f"machine {spec.name!r}"
            )
    text = render(spec, args.format, counts=counts)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"-o: cannot write {args.output}: {exc.strerror or exc}"
            ) from None
    else:
        out.write(text)
    return EXIT_OK


def _monitor_config(
    args: argparse.Namespace,
) -> tuple[MonitorConfig, list[str], float | None]:
    loaded = load_config(args.config) if args.config else None
    config = loaded.config if loaded else MonitorConfig()
    changes: dict[str, Any] = {}
    if args.interval is not None:
        changes["interval"] = args.interval
    if args.timeout is not None:
        changes["timeout"] = args.timeout
    if args.profile is not None or args.path is not None:
        probe = config.probe
        if args.profile is not None:
            probe = attrs.evolve(probe, profile=args.profile)
        if args.path is not None:
            probe = attrs.evolve(probe, path=args.path)
        changes["probe"] = probe
    if changes:
        config = attrs.evolve(config, **changes)
    urls = list(loaded.nodes if loaded else ()) + list(args.urls)
    for url in urls:
        parse_target(url)  # a bad URL is a one-line error before anything starts
    duration = (
        args.duration
        if args.duration is not None
        else (loaded.duration if loaded else None)
    )
    return config, urls, duration


def _cmd_monitor(args: argparse.Namespace, out: TextIO) -> int:
    config, urls, duration = _monitor_config(args)
    if not urls and not args.mdns:
        raise UsageError(
            "nodefsm monitor: give at least one URL, --config with nodes, or --mdns"
        )
    tasks: list[Callable[[Monitor], Awaitable[None]]] = []
    if args.mdns:
        if importlib.util.find_spec("zeroconf") is None:
            raise UsageError("--mdns needs the mdns extra: pip install 'nodefsm[mdns]'")
        ttl = args.mdns_ttl

        async def discover(monitor: Monitor) -> None:
            await run_discovery(monitor, mdns_events(), ttl=ttl)

        tasks.append(discover)
    live = bool(getattr(out, "isatty", lambda: False)())
    output = Output(out, json_mode=args.json, live=live)
    trio.run(
        partial(
            run_monitor,
            urls,
            config=config,
            output=output,
            duration=duration,
            metrics_port=args.metrics_port,
            tasks=tasks,
            self_node=args.self_id,
        )
    )
    return EXIT_OK


def _sim_line(record: TransitionRecord) -> str:
    c = record.classification
    why = f" [{c.severity.value}:{c.category.value}]" if c is not None else ""
    return (
        f"t={record.ts:9.3f}  {record.machine:<12} {record.node:<18} "
        f"{record.source} -> {record.dest} ({record.trigger}){why}"
    )


def _cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    scenario = load_scenario(args.scenario)

    def emit(record: TransitionRecord) -> None:
        if args.json:
            out.write(json.dumps(record.to_json(), sort_keys=True) + "\n")
        elif not args.quiet:
            out.write(_sim_line(record) + "\n")

    result = simulate(scenario, seed=args.seed, policy=args.policy, on_record=emit)
    report = result.report.text() + "\n"
    (sys.stderr if args.json else out).write(
        ("" if args.json or args.quiet else "\n") + report
    )
    return EXIT_OK if result.report.ok else EXIT_FAILED


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    scenario = scaled(load_scenario(args.scenario), args.scale)
    live = bool(getattr(out, "isatty", lambda: False)())
    output = Output(out, json_mode=args.json, live=live)
    report = trio.run(partial(run_demo, scenario, output=output))
    (sys.stderr if args.json else out).write("\n" + report.text() + "\n")
    return EXIT_OK


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a port number, not {text!r}"
        ) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be within 0..65535, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog="nodefsm",
        description="Explicit finite-state machines for the health of cluster nodes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "check", help="validate machine specs (default: the built-in ones)"
    )
    p.add_argument(
        "specs", nargs="*", metavar="SPEC", help="a spec file or built-in name"
    )
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("diagram", help="draw a machine as Mermaid or Graphviz DOT")
    p.add_argument(
        "machine", metavar="MACHINE_OR_SPEC", help="built-in name or spec file"
    )
    p.add_argument("--format", choices=FORMATS, default="mermaid")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of stdout"
    )
    p.add_argument(
        "--counts", metavar="SNAPSHOT.json", help="annotate states with node counts"
    )
    p.set_defaults(func=_cmd_diagram)

    p = sub.add_parser("monitor", help="watch nodes and report every transition")
    p.add_argument(
        "urls", nargs="*", metavar="URL", help="node URL, e.g. http://127.0.0.1:11434"
    )
    p.add_argument(
        "--interval",
        type=_positive("--interval"),
        metavar="S",
        help="seconds between probes (5)",
    )
    p.add_argument(
        "--timeout",
        type=_positive("--timeout"),
        metavar="S",
        help="fixed probe timeout (default: adaptive)",
    )
    p.add_argument(
        "--duration",
        type=_positive("--duration"),
        metavar="S",
        help="stop after S seconds",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per transition on stdout"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration (nodes, probe, thresholds, policy)",
    )
    p.add_argument(
        "--profile", choices=[x.value for x in Profile], help="probe profile (ollama)"
    )
    p.add_argument("--path", metavar="PATH", help="path for the http profile")
    p.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT",
    )
    p.add_argument(
        "--self-id",
        metavar="ID",
        help="report the monitor's own node ID (starting -> online, stopping on exit)",
    )
    p.add_argument(
        "--mdns",
        action="store_true",
        help="also monitor nodes announced as _ollama._tcp (needs nodefsm[mdns])",
    )
    p.add_argument(
        "--mdns-ttl",
        type=_positive("--mdns-ttl"),
        default=30.0,
        metavar="S",
        help="forget a node S seconds after it stops being announced (30)",
    )
    p.set_defaults(func=_cmd_monitor)

    p = sub.add_parser(
        "simulate", help="run a scenario in virtual time (deterministic)"
    )
    p.add_argument(
        "scenario", metavar="SCENARIO", help="built-in scenario name or file"
    )
    p.add_argument("--seed", type=int, help="seed (default: the scenario's)")
    p.add_argument(
        "--json", action="store_true", help="JSON events on stdout, report on stderr"
    )
    p.add_argument(
        "--policy",
        choices=sorted(POLICIES),
        default="nodefsm",
        help="nodefsm (default) or seed: the Go design's policy",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only the report")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser(
        "demo", help="a local cluster on loopback, faults on a timeline, live view"
    )
    p.add_argument(
        "--scenario",
        default="demo",
        metavar="NAME",
        help="built-in scenario name or file (demo)",
    )
    p.add_argument(
        "--json", action="store_true", help="JSON events on stdout, report on stderr"
    )
    p.add_argument(
        "--scale",
        type=_positive("--scale"),
        default=1.0,
        metavar="F",
        help="multiply every time in the scenario by F",
    )
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        out: where normal output goes (default: ``sys.stdout``).
    """
    out = out or sys.stdout
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        result: int = args.func(args, out)
        return result
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_USAGE
    except SpecError as exc:
        for line in exc.problems:
            sys.stderr.write(line + "\n")
        return EXIT_USAGE
    except ConfigurationError as exc:
        sys.stderr.write(f"nodefsm: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except BaseException as exc:
        if not _only_broken_pipes(exc):
            raise
        # The reader went away (`nodefsm ... | head`): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _only_broken_pipes(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_broken_pipes(e) for e in exc.exceptions)
    return isinstance(exc, BrokenPipeError)
