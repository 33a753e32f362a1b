"""What the rest of vdtu knows of a firmware personality: one interface, one registry entry.

A personality is a package under ``vdtu/firmware/`` (``xgc/``, ``quec/``) whose
``personality.py`` exposes a ``Personality``: its name, the options type its units
take, the modem model it runs on, a builder that makes its firmware for one unit, and
the ``HostCodec`` a simulated host MCU uses to talk to it. What the builder makes is a
``Firmware``: start and stop, one ``UnitState``, whether it reaches its cloud,
``Counters`` with one meaning each, and a snapshot of its own state.
``vdtu.firmware.registry`` lists the personalities; the unit, the fleet, the load
runner and everything above them go through it and never name a personality's classes
(an import-linter contract holds them to it). DEVELOPERS.md says how to add one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol, TypeGuard, TypeVar, cast

from vdtu.clock.domain import DomainEnvironment
from vdtu.clock.rng import RandomSource
from vdtu.firmware.hardware import Hardware
from vdtu.log import UnitLog
from vdtu.net.conditions import LinkConditions, PlatformConditions
from vdtu.storage import Storage, TextFile


class Phase(StrEnum):
    """Where a unit is in its life, whatever its personality."""

    OFF = "off"
    """Not running (no power, or stopped)."""
    BOOTING = "booting"
    """Powered, not yet serving its host or looking for its cloud."""
    NO_CLOUD = "no-cloud"
    """Serving its host but not trying to reach a cloud: no project or config to reach it
    with, or its cloud refused it for good."""
    CONNECTING = "connecting"
    """Trying to reach its cloud (waiting for the network, fetching a login, connecting,
    or waiting to retry)."""
    CONNECTED = "connected"
    """Connected to its cloud (every channel, for a personality with several)."""


@dataclass(frozen=True, slots=True)
class UnitState:
    """A unit's state: the common ``phase`` and the personality's own name for it."""

    phase: Phase
    detail: str
    """As the personality names it (XGC: ``mqtt-connected``; QuecPython: ``running``)."""

    @staticmethod
    @lru_cache(maxsize=256)
    def of(phase: Phase, detail: str) -> UnitState:
        """The one ``UnitState(phase, detail)`` shared by every unit in it: a fleet's scans
        ask every unit for its state every few seconds, and a personality has a few dozen
        (a cache hit takes 0.1 µs, building a frozen dataclass 0.6 µs)."""
        return UnitState(phase, detail)


@dataclass(frozen=True, slots=True)
class Counters:
    """A unit's cloud connection counters since it was built; one meaning each, for every
    personality (a personality with several channels adds its channels up)."""

    connections: int = 0
    """Connections to the cloud that came up."""
    connect_failures: int = 0
    """Attempts that did not come up: a login refused or unanswered, a connect refused or
    timed out."""
    reconnects: int = 0
    """Connections that came up after an earlier connection had been lost."""
    links_lost: int = 0
    """Connections that went down without the unit closing them."""


NO_COUNTERS = Counters()
"""The counters of a unit that has not tried yet (one shared object)."""


class Firmware(Protocol):
    """One unit's firmware, as the unit and the fleet drive and read it."""

    on_reboot_request: tuple[Callable[[], None], ...]
    """Called when the firmware asks for a power cycle (a reboot command)."""

    def start(self) -> None:
        """Power-on: read the flash and boot."""

    def stop(self) -> None:
        """Power-off: every process ends, nothing more is heard or said."""

    @property
    def unit_state(self) -> UnitState:
        """The unit's state."""

    @property
    def cloud_connected(self) -> bool:
        """Whether the unit is connected to its cloud now."""

    def counters(self) -> Counters:
        """The cloud connection counters."""

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the personality's own state (its stats included)."""

    @property
    def link_conditions(self) -> LinkConditions | None:
        """The conditions of the unit's IP link to its cloud (None: a healthy link)."""

    def set_link_conditions(self, conditions: LinkConditions | None) -> None:
        """Put the unit's IP link under ``conditions`` (None clears them), at once.

        They apply to every connection the unit has now (MQTT, TCP, UDP, HTTP) and to
        every one it makes later, until changed; they outlast a reboot (they are the
        network's, see ``vdtu.net.conditions``). Setting them on a unit that is off is
        allowed: they apply from its next connection.
        """

    def reset_link(self) -> None:
        """Reset every connection the unit has now, as an RST from the network would
        (one-shot): the unit sees its link lost and reconnects by its firmware's rules;
        the broker sees the connection end and publishes the unit's will."""

    @property
    def platform_conditions(self) -> PlatformConditions | None:
        """What the cloud platform does with the unit's credential requests (None: answers)."""

    def set_platform_conditions(self, conditions: PlatformConditions | None) -> None:
        """Have the platform refuse (HTTP 503) or delay the unit's credential requests from
        now on (None clears it); a request already in flight is answered as before. Like
        the link's, these outlast a reboot."""


class HostCodec(Protocol):
    """What a simulated host MCU needs to talk to a unit of one personality."""

    def frame_uplink(self, text: str) -> bytes:
        """The bytes a host writes for the unit to send ``text`` (a JSON object) to its cloud."""

    def answers(self, data: bytes) -> list[bytes]:
        """Given bytes the unit wrote to the host, the bytes a host writes back: a cloud
        message carrying the probe key is sent straight back up (the command probe); with
        ``jobs``, the cloud's configuration and firmware jobs are carried out and reported
        as the personality's host does it."""

    def frame_poll(self, address: int, function: int, register: int, value: int) -> bytes | None:
        """What a host writes to have the unit send one Modbus request on its RS-485 bus
        (None: this personality's DTU polls its slaves by itself)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildContext:
    """Everything a personality's builder gets for one unit."""

    env: DomainEnvironment
    rng: RandomSource
    """The firmware's own random source."""
    hardware: Hardware
    flash: Storage
    files: Mapping[str, TextFile]
    """Named files of the flash the personality keeps as text (``dtu_config.json``);
    a file the personality needs and does not find here lives in memory."""
    log: UnitLog
    options: object | None
    """The personality's options (None: its defaults)."""
    firmware_version: str
    network: object | None
    """What the unit reaches: the personality's own network interface (None: nothing)."""


N = TypeVar("N")


def reaches(network: object, protocol: Callable[..., N]) -> TypeGuard[N]:
    """``isinstance(network, protocol)`` for a runtime-checkable protocol of methods (a
    personality's network), in 0.1 µs where the protocol's own check takes 4 for every unit
    built: the class is checked first (``issubclass``, which the ABC machinery caches per
    class, and which holds exactly when the class has the methods), the instance only when
    the class has not."""
    kind = cast("type[object]", protocol)  # a protocol class: mypy takes none as a type[N]
    return issubclass(type(network), kind) or isinstance(network, kind)


class Personality(Protocol):
    """One firmware personality's registry entry."""

    @property
    def name(self) -> str:
        """How users name it (``--profile``)."""

    @property
    def model(self) -> str:
        """The modem model its units report."""

    @property
    def options_type(self) -> type:
        """The type of its options."""

    @property
    def load_test_options(self) -> object | None:
        """The options its units run with in a load test (None: its defaults)."""

    def build(self, context: BuildContext) -> Firmware:
        """Make the firmware of one unit."""

    def host_codec(self, probe_key: str, *, jobs: bool = False) -> HostCodec:
        """A codec for one simulated host (it may keep state: one per host); ``jobs``: the
        host carries out the cloud's configuration and firmware jobs."""

    def configured(
        self, options: object | None, imei: str, changes: Mapping[str, Any]
    ) -> dict[str, str]:
        """The named flash files a unit with these options starts with when ``changes`` are
        made to its configuration (name -> text; a QuecPython unit's dtu_config.json).

        Raises:
            ValueError: a change the configuration refuses (the message names the field), or
                a personality that keeps no configuration file.
        """
