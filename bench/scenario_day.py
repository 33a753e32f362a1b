"""A day of a 1000-unit fleet as a scenario in virtual time, against the same fleet in real time.

Run ``python -m bench.scenario_day [--units 1000] [--hours 24] [--xgc-share 0.7]
[--procs 1,2] [--realtime-window 90] [--json]``.

What runs. A scenario file written for the run (``scenario()``): ``--units`` units, a
share ``--xgc-share`` of them XGC and the rest QuecPython (day-in-the-life.yaml's
mix), each with a simulated host sending one uplink a minute, for ``--hours`` of sim
time, with one expectation (every uplink delivered but a handful: a QuecPython DTU's
Modbus auto-detection takes about one command-mode frame in 65 536, see
day-in-the-life.yaml). It is run with ``vdtu scenario run --procs P --report R
--quiet`` as a child process for each P of ``--procs``; each gives its wall time and
CPU time (the children's user + system time, all processes of the run) and the
report (uplinks published and delivered, the transcript's hash: the same for every P).

The baseline, measured in the same run: the same fleet in real time, as ``vdtu fleet``
runs it against a private mosquitto (``bench.fleet``'s child: the units' process CPU
and mosquitto's over a steady window of ``--realtime-window`` s, per uplink
delivered). A day of that fleet in real time costs 24 h of wall time and that CPU per
uplink times the day's uplinks; the table prints the virtual run's wall time and its
speed-up over the 24 h, and its CPU against the real-time fleet's.

Markdown (or JSON with ``--json``) on standard output, progress on standard error.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, child_json, machine, parse_counts, progress

LOST_SHARE = 1e-4
"""The share of uplinks the expectation lets go (the auto-detection takes about 1.5e-5 of
the QuecPython ones)."""


def scenario(units: int, hours: float, xgc_share: float) -> str:
    """The scenario file's text."""
    xgc = round(units * xgc_share)
    groups = [(name, count) for name, count in (("xgc", xgc), ("quec", units - xgc)) if count]
    lines = [
        f"name: {units} units for {hours:g} h at one uplink a minute",
        "seed: 24",
        f"duration: {hours:g}h",
        "units:",
    ]
    for profile, count in groups:
        lines += [
            f"  - name: field-{profile}",
            f"    count: {count}",
            f"    profile: {profile}",
            "    host: {uplink_every: 1m}",
        ]
    lines += [
        "expect:",
        "  - name: every uplink arrives once, in order (but the auto-detection's)",
        f"    uplinks: {{delivered_pct: {{min: {100 * (1 - LOST_SHARE):g}}}, duplicated: 0, "
        "reordered: 0}",
    ]
    return "\n".join(lines) + "\n"


def run_virtual(path: Path, procs: int, report: Path) -> dict[str, Any]:
    """``vdtu scenario run`` with ``procs`` processes: wall, CPU and the report."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    command = [sys.executable, "-m", "vdtu.cli", "scenario", "run", str(path)]
    command += ["--procs", str(procs), "--report", str(report), "--quiet"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"vdtu scenario run failed:\n{done.stderr}")
    document = json.loads(report.read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "procs": procs,
        "wall_s": wall,
        "cpu_s": cpu,
        "passed": document["passed"],
        "published": document["uplinks"]["published"],
        "delivered": document["uplinks"]["delivered"],
        "lost": document["uplinks"]["lost"],
        "transcript_sha256": document["transcript_sha256"],
    }


def run_realtime(units: int, xgc_share: float, window_s: float) -> dict[str, Any] | None:
    """The same fleet in real time (``bench.fleet``'s child): CPU per uplink delivered."""
    profile = "xgc" if xgc_share >= 1 else "quec" if xgc_share <= 0 else "mix"
    args = ["count", "--units", str(units), "--profile", profile, "--interval", "60"]
    args += ["--duration", str(window_s + 60), "--ramp", "200"]
    result = child_json("bench.fleet", args)
    if result is None:
        return None
    window = result["vdtu"]["window"]
    return {
        "profile": profile,
        "window_s": window["seconds"],
        "delivered": window["delivered"],
        "cpu_us_per_uplink": window["cpu_us_per_msg"],
        "mosquitto_us_per_uplink": window["broker_cpu_us_per_msg"],
    }


def print_report(settings: dict[str, Any], runs: list[dict[str, Any]], real: Any) -> None:
    day_s = settings["hours"] * 3600
    uplinks = runs[0]["published"]
    print(
        f"{settings['units']} units ({settings['xgc_share']:.0%} XGC), "
        f"{settings['hours']:g} simulated hours, one uplink a minute: {uplinks} uplinks\n"
    )
    print("| run | wall s | speed-up over real time | CPU s | CPU µs/uplink | delivered | lost |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(
            f"| virtual, --procs {run['procs']} | {run['wall_s']:.1f} | "
            f"{day_s / run['wall_s']:.0f}x | {run['cpu_s']:.1f} | "
            f"{1e6 * run['cpu_s'] / run['published']:.1f} | {run['delivered']} | {run['lost']} |"
        )
    if real is not None:
        per = real["cpu_us_per_uplink"] + (real["mosquitto_us_per_uplink"] or 0)
        print(
            f"| real time ({real['profile']}, vdtu fleet + mosquitto; {real['delivered']} "
            f"uplinks in {real['window_s']:.0f} s, projected to the day) | {day_s:.0f} | 1x | "
            f"{per * uplinks / 1e6:.0f} | {per:.1f} | | |"
        )
    hashes = {run["transcript_sha256"] for run in runs}
    print(f"\ntranscript sha256 the same for every --procs: {len(hashes) == 1}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1000, help="units (1000)")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (24)")
    parser.add_argument("--xgc-share", type=float, default=0.7, help="share of XGC units (0.7)")
    parser.add_argument("--procs", default="1,2", help="process counts to run (1,2)")
    parser.add_argument(
        "--realtime-window", type=float, default=90.0, help="real-time window, s (90; 0: none)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    try:
        counts = parse_counts(args.procs, option="--procs", top=64)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 <= args.xgc_share <= 1:
        parser.error(f"--xgc-share is 0..1, not {args.xgc_share}")
    settings = {"units": args.units, "hours": args.hours, "xgc_share": args.xgc_share}
    runs = []
    with tempfile.TemporaryDirectory(prefix="vdtu-bench-") as scratch:
        path = Path(scratch) / "day.yaml"
        path.write_text(scenario(args.units, args.hours, args.xgc_share))
        for procs in counts:
            progress(f"virtual time, --procs {procs} ...")
            runs.append(run_virtual(path, procs, Path(scratch) / f"report{procs}.json"))
            progress(f"  {runs[-1]['wall_s']:.1f} s wall")
    real = None
    if args.realtime_window > 0:
        progress(f"the same fleet in real time, a {args.realtime_window:g} s window ...")
        real = run_realtime(args.units, args.xgc_share, args.realtime_window)
    if args.json:
        document = {"machine": machine(), "settings": settings, "runs": runs, "realtime": real}
        print(json.dumps(document, indent=2))
    else:
        print_report(settings, runs, real)
    return 0 if all(run["passed"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
