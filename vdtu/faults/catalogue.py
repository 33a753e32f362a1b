"""The fault catalogue: every fault a unit (or the fleet's cloud) can be put in, by name.

Pure data and parsing: what each kind is called (kebab-case, after what it does),
the layer it lives in, its parameters with their types, ranges and defaults, whether
it is a one-shot event (``modem-reboot``) or a condition that lasts until cleared or
until its duration runs out, and whether it acts on one unit or on the whole fleet
(``broker-stop``). ``parse_request`` turns what a user typed (``csq=5 over=30``) or
what the control API received (JSON numbers or strings) into checked values, or
raises ``FaultError`` naming the kind, the parameter, the value and what is allowed.

What each kind does to a unit is ``vdtu.faults.effects``; docs/faults.md describes
every kind and what the real device shows.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vdtu.modem.registration import EmmCause, EsmCause

MAX_DURATION_S = 30 * 86400.0
"""The longest ``--for`` a fault takes: 30 days of sim time."""


class FaultError(ValueError):
    """A fault request that cannot be applied: an unknown kind or a bad parameter."""


class Scope(StrEnum):
    """What a fault acts on."""

    UNIT = "unit"
    FLEET = "fleet"
    """The fleet's shared cloud (its embedded broker): applied with the selector ``all``."""


Value = int | float | str


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """One parameter of a fault kind.

    ``kind`` is ``int``, ``float`` or ``str``; ``low``/``high`` bound numbers (inclusive),
    ``choices`` lists the allowed values; no ``default`` makes it required.
    """

    name: str
    kind: type[int] | type[float] | type[str]
    help: str
    default: Value | None = None
    low: float | None = None
    high: float | None = None
    choices: tuple[Value, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is None

    def allowed(self) -> str:
        """What is allowed, for error messages and the docs."""
        if self.choices:
            return "one of " + ", ".join(str(choice) for choice in self.choices)
        noun = {int: "an integer", float: "a number", str: "text"}[self.kind]
        if self.kind is str:
            return f"text of 1..{self.high or 64:g} characters"
        if self.low is not None and self.high is not None:
            return f"{noun} in {self.low:g}..{self.high:g}"
        if self.low is not None:
            return f"{noun} >= {self.low:g}"
        return noun

    def parse(self, raw: object) -> Value:
        """``raw`` (a string from the command line, or a JSON value) as this parameter's type.

        Raises:
            ValueError: the value is not of the type or not allowed (without the kind's name).
        """
        value = self._typed(raw)
        if value is None:
            raise ValueError(f"{self.name} must be {self.allowed()}, not {raw!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be {self.allowed()}, not {raw!r}")
        if not isinstance(value, str) and (
            (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
        ):
            raise ValueError(f"{self.name} must be {self.allowed()}, not {raw!r}")
        return value

    def _typed(self, raw: object) -> Value | None:
        if isinstance(raw, bool):
            return None
        if self.kind is str:
            longest = int(self.high) if self.high is not None else 64
            return raw if isinstance(raw, str) and 0 < len(raw) <= longest else None
        if isinstance(raw, str):
            if len(raw) > 32:
                return None
            try:
                raw = int(raw) if self.kind is int else float(raw)
            except ValueError:
                return None
        if self.kind is int:
            return raw if isinstance(raw, int) else None
        if isinstance(raw, int | float) and math.isfinite(raw):
            return float(raw)
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultKind:
    """One entry of the catalogue."""

    name: str
    layer: str
    help: str
    params: tuple[Param, ...] = ()
    one_shot: bool = False
    """An event, not a condition: it has no duration and nothing to clear."""
    scope: Scope = Scope.UNIT
    check: Callable[[Mapping[str, Value]], str | None] | None = None
    """A rule between parameters: what is wrong with them, or None."""

    def param(self, name: str) -> Param | None:
        return next((param for param in self.params if param.name == name), None)


@dataclass(frozen=True, slots=True)
class FaultRequest:
    """A checked request: a kind, its parameters (defaults filled in) and a duration."""

    kind: FaultKind
    params: Mapping[str, Value]
    for_s: float | None = None


TARGET_PARAMS = ("address", "index", "port")
"""Parameters that name the part of the unit a fault is aimed at (part of its key)."""


@dataclass(slots=True, eq=False)
class ActiveFault:
    """One fault in force on a unit."""

    kind: str
    params: dict[str, Value]
    since: float
    until: float | None

    @property
    def key(self) -> str:
        return fault_key(self.kind, self.params)

    def view(self) -> dict[str, Any]:
        """JSON-able: kind, params, since, until (sim seconds; None: until cleared)."""
        return {"kind": self.kind, "params": self.params, "since": self.since, "until": self.until}


def fault_key(kind: str, params: dict[str, Value]) -> str:
    """``kind`` plus the part it is aimed at: ``slave-offline address=2``."""
    target = " ".join(f"{name}={params[name]}" for name in TARGET_PARAMS if name in params)
    return f"{kind} {target}" if target else kind


def _address(default: int | None = None) -> Param:
    return Param(
        name="address", kind=int, low=1, high=247, default=default, help="the slave's address"
    )


def _rate(help: str, default: float = 1.0) -> Param:
    return Param(name="rate", kind=float, low=0.0, high=1.0, default=default, help=help)


_EMM = tuple(int(cause) for cause in EmmCause)
_ESM = tuple(int(cause) for cause in EsmCause)
_INDEX = Param(name="index", kind=int, low=1, high=8, default=1, help="which input (in1..in8)")
_RELAY = Param(name="index", kind=int, low=1, high=8, default=1, help="which relay (out1..out8)")
PORT = Param(
    name="port", kind=str, choices=("uart", "rs232", "rs485"), default="uart", help="the port"
)
"""A serial port of the unit (host-serial faults, the host-write poke)."""
_LEVEL = Param(name="level", kind=int, choices=(0, 1), default=1, help="the level")

KINDS: tuple[FaultKind, ...] = (
    # -- cellular -------------------------------------------------------------------------
    FaultKind(
        name="signal",
        layer="cellular",
        help="set the signal to a CSQ level, at once or faded over a time (CSQ and rssi follow)",
        params=(
            Param(name="csq", kind=int, low=0, high=31, help="the target level (CSQ 0..31)"),
            Param(name="over", kind=float, low=0, high=86400, default=0.0, help="fade time, s"),
        ),
    ),
    FaultKind(
        name="coverage-loss", layer="cellular", help="no cell in range: the module deregisters"
    ),
    FaultKind(
        name="reg-reject",
        layer="cellular",
        help="the network rejects registration with a 3GPP EMM cause, with its back-off",
        params=(Param(name="cause", kind=int, choices=_EMM, help="the EMM cause"),),
    ),
    FaultKind(name="roaming", layer="cellular", help="the module registers as roaming (stat 5)"),
    FaultKind(
        name="pdp-reject",
        layer="cellular",
        help="the data context (PDP/APN) is refused with an ESM cause",
        params=(Param(name="cause", kind=int, choices=_ESM, default=38, help="the ESM cause"),),
    ),
    FaultKind(
        name="pdp-drop",
        layer="cellular",
        help="the network drops the data context; the module re-activates it after `retry` s",
        params=(Param(name="retry", kind=float, low=0.1, high=3600, default=20.0, help="seconds"),),
    ),
    FaultKind(name="dns-fail", layer="cellular", help="every DNS lookup of a host name fails"),
    FaultKind(
        name="modem-hang",
        layer="cellular",
        help="the module stops answering (no AT replies, no data) until cleared (a reset)",
    ),
    FaultKind(
        name="modem-reboot",
        layer="cellular",
        help="the module restarts on its own: deregistered, then boot, search, register",
        one_shot=True,
    ),
    FaultKind(name="no-network-time", layer="cellular", help="the network sends no time (NITZ)"),
    # -- SIM ------------------------------------------------------------------------------
    FaultKind(name="sim-pull", layer="sim", help="the SIM card is taken out (clear: put back)"),
    FaultKind(
        name="sim-swap",
        layer="sim",
        help="another card in the slot (a new ICCID and IMSI); clear: the unit's own card back",
    ),
    FaultKind(name="sim-pin-lock", layer="sim", help="the card asks for its PIN"),
    FaultKind(name="sim-puk-block", layer="sim", help="the card is PUK-blocked (+CPIN: SIM PUK)"),
    FaultKind(
        name="sim-no-data",
        layer="sim",
        help="a card without a data plan: it registers, data is refused (ESM #33)",
    ),
    # -- the unit's IP link ----------------------------------------------------------------
    FaultKind(
        name="link-latency",
        layer="link",
        help="delay every packet of the unit's cloud connections",
        params=(
            Param(name="ms", kind=float, low=0, high=60000, help="one-way delay, ms"),
            Param(name="jitter", kind=float, low=0, high=60000, default=0.0, help="+/- ms"),
        ),
        check=lambda p: (
            f"jitter ({p['jitter']:g}) must not exceed ms ({p['ms']:g})"
            if float(p["jitter"]) > float(p["ms"])
            else None
        ),
    ),
    FaultKind(
        name="link-bandwidth",
        layer="link",
        help="cap the unit's cloud connections' throughput, both ways",
        params=(Param(name="kbps", kind=float, low=0.1, high=1e6, help="kilobits per second"),),
    ),
    FaultKind(
        name="link-blackhole",
        layer="link",
        help="packets vanish both ways, no RST (a NAT timeout): only keep-alive notices",
    ),
    FaultKind(
        name="link-reset",
        layer="link",
        help="the unit's cloud connections are reset (RST) now",
        one_shot=True,
    ),
    FaultKind(
        name="link-connect-timeout",
        layer="link",
        help="new connection attempts hang until the client's connect timeout",
    ),
    FaultKind(
        name="platform-refuse",
        layer="link",
        help="the platform refuses the unit's credential requests",
    ),
    FaultKind(
        name="platform-slow",
        layer="link",
        help="the platform answers the unit's credential requests late",
        params=(Param(name="ms", kind=float, low=0, high=600000, help="extra delay, ms"),),
    ),
    # -- the cloud ------------------------------------------------------------------------
    FaultKind(
        name="broker-stop",
        layer="cloud",
        help="the fleet's embedded broker stops (every connection drops); clear: it restarts",
        scope=Scope.FLEET,
    ),
    # -- power ----------------------------------------------------------------------------
    FaultKind(name="power-cut", layer="power", help="all power off (clear: power back on)"),
    FaultKind(
        name="brown-out",
        layer="power",
        help="a supply dip of `ms` resets the unit (flash is kept)",
        params=(Param(name="ms", kind=float, low=1, high=60000, default=50.0, help="dip, ms"),),
        one_shot=True,
    ),
    FaultKind(
        name="battery-drain",
        layer="power",
        help="external power off and the battery drains to cut-off at `pct_per_min`",
        params=(
            Param(name="pct_per_min", kind=float, low=0.01, high=100, default=5.0, help="%/min"),
        ),
    ),
    FaultKind(
        name="vbus-off", layer="power", help="external power removed: the unit runs on battery"
    ),
    # -- RS-485 ---------------------------------------------------------------------------
    FaultKind(
        name="slave-offline",
        layer="rs485",
        help="a Modbus slave stops answering",
        params=(_address(),),
    ),
    FaultKind(
        name="slave-slow",
        layer="rs485",
        help="a Modbus slave answers `ms` late",
        params=(_address(), Param(name="ms", kind=float, low=0, high=60000, help="delay, ms")),
    ),
    FaultKind(
        name="slave-crc",
        layer="rs485",
        help="a Modbus slave answers with a bad CRC (a fraction `rate` of its answers)",
        params=(_address(), _rate("the fraction of answers with a bad CRC")),
    ),
    FaultKind(
        name="slave-exception",
        layer="rs485",
        help="a Modbus slave answers every request with an exception code",
        params=(
            _address(),
            Param(
                name="code",
                kind=int,
                choices=(1, 2, 3, 4, 5, 6, 8, 10, 11),
                default=4,
                help="the exception code",
            ),
        ),
    ),
    FaultKind(
        name="bus-noise",
        layer="rs485",
        help="noise on the RS-485 bus: each byte corrupted with probability `rate`",
        params=(_rate("the probability a byte is corrupted", 0.01),),
    ),
    # -- the host serial line ---------------------------------------------------------------
    FaultKind(
        name="host-garbage",
        layer="host-serial",
        help="garbage bytes toward the host: `bytes` now, and `rate` bytes/s while it lasts "
        "(with rate 0 it is over once the burst is sent)",
        params=(
            Param(name="bytes", kind=int, low=0, high=4096, default=16, help="a burst now"),
            Param(name="rate", kind=float, low=0, high=1000, default=0.0, help="bytes/s"),
            PORT,
        ),
    ),
    FaultKind(
        name="host-drop",
        layer="host-serial",
        help="bytes on the host line are lost with probability `rate`",
        params=(
            _rate("the probability a byte is lost", 0.01),
            Param(
                name="direction",
                kind=str,
                choices=("both", "to-host", "from-host"),
                default="both",
                help="which way",
            ),
            PORT,
        ),
    ),
    FaultKind(
        name="host-baud",
        layer="host-serial",
        help="the unit's UART runs at `baud` while the host keeps its own: bytes arrive garbled",
        params=(
            Param(
                name="baud",
                kind=int,
                choices=(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800),
                help="the unit's wrong baud rate",
            ),
            PORT,
        ),
    ),
    # -- GPIO -----------------------------------------------------------------------------
    FaultKind(
        name="input-pulse",
        layer="gpio",
        help="pulses on an input: `count` pulses of `width_ms`, every `period_ms`",
        params=(
            _INDEX,
            Param(name="width_ms", kind=float, low=1, high=60000, default=100.0, help="ms"),
            Param(name="count", kind=int, low=1, high=1000, default=1, help="pulses"),
            Param(name="period_ms", kind=float, low=2, high=600000, default=1000.0, help="ms"),
        ),
        one_shot=True,
    ),
    FaultKind(
        name="input-bounce",
        layer="gpio",
        help="an input changes to `level` with contact bounce: 2 x `bounces` + 1 edges in `ms`",
        params=(
            _INDEX,
            _LEVEL,
            Param(name="bounces", kind=int, low=1, high=50, default=4, help="back-and-forths"),
            Param(name="ms", kind=float, low=0.1, high=1000, default=10.0, help="bounce time"),
        ),
        one_shot=True,
    ),
    FaultKind(
        name="relay-stuck",
        layer="gpio",
        help="a relay's contact stays at `level` whatever its coil is told",
        params=(_RELAY, _LEVEL),
    ),
)

CATALOGUE: Mapping[str, FaultKind] = {kind.name: kind for kind in KINDS}


def fault_kind(name: str) -> FaultKind:
    """The kind called ``name``.

    Raises:
        FaultError: there is none (the message lists the layers' kinds).
    """
    kind = CATALOGUE.get(name)
    if kind is None:
        raise FaultError(f"unknown fault kind {name!r}; the kinds are: {', '.join(CATALOGUE)}")
    return kind


def parse_params(
    what: str, params: tuple[Param, ...], raw: Mapping[str, object]
) -> dict[str, Value]:
    """Check ``raw`` against ``params`` (defaults filled in) for ``what`` (a kind or a poke).

    Raises:
        FaultError: naming ``what``, the parameter and what is allowed.
    """
    by_name = {param.name: param for param in params}
    checked: dict[str, Value] = {}
    for key, value in raw.items():
        param = by_name.get(key)
        if param is None:
            known = ", ".join(by_name) or "none"
            raise FaultError(f"{what} has no parameter {key!r}; its parameters: {known}")
        try:
            checked[key] = param.parse(value)
        except ValueError as exc:
            raise FaultError(f"{what}: {exc}") from None
    for param in params:
        if param.name in checked:
            continue
        if param.default is None:
            raise FaultError(f"{what} needs {param.name}= ({param.help}: {param.allowed()})")
        checked[param.name] = param.default
    return checked


def parse_request(name: str, raw: Mapping[str, object], for_s: object = None) -> FaultRequest:
    """Check a fault request: its kind, every parameter, and its duration.

    Raises:
        FaultError: naming the kind and what is wrong.
    """
    kind = fault_kind(name)
    params = parse_params(name, kind.params, raw)
    problem = None if kind.check is None else kind.check(params)
    if problem is not None:
        raise FaultError(f"{name}: {problem}")
    return FaultRequest(kind, params, _duration(kind, for_s))


def _duration(kind: FaultKind, for_s: object) -> float | None:
    if for_s is None:
        return None
    if kind.one_shot:
        raise FaultError(f"{kind.name} is a one-shot event: it takes no duration (--for)")
    if isinstance(for_s, str):
        with contextlib.suppress(ValueError):
            for_s = float(for_s)
    if (
        isinstance(for_s, bool)
        or not isinstance(for_s, int | float)
        or not 0 < for_s <= MAX_DURATION_S
    ):
        raise FaultError(
            f"the duration of {kind.name} must be a number of seconds in "
            f"0..{MAX_DURATION_S:g} (> 0), not {for_s!r}"
        )
    return float(for_s)


def parse_assignments(words: list[str]) -> dict[str, str]:
    """``["csq=5", "over=30"]`` as ``{"csq": "5", "over": "30"}``.

    Raises:
        FaultError: a word is not NAME=VALUE, or a name is given twice.
    """
    result: dict[str, str] = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise FaultError(f"expected NAME=VALUE, not {word!r}")
        if name in result:
            raise FaultError(f"{name}= is given twice")
        result[name] = value
    return result
