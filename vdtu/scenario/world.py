"""A scenario's world in virtual time: its units, their simulated hosts and clouds, and what
happened, written down.

``World`` knows every unit of the scenario by its card (id in file order, IMEI from the
seed, profile, tags: what a selector reads without the unit) and holds the units of
its shard: all of them, or every n-th when a run is split over processes
(``vdtu.scenario.shards``). ``VirtualWorld`` builds them on one ``VirtualClock``,
wires each to its personality's virtual cloud (``vdtu.links.virtual``), puts a
simulated host on the units whose group has one (``vdtu.load.hosts.Host``: uplinks
every period, counted by a ``DeliveryTracker`` as they are handed over and as the
cloud receives them), and observes every unit's events.

Each event becomes one line of the transcript (``<sim time> dtu<N> <kind> <data as
sorted JSON>``), rendered only when a transcript file is written. Units do not touch each
other, so each unit's events are the same however the units are split; the transcript
hashes each writer's events apart (the scenario's own, and each unit's), each as its
time, kind and ``repr`` of its data (a third of the JSON's cost, and as deterministic:
the data is plain values in dicts the code fills in a fixed order), and its SHA-256 is
the hash of those digests in id order, the same for one process or several. A
transcript file is written in a canonical order (by time; at one time the scenario's
lines, then by unit id), so the files of one run and of a split run are the same byte
for byte. Listeners on lines toward the
host, uplinks and cloud link changes serve the waits and expectations of
``vdtu.scenario.run``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol

from vdtu.clock import Clock, VirtualClock
from vdtu.clock.rng import SplitMix64
from vdtu.firmware.registry import personality
from vdtu.identity import Identity
from vdtu.io.modbus_config import DEMO_SLAVE
from vdtu.links.sides import SIDES
from vdtu.links.virtual import virtual_sides
from vdtu.load.delivery import DeliveryTracker
from vdtu.load.hosts import Host
from vdtu.load.payload import find_uplink
from vdtu.log import LogLevel, UnitLog
from vdtu.scenario.schema import PollPlan, Scenario, UnitGroup
from vdtu.storage import MemoryStorage
from vdtu.unit import DEFAULT_BAUDS, Unit, UnitConfig

LOG_RECORDS = 20
"""Log records each unit keeps (its events go to the transcript)."""
RECENT = 64
"""Lines and uplinks each unit's record keeps for a wait that starts after them."""
SCENARIO = "scenario"
"""The transcript's writer name for the scenario's own lines."""

LineListener = Callable[[Unit, str], None]
"""Called with a unit and one line it wrote toward its host (or one uplink's payload)."""
MessageListener = Callable[[Unit, str, bytes], None]
"""Called with a unit, the topic and the payload of each message the cloud got from it."""
CloudListener = Callable[[Unit, bool, float], None]
"""Called with a unit, whether its cloud link came up (or went down), and the sim time."""


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
"""One encoder for every line (``json.dumps`` with options builds one per call)."""


class Transcript:
    """The run's events: hashed per writer, counted, and written to ``out`` as text lines
    if given (``write_scenario``: whether this transcript writes the scenario's own lines
    to the file: one shard of a split run does).
    """

    def __init__(self, out: IO[str] | None = None, *, write_scenario: bool = True) -> None:
        self._hashes: dict[str, Any] = {}
        self.out = out
        self.lines = 0
        self.scenario_lines = 0
        """How many of the lines are the scenario's own."""
        self._write_scenario = write_scenario
        self._time = ""
        self._pending: list[tuple[int, str]] = []
        """The lines of the current sim time, kept to be written in canonical order."""

    def close(self) -> None:
        """Write what is pending, then no more lines (the file is closed; a unit stopped
        later writes nothing)."""
        self._flush()
        self.out = None

    def write(self, at: float, who: str, kind: str, data: dict[str, Any]) -> None:
        time_text = f"{at:.6f}"
        digest = self._hashes.get(who)
        if digest is None:
            digest = self._hashes[who] = hashlib.sha256()
        digest.update(f"{time_text} {kind} {data!r}\n".encode())
        self.lines += 1
        if who == SCENARIO:
            self.scenario_lines += 1
        if self.out is None or (who == SCENARIO and not self._write_scenario):
            return
        if time_text != self._time:
            self._flush()
            self._time = time_text
        self._pending.append((writer_rank(who), f"{time_text} {who} {kind} {_ENCODE(data)}\n"))

    def _flush(self) -> None:
        if self.out is not None and self._pending:
            self._pending.sort(key=lambda pending: pending[0])
            self.out.writelines(line for _rank, line in self._pending)
        self._pending.clear()

    def digests(self) -> dict[str, str]:
        """Each writer's events' SHA-256 so far, by writer name."""
        return {who: digest.hexdigest() for who, digest in self._hashes.items()}


def writer_rank(who: str) -> int:
    """Where a writer's lines go among the lines of one sim time: the scenario's first,
    then by unit id."""
    return -1 if who == SCENARIO else int(who.removeprefix("dtu"))


def combined_sha256(digests: Mapping[str, str], unit_ids: Iterable[int]) -> str:
    """The transcript's hash: the SHA-256 of the scenario's digest and each unit's, in id
    order (a writer with no line has the digest of nothing)."""
    empty = hashlib.sha256().hexdigest()
    names = [SCENARIO, *(f"dtu{unit_id}" for unit_id in unit_ids)]
    text = "".join(f"{name} {digests.get(name, empty)}\n" for name in names)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class UnitCard:
    """What a selector reads of a unit without the unit itself: its id, IMEI, profile and
    tags (``states``: filled in only for a selector that asks for the state)."""

    unit_id: int
    imei: str
    profile: str
    tags: tuple[str, ...]
    states: tuple[str, ...] = ()


class CloudSide(Protocol):
    """One personality's cloud as a scenario's steps use it (virtual: ``VirtualSide``; real
    time: ``vdtu.scenario.realtime.RealSide``)."""

    on_message: list[Callable[[str, str, bytes], None]]

    def is_uplink(self, topic: str) -> bool: ...
    def downlink(self, imei: str, payload: bytes) -> int: ...
    def push_config(self, imei: str, config: Mapping[str, object]) -> None: ...
    def push_ota(self, imei: str, job: Mapping[str, str]) -> None: ...


class World(ABC):
    """The units of a scenario, their hosts and clouds, and the transcript.

    A subclass builds the units (``add`` each one, in id order) and says how the broker is
    stopped and started.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        transcript: Transcript,
        clock: Clock,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.transcript = transcript
        self.clock = clock
        self.shard, self.shards = shard
        self.cards = [
            UnitCard(unit_id, Identity.for_unit(seed, unit_id).imei, group.profile, tags)
            for unit_id, (group, tags) in enumerate(
                (group, (group.name, *group.tags))
                for group in scenario.units
                for _ in range(group.count)
            )
        ]
        """Every unit of the scenario, in id order (the shard's own or not)."""
        self.sides: dict[str, CloudSide] = {}
        self.units: list[Unit] = []
        """The units this world runs, in id order."""
        self.local: dict[int, Unit] = {}
        """The same by id."""
        self.groups: dict[int, UnitGroup] = {}
        self.hosts: dict[int, Host] = {}
        self.tracker = DeliveryTracker()
        self.by_imei: dict[str, Unit] = {}
        self.on_line: list[LineListener] = []
        self.on_uplink: list[LineListener] = []
        self.on_message_text: list[LineListener] = []
        """Called with each message the cloud gets from a unit as ``<topic> <payload>``."""
        self.on_message: list[MessageListener] = []
        self.on_cloud: list[CloudListener] = []
        waits = [step.wait for step in scenario.steps if step.wait is not None]
        self.lines_wanted = any(w.serial for w in waits) or any(e.serial for e in scenario.expect)
        """Whether anything reads the lines units write toward their hosts."""
        self.uplinks_wanted = any(w.uplink for w in waits)
        """Whether anything reads the uplinks' text."""
        self.messages_wanted = any(w.message for w in waits)
        """Whether anything reads the text of every message the cloud gets."""
        self.recent: dict[int, deque[tuple[float, str, str]]] = {}
        """Each unit's latest lines toward its host and uplinks: (sim time, "line" or
        "uplink", text), for a wait that starts just after what it waits for happened."""
        self._consoles = {
            name: SIDES[name].term.open(device="scenario", sn="0", raw=False, bauds=DEFAULT_BAUDS)
            for name in {group.profile for group in scenario.units}
        }

    @abstractmethod
    def broker_stop(self) -> None:
        """The broker goes down (``broker-stop``)."""

    @abstractmethod
    def broker_start(self) -> None:
        """The broker is back."""

    def owns(self, unit_id: int) -> bool:
        """Whether unit ``unit_id`` runs in this world's shard (every n-th unit)."""
        return unit_id % self.shards == self.shard

    def add(self, unit: Unit, group: UnitGroup) -> None:
        """Take a unit the subclass built (the shard's next one, in id order): observe it,
        give it its host."""
        unit.log.observer = self._event
        self.units.append(unit)
        self.local[unit.unit_id] = unit
        self.groups[unit.unit_id] = group
        self.by_imei[unit.imei] = unit
        plan = group.host
        if plan.kind != "external":
            self.hosts[unit.unit_id] = Host(
                unit,
                unit_index=unit.unit_id,
                rng=SplitMix64(f"{self.seed}:{unit.unit_id}:scenario-host"),
                interval_s=plan.uplink_every,
                payload_size=plan.payload,
                epoch_s=self.clock.epoch_s,
                published=self.tracker.published,
                jobs=plan.jobs,
            )

    @staticmethod
    def unit_settings(group: UnitGroup) -> dict[str, Any]:
        """The ``UnitConfig`` fields a group sets."""
        return {
            "rssi": group.rssi,
            "tags": (group.name, *group.tags),
            "slaves": (DEMO_SLAVE,) if group.slaves == "demo" else (),
        }

    def start(self) -> None:
        """Power on the groups that start powered; start every host."""
        for unit in self.units:
            if self.groups[unit.unit_id].powered:
                unit.power_on()
        for unit_id, host in self.hosts.items():
            host.start()
            poll = self.groups[unit_id].host.poll
            if poll is not None:
                self._poll_later(host, poll, host.rng.uniform(0.0, poll.every))

    def _poll(self, host: Host, poll: PollPlan) -> None:
        if host.stopped:
            return
        request = host.codec.frame_poll(poll.address, poll.function, poll.reg, poll.value)
        if request is None:
            return  # this personality's DTU polls by itself
        if host.unit.powered:
            host.tap.send(request)
        self._poll_later(host, poll, poll.every)

    def _poll_later(self, host: Host, poll: PollPlan, delay_s: float) -> None:
        self.clock.env.timeout(delay_s).callbacks.append(lambda _event: self._poll(host, poll))

    def host_writes(self, unit: Unit, line: str) -> None:
        """The unit's host writes ``line`` as ``vdtu term`` frames a typed one.

        Raises:
            ValueError: the unit has no simulated host (``external``).
        """
        host = self.hosts.get(unit.unit_id)
        if host is None:
            raise ValueError("its host is external (the user's code): a scenario cannot write")
        host.tap.send(self._consoles[unit.profile].frame(line))

    def stop_hosts(self) -> None:
        """The hosts send nothing more (the run is winding down)."""
        for host in self.hosts.values():
            host.stop()

    # -- what happens -------------------------------------------------------------------------

    def _event(self, name: str, at: float, kind: str, data: dict[str, Any]) -> None:
        self.transcript.write(at, name, kind, data)
        if kind == "to-host" and self.lines_wanted:
            unit = self.local[int(name.removeprefix("dtu"))]
            for line in _lines(str(data.get("text", ""))):
                self._remember(unit.unit_id, at, "line", line)
                for listener in self.on_line:
                    listener(unit, line)
        elif kind == "cloud":
            unit = self.local[int(name.removeprefix("dtu"))]
            for cloud_listener in self.on_cloud:
                cloud_listener(unit, bool(data.get("up")), at)

    def message(self, imei: str, topic: str, payload: bytes) -> None:
        """A message the cloud received from unit ``imei``, in sim time."""
        unit = self.by_imei.get(imei)
        if unit is None:
            return
        for message_listener in self.on_message:
            message_listener(unit, topic, payload)
        if self.messages_wanted:
            text = f"{topic} {payload.decode('utf-8', 'backslashreplace')}"
            self._remember(unit.unit_id, self.clock.now, "message", text)
            for listener in self.on_message_text:
                listener(unit, text)
        if not self.sides[unit.profile].is_uplink(topic):
            return
        uplink = find_uplink(payload)
        if uplink is not None and uplink.unit in self.hosts:
            self.tracker.delivered(uplink, self.clock.unix_time() * 1000)
        if not self.uplinks_wanted:
            return
        text = payload.decode("utf-8", "backslashreplace")
        self._remember(unit.unit_id, self.clock.now, "uplink", text)
        for listener in self.on_uplink:
            listener(unit, text)

    def _remember(self, unit_id: int, at: float, kind: str, text: str) -> None:
        recent = self.recent.get(unit_id)
        if recent is None:
            recent = self.recent[unit_id] = deque(maxlen=RECENT)
        recent.append((at, kind, text))

    def note(self, kind: str, data: dict[str, Any]) -> None:
        """A line of the scenario's own (a step, a wait's end) in the transcript."""
        self.transcript.write(self.clock.now, SCENARIO, kind, data)


class VirtualWorld(World):
    """A scenario's world in virtual time: simulated clouds, no PTYs, as fast as it goes."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        transcript: Transcript,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        super().__init__(
            scenario, seed=seed, transcript=transcript, clock=VirtualClock(), shard=shard
        )
        env = self.clock.env
        profiles = [group.profile for group in scenario.units]
        self.virtual = virtual_sides(env, seed, self.clock.epoch_s, profiles)
        self.sides = dict(self.virtual)
        for side in self.virtual.values():
            side.on_message.append(self.message)
        unit_id = 0
        for group in scenario.units:
            for _ in range(group.count):
                if self.owns(unit_id):
                    self._build(group, unit_id)
                unit_id += 1

    def _build(self, group: UnitGroup, unit_id: int) -> None:
        side = self.virtual[group.profile]
        identity = Identity.for_unit(self.seed, unit_id)
        options = side.unit_options(group.firmware_options())
        config = UnitConfig(
            unit_id=unit_id,
            seed=self.seed,
            identity=identity,
            profile=group.profile,
            options=options,
            pacing=False,
            **self.unit_settings(group),
        )
        files = side.unit_files(identity.imei)
        if group.config:
            configured = personality(group.profile).configured(options, identity.imei, group.config)
            for name, text in configured.items():
                files[name].write(text)
        flash = MemoryStorage()
        document = flash.load()
        side.provision(document)
        flash.save(document)
        log = UnitLog(config.name, capacity=LOG_RECORDS)
        log.threshold = LogLevel.WARN
        unit = Unit(
            self.clock.env,
            config,
            epoch_s=self.clock.epoch_s,
            flash=flash,
            log=log,
            network=side.network,
            files=files,
        )
        self.add(unit, group)

    def broker_stop(self) -> None:
        for side in self.virtual.values():
            side.outage()

    def broker_start(self) -> None:
        for side in self.virtual.values():
            side.restore()


def _lines(text: str) -> Iterator[str]:
    """The lines of what a unit wrote (two frames in one write are two lines)."""
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line:
            yield line
