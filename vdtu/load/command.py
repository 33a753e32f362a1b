"""``vdtu fleet``: run a load test in this process, or split it over ``--procs`` child processes.

One process: a ``LoadRun`` of the shard ``--shard`` names (the whole fleet by
default). ``--procs P``: this process starts the embedded broker (unless
``--broker`` names one) with a fleet login, runs ``vdtu fleet`` P times as child
processes, each shard ``i/P`` of the same fleet with the same options, waits for
them (Ctrl-C reaches them too; each still writes its report) and merges their
reports into one. Identities come from the fleet seed and each unit's fleet id,
so shards never collide, here or on other machines (``--shard i/n``).

The final report is printed as JSON on stdout (without the latency histograms)
and written whole to ``--report``; the exit status is 0 when every unit was
connected at the end and nothing was lost, 1 otherwise, with the reason on stderr.
With ``--run-id``, a shard then publishes its report to the broker for ``vdtu fleet
collect`` (``vdtu/load/runs.py``; each child of ``--procs`` publishes its own) and
exits 3 if the broker does not take it, 5 if a signal stopped it before its end. A run
that ends in an exception (a bug) prints it and exits 4, without a report.

Before the run, one line on stderr gives the plan (units, ramp time, sending time,
grace), a warning follows when ``--duration`` is too short for the last units to
register and connect, when the embedded broker would serve more units than it can
(``EMBEDDED_UNITS``), or when the machine's ephemeral ports do not hold the units'
connections (``vdtu/load/ports.py``), and a fleet the process's open-file limit cannot hold is
refused (the limit is first raised to its hard maximum): a unit holds a socket (and
two PTY fds with ``--pty``), the embedded broker the other end of each connection.
Children of ``--procs`` leave all this to their parent (``CHILD_ENV``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import resource
import secrets
import sys
import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import yaml

from vdtu.cloud.broker import EmbeddedBroker
from vdtu.cloud.broker_auth import credentials_authenticator
from vdtu.control.attach import BrokerFaults, ControlDir
from vdtu.control.server import ControlServer, new_token
from vdtu.control.shards import ShardsControl
from vdtu.errors import ConfigError
from vdtu.fleet import STOP_SIGNALS, default_pty_dir, write_discovery
from vdtu.links.discovery import DISCOVERY_FILE
from vdtu.load.options import LoadOptions, Shard
from vdtu.load.ports import port_warning
from vdtu.load.ramp import ramp_text
from vdtu.load.report import FleetReport, merge, shortfalls
from vdtu.load.runner import LoadRun, write_report
from vdtu.load.runs import NOT_PUBLISHED_STATUS, ReportNotPublishedError, login, publish_report
from vdtu.modem.modem import Modem

FLEET_USER = "vdtu-fleet"
CHILD_ENV = "VDTU_FLEET_CHILD"
"""Set for the children of ``--procs``: their parent prints the plan, warnings and reasons."""
EMBEDDED_UNITS = 1000
"""The largest fleet the embedded broker serves well: at the defaults (100 units a second, an
uplink every 10 s) 1000 units had uplink p99 39 ms, 1500 2.0 s, 2000 9.6 s, and 3000 lost
5156 of 7789 uplinks (measured 2026-12-05 on the 2-core machine of docs/benchmarks.md)."""
CONNECT_ALLOWANCE_S = 3.0
"""Seconds a registered unit may take to log in and connect (a local broker: well under 1 s;
the 5000-unit run in docs/fleet.md connected its last unit 11.6 s after the ramp)."""
FD_RESERVE = 64
"""Open files a process needs besides its units': the verifier, servers, the loop, logs."""
CRASHED_STATUS = 4
"""The exit status of a run that ended in an exception (a bug), without a report: 1 stays
"the run failed its checks", so a Kubernetes Job can run a crashed shard again and not one
whose report says it failed (deploy/job.yaml)."""
STOPPED_STATUS = 5
"""With ``--run-id``: a shard a signal stopped before its end (a pod evicted, its Job
deleted); its report, published, counts ``errors.stopped_early``. Not 0, so a Job runs an
evicted shard again in full rather than counting the short run as done."""
SHARD_POLL_S = 0.1
"""How often the parent of ``--procs`` looks for its shards' control APIs."""


def registration_s() -> tuple[float, float]:
    """From power-on to network registration, shortest and longest: the modem's boot plus
    its network search (``Modem``'s defaults, which every fleet unit uses)."""
    parameters = inspect.signature(Modem.__init__).parameters
    boot, search = parameters["boot_s"].default, parameters["search_s"].default
    return boot[0] + search[0], boot[1] + search[1]


def shortest_duration_s() -> int:
    """The ``--duration`` that gives the last unit powered on time to register and connect."""
    return math.ceil(registration_s()[1] + CONNECT_ALLOWANCE_S)


async def run_load(options: LoadOptions) -> int:
    """Run the load test; returns the exit status (the reason on stderr when it is not 0)."""
    parent = not os.environ.get(CHILD_ENV)
    if parent:
        print(f"vdtu fleet: {plan(options)}", file=sys.stderr, flush=True)
        for warning in warnings(options):
            print(f"vdtu fleet: warning: {warning}", file=sys.stderr, flush=True)
    check_open_files(options)
    try:
        if options.procs > 1:
            report = await _run_children(options)
        else:
            report = await _run_here(options)
    except ConfigError:
        raise
    except Exception:  # a bug: said, and kept apart from a run that failed its checks
        traceback.print_exc()
        print(
            f"vdtu fleet: crashed (the traceback above is a bug in vdtu); no report "
            f"(exit status {CRASHED_STATUS})",
            file=sys.stderr,
        )
        return CRASHED_STATUS
    if options.report is not None:
        write_report(options.report, report)
    summary = report.to_json()
    summary.pop("histograms", None)  # the report file keeps them, for merging
    print(json.dumps(summary, indent=1), flush=True)
    causes = shortfalls(report)
    if causes and parent:
        print(f"vdtu fleet: {'; '.join(causes)}{_hint(options, report)}", file=sys.stderr)
    if options.run_id is not None and options.procs == 1:  # --procs: each child publishes
        assert options.broker is not None  # LoadOptions refuses a run id without one
        try:
            topic = await publish_report(
                login(options.broker, options.ca_file), options.run_id, report
            )
        except ReportNotPublishedError as exc:
            print(f"vdtu fleet: {exc}", file=sys.stderr, flush=True)
            return NOT_PUBLISHED_STATUS
        print(f"vdtu fleet: shard {options.shard}: report published on {topic}", file=sys.stderr)
        if report.errors.get("stopped_early"):
            print(
                f"vdtu fleet: shard {options.shard} was stopped before its end "
                f"(exit status {STOPPED_STATUS})",
                file=sys.stderr,
            )
            return STOPPED_STATUS
    return 1 if causes else 0


def plan(options: LoadOptions) -> str:
    """What the run will do, in time: units, the ramp, sending and grace."""
    block = len(_largest_block(options))
    if options.procs > 1:
        who = f"{options.units} units in {options.procs} processes of up to {block}"
    elif options.shard.count > 1:
        who = f"shard {options.shard}: {block} of {options.units} units"
    else:
        who = f"{options.units} units"
    ramp = options.ramp
    if isinstance(ramp, tuple):
        how = (
            f"in {len(ramp)} stages ({ramp_text(ramp)}): "
            f"{_s(sum(stage.duration_s for stage in ramp))} s"
        )
    else:
        how = f"at {ramp:g} per second: a ramp of {_s(block / ramp)} s"
    return (
        f"{who} {how}, then {_s(options.duration)} s of sending and up to "
        f"{_s(options.grace)} s of grace"
    )


def warnings(options: LoadOptions) -> list[str]:
    """Options, and a machine, that let the run fail whatever the broker does."""
    found = []
    shortest = shortest_duration_s()
    if options.duration < shortest:
        low, high = registration_s()
        found.append(
            f"--duration {_s(options.duration)} s is shorter than the {shortest} s the units "
            f"powered on last need to register with the network ({low:g}-{high:g} s after "
            f"power-on) and connect: they may never connect; give --duration {shortest} or more"
        )
    units_here = options.units if options.procs > 1 else len(_largest_block(options))
    if options.broker is None and units_here > EMBEDDED_UNITS:
        found.append(
            f"{units_here} units on the embedded broker, which serves up to about "
            f"{EMBEDDED_UNITS} (it is amqtt, in Python, on this process's core: 1500 units "
            "had p99 2 s and 3000 lost most uplinks; docs/brokers.md); run mosquitto or "
            "your own broker and name it with --broker URL"
        )
    # every unit and each process's verifier connect to the broker from this machine
    ports = port_warning(units_here + options.procs)
    if ports is not None:
        found.append(ports)
    return found


def check_open_files(options: LoadOptions) -> None:
    """Raise this process's open-file limit to its hard maximum and refuse a fleet it cannot
    hold, naming the limit and what to change."""
    per_unit = 1 + (2 if options.pty else 0)
    block = len(_largest_block(options))
    embedded = options.broker is None
    limit = _raise_open_file_limit()
    allowed = f"the limit of {limit} open files (ulimit -n)"
    if options.procs > 1 and embedded and options.units + FD_RESERVE > limit:
        raise ConfigError(
            f"--units {options.units}: the embedded broker would hold {options.units} "
            f"connections in this process, more than {allowed}; raise the limit, or run "
            "your own broker and name it with --broker URL"
        )
    need = block * per_unit + (block if embedded and options.procs == 1 else 0) + FD_RESERVE
    if need <= limit:
        return
    # more processes than now (in several, the embedded broker's ends are the parent's)
    procs = max(options.procs + 1, math.ceil(options.units * per_unit / max(1, limit - FD_RESERVE)))
    where = "one process" if options.procs == 1 else f"each of {options.procs} processes"
    split = f"split the fleet with --procs {procs}"
    if embedded and options.units + FD_RESERVE > limit:  # the parent's broker holds them all
        split = f"run your own broker (--broker URL) and {split}"
    raise ConfigError(
        f"--units {options.units} needs about {need} open files in {where} (a connection "
        f"per unit{', two PTY fds' if options.pty else ''}"
        f"{', the embedded broker end of each' if embedded and options.procs == 1 else ''}), "
        f"more than {allowed}; raise the limit, or {split}"
    )


def _raise_open_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def _largest_block(options: LoadOptions) -> range:
    if options.procs > 1:
        return Shard(index=options.procs - 1, count=options.procs).block(options.units)
    return options.shard.block(options.units)


def _hint(options: LoadOptions, report: FleetReport) -> str:
    if not report.errors.get("never_connected") or options.duration >= shortest_duration_s():
        return ""
    low, high = registration_s()
    return (
        f": a unit registers with the network {low:g}-{high:g} s after power-on and this run "
        f"sent for {_s(options.duration)} s after its last power-on; give --duration "
        f"{shortest_duration_s()} or more"
    )


def _s(seconds: float) -> str:
    return f"{round(seconds, 1):g}"


async def _run_here(options: LoadOptions) -> FleetReport:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        return await LoadRun(loop, options, sys.stderr).run(stop)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


async def _run_children(options: LoadOptions) -> FleetReport:
    broker: EmbeddedBroker | None = None
    url = options.broker
    if url is None:
        token = secrets.token_hex(12)
        broker = EmbeddedBroker(authenticator=credentials_authenticator(FLEET_USER, token))
        await broker.start()
        url = f"mqtt://{FLEET_USER}:{token}@127.0.0.1:{broker.port}"
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, lambda: None)  # the children get it and end their runs
    control_dir = ControlDir(options.control_dir, default=default_pty_dir() / "fleet")
    try:
        discovery = control_dir.take()
        with tempfile.TemporaryDirectory(prefix="vdtu-fleet-") as scratch:
            children = [
                asyncio.ensure_future(_child(options, index, Path(scratch), url))
                for index in range(options.procs)
            ]
            faults = None if broker is None else BrokerFaults(broker.stop, broker.restart)
            control = await _serve_shards(options, Path(scratch), children, faults, discovery)
            try:
                reports = await asyncio.gather(*children)
            finally:
                if control is not None:
                    await control[0].stop()
                    await control[1].close()
    finally:
        control_dir.release()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        if broker is not None:
            await broker.stop()
    return merge(reports)


async def _serve_shards(
    options: LoadOptions,
    scratch: Path,
    children: Sequence[asyncio.Future[FleetReport]],
    faults: BrokerFaults | None,
    discovery: Path,
) -> tuple[ControlServer, ShardsControl] | None:
    """The parent's control API over its shards' once each shard has named its own (None:
    the shards ended first)."""
    files = [scratch / f"shard-{index}" / DISCOVERY_FILE for index in range(options.procs)]
    while not all(path.exists() for path in files):
        if all(child.done() for child in children):
            return None
        await asyncio.sleep(SHARD_POLL_S)
    shards = []
    for path in files:
        entry = json.loads(path.read_text())["control"]
        shards.append((str(entry["url"]), str(entry["token"])))
    control = ShardsControl(shards, fleet_faults=faults)
    server = ControlServer(control, token=new_token(), port=options.control_port)
    await server.start()
    write_discovery(discovery, {"control": {"url": server.url, "token": server.token}})
    print(
        f"vdtu fleet: control API: vdtu ctl --pty-dir {discovery.parent} units",
        file=sys.stderr,
        flush=True,
    )
    return server, control


async def _child(options: LoadOptions, index: int, scratch: Path, url: str) -> FleetReport:
    report = scratch / f"shard-{index}.json"
    settings = _settings(options, index, url, report)
    config = scratch / f"shard-{index}.yaml"
    config.write_text(yaml.safe_dump(settings))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vdtu.cli",
        "fleet",
        "--config",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        env={**os.environ, CHILD_ENV: "1"},
    )
    status = await process.wait()
    try:
        return FleetReport.from_json(json.loads(report.read_text()))
    except FileNotFoundError:
        raise ConfigError(
            f"shard {index}/{options.procs} exited {status} without a report"
        ) from None


def _settings(options: LoadOptions, index: int, url: str, report: Path) -> dict[str, Any]:
    """The options of child ``index`` as a YAML mapping."""
    child = replace(
        options,
        procs=1,
        broker=url,
        report=report,
        progress=index == 0,
        control_dir=report.parent / f"shard-{index}",
        control_port=0,
    )
    metrics = None if options.metrics_port is None else options.metrics_port + 1 + index
    settings = asdict(replace(child, metrics_port=metrics))
    settings["shard"] = f"{index}/{options.procs}"
    settings["ramp"] = ramp_text(options.ramp)
    return {
        key: str(value) if isinstance(value, Path) else value for key, value in settings.items()
    }
