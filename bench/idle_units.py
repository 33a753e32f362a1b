"""A day of fleet life in virtual time: CPU and events per unit per simulated hour.

Run ``python -m bench.idle_units [--units 1000] [--hours 1] [--profiles xgc,quec,mix]
[--kinds fleet,no-slave,quiet] [--interval 60] [--cprofile DIR] [--json]``.

What is built. N headless units (``vdtu.unit.Unit``, no PTYs, wire pacing off, flash
in memory) on one ``VirtualClock``, as ``bench.unit_memory`` builds them: XGC units
reach a ``SimXgcPlatform`` that knows the project in their flash, QuecPython units a
``SimQuecNet`` serving their default config's broker; ``mix`` gives unit i the profile
``xgc`` or ``quec`` by its parity, as ``vdtu fleet --profile mix`` does. Each unit is
one of three kinds:

* **fleet**: the default ``UnitConfig`` (its demo Modbus slave included) with a
  load-test host (``vdtu.load.hosts.Host``) on its uart, sending one uplink every
  ``--interval`` seconds (±20 %) once the unit has reached its cloud: what a
  ``vdtu fleet`` or a scenario's unit does all day;
* **no-slave** (the baseline): the same without the demo slave (``slaves=()``), so the
  ratio fleet / no-slave is what the slave's register dynamics cost;
* **quiet**: the default unit with no host (no uplinks): what the unit costs by itself
  (its models, its firmware's own traffic: XGC property reports, keepalives).

How it is measured. Each profile and kind runs in a child process of its own. The
child builds and powers on the units, runs sim time until every one has reached its
cloud (at most ``BOOT_LIMIT_S``) and ``SETTLE_S`` more, collects and freezes the
garbage (the units are long-lived, as the fleet runner does), then runs ``--hours`` of
sim time in chunks of ``CHUNK_S``, timing the whole with the process's CPU time and
the wall clock. Events are the SimPy events scheduled meanwhile (the environment's
event counter; in a steady state as many are processed). What the simulated clouds
keep of each message is counted and dropped after each chunk, so a long run does not
grow. Reported per kind: CPU per unit per simulated hour, events and cloud messages
(uplinks, property reports, replies) per unit per simulated hour, wall time, the
speed-up over real time (sim time / wall time, the N units together), RSS at the end, and the
projection for 1000 units x 24 h (CPU per unit-hour x 24 000, the issue's target is
under 60 s). ``--cprofile DIR`` runs each timed phase under cProfile (slower), writes
``idle-units-<profile>-<kind>.pstats`` there and prints the top functions to standard
error.

The report (Markdown, or JSON with ``--json``) goes to standard output; progress to
standard error.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    child_json,
    machine_line,
    markdown_table,
    parse_list,
    progress,
    rss_mb,
)
from vdtu.clock import VirtualClock
from vdtu.firmware.personality import Phase
from vdtu.identity import Identity
from vdtu.io.modbus_config import DEMO_SLAVE
from vdtu.links.sim_quec import SimQuecNet
from vdtu.links.sim_xgc import SimXgcPlatform
from vdtu.load.hosts import Host
from vdtu.storage import MemoryStorage
from vdtu.unit import Unit, UnitConfig

PROFILES = ("xgc", "quec", "mix")
KINDS = ("fleet", "no-slave", "quiet")
PROJECT_ID = "1000abcdef0123456789"
PROJECT_SECRET = "0123456789ABCDEF0123456789ABCDEF01234567"
BROKER = ("127.0.0.1", 1883)
BOOT_LIMIT_S = 300.0
"""Sim time within which every unit must have reached its cloud."""
SETTLE_S = 120.0
"""Sim time run after that before the timed phase (every host has started sending)."""
CHUNK_S = 600.0
"""The timed phase runs in chunks of this much sim time; the clouds' records are
counted and dropped after each."""
STEP_S = 1.0
PAYLOAD = 64
"""Characters of each uplink's JSON text (``vdtu fleet``'s default)."""
TARGET_UNIT_HOURS = 1000 * 24
"""The issue's target: 1000 units x 24 simulated hours ..."""
TARGET_WALL_S = 60.0
"""... in under a minute."""


@dataclass(slots=True)
class Fleet:
    """N units of one profile and kind on one clock, with their hosts and networks."""

    clock: VirtualClock
    xgc_net: SimXgcPlatform
    quec_net: SimQuecNet
    units: list[Unit] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)

    def messages(self) -> int:
        """Messages the clouds have received since the last call (their records dropped)."""
        count = len(self.xgc_net.published) + len(self.quec_net.sent)
        self.xgc_net.published.clear()
        self.quec_net.sent.clear()
        return count


def build(profile: str, kind: str, count: int, *, interval_s: float) -> Fleet:
    """``count`` units of ``profile`` and ``kind``, powered on (see the module docstring)."""
    clock = VirtualClock()
    env = clock.env
    fleet = Fleet(
        clock=clock,
        xgc_net=SimXgcPlatform(env, projects={PROJECT_ID: PROJECT_SECRET}),
        quec_net=SimQuecNet(env),
    )
    fleet.quec_net.brokers.add(BROKER)
    slaves = () if kind == "no-slave" else (DEMO_SLAVE,)
    for unit_id in range(count):
        name = profile if profile != "mix" else ("xgc", "quec")[unit_id % 2]
        identity = Identity.for_unit(0, unit_id)
        config = UnitConfig(
            unit_id=unit_id, identity=identity, profile=name, pacing=False, slaves=slaves
        )
        unit: Unit
        if name == "xgc":
            flash = MemoryStorage()
            flash.save({"project": {"pid": PROJECT_ID, "secret": PROJECT_SECRET}})
            unit = Unit(env, config, epoch_s=clock.epoch_s, flash=flash, network=fleet.xgc_net)
        else:
            unit = Unit(env, config, epoch_s=clock.epoch_s, network=fleet.quec_net)
        unit.power_on()
        fleet.units.append(unit)
        if kind != "quiet":
            host = Host(
                unit,
                unit_index=unit_id,
                rng=unit.host_rng(),
                interval_s=interval_s,
                payload_size=PAYLOAD,
                epoch_s=clock.epoch_s,
                published=lambda _unit, _seq: None,
            )
            host.start()
            fleet.hosts.append(host)
    return fleet


def boot(fleet: Fleet) -> None:
    """Run until every unit has reached its cloud, then ``SETTLE_S`` more.

    Raises:
        RuntimeError: some unit did not get there within ``BOOT_LIMIT_S``.
    """
    clock = fleet.clock
    deadline = clock.now + BOOT_LIMIT_S
    while not all(u.firmware.unit_state.phase is Phase.CONNECTED for u in fleet.units):
        if clock.now > deadline:
            stuck = sum(u.firmware.unit_state.phase is not Phase.CONNECTED for u in fleet.units)
            raise RuntimeError(f"{stuck} of {len(fleet.units)} units did not reach the cloud")
        clock.run_for(STEP_S)
    clock.run_for(SETTLE_S)
    fleet.messages()


@contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    """cProfile over the block when ``path`` is given: dumped there, the top to stderr."""
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        path.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(path)
        progress(f"cProfile of the timed phase -> {path}")
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)


def measure(
    profile: str,
    kind: str,
    count: int,
    *,
    hours: float,
    interval_s: float,
    cprofile: Path | None,
) -> dict[str, Any]:
    """One child's measurement (see the module docstring)."""
    started = time.perf_counter()
    fleet = build(profile, kind, count, interval_s=interval_s)
    boot(fleet)
    boot_wall_s = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    env = fleet.clock.env
    sim_s = hours * 3600.0
    first_event = next(env._eid)
    messages = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with profiled(cprofile):
        end = fleet.clock.now + sim_s
        while fleet.clock.now < end:
            fleet.clock.run_until(min(end, fleet.clock.now + CHUNK_S))
            messages += fleet.messages()
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    events = next(env._eid) - first_event - 1
    unit_hours = count * hours
    connected = sum(u.firmware.unit_state.phase is Phase.CONNECTED for u in fleet.units)
    return {
        "profile": profile,
        "kind": kind,
        "units": count,
        "hours": hours,
        "connected_at_end": connected,
        "boot_wall_s": boot_wall_s,
        "cpu_s": cpu_s,
        "wall_s": wall_s,
        "cpu_ms_per_unit_hour": cpu_s * 1000 / unit_hours,
        "events_per_unit_hour": events / unit_hours,
        "messages_per_unit_hour": messages / unit_hours,
        "speedup": sim_s / wall_s,
        "projected_1000x24h_s": cpu_s / unit_hours * TARGET_UNIT_HOURS,
        "rss_mb": rss_mb(),
    }


# -- the parent ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    units: int
    hours: float
    interval_s: float
    profiles: tuple[str, ...]
    kinds: tuple[str, ...]
    cprofile: Path | None


def run(settings: Settings) -> list[dict[str, Any]]:
    """Every profile and kind, each in a child process."""
    results = []
    for profile in settings.profiles:
        for kind in settings.kinds:
            progress(f"{profile} {kind}: {settings.units} units x {settings.hours:g} h")
            args = [profile, kind, str(settings.units), str(settings.hours)]
            args += [str(settings.interval_s), str(settings.cprofile or "")]
            result = child_json("bench.idle_units", args)
            if result is None:
                raise RuntimeError(f"{profile} {kind} failed (its standard error is above)")
            results.append(result)
    return results


def render(results: list[dict[str, Any]], settings: Settings) -> str:
    """The report as a Markdown table, with the ratio to the baseline of each profile."""
    baseline = {r["profile"]: r for r in results if r["kind"] == "no-slave"}
    head = [
        "profile",
        "kind",
        "CPU ms/unit-h",
        "vs no-slave",
        "events/unit-h",
        "msgs/unit-h",
        "wall s",
        "speed-up",
        "1000x24h s",
        "RSS MB",
    ]
    rows = []
    for r in results:
        base = baseline.get(r["profile"])
        ratio = (
            "-"
            if base is None
            else f"{r['cpu_ms_per_unit_hour'] / base['cpu_ms_per_unit_hour']:.2f}"
        )
        rows.append(
            [
                r["profile"],
                r["kind"],
                f"{r['cpu_ms_per_unit_hour']:.3f}",
                ratio,
                f"{r['events_per_unit_hour']:.0f}",
                f"{r['messages_per_unit_hour']:.1f}",
                f"{r['wall_s']:.1f}",
                f"{r['speedup']:.0f}x",
                f"{r['projected_1000x24h_s']:.0f}",
                f"{r['rss_mb']:.0f}",
            ]
        )
    lines = [
        machine_line(),
        "",
        f"{settings.units} units per run, {settings.hours:g} simulated hours timed, one uplink "
        f"every {settings.interval_s:g} s (±20 %) from each fleet unit's host; 1000x24h s is "
        f"the projection for {TARGET_UNIT_HOURS} unit-hours (target < {TARGET_WALL_S:.0f} s):",
        "",
        markdown_table(head, rows),
    ]
    lines.extend(
        f"\n{r['profile']} {r['kind']}: only {r['connected_at_end']} of {r['units']} "
        "units connected at the end"
        for r in results
        if r["connected_at_end"] != r["units"]
    )
    return "\n".join(lines)


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, not {text!r}")
        return value

    return parse


def _choices(allowed: tuple[str, ...], option: str) -> Any:
    def parse(text: str) -> tuple[str, ...]:
        try:
            names: list[str] = parse_list(text, option=option, parse=str)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        unknown = sorted(set(names) - set(allowed))
        if unknown:
            raise argparse.ArgumentTypeError(
                f"{option} takes a comma list of {', '.join(allowed)}, not {text!r}"
            )
        return tuple(names)

    return parse


def main(argv: list[str] | None = None) -> int:
    """Entry point: measure and print the report."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        profile, kind, units, hours, interval, cprofile = argv[1:]
        path = Path(cprofile) / f"idle-units-{profile}-{kind}.pstats" if cprofile else None
        result = measure(
            profile,
            kind,
            int(units),
            hours=float(hours),
            interval_s=float(interval),
            cprofile=path,
        )
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.idle_units", description=__doc__)
    parser.add_argument("--units", type=_positive(int), default=1000, help="units per run")
    parser.add_argument("--hours", type=_positive(float), default=1.0, help="sim hours timed")
    parser.add_argument(
        "--interval", type=_positive(float), default=60.0, help="seconds between uplinks"
    )
    parser.add_argument("--profiles", type=_choices(PROFILES, "--profiles"), default=PROFILES)
    parser.add_argument("--kinds", type=_choices(KINDS, "--kinds"), default=KINDS)
    parser.add_argument("--cprofile", type=Path, help="cProfile each timed phase into DIR")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    settings = Settings(
        units=args.units,
        hours=args.hours,
        interval_s=args.interval,
        profiles=args.profiles,
        kinds=args.kinds,
        cprofile=args.cprofile,
    )
    results = run(settings)
    if args.json:
        print(json.dumps({"settings": str(settings), "results": results}, indent=1))
    else:
        print(render(results, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
