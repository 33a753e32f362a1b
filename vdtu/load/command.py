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
connected at the end and nothing was lost, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import yaml

from vdtu.cloud.broker import EmbeddedBroker
from vdtu.cloud.broker_auth import credentials_authenticator
from vdtu.errors import ConfigError
from vdtu.load.options import LoadOptions
from vdtu.load.report import FleetReport, merge
from vdtu.load.runner import LoadRun, write_report

FLEET_USER = "vdtu-fleet"


async def run_load(options: LoadOptions) -> int:
    """Run the load test; returns the exit status."""
    if options.procs > 1:
        report = await _run_children(options)
    else:
        report = await _run_here(options)
    if options.report is not None:
        write_report(options.report, report)
    summary = report.to_json()
    summary.pop("histograms", None)  # the report file keeps them, for merging
    print(json.dumps(summary, indent=1))
    return 0 if report.connected == report.units and report.lost == 0 else 1


async def _run_here(options: LoadOptions) -> FleetReport:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await LoadRun(loop, options, sys.stderr).run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
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
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: None)  # the children get it and end their runs
    try:
        with tempfile.TemporaryDirectory(prefix="vdtu-fleet-") as scratch:
            reports = await asyncio.gather(
                *(_child(options, index, Path(scratch), url) for index in range(options.procs))
            )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if broker is not None:
            await broker.stop()
    return merge(reports)


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
    child = replace(options, procs=1, broker=url, report=report, progress=index == 0)
    metrics = None if options.metrics_port is None else options.metrics_port + 1 + index
    settings = asdict(replace(child, metrics_port=metrics))
    settings["shard"] = f"{index}/{options.procs}"
    return {
        key: str(value) if isinstance(value, Path) else value for key, value in settings.items()
    }
