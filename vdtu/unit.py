"""One DTU: a firmware personality wired to its hardware models on one SimPy environment.

A ``Unit`` owns its serial lines (``uart``, ``rs232``, ``rs485``), the modem
with its SIM and signal, GPIO, battery, ADC, sensor, the Modbus slaves on its
RS-485 bus, its flash and its log, and the firmware that drives them: its
personality (``Profile``), the XGC DTU (docs/spec/xgc.md) or the QuecPython
DTU (docs/spec/quec.md, which also keeps ``dtu_config.json`` in its flash). Every
model gets its own random source (a ``SplitMix64``, under 100 bytes) seeded from
the fleet seed, the unit id and the model's name, so a run is repeatable and
adding a model does not shift the random draws of the others.

The methods under "control" are the unit's control surface (set an input, pull
the SIM, weaken the signal, reboot, ...). They act at the current sim time; in
real time the caller goes through ``Clock.inject`` (see ``vdtu.fleet``).
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, Concatenate, ParamSpec, TypeVar

import simpy

from vdtu.clock.domain import DomainEnvironment, FaultDomain
from vdtu.clock.rng import SplitMix64
from vdtu.errors import ConfigError
from vdtu.faults.catalogue import ActiveFault
from vdtu.firmware.hardware import Hardware
from vdtu.firmware.personality import BuildContext, Firmware
from vdtu.firmware.registry import DEFAULT as DEFAULT_PERSONALITY
from vdtu.firmware.registry import personality, personality_of
from vdtu.identity import Identity
from vdtu.io.adc import Adc
from vdtu.io.gpio import Gpio
from vdtu.io.modbus_config import DEMO_SLAVE, ModbusSlaveConfig
from vdtu.io.modbus_slave import ModbusSlave
from vdtu.io.power import Battery, brown_out
from vdtu.io.sensor import TempHumiditySensor
from vdtu.log import LogLevel, UnitLog
from vdtu.modem import Modem, SimCard, SimSlot
from vdtu.modem.signal import Signal
from vdtu.storage import MemoryStorage, Storage, TextFile
from vdtu.uart.line import SerialLine

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_BAUDS: Mapping[str, int] = MappingProxyType(
    {"uart": 115200, "rs232": 115200, "rs485": 9600}
)
"""The XGC defaults (docs/spec/xgc.md#1.2): UART and RS-232 at 115200, RS-485 at 9600."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitConfig:
    """Everything that makes one unit what it is (its flash is separate)."""

    unit_id: int = 0
    seed: int = 0
    """The fleet seed; with ``unit_id`` it seeds every random source of the unit."""
    identity: Identity
    profile: str = DEFAULT_PERSONALITY
    """The firmware personality (``vdtu.firmware.registry``): ``xgc`` or ``quec``."""
    options: object | None = None
    """The personality's options (``XgcOptions``, ``QuecOptions``); None: its defaults."""
    model: str | None = None
    """The modem model the unit reports; None: the personality's."""
    firmware_version: str = "1.0.0"
    outputs: int = 8
    inputs: int = 8
    bauds: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_BAUDS))
    pacing: bool = True
    """Bytes take wire time at the port's baud rate (False: they arrive at once)."""
    slaves: tuple[ModbusSlaveConfig, ...] = (DEMO_SLAVE,)
    sim_inserted: bool = True
    sim_pin: str | None = None
    rssi: int = 26
    """The signal's mean (0..31); it drifts around it."""
    rssi_spread: int = 4
    """How far the signal drifts from its mean (0: it holds still)."""
    location: tuple[float, float] | None = None
    """(longitude, latitude) of the serving cell; drawn near Shenzhen when None."""
    watchdog_s: float = 5.0
    """How long a unit whose code failed stays dark before its watchdog power-cycles it."""
    tags: tuple[str, ...] = ()
    """Labels a selector can pick the unit by (``tag=north``): letters, digits, ``-_.:``."""

    def __post_init__(self) -> None:
        personality(self.profile)  # a ConfigError names the known ones
        if self.options is not None and personality_of(self.options).name != self.profile:
            raise ConfigError(
                f"{type(self.options).__name__} are not the options of a {self.profile} unit"
            )
        unknown = set(self.bauds) - set(DEFAULT_BAUDS)
        if unknown:
            raise ValueError(
                f"bauds has unknown ports {sorted(unknown)}; allowed: uart, rs232, rs485"
            )
        for tag in self.tags:
            if not (0 < len(tag) <= 64 and all(c.isalnum() or c in "-_.:" for c in tag)):
                raise ValueError(f"tag {tag!r} must be 1..64 letters, digits or '-_.:' characters")
        if not self.watchdog_s > 0:
            raise ValueError(f"watchdog_s must be > 0, not {self.watchdog_s}")
        if not 0 <= self.outputs <= 8 or not 0 <= self.inputs <= 8:
            raise ValueError(
                f"outputs and inputs must be 0..8, not {self.outputs} and {self.inputs}"
            )

    @property
    def name(self) -> str:
        """``dtu<id>``."""
        return f"dtu{self.unit_id}"


def _contained(method: Callable[Concatenate[Unit, P], R]) -> Callable[Concatenate[Unit, P], R]:
    """Run a control call inside the unit's failure domain (what it schedules is the unit's)."""

    @functools.wraps(method)
    def run(unit: Unit, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with unit.env.entered(unit.domain):
            return method(unit, *args, **kwargs)

    return run


_NO_FILES: Mapping[str, TextFile] = MappingProxyType({})
"""The files of a unit given none (one read-only table for all of them)."""

_SITES_SHOWN: set[str] = set()
"""Code sites whose fault traceback this process has printed (each is printed once)."""
_MAX_SITES_SHOWN = 64


def _describe_fault(exc: BaseException) -> str:
    """One line for a fault; the full traceback the first time its code site is seen."""
    frames = traceback.extract_tb(exc.__traceback__)
    site = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    line = f"{type(exc).__name__}: {exc} (at {site})"
    if site in _SITES_SHOWN or len(_SITES_SHOWN) >= _MAX_SITES_SHOWN:
        return line
    _SITES_SHOWN.add(site)
    trace = "".join(traceback.format_exception(exc)).rstrip()
    return f"{line}\n{trace}"


class Unit:
    """One simulated DTU.

    Args:
        env: the SimPy environment of the whole fleet.
        config: what the unit is.
        epoch_s: Unix time at sim time 0 (the network's clock).
        flash: its persistent storage (in memory when not given).
        log: its log (a fresh one when not given).
        network: what the unit reaches, as its personality expects it (an XGC unit: an
            ``XgcCloud``; a QuecPython unit: a ``QuecNet``); None: nothing.
        files: named text files of its flash (a QuecPython unit's ``dtu_config.json``);
            a file not given lives in memory.
    """

    __slots__ = (
        "active_faults",
        "adc",
        "battery",
        "config",
        "dipping",
        "domain",
        "env",
        "faults",
        "files",
        "firmware",
        "flash",
        "gpio",
        "halted",
        "lines",
        "log",
        "modem",
        "personality",
        "powered",
        "resetting",
        "sensor",
        "signal",
        "sim",
        "sim_card",
        "slaves",
    )

    def __init__(
        self,
        env: DomainEnvironment,
        config: UnitConfig,
        *,
        epoch_s: float,
        flash: Storage | None = None,
        log: UnitLog | None = None,
        network: object | None = None,
        files: Mapping[str, TextFile] | None = None,
    ) -> None:
        self.env = env
        self.config = config
        self.personality = personality(config.profile)
        self.flash = flash if flash is not None else MemoryStorage()
        self.files: Mapping[str, TextFile] = dict(files) if files else _NO_FILES
        """Its flash's named text files, by name (a QuecPython unit's ``dtu_config.json``)."""
        name = config.name  # one string for the log and the domain: each call makes a new one
        self.log = log if log is not None else UnitLog(name)
        self.powered = False
        self.domain = FaultDomain(name, self._watchdog)
        self.faults = 0
        """Faults inside the unit (each one a watchdog reset)."""
        self.active_faults: dict[str, ActiveFault] | None = None
        """The catalogue faults in force (``vdtu.faults.active``); None while there are none."""
        self.halted = False
        """True when a reset itself failed: the unit stays off until ``power_on``."""
        self.resetting = False
        """True while the watchdog holds the unit off after a fault."""
        self.dipping = False
        """True during a brown-out's dip: the supply comes back at its end."""
        with env.entered(self.domain):
            bauds = {**DEFAULT_BAUDS, **config.bauds}
            self.lines = {
                port: SerialLine(
                    env,
                    name=port,
                    baud=bauds[port],
                    half_duplex=port == "rs485",
                    pacing=config.pacing,
                )
                for port in DEFAULT_BAUDS
            }
            identity = config.identity
            self.sim_card = SimCard(
                iccid=identity.iccid, imsi=identity.imsi, phone=identity.phone, pin=config.sim_pin
            )
            self.sim = SimSlot(env, card=self.sim_card if config.sim_inserted else None)
            self.signal = Signal(
                env, self._rng("signal"), base_rssi=config.rssi, spread=config.rssi_spread
            )
            self.modem = Modem(
                env,
                self._rng("modem"),
                imei=identity.imei,
                model=config.model or self.personality.model,
                firmware_version=config.firmware_version,
                sim=self.sim,
                signal=self.signal,
                epoch_s=epoch_s,
                location=config.location,
            )
            self.gpio = Gpio(env, outputs=config.outputs, inputs=config.inputs)
            self.battery = Battery(env, self._rng("battery"))
            self.battery.on_cutoff += (self._undervoltage,)
            self.battery.on_recover += (self.power_on,)
            self.adc = Adc(env, self._rng("adc"))
            self.sensor = TempHumiditySensor(env, self._rng("sensor"))
            self.slaves = [
                ModbusSlave(env, self._rng(f"slave{slave.address}"), self.lines["rs485"], slave)
                for slave in config.slaves
            ]
            hardware = Hardware(
                modem=self.modem,
                sim=self.sim,
                gpio=self.gpio,
                battery=self.battery,
                adc=self.adc,
                sensor=self.sensor,
                lines=self.lines,
            )
            self.firmware: Firmware = self.personality.build(
                BuildContext(
                    env=env,
                    rng=self._rng("firmware"),
                    hardware=hardware,
                    flash=self.flash,
                    files=self.files,
                    log=self.log,
                    options=config.options,
                    firmware_version=config.firmware_version,
                    network=network,
                )
            )
            self.firmware.on_reboot_request += (self.reboot,)

    def _seed_text(self, part: str) -> str:
        return f"{self.config.seed}:{self.config.unit_id}:{part}"

    def _rng(self, part: str) -> SplitMix64:
        return SplitMix64(self._seed_text(part))

    def random_source(self, part: str) -> SplitMix64:
        """A random source of the unit's own for ``part`` (a fault's draws): the same in every
        run of the same fleet seed, and independent of every other part's."""
        return self._rng(part)

    @property
    def name(self) -> str:
        """``dtu<id>``."""
        return self.config.name

    def host_rng(self) -> SplitMix64:
        """A random source for a simulated host wired to this unit (its own stream)."""
        return self._rng("host")

    @property
    def imei(self) -> str:
        """The unit's IMEI."""
        return self.config.identity.imei

    # -- what a selector reads (``vdtu.control.selector.UnitFacts``) -------------------------

    @property
    def unit_id(self) -> int:
        return self.config.unit_id

    @property
    def profile(self) -> str:
        return self.config.profile

    @property
    def states(self) -> tuple[str, str]:
        """Its phase and its personality's name for its state (``off`` while unpowered: a
        stopped firmware keeps the name of the state it was in)."""
        state = self.firmware.unit_state
        if not self.powered:
            return (state.phase.value, "off")
        return (state.phase.value, state.detail)

    @property
    def tags(self) -> tuple[str, ...]:
        return self.config.tags

    # -- the watchdog ---------------------------------------------------------------------------

    def _watchdog(self, exc: BaseException) -> None:
        """A fault inside the unit: it goes dark and ``watchdog_s`` later it is power-cycled.

        This is what the device's hardware watchdog does when a task stops feeding it.
        The first fault at a code site in this process is logged with its traceback,
        later ones in one line. If switching the unit off fails too, it stays halted.
        """
        self.faults += 1
        delay = self.config.watchdog_s
        self.log.write(
            float(self.env.now),
            LogLevel.FATAL,
            "watchdog",
            f"fault {self.faults}: {_describe_fault(exc)}; unit reset in {delay:g} s",
        )
        try:
            self.power_off()
        except Exception as second:
            self.halted = True
            self.powered = False
            self.log.write(
                float(self.env.now),
                LogLevel.FATAL,
                "watchdog",
                f"reset failed ({_describe_fault(second)}): unit halted until powered on",
            )
            return
        self.resetting = True
        self.env.timeout(delay).callbacks.append(self._restart)

    def _restart(self, _event: simpy.Event) -> None:
        if self.resetting:
            self.power_on()

    # -- control ------------------------------------------------------------------------------

    @_contained
    def power_on(self) -> None:
        """Apply power: the modem boots and the firmware starts (not while the battery is
        below its cut-off with no external power: there is nothing to run on)."""
        self.resetting = False
        self.halted = False
        if self.powered:
            return
        if self.battery.cut_off:
            self.log.write(
                float(self.env.now), LogLevel.WARN, "power", "no power: the battery is cut off"
            )
            return
        self.powered = True
        self.modem.power_on()
        self.firmware.start()

    @_contained
    def power_off(self) -> None:
        """Remove power: the firmware stops, relays drop, the modem goes dark."""
        self.resetting = False
        self.dipping = False
        if not self.powered:
            return
        self.powered = False
        self.firmware.stop()
        self.modem.power_off()
        self.gpio.reset()
        for slave in self.slaves:
            slave.reset()

    def _undervoltage(self) -> None:
        """The battery reached its cut-off with no external power: the unit goes dark."""
        self.log.write(float(self.env.now), LogLevel.WARN, "power", "battery cut-off: unit off")
        self.power_off()

    @_contained
    def brown_out(self, ms: float) -> None:
        """A supply dip of ``ms``: the unit resets and boots again (its flash is kept). A power
        cut during the dip keeps it off."""

        def restore() -> None:
            if self.dipping:
                self.dipping = False
                self.power_on()

        brown_out(self.env, ms=ms, power_off=self.power_off, power_on=restore)
        self.dipping = True

    @_contained
    def reboot(self) -> None:
        """A power cycle (also what DTU_REBOOT does): the boot sequence runs again."""
        self.power_off()
        self.power_on()

    @_contained
    def reflash(self) -> None:
        """Re-flash the firmware: the flash (saved keys, project info, settings) is erased."""
        self.power_off()
        self.flash.erase()
        self.power_on()

    @_contained
    def set_input(self, index: int, level: int) -> None:
        """Drive opto input ``in<index>`` to ``level`` (0 or 1)."""
        self.gpio.set_input(index, level)

    @_contained
    def set_signal(self, rssi: int) -> None:
        """Move the signal's mean to ``rssi`` (0..31)."""
        self.signal.set_level(rssi)

    @_contained
    def set_coverage(self, covered: bool) -> None:
        """Lose (False) or regain (True) cellular coverage."""
        self.signal.set_coverage(covered)

    @_contained
    def pull_sim(self) -> None:
        """Take the SIM card out."""
        self.sim.remove()

    @_contained
    def insert_sim(self) -> None:
        """Put the unit's SIM card back."""
        self.sim.insert(self.sim_card)

    @_contained
    def set_vbus(self, present: bool) -> None:
        """Connect or disconnect external power (the battery charges while it is present)."""
        self.battery.set_vbus(present)

    @_contained
    def set_slave_online(self, address: int, online: bool) -> None:
        """Make the Modbus slave at ``address`` answer (True) or go silent (False)."""
        self.slave(address).set_online(online)

    def slave(self, address: int) -> ModbusSlave:
        """The Modbus slave at ``address`` on the unit's bus.

        Raises:
            ValueError: there is none (the message lists the addresses present).
        """
        for slave in self.slaves:
            if slave.config.address == address:
                return slave
        present = ", ".join(str(s.config.address) for s in self.slaves) or "none"
        raise ValueError(f"no Modbus slave at address {address}; present: {present}")

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the whole unit; ``firmware`` is the personality's own part."""
        fw = self.firmware
        phase, state = self.states
        link, platform = fw.link_conditions, fw.platform_conditions
        return {
            "unit": self.config.unit_id,
            "name": self.name,
            "profile": self.config.profile,
            "imei": self.imei,
            "iccid": self.config.identity.iccid,
            "powered": self.powered,
            "faults": self.faults,
            "halted": self.halted,
            "active_faults": [active.view() for active in (self.active_faults or {}).values()],
            "phase": phase,
            "state": state,
            "cloud_connected": fw.cloud_connected,
            "counters": asdict(fw.counters()),
            "firmware": fw.snapshot(),
            "modem": self.modem.snapshot(),
            "gpio": asdict(self.gpio.snapshot()),
            "battery": asdict(self.battery.snapshot()),
            "adc": asdict(self.adc.snapshot()),
            "sensor": asdict(self.sensor.snapshot()),
            "slaves": [asdict(slave.snapshot()) for slave in self.slaves],
            "lines": {
                name: {
                    "baud": line.baud,
                    "collisions": line.collisions,
                    "faults": None if line.faults is None else line.faults.snapshot(),
                }
                for name, line in self.lines.items()
            },
            "link": None if link is None else link.snapshot(),
            "platform": None if platform is None else asdict(platform),
            "flash": self.flash.load(),
            "files": {name: file.read() for name, file in self.files.items()},
        }
