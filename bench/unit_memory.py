"""Memory per headless unit (XGC and QuecPython), against a bare paho MQTT link as reference.

Run ``python -m bench.unit_memory [--units 2000] [--profiles xgc,quec] [--pacing]
[--links 2000] [--top 25] [--json]``.

What is built. For each profile, N units (``vdtu.unit.Unit``) on one ``VirtualClock``,
without PTYs (a headless fleet's unit), each with a host on its uart that only counts
what it hears, and the default ``UnitConfig`` (its demo Modbus slave included) except
for wire pacing, which is off as in ``vdtu fleet``'s headless units (``--pacing`` turns
it on: each transmission then goes out in 1 ms chunks, one event each). They reach a
simulated network, so that each one gets as far as a fleet unit does:

* **xgc**: a ``SimXgcPlatform`` that knows the project saved in every unit's flash; the
  unit registers, fetches its MQTT credentials and ends in ``MQTT_CONNECTED``;
* **quec**: a ``SimQuecNet`` serving the default config's broker; the unit ends
  ``running`` with channel 1 connected.

Every unit is powered on and sim time runs until all have got there (``BOOT_LIMIT_S``),
then ``SETTLE_S`` more so the firmware's own periodic work has run (the hardware models,
signal, battery, sensor and slave dynamics, compute their state on read and queue nothing).

How it is measured. Each figure comes from a child process of its own, so that the
measurements do not disturb each other:

* **RSS**: the child builds and boots one unit first (imports, caches, the first
  allocations of every code path), reads its RSS, builds and boots the N units, collects
  garbage and reads RSS again; the difference over N is the unit's cost as the OS sees it
  (Python objects, allocator slack, fragmentation).
* **tracemalloc**: the same run under ``tracemalloc`` (one frame): the Python
  allocations that are still alive after the boot, per unit, and the top allocation
  sites (file:line) by size. The simulated network's own objects are included (a few
  hundred bytes per unit); in a real fleet an MQTT link takes their place.
* **objects**: the garbage-collected objects alive per unit by type (``gc.get_objects``,
  so ints, strings and bytes are not in it), and the SimPy events waiting in the queue
  per unit.
* **links** (the reference): N ``MqttLink``s (each one paho ``Client``) on one
  ``MqttHub``, created and never connected: RSS and tracemalloc per link, measured in
  the same way. A connected link adds its socket and paho's packet buffers.

The report (Markdown, or JSON with ``--json``) goes to standard output; progress to
standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import child_json, markdown_table, progress, rss_bytes
from vdtu.clock import DomainEnvironment, VirtualClock
from vdtu.firmware.personality import Phase
from vdtu.firmware.registry import personality
from vdtu.identity import Identity
from vdtu.links.sim_quec import SimQuecNet
from vdtu.links.sim_xgc import SimXgcPlatform
from vdtu.net.mqtt import MqttHub, MqttLink
from vdtu.storage import MemoryStorage
from vdtu.uart.line import SerialLine
from vdtu.unit import Unit, UnitConfig

PROFILES = ("xgc", "quec")
PROJECT_ID = "1000abcdef0123456789"
PROJECT_SECRET = "0123456789ABCDEF0123456789ABCDEF01234567"
BROKER = ("127.0.0.1", 1883)
BOOT_LIMIT_S = 120.0
"""Sim time within which every unit must have reached its cloud."""
SETTLE_S = 60.0
"""Sim time run after that, so the firmware's periodic work has run a few times."""
STEP_S = 1.0


class CountingHost:
    """A host on a unit's uart that keeps nothing but a byte count (as a load-test host)."""

    __slots__ = ("heard", "tap")

    def __init__(self, line: SerialLine) -> None:
        self.heard = 0
        self.tap = line.attach(self, "host", paced=False)

    def receive(self, data: bytes) -> None:
        """Bytes from the unit (counted, then dropped)."""
        self.heard += len(data)


@dataclass(slots=True)
class Fleet:
    """N units of one profile on one clock, with their hosts and their network."""

    clock: VirtualClock
    profile: str
    network: SimXgcPlatform | SimQuecNet
    pacing: bool
    units: list[Unit] = field(default_factory=list)
    hosts: list[CountingHost] = field(default_factory=list)

    def add(self, count: int) -> None:
        """Build, wire and power on ``count`` more units."""
        env = self.clock.env
        for _ in range(count):
            unit_id = len(self.units)
            unit = _make_unit(
                env, self.profile, self.network, unit_id, self.clock.epoch_s, pacing=self.pacing
            )
            self.hosts.append(CountingHost(unit.lines["uart"]))
            unit.power_on()
            self.units.append(unit)

    def boot(self) -> float:
        """Run until every unit has reached its cloud, then ``SETTLE_S`` more; returns sim time.

        Raises:
            RuntimeError: some unit did not get there within ``BOOT_LIMIT_S``.
        """
        deadline = self.clock.now + BOOT_LIMIT_S
        while not all(_reached_cloud(unit) for unit in self.units):
            if self.clock.now > deadline:
                stuck = sum(not _reached_cloud(unit) for unit in self.units)
                raise RuntimeError(f"{stuck} {self.profile} units did not reach the cloud")
            self.clock.run_for(STEP_S)
        self.clock.run_for(SETTLE_S)
        return self.clock.now


def new_fleet(profile: str, *, pacing: bool) -> Fleet:
    """An empty fleet of ``profile`` units on a fresh virtual clock and simulated network."""
    clock = VirtualClock()
    network: SimXgcPlatform | SimQuecNet
    if profile == "xgc":
        network = SimXgcPlatform(clock.env, projects={PROJECT_ID: PROJECT_SECRET})
    else:
        network = SimQuecNet(clock.env)
        network.brokers.add(BROKER)
    return Fleet(clock=clock, profile=profile, network=network, pacing=pacing)


def _make_unit(
    env: DomainEnvironment,
    profile: str,
    network: SimXgcPlatform | SimQuecNet,
    unit_id: int,
    epoch_s: float,
    *,
    pacing: bool,
) -> Unit:
    identity = Identity.for_unit(0, unit_id)
    if isinstance(network, SimXgcPlatform):
        flash = MemoryStorage()
        flash.save({"project": {"pid": PROJECT_ID, "secret": PROJECT_SECRET}})
        config = UnitConfig(unit_id=unit_id, identity=identity, pacing=pacing)
        return Unit(env, config, epoch_s=epoch_s, flash=flash, network=network)
    config = UnitConfig(unit_id=unit_id, identity=identity, profile=profile, pacing=pacing)
    return Unit(env, config, epoch_s=epoch_s, network=network)


def _reached_cloud(unit: Unit) -> bool:
    return unit.firmware.unit_state.phase is Phase.CONNECTED


def _rss() -> int:
    gc.collect()
    return rss_bytes()


# -- the children ----------------------------------------------------------------------------


def measure_units_rss(profile: str, count: int, *, pacing: bool) -> dict[str, Any]:
    """RSS per unit: a warm-up unit first, then ``count`` more (see the module docstring)."""
    warm = new_fleet(profile, pacing=pacing)
    warm.add(1)
    warm.boot()
    fleet = new_fleet(profile, pacing=pacing)
    before = _rss()
    started = time.perf_counter()
    fleet.add(count)
    built_s = time.perf_counter() - started
    sim_s = fleet.boot()
    after = _rss()
    return {
        "rss_bytes_per_unit": (after - before) / count,
        "rss_mb": after / 2**20,
        "build_s": built_s,
        "sim_s": sim_s,
    }


def measure_units_trace(profile: str, count: int, top: int, *, pacing: bool) -> dict[str, Any]:
    """tracemalloc bytes per unit, the top sites, objects by type and queued events per unit."""
    warm = new_fleet(profile, pacing=pacing)
    warm.add(1)
    warm.boot()
    fleet = new_fleet(profile, pacing=pacing)
    gc.collect()
    types_before = _types()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    fleet.add(count)
    fleet.boot()
    gc.collect()
    after = tracemalloc.take_snapshot()
    traced, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    types_after = _types()
    sites = [
        {
            "site": _site(stat.traceback),
            "bytes_per_unit": stat.size_diff / count,
            "blocks_per_unit": stat.count_diff / count,
        }
        for stat in after.compare_to(before, "lineno")[:top]
    ]
    grown = types_after - types_before
    objects = {name: n / count for name, n in grown.most_common(top)}
    return {
        "traced_bytes_per_unit": sum(s.size_diff for s in after.compare_to(before, "filename"))
        / count,
        "traced_total_mb": traced / 2**20,
        "sites": sites,
        "objects_per_unit": objects,
        "gc_objects_per_unit": sum(grown.values()) / count,
        "queued_events_per_unit": len(fleet.clock.env._queue) / count,
    }


def _types() -> Counter[str]:
    gc.collect()
    return Counter(type(obj).__qualname__ for obj in gc.get_objects())


def _site(traceback: tracemalloc.Traceback) -> str:
    frame = traceback[0]
    name = frame.filename
    for marker in ("/site-packages/", "/vdtu/", "/lib/python3"):
        if marker in name:
            name = name[name.index(marker) + 1 :]
            break
    return f"{name}:{frame.lineno}"


def measure_links(count: int, *, trace: bool) -> dict[str, Any]:
    """RSS or tracemalloc bytes per ``MqttLink`` created on a hub and never connected."""

    async def build() -> dict[str, Any]:
        hub = MqttHub(asyncio.get_running_loop())
        warm = MqttLink(hub, client_id="warm", host=BROKER[0], port=BROKER[1])
        if trace:
            tracemalloc.start(1)
        before = tracemalloc.get_traced_memory()[0] if trace else _rss()
        links = [
            MqttLink(hub, client_id=f"link{index}", host=BROKER[0], port=BROKER[1])
            for index in range(count)
        ]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] if trace else _rss()
        tracemalloc.stop()
        result = {"bytes_per_link": (after - before) / count, "links": len(links)}
        warm.close()
        hub.close()
        return result

    return asyncio.run(build())


# -- the parent ------------------------------------------------------------------------------


def _child(args: list[str]) -> dict[str, Any]:
    result = child_json("bench.unit_memory", args)
    if result is None:
        raise RuntimeError(f"{' '.join(args)} failed (its standard error is above)")
    found: dict[str, Any] = result
    return found


def run(units: int, profiles: list[str], links: int, top: int, *, pacing: bool) -> dict[str, Any]:
    """Every measurement, each in its own child process."""
    report: dict[str, Any] = {"units": units, "pacing": pacing, "links": links, "profiles": {}}
    paced = str(int(pacing))
    for profile in profiles:
        progress(f"{profile}: RSS of {units} units")
        rss = _child(["units-rss", profile, str(units), paced])
        progress(f"{profile}: tracemalloc of {units} units")
        trace = _child(["units-trace", profile, str(units), paced, str(top)])
        report["profiles"][profile] = rss | trace
    if links:
        progress(f"reference: {links} MqttLinks")
        report["link_rss_bytes"] = _child(["links-rss", str(links)])["bytes_per_link"]
        report["link_traced_bytes"] = _child(["links-trace", str(links)])["bytes_per_link"]
    return report


def render(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    lines = [
        f"Per unit, {report['units']} units of each profile booted to their cloud, wire pacing "
        f"{'on' if report['pacing'] else 'off'} (bytes; RSS and tracemalloc from separate "
        "processes):",
        "",
    ]
    head = ["profile", "RSS B/unit", "traced B/unit", "GC objects/unit", "queued events/unit"]
    head.append("RSS MB")
    rows = [
        [
            name,
            f"{p['rss_bytes_per_unit']:.0f}",
            f"{p['traced_bytes_per_unit']:.0f}",
            f"{p['gc_objects_per_unit']:.1f}",
            f"{p['queued_events_per_unit']:.1f}",
            f"{p['rss_mb']:.1f}",
        ]
        for name, p in report["profiles"].items()
    ]
    lines.append(markdown_table(head, rows))
    if report["links"]:
        lines += [
            "",
            f"Reference, {report['links']} `MqttLink`s (paho `Client` inside), never connected: "
            f"RSS {report['link_rss_bytes']:.0f} B/link, "
            f"traced {report['link_traced_bytes']:.0f} B/link.",
        ]
    for name, p in report["profiles"].items():
        lines += ["", f"Top allocation sites, {name} (bytes and blocks per unit):", ""]
        sites = [
            [f"`{s['site']}`", f"{s['bytes_per_unit']:.0f}", f"{s['blocks_per_unit']:.2f}"]
            for s in p["sites"]
        ]
        lines.append(markdown_table(["site", "B/unit", "blocks/unit"], sites))
        lines += ["", f"GC-tracked objects per unit by type, {name}:", ""]
        lines.append(
            ", ".join(f"{kind} {n:.2f}" for kind, n in p["objects_per_unit"].items() if n >= 0.01)
        )
    return "\n".join(lines)


CHILDREN: dict[str, Callable[[list[str]], dict[str, Any]]] = {
    "units-rss": lambda a: measure_units_rss(personality(a[0]).name, int(a[1]), pacing=a[2] == "1"),
    "units-trace": lambda a: measure_units_trace(
        personality(a[0]).name, int(a[1]), int(a[3]), pacing=a[2] == "1"
    ),
    "links-rss": lambda a: measure_links(int(a[0]), trace=False),
    "links-trace": lambda a: measure_links(int(a[0]), trace=True),
}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def _profiles(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PROFILES))
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"profiles must be a comma list of {', '.join(PROFILES)}, not {text!r}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    """Entry point: measure and print the report."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        kind, *rest = argv[1:]
        print(json.dumps(CHILDREN[kind](rest)))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.unit_memory", description=__doc__)
    parser.add_argument("--units", type=_positive, default=2000, help="units per profile")
    parser.add_argument("--profiles", type=_profiles, default=list(PROFILES))
    parser.add_argument("--pacing", action="store_true", help="units with wire pacing on")
    parser.add_argument(
        "--links", type=int, default=2000, help="reference MqttLinks (0: not measured)"
    )
    parser.add_argument("--top", type=_positive, default=25, help="allocation sites listed")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.links < 0:
        parser.error(f"--links must be >= 0, not {args.links}")
    report = run(args.units, args.profiles, args.links, args.top, pacing=args.pacing)
    print(json.dumps(report, indent=1) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
