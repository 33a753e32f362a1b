"""Running a scenario in virtual time: its timeline, its waits and its expectations.

``ScenarioRun`` builds the ``World``, then runs one SimPy process for the timeline:
steps in file order, each at its time (``at``: from the start; ``after``: from the
previous step's end; ``every``: a process of its own that repeats it, and the timeline
goes straight on). A step acts on the units its selector picks when it runs (``ramp``
spreads it over them at a rate). Faults, clears and pokes go through the catalogue
and the pokes of ``vdtu.control``, so a scenario step does what ``vdtu ctl`` does;
``broker-stop`` takes every virtual cloud's broker down. A wait holds the timeline
until its condition holds for every selected unit, or fails at its timeout (the
timeline then goes on, and the report says so). At ``duration`` the hosts stop; after
``GRACE_S`` for what is in flight, the expectations are checked and the report made.

The same file and seed give the same run event for event: the transcript's SHA-256 is
in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import IO, Any

import simpy

from vdtu.clock import DomainEnvironment, VirtualClock
from vdtu.control.pokes import POKES
from vdtu.control.selector import describe_ids, parse_selector
from vdtu.errors import LocalProtocolError
from vdtu.faults.active import apply_fault, clear_faults
from vdtu.faults.catalogue import CATALOGUE, Scope, parse_request
from vdtu.scenario.report import sim_clock
from vdtu.scenario.schema import (
    Bound,
    CloudCheck,
    Expectation,
    ReconnectCheck,
    Scenario,
    SerialCheck,
    StateCheck,
    Step,
    UplinkCounts,
    WaitFor,
)
from vdtu.scenario.world import Transcript, VirtualWorld, World
from vdtu.unit import Unit

GRACE_S = 30.0
"""Sim time after ``duration`` for uplinks in flight, before the expectations are checked."""
STATE_POLL_S = 1.0
"""How often a wait for a state looks at the units."""
PROGRESS_EVERY_S = 2.0
"""Wall seconds between two progress lines."""


@dataclass(slots=True)
class Outcome:
    """One checked thing (an expectation or a wait) and its evidence."""

    name: str
    kind: str
    passed: bool
    evidence: str

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "evidence": self.evidence,
        }


@dataclass(slots=True)
class _Reconnects:
    """Per unit: when its cloud link went down (None: it is up), and every down time."""

    down_since: dict[int, float] = field(default_factory=dict)
    durations: dict[int, list[float]] = field(default_factory=dict)

    def changed(self, unit: Unit, up: bool, at: float) -> None:
        unit_id = unit.config.unit_id
        if not up:
            self.down_since.setdefault(unit_id, at)
            return
        since = self.down_since.pop(unit_id, None)
        if since is not None:
            self.durations.setdefault(unit_id, []).append(at - since)


class _SerialProgress:
    """How far each selected unit's lines toward the host have got through a sequence."""

    def __init__(self, check: SerialCheck, units: list[Unit]) -> None:
        self.patterns = [re.compile(pattern) for pattern in check.sequence]
        self.absent = [re.compile(pattern) for pattern in check.absent]
        self.position = {unit.config.unit_id: 0 for unit in units}
        self.last_line: dict[int, str] = {}
        self.forbidden: dict[int, str] = {}
        """The first line of each unit that matched an ``absent`` pattern."""

    def line(self, unit: Unit, text: str) -> None:
        unit_id = unit.config.unit_id
        position = self.position.get(unit_id)
        if position is None:
            return
        if (
            self.absent
            and unit_id not in self.forbidden
            and any(pattern.search(text) for pattern in self.absent)
        ):
            self.forbidden[unit_id] = text
        if position < len(self.patterns) and self.patterns[position].search(text):
            self.position[unit_id] = position + 1
            self.last_line[unit_id] = text


class _CloudCount:
    """How many messages from the selected units matched a cloud check's patterns."""

    def __init__(self, check: CloudCheck, units: list[Unit]) -> None:
        self.topic = re.compile(check.topic)
        self.payload = None if check.payload is None else re.compile(check.payload)
        self.units = {unit.unit_id for unit in units}
        self.count = 0
        self.first: str | None = None

    def message(self, unit: Unit, topic: str, payload: bytes) -> None:
        if unit.unit_id not in self.units or not self.topic.search(topic):
            return
        text = payload.decode("utf-8", "backslashreplace")
        if self.payload is None or self.payload.search(text):
            self.count += 1
            if self.first is None:
                self.first = f"{topic} {text[:120]}"


class ScenarioRun:
    """One run of a scenario.

    Args:
        scenario: what to run.
        seed: the seed (None: the file's).
        transcript: where the transcript's lines go (None: only hashed).
        progress: where a progress line goes every few wall seconds (None: nowhere).
        world: the world to run it in (None: a ``VirtualWorld``; real time: a
            ``RealtimeWorld``, run with ``run_realtime``).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int | None = None,
        transcript: IO[str] | None = None,
        progress: IO[str] | None = None,
        world: World | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.world: World = (
            world
            if world is not None
            else VirtualWorld(scenario, seed=self.seed, transcript=Transcript(transcript))
        )
        self.progress = progress
        self.outcomes: list[Outcome] = []
        self.refusals: list[str] = []
        self.reconnects = _Reconnects()
        self._looked: dict[int, tuple[bool, str]] = {}
        """What state expectations with ``at`` saw then, by expectation."""
        self._broker_down = 0
        """How many times the broker was stopped (0: it runs): a later stop's timer wins."""
        self.world.on_cloud.append(self.reconnects.changed)
        self._serial: list[tuple[Expectation, _SerialProgress]] = []
        self._cloud: list[tuple[Expectation, _CloudCount]] = []
        for expectation in scenario.expect:
            if expectation.cloud is not None:
                count = _CloudCount(expectation.cloud, self.select(expectation.cloud.select))
                self._cloud.append((expectation, count))
                self.world.on_message.append(count.message)
            if expectation.serial is not None:
                progress_ = _SerialProgress(
                    expectation.serial, self.select(expectation.serial.select)
                )
                self._serial.append((expectation, progress_))
                self.world.on_line.append(progress_.line)

    @property
    def env(self) -> DomainEnvironment:
        return self.world.clock.env

    def select(self, text: str) -> list[Unit]:
        """The units a selector picks now (possibly none)."""
        return parse_selector(text).pick(self.world.units, fleet_seed=self.seed)

    # -- running -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run to the end in virtual time; returns the report (``report.py`` renders it)."""
        clock = self.world.clock
        assert isinstance(clock, VirtualClock), "a real-time world runs with run_realtime"
        started = time.monotonic()
        self._begin()
        end = self.scenario.duration
        last_print = started
        while clock.now < end:
            clock.run_until(min(end, clock.now + 60.0))
            if self.progress is not None and time.monotonic() - last_print >= PROGRESS_EVERY_S:
                last_print = time.monotonic()
                self._print_progress()
        self.world.stop_hosts()
        clock.run_until(end + GRACE_S)
        return self._finish(started)

    async def run_realtime(self, stop: asyncio.Event, *, grace_s: float) -> dict[str, Any]:
        """Run on the wall clock until the end or ``stop``; after the end the hosts stop and
        ``grace_s`` passes for what is in flight. Returns the report."""
        clock = self.world.clock
        started = time.monotonic()
        clock.call(self._begin)  # in sim time: the real-time clock wakes for what it schedules
        last_print = started
        while clock.now < self.scenario.duration and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(0.5, self.scenario.duration - clock.now))
            if self.progress is not None and time.monotonic() - last_print >= PROGRESS_EVERY_S:
                last_print = time.monotonic()
                self._print_progress()
        clock.inject(self.world.stop_hosts)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), grace_s)
        return self._finish(started)

    def _begin(self) -> None:
        self.world.start()
        self._start_timeline()
        for expectation in self.scenario.expect:
            if expectation.state is not None and expectation.state.at is not None:
                self.env.process(self._look_at(expectation, expectation.state.at))

    def _finish(self, started: float) -> dict[str, Any]:
        self.world.tracker.finish()
        self.outcomes += [self._check(expectation) for expectation in self.scenario.expect]
        return self._report(time.monotonic() - started)

    def _print_progress(self) -> None:
        assert self.progress is not None
        units = self.world.units
        connected = sum(unit.firmware.cloud_connected for unit in units)
        print(
            f"sim {sim_clock(self.world.clock.now)} of {sim_clock(self.scenario.duration)}  "
            f"connected {connected}/{len(units)}  events {self.world.transcript.lines}",
            file=self.progress,
            flush=True,
        )

    def _start_timeline(self) -> None:
        """One process per chain (an ``at`` step and the ``after`` steps that follow it; the
        steps before the first ``at`` start at 0) and one per ``every`` step, all from 0: a
        wait holds up its own chain only, and an ``at`` runs at its time."""
        chains: list[list[tuple[int, Step]]] = [[]]
        for index, step in enumerate(self.scenario.steps):
            if step.every is not None:
                self.env.process(self._repeating(index, step))
                continue
            if step.at is not None and chains[-1]:
                chains.append([])
            chains[-1].append((index, step))
        for chain in chains:
            if chain:
                self.env.process(self._chain(chain))

    def _chain(self, chain: list[tuple[int, Step]]) -> Generator[simpy.Event, Any, None]:
        previous_at = self.env.now
        for index, step in chain:
            if step.at is not None:
                if step.at > self.env.now:
                    yield self.env.timeout(step.at - self.env.now)
            elif step.after:
                yield self.env.timeout(step.after)
            if step.wait is not None:
                yield from self._wait(index, step.wait, since=previous_at)
            else:
                previous_at = self.env.now
                yield from self._act(index, step)

    def _repeating(self, index: int, step: Step) -> Generator[simpy.Event, Any, None]:
        assert step.every is not None
        end = (
            self.scenario.duration
            if step.until is None
            else min(step.until, self.scenario.duration)
        )
        times = step.times if step.times is not None else math.inf
        at, done = step.start, 0
        while at <= end and done < times:
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            yield from self._act(index, step)
            done += 1
            at += step.every

    # -- steps ---------------------------------------------------------------------------------

    def _act(self, index: int, step: Step) -> Generator[simpy.Event, Any, None]:
        self.world.note("step", {"step": index, "action": step.action, "select": step.select})
        if step.note is not None:
            return
        if step.fault is not None and CATALOGUE[step.fault].scope is Scope.FLEET:
            self._fleet_fault(step.fault, step.lasting)
            return
        if step.clear in (*_fleet_kinds(), "all"):
            self._fleet_clear()
            if step.clear != "all":
                return
        action = self._action(step)
        units = self.select(step.select)
        gap = 0.0 if step.ramp is None else 1.0 / step.ramp
        refused: list[str] = []
        for position, unit in enumerate(units):
            if gap and position:
                yield self.env.timeout(gap)
            try:
                with self.env.entered(unit.domain):
                    action(unit)
            except (ValueError, LocalProtocolError) as exc:
                refused.append(f"dtu{unit.unit_id}: {exc}")
        self.refusals += [f"step {index} ({step.action}) on {reason}" for reason in refused]
        if refused and not step.allow_refusal:
            self.outcomes.append(
                Outcome(
                    f"step {index} ({step.action})",
                    "step",
                    False,
                    f"{len(refused)} of {len(units)} units refused it, first {refused[0]} "
                    "(allow_refusal: true if that is expected)",
                )
            )

    def _action(self, step: Step) -> Callable[[Unit], None]:
        if step.fault is not None:
            request = parse_request(step.fault, step.params, step.lasting)
            return lambda unit: apply_fault(unit, request)
        if step.clear is not None:
            kind = None if step.clear == "all" else step.clear

            def clear(unit: Unit) -> None:
                clear_faults(unit, kind)

            return clear
        if step.downlink is not None:
            payload = step.downlink.encode()
            return lambda unit: self._downlink(unit, payload)
        if step.send is not None:
            line = step.send
            return lambda unit: self.world.host_writes(unit, line)
        if step.config is not None:
            config = step.config
            return lambda unit: self.world.sides[unit.profile].push_config(unit.imei, config)
        if step.ota is not None:
            job = {key: value for key, value in step.ota.model_dump().items() if value is not None}
            return lambda unit: self.world.sides[unit.profile].push_ota(unit.imei, job)
        assert step.poke is not None
        poke = POKES[step.poke]
        params = poke.check(step.params)
        run = poke.run
        if run is None:  # the downlink poke: the cloud sends it
            payload = str(params["payload"]).encode()
            return lambda unit: self._downlink(unit, payload)
        return lambda unit: run(unit, params)

    def _downlink(self, unit: Unit, payload: bytes) -> None:
        if not self.world.sides[unit.profile].downlink(unit.imei, payload):
            raise ValueError("the unit is not subscribed at its broker now: the downlink is lost")

    def _fleet_fault(self, kind: str, lasting: float | None) -> None:
        self._broker_down += 1
        generation = self._broker_down
        self.world.broker_stop()
        self.world.note("fault", {"kind": kind, "for_s": lasting})
        if lasting is not None:
            self.env.timeout(lasting).callbacks.append(
                lambda _event: self._fleet_clear() if self._broker_down == generation else None
            )

    def _fleet_clear(self) -> None:
        if not self._broker_down:
            return
        self._broker_down = 0
        self.world.broker_start()
        self.world.note("fault-cleared", {"kind": "broker-stop"})

    # -- waits ---------------------------------------------------------------------------------

    def _wait(
        self, index: int, wait: WaitFor, *, since: float
    ) -> Generator[simpy.Event, Any, None]:
        """Wait for ``wait``'s condition; lines and uplinks from ``since`` (when the step
        before it began) count, so what that step caused at once is not missed."""
        units = self.select(wait.select)
        started = self.env.now
        name = f"wait at step {index}"
        waiting = {unit.config.unit_id for unit in units}
        if wait.state is not None:
            state = wait.state.lower()
            while True:
                waiting = {
                    unit.config.unit_id
                    for unit in units
                    if state not in (text.lower() for text in unit.states)
                }
                if not waiting or self.env.now - started >= wait.timeout:
                    break
                yield self.env.timeout(min(STATE_POLL_S, wait.timeout - (self.env.now - started)))
            what = f"state {wait.state}"
        else:
            pattern = re.compile(wait.serial or wait.uplink or "")
            done = self.env.event()

            def seen(unit: Unit, text: str) -> None:
                if unit.config.unit_id in waiting and pattern.search(text):
                    waiting.discard(unit.config.unit_id)
                    if not waiting and not done.triggered:
                        done.succeed()

            listeners = self.world.on_line if wait.serial is not None else self.world.on_uplink
            kind = "line" if wait.serial is not None else "uplink"
            for at, unit_id, seen_kind, text in self.world.recent:
                if at >= since and seen_kind == kind and pattern.search(text):
                    waiting.discard(unit_id)
            listeners.append(seen)
            if waiting:
                yield done | self.env.timeout(wait.timeout)
            listeners.remove(seen)
            what = (
                f"{'a serial line' if wait.serial is not None else 'an uplink'} /{pattern.pattern}/"
            )
        took = self.env.now - started
        passed = not waiting
        evidence = (
            f"{len(units)} units reached {what} within {took:g} s"
            if passed
            else f"after {wait.timeout:g} s, {len(waiting)} of {len(units)} units had not reached "
            f"{what}: {describe_ids(waiting)}"
        )
        self.outcomes.append(Outcome(name, "wait", passed, evidence))
        self.world.note("wait", {"step": index, "passed": passed, "took_s": round(took, 6)})

    # -- expectations --------------------------------------------------------------------------

    def _check(self, expectation: Expectation) -> Outcome:
        checks: dict[str, Callable[[], tuple[bool, str]]] = {
            "uplinks": lambda: self._uplinks(expectation.uplinks),
            "state": lambda: self._state(expectation),
            "serial": lambda: self._serial_check(expectation),
            "reconnect_s": lambda: self._reconnect(expectation.reconnect_s),
            "cloud": lambda: self._cloud_check(expectation),
        }
        passed, evidence = checks[expectation.kind]()
        return Outcome(expectation.title, expectation.kind, passed, evidence)

    def _uplinks(self, check: UplinkCounts | None) -> tuple[bool, str]:
        assert check is not None
        totals = self.world.tracker.totals()
        pct = 100.0 * totals.delivered / totals.published if totals.published else 100.0
        figures = {
            "delivered_pct": pct,
            "lost": totals.lost,
            "duplicated": totals.duplicated,
            "reordered": totals.reordered,
        }
        bounds = {name: getattr(check, name) for name in figures}
        prefix = f"{totals.published} published, {totals.delivered} delivered"
        return _bounded(figures, bounds, prefix=prefix)

    def _state(self, expectation: Expectation) -> tuple[bool, str]:
        check = expectation.state
        assert check is not None
        looked = self._looked.get(id(expectation))
        if looked is not None:
            return looked
        return self._look(check)

    def _look_at(self, expectation: Expectation, at: float) -> Generator[simpy.Event, Any, None]:
        """A state expectation with ``at``: look then, and keep what was seen for the end."""
        check = expectation.state
        assert check is not None
        if at > self.env.now:
            yield self.env.timeout(at - self.env.now)
        passed, evidence = self._look(check)
        self._looked[id(expectation)] = (passed, f"at {sim_clock(at)}: {evidence}")

    def _look(self, check: StateCheck) -> tuple[bool, str]:
        units = self.select(check.select)
        wanted = check.phase.lower()
        off = [u for u in units if wanted not in (text.lower() for text in u.states)]
        if not units:
            return False, f"selector {check.select!r} picks no unit"
        if not off:
            return True, f"all {len(units)} units are {check.phase}"
        shown = ", ".join(f"dtu{u.unit_id} {'/'.join(u.states)}" for u in off[:5])
        return False, f"{len(off)} of {len(units)} units are not {check.phase}: {shown}"

    def _serial_check(self, expectation: Expectation) -> tuple[bool, str]:
        progress = next(p for e, p in self._serial if e is expectation)
        total = len(progress.patterns)
        short = {u: n for u, n in progress.position.items() if n < total}
        if not progress.position:
            return False, "the selector picks no unit"
        if progress.forbidden:
            unit_id, text = next(iter(progress.forbidden.items()))
            return False, (
                f"{len(progress.forbidden)} of {len(progress.position)} units wrote a line they "
                f"must not: dtu{unit_id} wrote {text!r}"
            )
        if not short:
            absent = (
                f", and none of the {len(progress.absent)} absent ones" if progress.absent else ""
            )
            return (
                True,
                f"all {len(progress.position)} units wrote the {total} lines in order{absent}",
            )
        unit_id, reached = next(iter(short.items()))
        last = progress.last_line.get(unit_id, "nothing matched")
        return False, (
            f"{len(short)} of {len(progress.position)} units did not: dtu{unit_id} matched "
            f"{reached} of {total}, stopped before /{progress.patterns[reached].pattern}/ "
            f"(last match: {last!r})"
        )

    def _cloud_check(self, expectation: Expectation) -> tuple[bool, str]:
        check = expectation.cloud
        assert check is not None
        count = next(c for e, c in self._cloud if e is expectation)
        what = f"/{check.topic}/" + ("" if check.payload is None else f" with /{check.payload}/")
        example = "" if count.first is None else f"; the first: {count.first!r}"
        return _bounded(
            {"count": float(count.count)},
            {"count": check.count},
            prefix=f"messages on {what} from {len(count.units)} units{example}",
        )

    def _reconnect(self, check: ReconnectCheck | None) -> tuple[bool, str]:
        assert check is not None
        selected = {unit.config.unit_id for unit in self.select(check.select)}
        end = self.world.clock.now
        durations = [d for u, ds in self.reconnects.durations.items() if u in selected for d in ds]
        durations += [
            end - since for u, since in self.reconnects.down_since.items() if u in selected
        ]
        durations.sort()
        figures: dict[str, float] = {"count": float(len(durations))}
        if durations:
            figures |= {
                "p50": _percentile(durations, 50),
                "p99": _percentile(durations, 99),
                "max": durations[-1],
            }
        bounds = {"count": check.count, "p50": check.p50, "p99": check.p99, "max": check.max}
        missing = [n for n, b in bounds.items() if b is not None and n not in figures]
        if missing:
            return False, f"no reconnect happened, so there is no {', '.join(missing)}"
        return _bounded(figures, bounds, prefix=f"{len(durations)} link losses")

    # -- the report ----------------------------------------------------------------------------

    def _report(self, wall_s: float) -> dict[str, Any]:
        totals = self.world.tracker.totals()
        return {
            "scenario": self.scenario.name,
            "passed": all(outcome.passed for outcome in self.outcomes),
            "seed": self.seed,
            "units": len(self.world.units),
            "sim_s": self.world.clock.now,
            "wall_s": round(wall_s, 3),
            "expectations": [outcome.view() for outcome in self.outcomes],
            "refused": self.refusals,
            "uplinks": {
                "published": totals.published,
                "delivered": totals.delivered,
                "lost": totals.lost,
                "duplicated": totals.duplicated,
                "reordered": totals.reordered,
            },
            "events": self.world.transcript.lines,
            "transcript_sha256": self.world.transcript.sha256,
        }


def _fleet_kinds() -> tuple[str, ...]:
    return tuple(name for name, kind in CATALOGUE.items() if kind.scope is Scope.FLEET)


def _bounded(
    figures: dict[str, float], bounds: dict[str, Bound | None], *, prefix: str
) -> tuple[bool, str]:
    """Check each bound given against its figure; the evidence names every figure."""
    failed = [
        f"{name} {figures[name]:g} is not {bound.describe()}"
        for name, bound in bounds.items()
        if bound is not None and not bound.holds(figures[name])
    ]
    shown = ", ".join(f"{name} {value:g}" for name, value in figures.items())
    if failed:
        return False, f"{'; '.join(failed)} ({prefix}; {shown})"
    return True, f"{prefix}; {shown}"


def _percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of sorted ``values``."""
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]
