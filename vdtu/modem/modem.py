"""The cellular module of a DTU: boot, network registration, time, SMS, and its URCs.

Timeline of one power-on (every duration drawn from the unit's rng)::

    power_on()                 boot (boot_s)            search (search_s)
    ──┬───────────────────────────────┬────────────────────────┬──────────▶
      off / NetState INIT             RDY, +CFUN: 1, +CPIN: …   +CREG: 1 (or 5, or 3)
      rssi 99, stat 0                 CFUN=1, stat 2            NITZ time, +QIND: SMS DONE

A search starts whenever the radio is on (CFUN=1) and the SIM is ready, and the
modem is neither registered nor already searching; it ends in HOME or ROAMING
(``roaming``), or DENIED (``deny_registration``). Without coverage the stat is
2 (searching) but the search itself waits for coverage to come back.
What moves the modem off the network happens at once:

* SIM removed or locked: stat 0 and ``+CPIN: NOT READY`` / ``+CPIN: SIM PIN``;
  a SIM that becomes ready again (inserted, unlocked) starts a new search.
* coverage lost: stat 2 (searching, ``NetMode`` 0); coverage back: a new search.
* ``set_cfun(0)`` or ``set_cfun(4)``: stat 0, rssi 99; ``set_cfun(1)``: a new search.

The stat itself is kept by a ``Registration`` machine (``registration.py``);
this class only decides which input to feed it and when. A search in progress
is a SimPy process, interrupted with a ``StopCause`` when something makes it
moot. There are no periodic processes: an idle registered modem schedules
nothing, so thousands of modems share one environment cheaply.

Power: ``power_on`` boots; ``power_off`` drops everything at once (stat 0,
network time forgotten, the SIM powered down: a card with a PIN will ask for it
again); ``reset`` is a power cycle. Settings made by AT commands (``AT+CREG=n``)
go back to their defaults at power-on.

Listeners run inside sim time, after the state they report has changed:
``on_registration_change(stat)`` on every change of the ``+CREG`` stat (also
while powering off), ``on_urc(line)`` for every unsolicited result code the
module prints (only while it is booted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import simpy

from vdtu.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from vdtu.modem.at import ACCESS_TECHNOLOGY, CFUN_MODES, CREG_MODES, cpin_status, creg_urc
from vdtu.modem.registration import (
    NetMode,
    NetState,
    RegInput,
    Registration,
    RegStat,
    SimState,
    net_state,
)
from vdtu.modem.signal import RSSI_UNKNOWN, Signal
from vdtu.modem.sim import SimSlot
from vdtu.modem.sms import SmsOutbox, SmsRecord, check_phone, check_text, sms_parts

if TYPE_CHECKING:
    from vdtu.clock.rng import RandomSource

DEFAULT_CENTRE = (113.3160324, 22.5571994)
"""(longitude, latitude) in Shenzhen: the ``GET_LBS`` example of docs/spec/xgc.md#5.11."""
LOCATION_RADIUS_KM = 20.0
"""Cells are drawn within this distance of ``DEFAULT_CENTRE``."""
KM_PER_DEGREE = 111.32
"""Length of one degree of latitude (and of longitude at the equator)."""
SMS_SEND_S = (1.0, 3.0)
"""Range of the time the network takes to accept a short message."""


class StopCause(StrEnum):
    """Why a boot or a search process was interrupted."""

    POWER_OFF = "POWER_OFF"
    SIM_LOST = "SIM_LOST"
    COVERAGE_LOST = "COVERAGE_LOST"
    RADIO_OFF = "RADIO_OFF"


def _check_range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if not 0 <= low <= high:
        raise ConfigError(f"{name} must be (low, high) with 0 <= low <= high, not {value!r}")
    return (float(low), float(high))


def _draw_location(rng: RandomSource) -> tuple[float, float]:
    """A point drawn uniformly in the disc of ``LOCATION_RADIUS_KM`` around the centre."""
    longitude, latitude = DEFAULT_CENTRE
    distance_km = LOCATION_RADIUS_KM * math.sqrt(rng.random())
    bearing = rng.uniform(0.0, 2.0 * math.pi)
    north_km = distance_km * math.cos(bearing)
    east_km = distance_km * math.sin(bearing)
    return (
        round(longitude + east_km / (KM_PER_DEGREE * math.cos(math.radians(latitude))), 7),
        round(latitude + north_km / KM_PER_DEGREE, 7),
    )


class Modem:
    """A Quectel-style LTE module with its SIM slot and the radio signal it sees.

    Args:
        env: the SimPy environment.
        rng: the unit's random generator.
        imei: the module's IMEI (15 digits).
        model: the model name (``AT+CGMM``).
        firmware_version: the firmware revision (``AT+CGMR``).
        sim: the SIM slot (the modem subscribes to its changes).
        signal: the signal at the antenna (the modem subscribes to coverage changes).
        epoch_s: Unix time at sim time 0, what the network's clock says.
        rat: the access technology of the serving cell (not ``UNREGISTERED``).
        roaming: a successful search registers as roaming (stat 5), not home (1).
        deny_registration: every search ends in "registration denied" (stat 3).
        location: (longitude, latitude) of the serving cell; None draws one
            within 20 km of the Shenzhen example of docs/spec/xgc.md#5.11.
        boot_s: range of the boot time (drawn at each power-on).
        search_s: range of the network search time (drawn at each search).
        operator: the operator's name (``AT+COPS?``).

    Raises:
        ConfigError: an argument is out of range; the message names it.
    """

    __slots__ = (
        "_boot",
        "_cfun",
        "_creg_mode",
        "_network_time_known",
        "_powered_at",
        "_ready",
        "_search",
        "_sms_ready_told",
        "boot_s",
        "ci",
        "deny_registration",
        "env",
        "epoch_s",
        "firmware_version",
        "imei",
        "lac",
        "model",
        "on_registration_change",
        "on_urc",
        "operator",
        "rat",
        "registration",
        "rng",
        "search_s",
        "serving_location",
        "signal",
        "sim",
        "sms_outbox",
    )

    def __init__(
        self,
        env: simpy.Environment,
        rng: RandomSource,
        *,
        imei: str,
        model: str = "XGC-RG88C",
        firmware_version: str = "1.0.0",
        sim: SimSlot,
        signal: Signal,
        epoch_s: float,
        rat: NetMode = NetMode.LTE,
        roaming: bool = False,
        deny_registration: bool = False,
        location: tuple[float, float] | None = None,
        boot_s: tuple[float, float] = (2.0, 4.0),
        search_s: tuple[float, float] = (2.0, 8.0),
        operator: str = "CHINA MOBILE",
    ) -> None:
        if not (len(imei) == 15 and imei.isdigit() and imei.isascii()):
            raise ConfigError(f"imei must be 15 digits, not {imei!r}")
        if rat not in ACCESS_TECHNOLOGY:
            raise ConfigError(f"rat must be one of NetMode 1..5, not {rat!r}")
        if location is not None:
            longitude, latitude = location
            if not (-180.0 <= longitude <= 180.0 and -90.0 <= latitude <= 90.0):
                raise ConfigError(
                    f"location must be (longitude -180..180, latitude -90..90), not {location!r}"
                )
        self.env = env
        self.rng = rng
        self.imei = imei
        self.model = model
        self.firmware_version = firmware_version
        self.operator = operator
        self.sim = sim
        self.signal = signal
        self.epoch_s = float(epoch_s)
        self.rat = NetMode(rat)
        self.deny_registration = deny_registration
        """Whether searches end in "registration denied"; see ``set_deny_registration``."""
        self.boot_s = _check_range("boot_s", boot_s)
        self.search_s = _check_range("search_s", search_s)
        self.registration = Registration(roaming=roaming)
        """The ``+CREG`` stat machine."""
        self.serving_location = _draw_location(rng) if location is None else location
        """(longitude, latitude) of the serving cell, reported while registered."""
        self.lac = rng.randrange(0x1000, 0xFFFF)
        """Location (or tracking) area code of the serving cell."""
        two_g = self.rat in (NetMode.GSM, NetMode.EDGE)
        self.ci = rng.randrange(0x1000, 0xFFFF) if two_g else rng.randrange(0x1000000, 0xFFFFFFF)
        """Cell id of the serving cell (16 bits on 2G, 28 bits otherwise)."""
        self.sms_outbox = SmsOutbox()
        """Messages sent."""
        self.on_registration_change: list[Callable[[RegStat], None]] = []
        """Called with the new ``+CREG`` stat after every change."""
        self.on_urc: list[Callable[[str], None]] = []
        """Called with each unsolicited result code the module prints (no CR/LF)."""
        self._powered_at: float | None = None
        self._ready = False
        self._cfun = 0
        self._creg_mode = 0
        self._network_time_known = False
        self._sms_ready_told = False
        self._boot: simpy.Process | None = None
        self._search: simpy.Process | None = None
        sim.on_state_change.append(self._sim_changed)
        signal.on_coverage_change.append(self._coverage_changed)

    # -- state ---------------------------------------------------------------

    @property
    def powered(self) -> bool:
        """Whether the module has power."""
        return self._powered_at is not None

    @property
    def ready(self) -> bool:
        """Whether the module has finished booting."""
        return self._ready

    @property
    def uptime_s(self) -> float:
        """Seconds since power-on (0 while off)."""
        return 0.0 if self._powered_at is None else float(self.env.now) - self._powered_at

    @property
    def cfun(self) -> int:
        """The ``AT+CFUN`` level: 0 while off or booting, then 1, or what ``set_cfun`` set."""
        return self._cfun

    @property
    def creg_mode(self) -> int:
        """The ``AT+CREG=<n>`` setting: 0 no URC, 1 ``+CREG: <stat>``, 2 with the cell."""
        return self._creg_mode

    @property
    def roaming(self) -> bool:
        """Whether a successful search registers as roaming."""
        return self.registration.roaming

    @property
    def reg_stat(self) -> RegStat:
        """The ``+CREG`` stat."""
        return self.registration.state

    @property
    def registered(self) -> bool:
        """Whether the module is registered on a network."""
        return self.registration.registered

    @property
    def net_mode(self) -> NetMode:
        """The access technology while registered, ``UNREGISTERED`` (0) otherwise."""
        return self.rat if self.registration.registered else NetMode.UNREGISTERED

    @property
    def net_state(self) -> NetState:
        """The XGC ``netState``: ``INIT`` while booting (or off), then by the stat."""
        return net_state(self._ready, self.registration.state)

    @property
    def rssi(self) -> int:
        """``+CSQ`` RSSI: 99 while off, booting or with the radio off; else the signal's."""
        if not self._ready or self._cfun != 1:
            return RSSI_UNKNOWN
        return self.signal.rssi

    @property
    def ber(self) -> int:
        """``+CSQ`` bit error rate (99: not known)."""
        return self.signal.ber

    @property
    def cell(self) -> tuple[int, int] | None:
        """(lac, ci) of the serving cell while registered, else None."""
        return (self.lac, self.ci) if self.registration.registered else None

    @property
    def location(self) -> tuple[float, float] | None:
        """(longitude, latitude) of the serving cell while registered, else None."""
        return self.serving_location if self.registration.registered else None

    @property
    def sim_state(self) -> SimState:
        """The SIM slot's state."""
        return self.sim.state

    @property
    def sim_blocked(self) -> bool:
        """Whether the SIM is blocked after too many wrong PINs."""
        return self.sim.blocked

    @property
    def iccid(self) -> str | None:
        """The card's ICCID (readable even while PIN-locked), None without a card."""
        card = self.sim.card
        return None if card is None else card.iccid

    @property
    def imsi(self) -> str | None:
        """The card's IMSI, None unless the SIM is ready."""
        card = self.sim.card
        return card.imsi if card is not None and self.sim.state is SimState.READY else None

    def network_time_ms(self) -> int | None:
        """Unix time in ms as the network gives it, None before the first registration (NITZ)."""
        if not self._network_time_known:
            return None
        return round((self.epoch_s + float(self.env.now)) * 1000)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the module, its SIM slot and its signal."""
        cell = self.cell
        location = self.location
        return {
            "imei": self.imei,
            "model": self.model,
            "firmware_version": self.firmware_version,
            "operator": self.operator,
            "powered": self.powered,
            "ready": self._ready,
            "uptime_s": self.uptime_s,
            "cfun": self._cfun,
            "creg_mode": self._creg_mode,
            "reg_stat": int(self.reg_stat),
            "registered": self.registered,
            "net_mode": int(self.net_mode),
            "net_state": self.net_state.value,
            "rat": int(self.rat),
            "roaming": self.roaming,
            "deny_registration": self.deny_registration,
            "rssi": self.rssi,
            "ber": self.ber,
            "cell": None if cell is None else {"lac": cell[0], "ci": cell[1]},
            "location": None if location is None else list(location),
            "network_time_ms": self.network_time_ms(),
            "searching": self._search is not None,
            "sms_sent": self.sms_outbox.sent,
            "sim": self.sim.snapshot(),
            "signal": self.signal.snapshot(),
        }

    # -- commands ------------------------------------------------------------

    def power_on(self) -> None:
        """Apply power: the module boots, then searches for a network.

        Raises:
            LocalProtocolError: the module is already powered.
        """
        if self._powered_at is not None:
            raise LocalProtocolError("cannot power on: the modem is already powered")
        self._powered_at = float(self.env.now)
        self._boot = self.env.process(self.booting())

    def power_off(self) -> None:
        """Cut power: deregistered at once, network time forgotten, the SIM powered down.

        Raises:
            LocalProtocolError: the module is already off.
        """
        if self._powered_at is None:
            raise LocalProtocolError("cannot power off: the modem is already off")
        self._cancel(self._boot, StopCause.POWER_OFF)
        self._cancel(self._search, StopCause.POWER_OFF)
        self._boot = self._search = None
        self._powered_at = None
        self._ready = False
        self._cfun = 0
        self._creg_mode = 0
        self._network_time_known = False
        self._sms_ready_told = False
        self._apply(RegInput.RADIO_OFF)
        self.sim.reset()

    def reset(self) -> None:
        """Power cycle (from off, just power on)."""
        if self._powered_at is not None:
            self.power_off()
        self.power_on()

    def set_cfun(self, fun: int) -> None:
        """Set the functionality level: 1 full; 0 minimum and 4 airplane mode (radio off).

        Raises:
            ValueError: ``fun`` is not 0, 1 or 4.
            LocalProtocolError: the module has not finished booting.
        """
        if fun not in CFUN_MODES:
            raise ValueError(f"fun must be one of {CFUN_MODES}, not {fun!r}")
        if not self._ready:
            raise LocalProtocolError(f"cannot set CFUN={fun}: the modem is not ready")
        self._cfun = fun
        if fun == 1:
            self._start_search()
        else:
            self._cancel(self._search, StopCause.RADIO_OFF)
            self._apply(RegInput.RADIO_OFF)

    def set_creg_mode(self, mode: int) -> None:
        """Set ``AT+CREG=<n>``: which ``+CREG`` URCs the module prints.

        Raises:
            ValueError: ``mode`` is not 0, 1 or 2.
        """
        if mode not in CREG_MODES:
            raise ValueError(f"creg mode must be one of {CREG_MODES}, not {mode!r}")
        self._creg_mode = mode

    def set_deny_registration(self, deny: bool) -> None:
        """Make the network deny (True) or accept (False) registrations from now on.

        Lifting a denial while the module sits in DENIED starts a new search.
        """
        self.deny_registration = deny
        if not deny and self.registration.state is RegStat.DENIED:
            self._start_search()

    def unlock_sim(self, pin: str) -> None:
        """Enter the SIM PIN (``AT+CPIN=<pin>``).

        Raises:
            ValueError: the SIM refused (see ``SimSlot.unlock``).
        """
        self.sim.unlock(pin)

    def send_sms(self, phone: str, text: str) -> Generator[simpy.Event, Any, SmsRecord]:
        """Send a short message: a process body, ``env.process(modem.send_sms(...))``.

        Takes 1 to 3 s; the record is appended to ``sms_outbox`` when the network
        has accepted it. The SIM and the registration are checked at the start
        and again at the end.

        Returns:
            The record of the sent message (the process's value).

        Raises:
            RemoteProtocolError: with ``reply_hint`` ``bad-param`` (phone or text
                invalid), ``no-sim``, ``sim-locked`` or ``not-registered``.
        """
        try:
            check_phone(phone)
            check_text(text)
        except ValueError as exc:
            raise RemoteProtocolError(str(exc), reply_hint="bad-param") from exc
        self._check_can_send()
        yield self.env.timeout(self.rng.uniform(*SMS_SEND_S))
        self._check_can_send()
        record = SmsRecord(at=float(self.env.now), phone=phone, text=text, parts=sms_parts(text))
        self.sms_outbox.append(record)
        return record

    # -- processes -----------------------------------------------------------

    def booting(self) -> Generator[simpy.Event, Any, None]:
        """Boot, then switch the radio on and look for a network."""
        try:
            yield self.env.timeout(self.rng.uniform(*self.boot_s))
        except simpy.Interrupt:
            return
        self._boot = None
        self._ready = True
        self._cfun = 1
        self._emit("RDY")
        self._emit("+CFUN: 1")
        self._emit(f"+CPIN: {cpin_status(self.sim.state, blocked=self.sim.blocked)}")
        self._start_search()

    def searching(self) -> Generator[simpy.Event, Any, None]:
        """Look for a network; register (or be denied) when found."""
        try:
            yield self.env.timeout(self.rng.uniform(*self.search_s))
        except simpy.Interrupt:
            return
        self._search = None
        self._apply(RegInput.SEARCH_DENIED if self.deny_registration else RegInput.SEARCH_SUCCEEDED)

    # -- internals -----------------------------------------------------------

    def _start_search(self) -> None:
        """Look for a network if the radio is on, the SIM ready and not yet registered.

        Without coverage the stat still becomes 2 (the module keeps looking), but
        the search process only starts when coverage comes back.
        """
        if not (self._ready and self._cfun == 1 and self.sim.state is SimState.READY):
            return
        if self.registration.registered or self._search is not None:
            return
        self._apply(RegInput.SEARCH_STARTED)
        if self.signal.coverage:
            self._search = self.env.process(self.searching())

    def _cancel(self, process: simpy.Process | None, cause: StopCause) -> None:
        if process is not None and process.is_alive and process is not self.env.active_process:
            process.interrupt(cause)
        if process is self._search:
            self._search = None

    def _sim_changed(self, state: SimState) -> None:
        if not self._ready:
            return
        self._emit(f"+CPIN: {cpin_status(state, blocked=self.sim.blocked)}")
        if state is SimState.READY:
            self._start_search()
        else:
            self._cancel(self._search, StopCause.SIM_LOST)
            self._apply(RegInput.SIM_LOST)

    def _coverage_changed(self, coverage: bool) -> None:
        if not self._ready or self._cfun != 1:
            return
        if coverage:
            self._start_search()
        else:
            self._cancel(self._search, StopCause.COVERAGE_LOST)
            self._apply(RegInput.COVERAGE_LOST)

    def _apply(self, event: RegInput) -> None:
        old = self.registration.state
        new = self.registration.process(event)
        if new is old:
            return
        registered = self.registration.registered
        if registered:
            self._network_time_known = True
        urc = creg_urc(new, self._creg_mode, self.cell, self.net_mode)
        if urc is not None:
            self._emit(urc)
        if registered and not self._sms_ready_told:
            self._sms_ready_told = True
            self._emit("+QIND: SMS DONE")
        for listener in tuple(self.on_registration_change):
            listener(new)

    def _check_can_send(self) -> None:
        state = self.sim.state
        if state is SimState.ABSENT:
            raise RemoteProtocolError("cannot send SMS: no SIM card", reply_hint="no-sim")
        if state is SimState.PIN_LOCKED:
            raise RemoteProtocolError(
                "cannot send SMS: the SIM is PIN-locked", reply_hint="sim-locked"
            )
        if not self.registration.registered:
            raise RemoteProtocolError(
                f"cannot send SMS: not registered (stat {int(self.reg_stat)})",
                reply_hint="not-registered",
            )

    def _emit(self, line: str) -> None:
        if not self._ready:
            return
        for listener in tuple(self.on_urc):
            listener(line)
