"""``vdtu scenario``: run a scenario file (``run``) or only check it (``check``).

``run`` loads the file, runs it in virtual time, prints a progress line now and then
(on stderr) and the summary (on stdout), and writes the JSON report (``--report``),
JUnit XML (``--junit``) and the transcript (``--transcript``) when asked. Exit status:
0 when every expectation held, 1 when one failed, 2 when the file is wrong (the
``ConfigError`` the CLI prints, one line per problem with its line number).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from vdtu.scenario.load import load_scenario
from vdtu.scenario.report import summary, write_json, write_junit
from vdtu.scenario.run import ScenarioRun


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
    check = actions.add_parser("check", help="only check the file (exit 0: it is valid)")
    check.add_argument("file", type=Path)


def run_scenario_command(args: argparse.Namespace) -> int:
    """Run ``vdtu scenario ...``; returns the exit status (ConfigError: the file is wrong)."""
    scenario = load_scenario(args.file)
    if args.scenario_command == "check":
        print(
            f"{args.file}: {scenario.name}: {scenario.unit_count} units, "
            f"{len(scenario.steps)} steps, {len(scenario.expect)} expectations: valid"
        )
        return 0
    with contextlib.ExitStack() as stack:
        transcript = None
        if args.transcript is not None:
            transcript = stack.enter_context(args.transcript.open("w", encoding="utf-8"))
        run = ScenarioRun(
            scenario,
            seed=args.seed,
            transcript=transcript,
            progress=None if args.quiet else sys.stderr,
        )
        report = run.run()
    print(summary(report))
    if args.report is not None:
        write_json(args.report, report)
    if args.junit is not None:
        write_junit(args.junit, report)
    return 0 if report["passed"] else 1
