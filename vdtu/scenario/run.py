"""Running a scenario in virtual time: its timeline, its waits and its expectations.

``ScenarioRun`` builds the ``World``, then runs one SimPy process for the timeline:
steps in file order, each at its time (``at``: from the start; ``after``: from the
previous step's end; ``every``: a process of its own that repeats it, and the timeline
goes straight on). A step acts on the units its selector picks when it runs (``ramp``
spreads it over them at a rate). Faults, clears and pokes go through the catalogue
and the pokes of ``vdtu.control``, so a scenario step does what ``vdtu ctl`` does;
``broker-stop`` takes every virtual cloud's broker down. A wait holds the timeline
until its condition holds for every selected unit, or fails at its timeout (the
timeline then goes on, and the report says so); it looks every ``STATE_POLL_S`` for a
state and every ``LINE_POLL_S`` for a line or an uplink. At ``duration`` the hosts
stop; after ``GRACE_S`` for what is in flight, the expectations are checked and the
report made.

A run can be one shard of a run split over processes (``vdtu.scenario.shards``): it
runs its share of the units and the whole timeline, and gathers from every shard what
a selector reading states, a wait, an expectation or the report needs; steps and
waits are decided alike in every shard. The same file and seed give the same run
event for event, in one process or several: the transcript's SHA-256 is in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, fields, replace
from typing import IO, Any

import simpy

from vdtu.clock import DomainEnvironment, VirtualClock
from vdtu.control.pokes import POKES
from vdtu.control.selector import describe_ids, parse_selector
from vdtu.errors import LocalProtocolError
from vdtu.faults.active import apply_fault, clear_faults
from vdtu.faults.catalogue import CATALOGUE, Scope, parse_request
from vdtu.load.delivery import DeliveryCounts
from vdtu.scenario.progress import Progress
from vdtu.scenario.report import sim_clock
from vdtu.scenario.schema import (
    Bound,
    CloudCheck,
    Expectation,
    FlashCheck,
    ReconnectCheck,
    RoundTripCheck,
    Scenario,
    SerialCheck,
    StateCheck,
    Step,
    UplinkCounts,
    WaitFor,
)
from vdtu.scenario.shards import Alone, Exchange
from vdtu.scenario.world import (
    Transcript,
    UnitCard,
    VirtualWorld,
    World,
    combined_sha256,
)
from vdtu.unit import Unit

GRACE_S = 30.0
"""Sim time after ``duration`` for uplinks in flight, before the expectations are checked."""
STATE_POLL_S = 1.0
"""How often a wait for a state looks at the units."""
LINE_POLL_S = 0.1
"""How often a wait for a serial line or an uplink looks at what the units saw."""


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
    """Per unit of this shard: when its cloud link went down (absent: it is up), and every
    down time."""

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


@dataclass(slots=True)
class _SerialSeen:
    """How far the selected units' lines toward their hosts got through a sequence: the
    number of patterns matched, the last matching line, and the first line that matched
    an ``absent`` pattern, by unit id (this shard's, or merged)."""

    position: dict[int, int]
    last_line: dict[int, str] = field(default_factory=dict)
    forbidden: dict[int, str] = field(default_factory=dict)


class _SerialProgress:
    """Follows the selected units' lines toward the host through a sequence."""

    def __init__(self, check: SerialCheck, unit_ids: list[int], world: World) -> None:
        self.patterns = [re.compile(pattern) for pattern in check.sequence]
        self.absent = [re.compile(pattern) for pattern in check.absent]
        self.selected = len(unit_ids)
        self.seen = _SerialSeen({unit_id: 0 for unit_id in unit_ids if unit_id in world.local})

    def line(self, unit: Unit, text: str) -> None:
        unit_id = unit.config.unit_id
        seen = self.seen
        position = seen.position.get(unit_id)
        if position is None:
            return
        if (
            self.absent
            and unit_id not in seen.forbidden
            and any(pattern.search(text) for pattern in self.absent)
        ):
            seen.forbidden[unit_id] = text
        if position < len(self.patterns) and self.patterns[position].search(text):
            seen.position[unit_id] = position + 1
            seen.last_line[unit_id] = text


class _CloudCount:
    """How many messages from the selected units matched a cloud check's patterns, and
    the first one: (sim time, unit id, text)."""

    def __init__(self, check: CloudCheck, unit_ids: list[int], world: World) -> None:
        self.topic = re.compile(check.topic)
        self.payload = None if check.payload is None else re.compile(check.payload)
        self.units = set(unit_ids)
        self.clock = world.clock
        self.count = 0
        self.first: tuple[float, int, str] | None = None

    def message(self, unit: Unit, topic: str, payload: bytes) -> None:
        if unit.unit_id not in self.units or not self.topic.search(topic):
            return
        text = payload.decode("utf-8", "backslashreplace")
        if self.payload is None or self.payload.search(text):
            self.count += 1
            if self.first is None:
                self.first = (self.clock.now, unit.unit_id, f"{topic} {text[:120]}")


class _RoundTrips:
    """Each selected unit's requests of one kind not yet answered (their sim times, oldest
    first) and the round trips of those answered."""

    def __init__(self, check: RoundTripCheck, unit_ids: list[int], world: World) -> None:
        self.request = check.request
        self.sent_pattern = None if check.sent is None else re.compile(check.sent)
        self.topic = re.compile(check.topic)
        self.payload = None if check.payload is None else re.compile(check.payload)
        self.pending: dict[int, deque[float]] = {u: deque() for u in unit_ids if u in world.local}
        self.clock = world.clock
        self.durations: list[float] = []

    def sent(self, unit: Unit, request: str, payload: str) -> None:
        waiting = self.pending.get(unit.unit_id)
        if waiting is None or request != self.request:
            return
        if self.sent_pattern is None or self.sent_pattern.search(payload):
            waiting.append(self.clock.now)

    def message(self, unit: Unit, topic: str, payload: bytes) -> None:
        waiting = self.pending.get(unit.unit_id)
        if not waiting or not self.topic.search(topic):
            return
        if self.payload is None or self.payload.search(payload.decode("utf-8", "replace")):
            self.durations.append(self.clock.now - waiting.popleft())


@dataclass(slots=True)
class _Acted:
    """One time a step acted: on how many units, and this shard's refusals (unit id,
    reason); the outcome is made at the end, from every shard's."""

    index: int
    step: Step
    units: int
    refused: list[tuple[int, str]]


class ScenarioRun:
    """One run of a scenario (or one shard of a split run).

    Args:
        scenario: what to run.
        seed: the seed (None: the file's).
        transcript: where the transcript's lines go (None: only hashed).
        progress: where a progress line goes every few wall seconds (None: nowhere;
            a shard gives its progress to its ``exchange``).
        world: the world to run it in (None: a ``VirtualWorld``; real time: a
            ``RealtimeWorld``, run with ``run_realtime``).
        exchange: how the shards of a split run share what concerns the whole fleet
            (``vdtu.scenario.shards``; None: a run in one process).
        shard: this run's shard and the number of shards.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int | None = None,
        transcript: IO[str] | None = None,
        progress: IO[str] | None = None,
        world: World | None = None,
        exchange: Exchange | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.world: World = (
            world
            if world is not None
            else VirtualWorld(
                scenario,
                seed=self.seed,
                transcript=Transcript(transcript, write_scenario=shard[0] == 0),
                shard=shard,
            )
        )
        self.exchange: Exchange = (
            exchange if exchange is not None else Alone(progress, duration_s=scenario.duration)
        )
        self.outcomes: list[Outcome | _Acted] = []
        """Waits' outcomes and the steps' acts, in the order they happened."""
        self.reconnects = _Reconnects()
        self.refusals: list[str] = []
        """Every refusal of a step by a unit (made at the end, from every shard's)."""
        self._looked: dict[int, tuple[bool, str]] = {}
        """What state expectations with ``at`` saw then, by expectation."""
        self._broker_down = 0
        """How many times the broker was stopped (0: it runs): a later stop's timer wins."""
        self.world.on_cloud.append(self.reconnects.changed)
        self.progress = Progress(scenario, seed=self.seed, now=lambda: self.world.clock.now)
        """Each step's state and the verdicts so far (what a served run shows)."""
        self._serial: dict[int, _SerialProgress] = {}
        self._cloud: dict[int, _CloudCount] = {}
        self._round_trips: dict[int, _RoundTrips] = {}
        for expectation in scenario.expect:
            if expectation.cloud is not None:
                ids = self._ids(expectation.cloud.select)
                count = _CloudCount(expectation.cloud, ids, self.world)
                self._cloud[id(expectation)] = count
                self.world.on_message.append(count.message)
            if expectation.round_trip_s is not None:
                ids = self._ids(expectation.round_trip_s.select)
                trips = _RoundTrips(expectation.round_trip_s, ids, self.world)
                self._round_trips[id(expectation)] = trips
                self.world.on_message.append(trips.message)
            if expectation.serial is not None:
                ids = self._ids(expectation.serial.select)
                progress_ = _SerialProgress(expectation.serial, ids, self.world)
                self._serial[id(expectation)] = progress_
                self.world.on_line.append(progress_.line)

    @property
    def env(self) -> DomainEnvironment:
        return self.world.clock.env

    def select(self, text: str) -> list[UnitCard]:
        """The units of the whole scenario a selector picks now (possibly none)."""
        selector = parse_selector(text)
        cards = self._with_states() if selector.reads_states else self.world.cards
        return selector.pick(cards, fleet_seed=self.seed)

    def _ids(self, text: str) -> list[int]:
        return [card.unit_id for card in self.select(text)]

    def _with_states(self) -> list[UnitCard]:
        """Every unit's card with its states now (each shard tells its own units')."""
        parts = self.exchange.gather(
            "states", [(unit.unit_id, unit.states) for unit in self.world.units]
        )
        states = {unit_id: found for part in parts for unit_id, found in part}
        return [replace(card, states=states[card.unit_id]) for card in self.world.cards]

    # -- running -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run to the end in virtual time; returns the report (``report.py`` renders it)."""
        clock = self.world.clock
        assert isinstance(clock, VirtualClock), "a real-time world runs with run_realtime"
        started = time.monotonic()
        self._begin()
        end = self.scenario.duration
        while clock.now < end:
            clock.run_until(min(end, clock.now + 60.0))
            self.exchange.progress(self._figures())
        self.progress.winding_down()
        self.world.stop_hosts()
        clock.run_until(end + GRACE_S)
        return self._finish(started)

    async def run_realtime(self, stop: asyncio.Event, *, grace_s: float) -> dict[str, Any]:
        """Run on the wall clock until the end or ``stop``; after the end the hosts stop and
        ``grace_s`` passes for what is in flight. Returns the report."""
        clock = self.world.clock
        started = time.monotonic()
        clock.call(self._begin)  # in sim time: the real-time clock wakes for what it schedules
        while clock.now < self.scenario.duration and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(0.5, self.scenario.duration - clock.now))
            self.exchange.progress(self._figures())
        self.progress.winding_down()
        clock.inject(self.world.stop_hosts)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), grace_s)
        return self._finish(started)

    def _begin(self) -> None:
        self.world.start()
        self._start_timeline()
        for index, expectation in enumerate(self.scenario.expect):
            if expectation.state is not None and expectation.state.at is not None:
                self.env.process(self._look_at(index, expectation, expectation.state.at))

    def _finish(self, started: float) -> dict[str, Any]:
        self.world.tracker.finish()
        self.world.transcript.close()
        outcomes = self._acts_outcomes()
        for index, expectation in enumerate(self.scenario.expect):
            outcome = self._check(expectation)
            self.progress.decided(index, (outcome.passed, outcome.evidence))
            outcomes.append(outcome)
        report = self._report(outcomes, time.monotonic() - started)
        self.progress.finished(report["passed"])
        return report

    def so_far(self, index: int) -> tuple[bool, str]:
        """Expectation ``index`` checked now, before the end (a run in one process: a
        split run's shards check together, at the end only)."""
        outcome = self._check(self.scenario.expect[index])
        return outcome.passed, outcome.evidence

    def view(self) -> dict[str, Any]:
        """Where the run is (``Progress.view``), for ``GET /v1/scenario``."""
        return self.progress.view(self.so_far)

    def _figures(self) -> tuple[float, int, int, int]:
        units = self.world.units
        connected = sum(unit.firmware.cloud_connected for unit in units)
        return (self.world.clock.now, connected, len(units), self.world.transcript.lines)

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
                self._acted(index)

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
        self._acted(index)

    def _acted(self, index: int) -> None:
        """Step ``index`` acted for the last time: done, or failed if units refused it
        (this shard's, and the step does not allow it)."""
        refused = [
            pair
            for entry in self.outcomes
            if isinstance(entry, _Acted) and entry.index == index
            for pair in entry.refused
        ]
        failed = None
        if refused and not self.scenario.steps[index].allow_refusal:
            unit_id, reason = refused[0]
            failed = f"{len(refused)} refusals, first dtu{unit_id}: {reason}"
        self.progress.ended(index, failed=failed)

    # -- steps ---------------------------------------------------------------------------------

    def _act(self, index: int, step: Step) -> Generator[simpy.Event, Any, None]:
        self.progress.started(index)
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
        cards = self.select(step.select)
        gap = 0.0 if step.ramp is None else 1.0 / step.ramp
        acted = _Acted(index, step, len(cards), [])
        self.outcomes.append(acted)
        local = self.world.local
        for position, card in enumerate(cards):
            if gap and position:
                yield self.env.timeout(gap)
            unit = local.get(card.unit_id)
            if unit is None:
                continue  # another shard's
            try:
                with self.env.entered(unit.domain):
                    action(unit)
            except (ValueError, LocalProtocolError) as exc:
                acted.refused.append((unit.unit_id, str(exc)))

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

            def push_config(unit: Unit) -> None:
                self.world.sides[unit.profile].push_config(unit.imei, config)
                self._sent(unit, "config", json.dumps(config, sort_keys=True))

            return push_config
        if step.ota is not None:
            job = {key: value for key, value in step.ota.model_dump().items() if value is not None}

            def push_ota(unit: Unit) -> None:
                self.world.sides[unit.profile].push_ota(unit.imei, job)
                self._sent(unit, "ota", json.dumps(job, sort_keys=True))

            return push_ota
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
        self._sent(unit, "downlink", payload.decode("utf-8", "replace"))

    def _sent(self, unit: Unit, request: str, payload: str) -> None:
        """A request from the cloud went to ``unit``: round-trip expectations start timing."""
        for trips in self._round_trips.values():
            trips.sent(unit, request, payload)

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

    def _acts_outcomes(self) -> list[Outcome]:
        """The waits' outcomes and an outcome for each act some unit refused (unless the
        step allows it), in order, with every shard's refusals; ``refusals`` lists them."""
        acts = [entry for entry in self.outcomes if isinstance(entry, _Acted)]
        refused_by_act = self.exchange.gather("refusals", [act.refused for act in acts])
        merged = [
            sorted(pair for part in parts for pair in part)
            for parts in zip(*refused_by_act, strict=True)
        ]
        refused_of = {id(act): refused for act, refused in zip(acts, merged, strict=True)}
        outcomes: list[Outcome] = []
        for entry in self.outcomes:
            if isinstance(entry, Outcome):
                outcomes.append(entry)
                continue
            refused = refused_of[id(entry)]
            what = f"step {entry.index} ({entry.step.action})"
            self.refusals += [f"{what} on dtu{unit_id}: {reason}" for unit_id, reason in refused]
            if refused and not entry.step.allow_refusal:
                unit_id, reason = refused[0]
                outcomes.append(
                    Outcome(
                        what,
                        "step",
                        False,
                        f"{len(refused)} of {entry.units} units refused it, first dtu{unit_id}: "
                        f"{reason} (allow_refusal: true if that is expected)",
                    )
                )
        return outcomes

    # -- waits ---------------------------------------------------------------------------------

    def _wait(
        self, index: int, wait: WaitFor, *, since: float
    ) -> Generator[simpy.Event, Any, None]:
        """Wait for ``wait``'s condition, looking every ``STATE_POLL_S`` (a state) or
        ``LINE_POLL_S`` (a line or an uplink); lines and uplinks from ``since`` (when the
        step before it began) count, so what that step caused at once is not missed."""
        self.progress.started(index)
        selected = self._ids(wait.select)
        started = self.env.now
        local = [unit_id for unit_id in selected if unit_id in self.world.local]
        if wait.state is not None:
            state = wait.state.lower()
            units = [self.world.local[unit_id] for unit_id in local]

            def missing() -> list[int]:
                return [
                    unit.unit_id
                    for unit in units
                    if state not in (text.lower() for text in unit.states)
                ]

            poll_s = STATE_POLL_S
            what = f"state {wait.state}"
        else:
            pattern = re.compile(wait.serial or wait.uplink or wait.message or "")
            kind = (
                "line"
                if wait.serial is not None
                else "uplink"
                if wait.uplink is not None
                else "message"
            )
            pending = {
                unit_id
                for unit_id in local
                if not any(
                    at >= since and seen_kind == kind and pattern.search(text)
                    for at, seen_kind, text in self.world.recent.get(unit_id, ())
                )
            }

            def seen(unit: Unit, text: str) -> None:
                if unit.unit_id in pending and pattern.search(text):
                    pending.discard(unit.unit_id)

            def missing() -> list[int]:
                return sorted(pending)

            listeners = {
                "line": self.world.on_line,
                "uplink": self.world.on_uplink,
                "message": self.world.on_message_text,
            }[kind]
            listeners.append(seen)
            poll_s = LINE_POLL_S
            what = {"line": "a serial line", "uplink": "an uplink", "message": "a message"}[kind]
            what += f" /{pattern.pattern}/"
        while True:
            waiting = [u for part in self.exchange.gather("wait", missing()) for u in part]
            elapsed = self.env.now - started
            if not waiting or elapsed >= wait.timeout:
                break
            yield self.env.timeout(min(poll_s, wait.timeout - elapsed))
        if wait.state is None:
            listeners.remove(seen)
        took = self.env.now - started
        passed = not waiting
        evidence = (
            f"{len(selected)} units reached {what} within {took:g} s"
            if passed
            else f"after {wait.timeout:g} s, {len(waiting)} of {len(selected)} units had not "
            f"reached {what}: {describe_ids(waiting)}"
        )
        self.outcomes.append(Outcome(f"wait at step {index}", "wait", passed, evidence))
        self.progress.ended(index, failed=None if passed else evidence, detail=evidence)
        self.world.note("wait", {"step": index, "passed": passed, "took_s": round(took, 6)})

    # -- expectations --------------------------------------------------------------------------

    def _check(self, expectation: Expectation) -> Outcome:
        checks: dict[str, Callable[[], tuple[bool, str]]] = {
            "uplinks": lambda: self._uplinks(expectation.uplinks),
            "state": lambda: self._state(expectation),
            "serial": lambda: self._serial_check(expectation),
            "reconnect_s": lambda: self._reconnect(expectation.reconnect_s),
            "cloud": lambda: self._cloud_check(expectation),
            "flash": lambda: self._flash_check(expectation),
            "round_trip_s": lambda: self._round_trip_check(expectation),
        }
        passed, evidence = checks[expectation.kind]()
        return Outcome(expectation.title, expectation.kind, passed, evidence)

    def _totals(self) -> DeliveryCounts:
        """Every shard's uplink counts together."""
        parts = self.exchange.gather("uplinks", self.world.tracker.totals())
        return DeliveryCounts(
            **{name: sum(getattr(part, name) for part in parts) for name in _COUNTS}
        )

    def _uplinks(self, check: UplinkCounts | None) -> tuple[bool, str]:
        assert check is not None
        totals = self._totals()
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

    def _look_at(
        self, index: int, expectation: Expectation, at: float
    ) -> Generator[simpy.Event, Any, None]:
        """A state expectation with ``at``: look then, and keep what was seen for the end."""
        check = expectation.state
        assert check is not None
        if at > self.env.now:
            yield self.env.timeout(at - self.env.now)
        passed, evidence = self._look(check)
        self._looked[id(expectation)] = (passed, f"at {sim_clock(at)}: {evidence}")
        self.progress.decided(index, self._looked[id(expectation)])

    def _look(self, check: StateCheck) -> tuple[bool, str]:
        units = parse_selector(check.select).pick(self._with_states(), fleet_seed=self.seed)
        wanted = check.phase.lower()
        off = [card for card in units if wanted not in (text.lower() for text in card.states)]
        if not units:
            return False, f"selector {check.select!r} picks no unit"
        if not off:
            return True, f"all {len(units)} units are {check.phase}"
        shown = ", ".join(f"dtu{card.unit_id} {'/'.join(card.states)}" for card in off[:5])
        return False, f"{len(off)} of {len(units)} units are not {check.phase}: {shown}"

    def _serial_check(self, expectation: Expectation) -> tuple[bool, str]:
        progress = self._serial[id(expectation)]
        seen = _SerialSeen({})
        for part in self.exchange.gather("serial", progress.seen):
            seen.position |= part.position
            seen.last_line |= part.last_line
            seen.forbidden |= part.forbidden
        total = len(progress.patterns)
        if not seen.position:
            return False, "the selector picks no unit"
        if seen.forbidden:
            unit_id = min(seen.forbidden)
            return False, (
                f"{len(seen.forbidden)} of {len(seen.position)} units wrote a line they "
                f"must not: dtu{unit_id} wrote {seen.forbidden[unit_id]!r}"
            )
        short = sorted(unit_id for unit_id, n in seen.position.items() if n < total)
        if not short:
            absent = (
                f", and none of the {len(progress.absent)} absent ones" if progress.absent else ""
            )
            return (
                True,
                f"all {len(seen.position)} units wrote the {total} lines in order{absent}",
            )
        unit_id = short[0]
        reached = seen.position[unit_id]
        last = seen.last_line.get(unit_id, "nothing matched")
        return False, (
            f"{len(short)} of {len(seen.position)} units did not: dtu{unit_id} matched "
            f"{reached} of {total}, stopped before /{progress.patterns[reached].pattern}/ "
            f"(last match: {last!r})"
        )

    def _cloud_check(self, expectation: Expectation) -> tuple[bool, str]:
        check = expectation.cloud
        assert check is not None
        count = self._cloud[id(expectation)]
        parts = self.exchange.gather("cloud", (count.count, count.first))
        firsts = [first for _count, first in parts if first is not None]
        what = f"/{check.topic}/" + ("" if check.payload is None else f" with /{check.payload}/")
        example = f"; the first: {min(firsts)[2]!r}" if firsts else ""
        return _bounded(
            {"count": float(sum(number for number, _first in parts))},
            {"count": check.count},
            prefix=f"messages on {what} from {len(count.units)} units{example}",
        )

    def _flash_check(self, expectation: Expectation) -> tuple[bool, str]:
        check = expectation.flash
        assert check is not None
        pattern = re.compile(check.matches)
        selected = self._ids(check.select)
        local = [self.world.local[u] for u in selected if u in self.world.local]
        wrong = [
            (unit.unit_id, why) for unit in local if (why := _flash_wrong(unit, check, pattern))
        ]
        failed = sorted(pair for part in self.exchange.gather("flash", wrong) for pair in part)
        what = f"{check.file or 'flash'}{'' if check.key is None else ' ' + check.key}"
        if not selected:
            return False, f"selector {check.select!r} picks no unit"
        if not failed:
            return True, f"all {len(selected)} units' {what} matches /{check.matches}/"
        unit_id, why = failed[0]
        return False, (
            f"{len(failed)} of {len(selected)} units' {what} does not match "
            f"/{check.matches}/: dtu{unit_id} {why}"
        )

    def _round_trip_check(self, expectation: Expectation) -> tuple[bool, str]:
        check = expectation.round_trip_s
        assert check is not None
        trips = self._round_trips[id(expectation)]
        unanswered = sum(len(waiting) for waiting in trips.pending.values())
        parts = self.exchange.gather("round trips", (trips.durations, unanswered))
        durations = sorted(d for part, _left in parts for d in part)
        figures = {
            "count": float(len(durations)),
            "unanswered": float(sum(left for _part, left in parts)),
        }
        bounds = {"count": check.count, "unanswered": check.unanswered}
        return _bounded_times(
            durations,
            figures,
            bounds | {"p50": check.p50, "p99": check.p99, "max": check.max},
            what=f"{check.request} requests answered on /{check.topic}/",
        )

    def _reconnect(self, check: ReconnectCheck | None) -> tuple[bool, str]:
        assert check is not None
        selected = set(self._ids(check.select))
        end = self.world.clock.now
        local = [d for u, ds in self.reconnects.durations.items() if u in selected for d in ds] + [
            end - since for u, since in self.reconnects.down_since.items() if u in selected
        ]
        durations = sorted(d for part in self.exchange.gather("reconnects", local) for d in part)
        bounds = {"count": check.count, "p50": check.p50, "p99": check.p99, "max": check.max}
        return _bounded_times(
            durations, {"count": float(len(durations))}, bounds, what="link losses"
        )

    # -- the report ----------------------------------------------------------------------------

    def _report(self, outcomes: list[Outcome], wall_s: float) -> dict[str, Any]:
        totals = self._totals()
        transcript = self.world.transcript
        own = transcript.lines - (transcript.scenario_lines if self.world.shard else 0)
        parts = self.exchange.gather("transcript", (own, transcript.digests()))
        digests: dict[str, str] = {}
        for _lines, part in parts:
            for who, digest in part.items():
                if digests.setdefault(who, digest) != digest:
                    raise RuntimeError(f"the shards' transcripts differ for {who}")
        return {
            "scenario": self.scenario.name,
            "passed": all(outcome.passed for outcome in outcomes),
            "seed": self.seed,
            "units": len(self.world.cards),
            "sim_s": self.world.clock.now,
            "wall_s": round(wall_s, 3),
            "expectations": [outcome.view() for outcome in outcomes],
            "refused": self.refusals,
            "uplinks": {
                "published": totals.published,
                "delivered": totals.delivered,
                "lost": totals.lost,
                "duplicated": totals.duplicated,
                "reordered": totals.reordered,
            },
            "events": sum(lines for lines, _part in parts),
            "transcript_sha256": combined_sha256(
                digests, (card.unit_id for card in self.world.cards)
            ),
        }


_COUNTS = tuple(f.name for f in fields(DeliveryCounts))
"""The fields of the uplink counts, summed over the shards."""


def _flash_wrong(unit: Unit, check: FlashCheck, pattern: re.Pattern[str]) -> str | None:
    """Why ``unit``'s flash fails ``check`` (None: it passes)."""
    value: Any
    if check.file is None:
        value = unit.flash.load()
    else:
        file = unit.files.get(check.file)
        text = None if file is None else file.read()
        if text is None:
            return f"has no file {check.file}"
        value = text
        if check.key is not None:
            try:
                value = json.loads(text)
            except ValueError:
                return f"has a {check.file} that is not JSON"
    for name in [] if check.key is None else check.key.split("."):
        if not isinstance(value, dict) or name not in value:
            return f"has no {check.key}"
        value = value[name]
    shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return None if pattern.search(shown) else f"has {shown[:120]!r}"


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


def _bounded_times(
    durations: list[float],
    figures: dict[str, float],
    bounds: dict[str, Bound | None],
    *,
    what: str,
) -> tuple[bool, str]:
    """``_bounded`` for a set of sorted durations: their p50, p99 and max join ``figures``
    (none when there is no duration: a bound on them then fails, saying so)."""
    if durations:
        figures = figures | {
            "p50": _percentile(durations, 50),
            "p99": _percentile(durations, 99),
            "max": durations[-1],
        }
    missing = [n for n, b in bounds.items() if b is not None and n not in figures]
    if missing:
        return False, f"no {what}, so there is no {', '.join(missing)}"
    return _bounded(figures, bounds, prefix=f"{len(durations)} {what}")


def _percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of sorted ``values``."""
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[rank - 1]
