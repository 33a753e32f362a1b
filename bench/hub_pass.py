"""The MqttHub's keepalive pass: only the links that are due, against every link every tick.

Run ``python -m bench.hub_pass [--links 15000] [--rate 250] [--keepalive 60] [--window 60]
[--json]``.

What runs. A private mosquitto (``vdtu.cloud.mosquitto.Mosquitto``, anonymous) and N
``MqttLink``s on one ``MqttHub`` (tick 1 s) in this process, connected at ``--rate`` links a
second (in batches of ``BATCH``), as a fleet's ramp connects its units, so that their
keepalives fall due spread over time; they send nothing but keepalive traffic. Then, over
the same links, two windows of ``--window`` seconds each, one after the other:

1. **The hub as it is** (``vdtu/net/mqtt.py``): its own timer, each ``MqttHub._tick`` timed.
   It calls ``loop_misc`` only on the links whose keepalive is due.
2. **The baseline**: what ``MqttHub._tick`` did before (commit 70c8959): ``loop_misc`` on
   every link, once a tick. It takes the hub's timer over for the window (it is put in place
   of ``_tick``); run second, as it leaves the hub's wheel behind.

Both windows cover at least one keepalive, so every link sends its PINGREQ in each. Over each
window: the ticks' wall time (mean, p99, max, from ``time.perf_counter``), the process's CPU
(``time.process_time``), the ``loop_misc`` calls per second and the loop's worst lateness (a
10 ms timer). The ratios are baseline over hub. The report goes to standard output (Markdown,
or JSON with ``--json``), progress to standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.common import machine, machine_line, markdown_table, progress
from vdtu.cloud.mosquitto import Mosquitto
from vdtu.net.mqtt import MqttHub, MqttLink, connect_and_wait

BATCH = 50
"""Links dialled at once."""
CONNECT_TIMEOUT_S = 60.0


@dataclass
class Window:
    """What one way of keeping the links alive cost over one window."""

    name: str
    ticks_ms: list[float] = field(default_factory=list)
    loop_misc_calls: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    worst_lateness_ms: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The window's figures."""
        ticks = sorted(self.ticks_ms)
        return {
            "name": self.name,
            "ticks": len(ticks),
            "tick_mean_ms": sum(ticks) / len(ticks),
            "tick_p99_ms": ticks[min(len(ticks) - 1, int(0.99 * len(ticks)))],
            "tick_max_ms": ticks[-1],
            "loop_misc_per_s": self.loop_misc_calls / self.wall_s,
            "cpu_s": self.cpu_s,
            "cpu_percent": 100 * self.cpu_s / self.wall_s,
            "worst_lateness_ms": self.worst_lateness_ms,
        }


@dataclass
class Settings:
    """The run's options."""

    links: int
    rate: float
    keepalive: int
    window: float


async def _lateness(stop: asyncio.Event) -> float:
    """The worst lateness of a 10 ms timer until ``stop``, in ms."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    while not stop.is_set():
        due = loop.time() + 0.01
        await asyncio.sleep(0.01)
        worst = max(worst, loop.time() - due)
    return 1000 * worst


async def _measure(window: Window, seconds: float) -> None:
    stop = asyncio.Event()
    lateness = asyncio.create_task(_lateness(stop))
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    window.cpu_s = time.process_time() - cpu
    window.wall_s = time.perf_counter() - wall
    stop.set()
    window.worst_lateness_ms = await lateness


def _count_loop_misc(counter: list[int]) -> Callable[[MqttLink], None]:
    keep_alive = MqttLink._keep_alive

    def counted(link: MqttLink) -> None:
        counter[0] += 1
        keep_alive(link)

    return counted


async def _connect(hub: MqttHub, port: int, settings: Settings) -> list[MqttLink]:
    loop = asyncio.get_running_loop()
    links: list[MqttLink] = []
    started = loop.time()
    for first in range(0, settings.links, BATCH):
        await asyncio.sleep(max(0.0, started + first / settings.rate - loop.time()))
        batch = [
            MqttLink(
                hub,
                client_id=f"hub-pass-{n}",
                host="127.0.0.1",
                port=port,
                keepalive=settings.keepalive,
            )
            for n in range(first, min(first + BATCH, settings.links))
        ]
        reasons = await asyncio.gather(
            *(connect_and_wait(link, CONNECT_TIMEOUT_S) for link in batch)
        )
        failed = [reason for reason in reasons if reason is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} links did not connect: {failed[0]}")
        links.extend(batch)
        if len(links) % 1000 == 0:
            progress(f"{len(links)} links connected")
    return links


async def run(settings: Settings) -> dict[str, Any]:
    """Connect the links, then time the hub's pass and the baseline's, one window each."""
    calls = [0]
    setattr(MqttLink, "_keep_alive", _count_loop_misc(calls))  # noqa: B010 (counts calls)
    loop = asyncio.get_running_loop()
    with Mosquitto() as mosquitto:
        hub = MqttHub(loop, tick_s=1.0)
        links = await _connect(hub, mosquitto.port, settings)
        hub_window, baseline = Window("due links only (the hub)"), Window("every link (baseline)")

        def hub_tick() -> None:
            started = time.perf_counter()
            MqttHub._tick(hub)  # schedules hub._tick, which is this function
            hub_window.ticks_ms.append(1000 * (time.perf_counter() - started))

        def every_link_tick() -> None:  # MqttHub._tick before it visited only due links
            started = time.perf_counter()
            hub._timer = loop.call_later(hub.tick_s, hub._tick)
            for link in tuple(hub._links):
                link._keep_alive()
            baseline.ticks_ms.append(1000 * (time.perf_counter() - started))

        for window, tick in ((hub_window, hub_tick), (baseline, every_link_tick)):
            progress(f"{window.name}: {settings.window:g} s")
            hub._tick = tick  # type: ignore[method-assign]
            await asyncio.sleep(1.5)  # the next tick is this one's
            window.ticks_ms.clear()
            calls[0] = 0
            await _measure(window, settings.window)
            window.loop_misc_calls = calls[0]
        connected = sum(link.connected for link in links)
        hub.close()
    return {
        "machine": machine(),
        "settings": asdict(settings),
        "connected_at_end": connected,
        "windows": [hub_window.summary(), baseline.summary()],
    }


def render(report: dict[str, Any]) -> str:
    """The report as a Markdown table and the ratios."""
    settings = report["settings"]
    hub, baseline = report["windows"]
    rows = [
        [
            w["name"],
            str(w["ticks"]),
            f"{w['loop_misc_per_s']:.0f}",
            f"{w['tick_mean_ms']:.2f}",
            f"{w['tick_p99_ms']:.2f}",
            f"{w['tick_max_ms']:.2f}",
            f"{w['cpu_percent']:.1f}",
            f"{w['worst_lateness_ms']:.1f}",
        ]
        for w in (hub, baseline)
    ]
    head = ["pass", "ticks", "loop_misc/s", "tick mean ms", "p99 ms", "max ms", "CPU %", "lag ms"]
    return "\n".join(
        [
            f"{machine_line()}; {settings['links']} links connected at {settings['rate']:g}/s, "
            f"keepalive {settings['keepalive']} s, windows of {settings['window']:g} s; "
            f"{report['connected_at_end']} still connected at the end",
            "",
            markdown_table(head, rows),
            "",
            f"baseline / hub: tick mean {baseline['tick_mean_ms'] / hub['tick_mean_ms']:.1f}x, "
            f"tick max {baseline['tick_max_ms'] / hub['tick_max_ms']:.1f}x, "
            f"CPU {baseline['cpu_s'] / hub['cpu_s']:.2f}x",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: measure and print the report."""
    parser = argparse.ArgumentParser(prog="python -m bench.hub_pass", description=__doc__)
    parser.add_argument("--links", type=int, default=15000, help="links (15000)")
    parser.add_argument("--rate", type=float, default=250.0, help="links connected a second")
    parser.add_argument("--keepalive", type=int, default=60, help="seconds (60, as XGC units)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per window (60)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.links < 1 or args.rate <= 0 or args.window < 5:
        parser.error("--links must be >= 1, --rate > 0 and --window >= 5")
    if args.keepalive < 3:
        parser.error(f"--keepalive must be >= 3 (the hub's tick is 1 s), not {args.keepalive}")
    settings = Settings(args.links, args.rate, args.keepalive, args.window)
    report = asyncio.run(run(settings))
    print(json.dumps(report, indent=1) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
