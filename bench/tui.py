"""The dashboard attached to a large fleet: frame time, input latency, and what the loop does
(issue 14: ``vdtu tui --attach`` to a 10 000-unit ``vdtu fleet`` stays responsive).

For each unit count (the first is the baseline, measured in the same run): a private
mosquitto and ``vdtu fleet --units N --ramp R --interval 10 --broker URL --control-dir TMP
--duration D --no-progress`` in its own process, as a load tester runs it. Once ``GET
/v1/fleet`` says every unit is connected (or ``--connect-timeout`` passed: the figures then
say how many were), the dashboard (``tui.app.DashboardApp`` over ``HttpApi``, its default
poll and flush periods) runs headless in this process (``App.run_test``, 160 x 50) attached
to the fleet's API, exactly as ``vdtu tui --attach`` would, and the benchmark measures:

- attach: from the app's start to every unit's row in the table (then 5 s to settle: the
  table measures its new rows when idle);
- frame: each compositor refresh of the fleet screen (layout and render of what changed;
  headless, so without the terminal write), p50/p99/max and how many a second;
- flush: each of the app's draw ticks (events into the model, changed rows into the table
  by key, headline and charts);
- loop lag: how late a 20 ms timer on the app's loop fires (any blocking: JSON of 1000 rows,
  a tick, a frame), the bound on how long a key waits before it is read;
- key: a ``down`` key posted to the app until the cursor moved and the frame after it was
  rendered, every 0.25 s;
- filter and sort: the whole table rebuilt for a filter (typing a unit's id, then clearing
  it) and sorted again by another column;
- the dashboard process's RSS and CPU over the window, the events it read and missed.

Run from the repository root: ``python -m bench.tui [--units 10,10000] [--seconds 30]``.
Progress goes to standard error, the report (Markdown tables) to standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python bench/tui.py``: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from bench.common import (
    REPO_ROOT,
    Latency,
    cpu_seconds,
    machine_line,
    markdown_table,
    parse_counts,
    progress,
    rss_mb,
    us_as_ms,
)
from tui.app import DashboardApp
from tui.client import HttpApi, locate
from tui.screens.fleet import FleetScreen

SIZE = (160, 50)
LAG_TICK_S = 0.02
KEY_EVERY_S = 0.25
SETTLE_S = 5.0
"""Between the last row arriving and the window: DataTable measures new rows when idle."""
SLOW_FRAME_NS = 200_000_000


@contextmanager
def fleet_process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as err:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, cwd=REPO_ROOT)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()


def wait_connected(
    control: Path, units: int, popen: subprocess.Popen[bytes], timeout: float
) -> int:
    """Wait until every unit is connected (or ``timeout``); returns how many are."""
    start = time.monotonic()
    while not (control / "up.json").exists():
        if popen.poll() is not None or time.monotonic() - start > 60:
            raise RuntimeError(f"vdtu fleet wrote no {control / 'up.json'} (exit {popen.poll()})")
        time.sleep(0.2)
    url, token = locate(control, None, None)

    async def connected() -> int:
        api = HttpApi(url, token)
        try:
            return int((await api.fleet())["connected"])
        finally:
            await api.close()

    last = -1
    while True:
        count = asyncio.run(connected())
        if count >= units or time.monotonic() - start > timeout:
            return count
        if count != last:
            progress(f"  {count}/{units} connected")
            last = count
        time.sleep(2.0)


class Timed:
    """Durations of each call of a wrapped method, in nanoseconds."""

    def __init__(self, probe: Callable[[], int] | None = None) -> None:
        self.durations: list[int] = []
        self.count = 0
        self.probe = probe
        """Read as each call starts (a frame: the table's cursor row)."""
        self.ends: list[tuple[int, int]] = []
        """Each call's end (perf_counter_ns) and what ``probe`` read as it started."""
        self.slow: list[tuple[float, int]] = []
        """When (monotonic) a call took longer than ``SLOW_FRAME_NS``, and how long."""
        self.done = asyncio.Event()
        """Set after each call (cleared by whoever waits for the next one)."""

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            probed = -1 if self.probe is None else self.probe()
            t0 = time.perf_counter_ns()
            try:
                return method(*args, **kwargs)
            finally:
                end = time.perf_counter_ns()
                took = end - t0
                if self.probe is not None:
                    self.ends.append((end, probed))
                self.durations.append(took)
                self.count += 1
                if took > SLOW_FRAME_NS:
                    self.slow.append((time.monotonic(), took))
                self.done.set()

        return timed


async def measure(url: str, token: str, units: int, seconds: float) -> dict[str, Any]:
    """The dashboard attached to the fleet at ``url`` for ``seconds``; see the docstring."""
    frames, flushes = Timed(), Timed()
    DashboardApp.flush = flushes.wrap(DashboardApp.flush)  # type: ignore[method-assign]
    app = DashboardApp(HttpApi(url, token))
    me = psutil.Process()
    started = time.monotonic()
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        while screen.table.row_count < units:
            if time.monotonic() - started > 120:
                raise RuntimeError(f"only {screen.table.row_count}/{units} rows after 120 s")
            await asyncio.sleep(0.05)
        attach_s = time.monotonic() - started
        progress(f"  attached: {units} rows after {attach_s:.1f} s; settling {SETTLE_S:g} s")
        await asyncio.sleep(SETTLE_S)  # the table's first measuring of its new rows
        flushes.durations.clear()
        frames.probe = lambda: screen.table.cursor_row
        screen._compositor_refresh = frames.wrap(screen._compositor_refresh)  # type: ignore[method-assign]
        lags: list[int] = []
        keys: list[int] = []
        cpu0, events0, missed0 = cpu_seconds(me), app.model.events, app.model.missed
        window_start = time.monotonic()
        next_key = window_start
        last_tick = time.perf_counter_ns()
        while time.monotonic() - window_start < seconds:
            await asyncio.sleep(LAG_TICK_S)
            now = time.perf_counter_ns()
            lags.append(max(0, now - last_tick - int(LAG_TICK_S * 1e9)))
            last_tick = now
            if time.monotonic() >= next_key:
                next_key += KEY_EVERY_S
                keys.append(await key_latency(app, screen, frames))
                last_tick = time.perf_counter_ns()
        cpu_pct = 100 * (cpu_seconds(me) - cpu0) / (time.monotonic() - window_start)
        for at, took in frames.slow:
            progress(f"  slow frame at {at - window_start:.1f} s: {took / 1e6:.0f} ms")
        frame_rate = frames.count / (time.monotonic() - window_start)
        rebuild: list[int] = []
        for text in (str(units - 1), ""):
            t0 = time.perf_counter_ns()
            screen.text = text
            screen._rebuild()
            rebuild.append(time.perf_counter_ns() - t0)
        t0 = time.perf_counter_ns()
        screen.action_next_sort()
        sort_ns = time.perf_counter_ns() - t0
        await pilot.pause()
        return {
            "units": units,
            "attach_s": attach_s,
            "frame": Latency.of(frames.durations),
            "frames_per_s": frame_rate,
            "flush": Latency.of(flushes.durations),
            "lag": Latency.of(lags),
            "key": Latency.of(keys),
            "filter_ms": rebuild[0] / 1e6,
            "unfilter_ms": rebuild[1] / 1e6,
            "sort_ms": sort_ns / 1e6,
            "rss_mb": rss_mb(me),
            "cpu_pct": cpu_pct,
            "events": app.model.events - events0,
            "missed": app.model.missed - missed0,
        }


async def key_latency(app: DashboardApp, screen: FleetScreen, frames: Timed) -> int:
    """A ``down`` (``up`` at the last row) until the end of the first frame drawn with the
    cursor on its new row."""
    table = screen.table
    row = table.cursor_row
    key = "down" if row < table.row_count - 1 else "up"
    seen = len(frames.ends)
    t0 = time.perf_counter_ns()
    app.simulate_key(key)
    while True:
        for end, cursor in frames.ends[seen:]:
            if cursor != row:
                return end - t0
        seen = len(frames.ends)
        frames.done.clear()
        await frames.done.wait()


def run_one(options: argparse.Namespace, units: int, tmp: Path) -> dict[str, Any]:
    from vdtu.cloud.mosquitto import Mosquitto  # noqa: PLC0415 (the bench's broker only)

    control = tmp / f"fleet-{units}"
    duration = options.connect_timeout + options.seconds + 180
    with Mosquitto(max_queued_messages=0) as mosquitto:
        broker = f"mqtt://127.0.0.1:{mosquitto.port}"
        argv = [sys.executable, "-m", "vdtu.cli", "fleet", "--units", str(units)]
        argv += ["--ramp", str(options.ramp), "--interval", "10", "--duration", str(duration)]
        argv += ["--broker", broker, "--control-dir", str(control), "--no-progress"]
        progress(f"{units} units: vdtu " + " ".join(argv[3:]).replace(broker, "mqtt://..."))
        with fleet_process(argv, tmp / f"fleet-{units}.log") as popen:
            connected = wait_connected(control, units, popen, options.connect_timeout)
            progress(f"  {connected}/{units} connected; attaching the dashboard")
            url, token = locate(control, None, None)
            fleet_proc = psutil.Process(popen.pid)
            fleet_cpu0 = cpu_seconds(fleet_proc)
            t0 = time.monotonic()
            result = asyncio.run(measure(url, token, units, options.seconds))
            result["fleet_cpu_pct"] = (
                100 * (cpu_seconds(fleet_proc) - fleet_cpu0) / (time.monotonic() - t0)
            )
            result["connected"] = connected
    return result


def report(results: list[dict[str, Any]]) -> str:
    def lat(value: Latency) -> str:
        return f"{us_as_ms(value.p50_us)} / {us_as_ms(value.p99_us)} / {us_as_ms(value.max_us)}"

    head = ["units", "connected", "attach s", "frame ms p50/p99/max", "frames/s"]
    head += ["flush ms p50/p99/max", "loop lag ms p50/p99/max", "key ms p50/p99/max"]
    rows = [
        [
            str(r["units"]),
            str(r["connected"]),
            f"{r['attach_s']:.1f}",
            lat(r["frame"]),
            f"{r['frames_per_s']:.1f}",
            lat(r["flush"]),
            lat(r["lag"]),
            lat(r["key"]),
        ]
        for r in results
    ]
    head2 = ["units", "filter rebuild ms", "unfilter ms", "sort ms", "dashboard RSS MB"]
    head2 += ["dashboard CPU %", "fleet CPU %", "events read", "missed"]
    rows2 = [
        [
            str(r["units"]),
            f"{r['filter_ms']:.0f}",
            f"{r['unfilter_ms']:.0f}",
            f"{r['sort_ms']:.0f}",
            f"{r['rss_mb']:.1f}",
            f"{r['cpu_pct']:.0f}",
            f"{r['fleet_cpu_pct']:.0f}",
            str(r["events"]),
            str(r["missed"]),
        ]
        for r in results
    ]
    return "\n\n".join([machine_line(), markdown_table(head, rows), markdown_table(head2, rows2)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--units", default="10,10000", help="unit counts; the first is the baseline"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="the measured window")
    parser.add_argument("--ramp", type=int, default=200, help="units powered on per second")
    parser.add_argument("--connect-timeout", type=float, default=300.0,
                        help="how long to wait for every unit to connect")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="the results as JSON")
    options = parser.parse_args()
    counts = parse_counts(options.units, option="--units", top=10_000)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="vdtu-bench-tui-") as tmp:
        results = [run_one(options, units, Path(tmp)) for units in counts]
    if options.json:
        print(json.dumps(results, default=lambda value: value.__dict__, indent=1))
    else:
        print(report(results))


if __name__ == "__main__":
    main()
