"""``vdtu scenario``: run a scenario file (``run``) or only check it (``check``).

``run`` loads the file, runs it in virtual time, prints a progress line now and then
(on stderr) and the summary (on stdout), and writes the JSON report (``--report``),
JUnit XML (``--junit``) and the transcript (``--transcript``) when asked. With
``--realtime`` its fleet serves the control API as ``vdtu up``'s does (named in
``<pty-dir>/up.json``, so ``vdtu tui --attach`` and ``vdtu ctl`` find it), with the run's
progress (``GET /v1/scenario``, ``scenario`` events); ``--stay`` keeps it up after the end.
A virtual-time run serves none: it is over in seconds, and an outside request would
make it depend on when the request came (its transcript and hash would no longer follow
from the file and the seed). Exit status:
0 when every expectation held, 1 when one failed, 2 when the file is wrong (the
``ConfigError`` the CLI prints, one line per problem with its line number).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import IO, Any

from vdtu.cloud.broker_url import parse_broker_url
from vdtu.errors import ConfigError
from vdtu.fleet import STOP_SIGNALS, FleetConfig, default_pty_dir
from vdtu.scenario.load import load_scenario
from vdtu.scenario.realtime import RealtimeWorld
from vdtu.scenario.report import summary, write_json, write_junit
from vdtu.scenario.run import ScenarioRun
from vdtu.scenario.schema import Scenario
from vdtu.scenario.shards import run_split
from vdtu.scenario.world import Transcript

MAX_PROCS = 64
"""The most processes a run is split over."""


def add_scenario(commands: Any) -> None:
    """Add ``vdtu scenario run|check`` to the CLI."""
    scenario = commands.add_parser(
        "scenario", help="run a YAML fault scenario in virtual time (docs/scenarios.md)"
    )
    actions = scenario.add_subparsers(dest="scenario_command", required=True)
    run = actions.add_parser("run", help="run a scenario; exit 0 if every expectation held")
    run.add_argument("file", type=Path)
    run.add_argument("--seed", type=int, default=None, help="override the file's seed")
    run.add_argument("--report", type=Path, default=None, help="write the JSON report here")
    run.add_argument("--junit", type=Path, default=None, help="write JUnit XML here (for CI)")
    run.add_argument(
        "--transcript", type=Path, default=None, help="write every event, one line each, here"
    )
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.add_argument(
        "--procs",
        type=_procs,
        default=1,
        metavar="N",
        help="split the units over N processes (virtual time; the same run, only faster "
        "on N cores; default 1)",
    )
    run.add_argument(
        "--realtime",
        action="store_true",
        help="run on the wall clock with PTYs and a real broker (for your own host code)",
    )
    run.add_argument(
        "--broker",
        default=None,
        metavar="URL",
        help="with --realtime: your broker (default: embedded)",
    )
    run.add_argument(
        "--pty-dir",
        type=Path,
        default=None,
        help=f"with --realtime: where the PTY links go (default {default_pty_dir()})",
    )
    run.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="with --realtime: seconds for what is in flight at the end (default 5)",
    )
    run.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="with --realtime: the control API's port on 127.0.0.1 (default: any free one; "
        "up.json names it)",
    )
    run.add_argument(
        "--stay",
        action="store_true",
        help="with --realtime: after the end keep the units and the control API up until "
        "Ctrl-C (to look at the outcome in vdtu tui)",
    )
    check = actions.add_parser("check", help="only check the file (exit 0: it is valid)")
    check.add_argument("file", type=Path)


def _procs(text: str) -> int:
    try:
        procs = int(text)
    except ValueError:
        procs = 0
    if not 1 <= procs <= MAX_PROCS:
        raise argparse.ArgumentTypeError(f"a number of processes is 1..{MAX_PROCS}, not {text!r}")
    return procs


def run_scenario_command(args: argparse.Namespace) -> int:
    """Run ``vdtu scenario ...``; returns the exit status (ConfigError: the file is wrong)."""
    scenario = load_scenario(args.file)
    if args.scenario_command == "check":
        print(
            f"{args.file}: {scenario.name}: {scenario.unit_count} units, "
            f"{len(scenario.steps)} steps, {len(scenario.expect)} expectations: valid"
        )
        return 0
    if not args.realtime and (args.broker is not None or args.pty_dir is not None):
        raise ConfigError("--broker and --pty-dir go with --realtime")
    if not args.realtime and (args.control_port is not None or args.stay):
        raise ConfigError("--control-port and --stay go with --realtime (a virtual-time run "
                          "serves no control API: docs/scenarios.md)")  # fmt: skip
    if args.realtime and args.procs != 1:
        raise ConfigError("--procs is for virtual time: a real-time run is one process")
    with contextlib.ExitStack() as stack:
        transcript = None
        if args.transcript is not None:
            transcript = stack.enter_context(args.transcript.open("w", encoding="utf-8"))
        progress = None if args.quiet else sys.stderr
        if args.realtime:
            report = asyncio.run(_realtime(scenario, args, transcript, progress))
        elif args.procs > 1:
            report = run_split(
                scenario,
                lambda exchange, shard, out: ScenarioRun(
                    scenario, seed=args.seed, transcript=out, exchange=exchange, shard=shard
                ).run(),
                shards=args.procs,
                transcript=transcript,
                progress=progress,
            )
        else:
            run = ScenarioRun(scenario, seed=args.seed, transcript=transcript, progress=progress)
            report = run.run()
    print(summary(report))
    if args.report is not None:
        write_json(args.report, report)
    if args.junit is not None:
        write_junit(args.junit, report)
    return 0 if report["passed"] else 1


async def _realtime(
    scenario: Scenario,
    args: argparse.Namespace,
    transcript: IO[str] | None,
    progress: IO[str] | None,
) -> dict[str, Any]:
    """Run ``scenario`` on the wall clock, serving the control API; Ctrl-C ends it early
    (with its report)."""
    loop = asyncio.get_running_loop()
    seed = scenario.seed if args.seed is None else args.seed
    config = FleetConfig(
        pty_dir=args.pty_dir or default_pty_dir(),
        state_dir=None,
        broker=None if args.broker is None else parse_broker_url(args.broker),
    )
    failures: list[str] = []
    log = Transcript(transcript)
    world = RealtimeWorld(
        scenario,
        seed=seed,
        transcript=log,
        loop=loop,
        config=config,
        failures=failures.append,
    )
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        await world.open()
        for unit, ports in world.ports():
            print(
                f"{unit.name} {unit.profile} {unit.imei} {ports.get('uart', '')}", file=sys.stderr
            )
        run = ScenarioRun(scenario, seed=seed, progress=progress, world=world)
        server = await world.serve(run, port=args.control_port or 0)
        print(f"control API {server.url} (in {world.fleet.discovery_path})", file=sys.stderr)
        report = await run.run_realtime(stop, grace_s=args.grace)
        if args.stay and not stop.is_set():
            verdict = "passed" if report["passed"] else "failed"
            print(f"the run is over ({verdict}); the units and the API stay up until Ctrl-C",
                  file=sys.stderr)  # fmt: skip
            await stop.wait()
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        await world.close()
        log.close()
    report["refused"] += failures
    report["realtime"] = True
    return report
