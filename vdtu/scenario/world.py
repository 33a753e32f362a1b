"""A scenario's world in virtual time: its units, their simulated hosts and clouds, and what
happened, written down.

``World`` builds the unit groups of a scenario on one ``VirtualClock`` (ids in file
order, identities from the seed, each group's name as a tag), wires each unit to its
personality's virtual cloud (``vdtu.links.virtual``), puts a simulated host on the
units whose group has one (``vdtu.load.hosts.Host``: uplinks every period, counted by
a ``DeliveryTracker`` as they are handed over and as the cloud receives them), and
observes every unit's events. Each event becomes one line of the transcript
(``<sim time> dtu<N> <kind> <data as sorted JSON>``), hashed as it is written, so two
runs of the same file and seed can be compared by one SHA-256; the lines are also kept
in a file when one is given. Listeners on lines toward the host, uplinks and cloud
link changes serve the waits and expectations of ``vdtu.scenario.run``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, Protocol

from vdtu.clock import Clock, VirtualClock
from vdtu.clock.rng import SplitMix64
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
RECENT = 4096
"""Lines and uplinks a world remembers for a wait that starts after them."""

LineListener = Callable[[Unit, str], None]
"""Called with a unit and one line it wrote toward its host (or one uplink's payload)."""
MessageListener = Callable[[Unit, str, bytes], None]
"""Called with a unit, the topic and the payload of each message the cloud got from it."""
CloudListener = Callable[[Unit, bool, float], None]
"""Called with a unit, whether its cloud link came up (or went down), and the sim time."""


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
"""One encoder for every line (``json.dumps`` with options builds one per call)."""


class Transcript:
    """The run's events as text lines: hashed, counted, and written to ``out`` if given."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self._hash = hashlib.sha256()
        self.out = out
        self.lines = 0

    def close(self) -> None:
        """Write no more lines (the file is closed; a unit stopped later writes nothing)."""
        self.out = None

    def write(self, at: float, who: str, kind: str, data: dict[str, Any]) -> None:
        line = f"{at:.6f} {who} {kind} {_ENCODE(data)}\n"
        self._hash.update(line.encode())
        self.lines += 1
        if self.out is not None:
            self.out.write(line)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


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
        self, scenario: Scenario, *, seed: int, transcript: Transcript, clock: Clock
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.transcript = transcript
        self.clock = clock
        self.sides: dict[str, CloudSide] = {}
        self.units: list[Unit] = []
        self.groups: list[UnitGroup] = []
        self.hosts: dict[int, Host] = {}
        self.tracker = DeliveryTracker()
        self.by_imei: dict[str, Unit] = {}
        self.on_line: list[LineListener] = []
        self.on_uplink: list[LineListener] = []
        self.on_message: list[MessageListener] = []
        self.on_cloud: list[CloudListener] = []
        waits = [step.wait for step in scenario.steps if step.wait is not None]
        self.lines_wanted = any(w.serial for w in waits) or any(e.serial for e in scenario.expect)
        """Whether anything reads the lines units write toward their hosts."""
        self.uplinks_wanted = any(w.uplink for w in waits)
        """Whether anything reads the uplinks' text."""
        self.recent: deque[tuple[float, int, str, str]] = deque(maxlen=RECENT)
        """The latest lines toward hosts and uplinks: (sim time, unit id, "line" or
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

    def add(self, unit: Unit, group: UnitGroup) -> None:
        """Take a unit the subclass built (the next id): observe it, give it its host."""
        unit.log.observer = self._event
        self.units.append(unit)
        self.groups.append(group)
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
        for unit, group in zip(self.units, self.groups, strict=True):
            if group.powered:
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
        unit = self.units[int(name.removeprefix("dtu"))]
        if kind == "to-host" and self.lines_wanted:
            for line in _lines(str(data.get("text", ""))):
                self.recent.append((at, unit.unit_id, "line", line))
                for listener in self.on_line:
                    listener(unit, line)
        elif kind == "cloud":
            for cloud_listener in self.on_cloud:
                cloud_listener(unit, bool(data.get("up")), at)

    def message(self, imei: str, topic: str, payload: bytes) -> None:
        """A message the cloud received from unit ``imei``, in sim time."""
        unit = self.by_imei.get(imei)
        if unit is None:
            return
        for message_listener in self.on_message:
            message_listener(unit, topic, payload)
        if not self.sides[unit.profile].is_uplink(topic):
            return
        uplink = find_uplink(payload)
        if uplink is not None and uplink.unit in self.hosts:
            self.tracker.delivered(uplink, self.clock.unix_time() * 1000)
        if not self.uplinks_wanted:
            return
        text = payload.decode("utf-8", "backslashreplace")
        self.recent.append((self.clock.now, unit.unit_id, "uplink", text))
        for listener in self.on_uplink:
            listener(unit, text)

    def note(self, kind: str, data: dict[str, Any]) -> None:
        """A line of the scenario's own (a step, a wait's end) in the transcript."""
        self.transcript.write(self.clock.now, "scenario", kind, data)


class VirtualWorld(World):
    """A scenario's world in virtual time: simulated clouds, no PTYs, as fast as it goes."""

    def __init__(self, scenario: Scenario, *, seed: int, transcript: Transcript) -> None:
        super().__init__(scenario, seed=seed, transcript=transcript, clock=VirtualClock())
        env = self.clock.env
        profiles = [group.profile for group in scenario.units]
        self.virtual = virtual_sides(env, seed, self.clock.epoch_s, profiles)
        self.sides = dict(self.virtual)
        for side in self.virtual.values():
            side.on_message.append(self.message)
        for group in scenario.units:
            for _ in range(group.count):
                self._build(group, len(self.units))

    def _build(self, group: UnitGroup, unit_id: int) -> None:
        side = self.virtual[group.profile]
        identity = Identity.for_unit(self.seed, unit_id)
        config = UnitConfig(
            unit_id=unit_id,
            seed=self.seed,
            identity=identity,
            profile=group.profile,
            options=side.unit_options(group.firmware_options()),
            pacing=False,
            **self.unit_settings(group),
        )
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
            files=side.unit_files(identity.imei),
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
