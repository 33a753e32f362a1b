"""A simulated Modbus RTU slave on the RS-485 bus, in sim time.

How it works: the slave is a node on a half-duplex line. Every chunk of bytes
it hears goes into a receive buffer and (re)starts a t3.5 silence timer of
``line.silence_s``; when the timer runs out with no newer byte, the buffer is
one frame. The frame is then judged in this order, as a real slave would:

1. CRC wrong -> ignored, ``stats.bad_crc``.
2. Address neither its own nor 0 -> ignored, ``stats.not_mine`` (this includes
   the replies of other slaves on the same bus).
3. Not decodable (wrong length, broadcast read, function 0 or >= 128) ->
   ignored, ``stats.bad_frame``.
4. Otherwise executed on the slave's four tables. Refusals follow the Modbus
   order: an unsupported function -> exception 1; a bad quantity, byte count
   or coil value -> 3; any address not in the configured table -> 2.
5. Broadcast (address 0): writes are carried out, nothing is ever answered.
   Otherwise the answer goes out ``response_delay_s`` after the end of the
   request was recognised (so t3.5 + the delay after its last byte).

Invariants: the slave never answers a frame it did not fully receive, never
answers while offline, and never answers a request heard before its last
``reset()`` or ``set_online(False)`` (``_epoch`` tells stale replies apart).
The tables hold exactly the addresses the config declares; Modbus writes and
control-side pokes can change values, never the set of addresses. Register
dynamics (counters, noise) are SimPy processes drawing from the slave's own
``rng``, so a run replays from its seed.

Config tables are blocks: ``{start address: [value, value, ...]}``, each
value for the next address up. A JSON config writes the start as a string
(``"0"``, ``"0x10"``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol, Self, assert_never

import simpy

from vdtu.errors import ConfigError, RemoteProtocolError
from vdtu.modbus.rtu import (
    BROADCAST,
    READ_BIT_FUNCTIONS,
    ExceptionCode,
    ExceptionResponse,
    FunctionCode,
    IllegalRequestError,
    ReadBitsResponse,
    ReadRegistersResponse,
    ReadRequest,
    Request,
    Response,
    WriteMultipleCoils,
    WriteMultipleRegisters,
    WriteMultipleResponse,
    WriteSingleCoil,
    WriteSingleRegister,
    check_crc,
    decode_request,
    encode_response,
)


class BusNode(Protocol):
    """What the bus delivers bytes to."""

    def receive(self, data: bytes) -> None:
        """Bytes from another node have arrived (called in sim time)."""


class BusTap(Protocol):
    """A node's connection to the bus."""

    def send(self, data: bytes) -> float:
        """Transmit ``data``; returns the sim time at which its last byte has arrived."""


class Bus(Protocol):
    """The part of ``vdtu.uart.line.SerialLine`` a slave uses (io must not import uart)."""

    @property
    def silence_s(self) -> float:
        """The t3.5 inter-frame gap at the current speed."""

    def attach(self, node: BusNode, name: str) -> BusTap:
        """Connect ``node`` to the bus."""


class Table(StrEnum):
    """The four Modbus data tables of a slave."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING = "holding"
    INPUT = "input"


MAX_FRAME_BYTES = 256
"""The longest Modbus RTU frame; a slave buffers no more."""

BIT_TABLES = frozenset({Table.COIL, Table.DISCRETE_INPUT})

_READ_TABLE = {
    FunctionCode.READ_COILS: Table.COIL,
    FunctionCode.READ_DISCRETE_INPUTS: Table.DISCRETE_INPUT,
    FunctionCode.READ_HOLDING_REGISTERS: Table.HOLDING,
    FunctionCode.READ_INPUT_REGISTERS: Table.INPUT,
}


class DynamicKind(StrEnum):
    """How a register changes on its own."""

    COUNTER = "counter"
    """Adds ``step`` every period, wrapping at 65536."""
    NOISE = "noise"
    """Becomes base ± a uniform integer up to ``amplitude`` every period; the base
    is the register's configured value, moved by any write to it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dynamic:
    """A register that changes by itself (a counter or a noisy measurement)."""

    table: Table
    """``Table.HOLDING`` or ``Table.INPUT``."""
    register: int
    """Its address; it must exist in the slave's table."""
    kind: DynamicKind
    period_s: float
    """How often it changes, > 0 s."""
    step: int = 1
    """Counter increment, 1..65535."""
    amplitude: int = 0
    """Noise half-width, 0..65535."""

    def __post_init__(self) -> None:
        if self.table not in (Table.HOLDING, Table.INPUT):
            raise ConfigError(
                f"dynamic table must be 'holding' or 'input', not {str(self.table)!r}"
            )
        _check_config_int("dynamic register", self.register, 0, 0xFFFF)
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ConfigError(
                f"dynamic period_s must be a finite number > 0, not {self.period_s!r}"
            )
        _check_config_int("dynamic step", self.step, 1, 0xFFFF)
        _check_config_int("dynamic amplitude", self.amplitude, 0, 0xFFFF)


def _check_config_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer {low}..{high}, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusSlaveConfig:
    """Everything that defines a slave at power-on.

    Each table is a mapping of blocks: ``{start: (v0, v1, ...)}`` puts ``v0``
    at ``start``, ``v1`` at ``start + 1`` and so on. Blocks of one table must
    not overlap. Bit tables hold 0 or 1, register tables 0..65535.

    Raises:
        ConfigError: any field out of range; the message names the field, the
            value and what is allowed.
    """

    address: int
    """Slave address, 1..247."""
    coils: Mapping[int, Sequence[int]] = field(default_factory=dict)
    discrete_inputs: Mapping[int, Sequence[int]] = field(default_factory=dict)
    holding_registers: Mapping[int, Sequence[int]] = field(default_factory=dict)
    input_registers: Mapping[int, Sequence[int]] = field(default_factory=dict)
    response_delay_s: float = 0.005
    """Processing time between recognising a request and starting the answer, 0..10 s."""
    dynamics: tuple[Dynamic, ...] = ()

    def __post_init__(self) -> None:
        _check_config_int("address", self.address, 1, 247)
        for table in Table:
            blocks = _frozen_blocks(table, self.blocks(table))
            object.__setattr__(self, _CONFIG_FIELD[table], blocks)
        delay = self.response_delay_s
        if not (math.isfinite(delay) and 0 <= delay <= 10):
            raise ConfigError(f"response_delay_s must be 0..10 (seconds), not {delay!r}")
        seen: set[tuple[Table, int]] = set()
        for dynamic in self.dynamics:
            key = (dynamic.table, dynamic.register)
            if not any(
                start <= dynamic.register < start + len(values)
                for start, values in self.blocks(dynamic.table).items()
            ):
                raise ConfigError(
                    f"dynamic register {dynamic.register} must be one of the configured "
                    f"{_CONFIG_FIELD[dynamic.table]} ({_describe(self.blocks(dynamic.table))})"
                )
            if key in seen:
                raise ConfigError(
                    f"dynamics: {dynamic.table} register {dynamic.register} has two dynamics"
                )
            seen.add(key)

    def blocks(self, table: Table) -> Mapping[int, Sequence[int]]:
        """The configured blocks of ``table``."""
        match table:
            case Table.COIL:
                return self.coils
            case Table.DISCRETE_INPUT:
                return self.discrete_inputs
            case Table.HOLDING:
                return self.holding_registers
            case Table.INPUT:
                return self.input_registers
            case _:
                assert_never(table)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build a config from parsed JSON/TOML.

        Example::

            {"address": 2, "holding_registers": {"0": [277, 1]},
             "coils": {"0x10": [0, 1, 1]}, "response_delay_s": 0.01,
             "dynamics": [{"table": "input", "register": 0, "kind": "counter",
                           "period_s": 1.0}]}

        Raises:
            ConfigError: an unknown key, a value of the wrong type or out of
                range; the message names the field, the value and what is
                allowed.
        """
        unknown = sorted(set(data) - _CONFIG_KEYS)
        if unknown:
            raise ConfigError(
                f"unknown Modbus slave config keys {unknown}; allowed: {sorted(_CONFIG_KEYS)}"
            )
        if "address" not in data:
            raise ConfigError("address is required: the slave address, 1..247")
        kwargs: dict[str, Any] = {"address": data["address"]}
        for table, name in _CONFIG_FIELD.items():
            if name in data:
                kwargs[name] = _parse_blocks(name, data[name], bits=table in BIT_TABLES)
        if "response_delay_s" in data:
            kwargs["response_delay_s"] = _parse_number("response_delay_s", data["response_delay_s"])
        if "dynamics" in data:
            entries = data["dynamics"]
            if not isinstance(entries, list):
                raise ConfigError(f"dynamics must be a list of objects, not {entries!r}")
            kwargs["dynamics"] = tuple(
                _parse_dynamic(f"dynamics[{index}]", entry) for index, entry in enumerate(entries)
            )
        return cls(**kwargs)


_CONFIG_FIELD = {
    Table.COIL: "coils",
    Table.DISCRETE_INPUT: "discrete_inputs",
    Table.HOLDING: "holding_registers",
    Table.INPUT: "input_registers",
}
_CONFIG_KEYS = frozenset({"address", "response_delay_s", "dynamics", *_CONFIG_FIELD.values()})
_DYNAMIC_KEYS = frozenset({"table", "register", "kind", "period_s", "step", "amplitude"})


def _frozen_blocks(
    table: Table, blocks: Mapping[int, Sequence[int]]
) -> Mapping[int, tuple[int, ...]]:
    """Validate one table's blocks and return them as an immutable mapping."""
    name = _CONFIG_FIELD[table]
    high = 1 if table in BIT_TABLES else 0xFFFF
    frozen: dict[int, tuple[int, ...]] = {}
    for start, values in sorted(blocks.items()):
        _check_config_int(f"{name} start address", start, 0, 0xFFFF)
        if not values:
            raise ConfigError(f"{name}[{start}] must hold at least one value, not {values!r}")
        if start + len(values) > 0x10000:
            raise ConfigError(
                f"{name}[{start}] must end at address 65535 or below, not {start + len(values) - 1}"
            )
        for value in values:
            _check_config_int(f"{name}[{start}] value", value, 0, high)
        for other, other_values in frozen.items():
            if start < other + len(other_values):
                raise ConfigError(
                    f"{name}[{start}] overlaps {name}[{other}] "
                    f"(addresses {other}..{other + len(other_values) - 1})"
                )
        frozen[start] = tuple(values)
    return MappingProxyType(frozen)


def _describe(blocks: Mapping[int, Sequence[int]]) -> str:
    """``0..9, 100..101`` (or ``none``) for a table's blocks."""
    spans = [f"{start}..{start + len(values) - 1}" for start, values in sorted(blocks.items())]
    return ", ".join(spans) or "none"


def _parse_blocks(name: str, raw: object, *, bits: bool) -> dict[int, list[int]]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be an object of start address -> list, not {raw!r}")
    blocks: dict[int, list[int]] = {}
    for key, values in raw.items():
        start = _parse_address(name, key)
        if not isinstance(values, list):
            raise ConfigError(f"{name}[{key!r}] must be a list of values, not {values!r}")
        blocks[start] = [
            int(value) if bits and isinstance(value, bool) else value for value in values
        ]
    return blocks


def _parse_address(name: str, key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str):
        try:
            return int(key, 0)
        except ValueError as exc:
            raise ConfigError(
                f"{name} start address must be an integer such as '16' or '0x10', not {key!r}"
            ) from exc
    raise ConfigError(f"{name} start address must be an integer, not {key!r}")


def _parse_number(name: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(f"{name} must be a number, not {raw!r}")
    return float(raw)


def _parse_dynamic(name: str, raw: object) -> Dynamic:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be an object, not {raw!r}")
    unknown = sorted(set(raw) - _DYNAMIC_KEYS)
    if unknown:
        raise ConfigError(f"{name}: unknown keys {unknown}; allowed: {sorted(_DYNAMIC_KEYS)}")
    missing = sorted({"table", "register", "kind", "period_s"} - set(raw))
    if missing:
        raise ConfigError(f"{name}: missing keys {missing}")
    try:
        table = Table(raw["table"])
    except ValueError as exc:
        raise ConfigError(
            f"{name}.table must be 'holding' or 'input', not {raw['table']!r}"
        ) from exc
    try:
        kind = DynamicKind(raw["kind"])
    except ValueError as exc:
        raise ConfigError(f"{name}.kind must be 'counter' or 'noise', not {raw['kind']!r}") from exc
    try:
        return Dynamic(
            table=table,
            register=raw["register"],
            kind=kind,
            period_s=_parse_number(f"{name}.period_s", raw["period_s"]),
            step=raw.get("step", 1),
            amplitude=raw.get("amplitude", 0),
        )
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from exc


DEMO_SLAVE = ModbusSlaveConfig(
    address=1,
    holding_registers={0: (0x0115, 1, 2, 3, 4, 5, 6, 7, 8, 9)},
    input_registers={0: (0, 250, 500)},
    coils={0: (0,) * 16},
    discrete_inputs={0: (1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0)},
    dynamics=(
        Dynamic(table=Table.INPUT, register=0, kind=DynamicKind.COUNTER, period_s=1.0),
        Dynamic(table=Table.INPUT, register=1, kind=DynamicKind.NOISE, period_s=5.0, amplitude=3),
    ),
)
"""The default unit's demo slave at address 1.

Holding 0..9: ``0x0115`` then 1..9 (the seed's read of one register at 0 is
answered ``01 03 02 01 15 78 1B``). Input 0: a counter, +1 every second.
Input 1: a temperature in 0.1 °C, 25.0 °C ± 0.3 every 5 s. Input 2: a
humidity in 0.1 %, 50.0 %. Coils 0..15 all off. Discrete inputs 0..15.
"""


@dataclass(slots=True)
class SlaveStats:
    """What a slave has heard and said."""

    frames: int = 0
    """Frames delimited by silence (every frame, including the ones ignored)."""
    bad_crc: int = 0
    not_mine: int = 0
    bad_frame: int = 0
    broadcasts: int = 0
    """Broadcast requests acted on (never answered)."""
    replies: int = 0
    """Answers sent, exception responses included."""
    exceptions: int = 0
    """Exception responses made (sent, or suppressed for a broadcast)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusSlaveSnapshot:
    """A copy of a slave's state for displays and the control API."""

    name: str
    address: int
    online: bool
    tables: dict[Table, dict[int, int]]
    """Every table, address -> value."""
    stats: SlaveStats


@dataclass(frozen=True, slots=True)
class SlaveReset:
    """Interrupt cause: the slave was power-cycled; its processes end."""


class ModbusSlave:
    """A Modbus RTU slave device on an RS-485 bus.

    Args:
        env: the SimPy environment.
        rng: the slave's own random source (noise dynamics).
        line: the bus to attach to (a ``SerialLine``).
        config: address, tables, response delay and dynamics.
        name: the tap's name on the bus (default ``modbus-<address>``).
    """

    def __init__(
        self,
        env: simpy.Environment,
        rng: random.Random,
        line: Bus,
        config: ModbusSlaveConfig,
        *,
        name: str | None = None,
    ) -> None:
        self.env = env
        self.rng = rng
        self.line = line
        self.config = config
        self.name = name or f"modbus-{config.address}"
        self.stats = SlaveStats()
        """Counters; they survive ``reset()`` (they describe the bus, not the device)."""
        self.tap = line.attach(self, self.name)
        self._online = True
        self._epoch = 0
        self._rx = bytearray()
        self._rx_chunks = 0
        self._tables: dict[Table, dict[int, int]] = {}
        self._noise_base: dict[tuple[Table, int], int] = {}
        self._dynamics: list[simpy.Process] = []
        self._power_on()

    @property
    def address(self) -> int:
        """The slave address."""
        return self.config.address

    @property
    def online(self) -> bool:
        """False while the slave is silenced (the "485 slave goes silent" fault)."""
        return self._online

    def set_online(self, online: bool) -> None:
        """Silence the slave (it hears nothing, says nothing) or bring it back.

        Going offline drops a partly received frame and any answer not yet sent.
        The tables and dynamics keep running.
        """
        if not online:
            self._forget_traffic()
        self._online = online

    def reset(self) -> None:
        """Power-cycle the slave: tables back to the config, traffic dropped, dynamics restarted.

        ``online`` is kept: being cut off the bus is not cured by a power cycle.
        """
        for process in self._dynamics:
            process.interrupt(SlaveReset())
        self._forget_traffic()
        self._power_on()

    def snapshot(self) -> ModbusSlaveSnapshot:
        """A copy of the tables, flags and counters."""
        return ModbusSlaveSnapshot(
            name=self.name,
            address=self.address,
            online=self._online,
            tables={table: dict(values) for table, values in self._tables.items()},
            stats=replace(self.stats),
        )

    def peek(self, table: Table, address: int) -> int:
        """The value at ``address`` of ``table`` (0/1 for bits).

        Raises:
            ValueError: ``address`` is not configured in that table.
        """
        self._check_address(table, address)
        return self._tables[table][address]

    def poke(self, table: Table, address: int, value: int) -> None:
        """Set a value from the control side (any table, inputs included).

        A poke on a noisy register moves the centre of its noise.

        Raises:
            ValueError: ``address`` is not configured in that table, or
                ``value`` is not 0/1 for a bit or 0..65535 for a register.
        """
        self._check_address(table, address)
        high = 1 if table in BIT_TABLES else 0xFFFF
        if isinstance(value, bool) or not 0 <= value <= high:
            raise ValueError(f"{table} value must be 0..{high}, not {value!r}")
        self._store(table, address, value)

    def receive(self, data: bytes) -> None:
        """Bytes heard on the bus: buffer them and restart the t3.5 silence timer."""
        if not self._online:
            return
        # Like a real slave's 256-byte buffer: an endless stream without a
        # pause is cut, and the frame that ends it fails its CRC.
        self._rx += data[: MAX_FRAME_BYTES - len(self._rx)]
        self._rx_chunks += 1
        chunk = self._rx_chunks
        timer = self.env.timeout(self.line.silence_s)
        timer.callbacks.append(lambda _event: self._end_frame(chunk))

    def count_up(self, dynamic: Dynamic) -> Generator[simpy.Event, Any, None]:
        """Process: add ``dynamic.step`` to a counter register every period."""
        values = self._tables[dynamic.table]
        try:
            while True:
                yield self.env.timeout(dynamic.period_s)
                values[dynamic.register] = (values[dynamic.register] + dynamic.step) % 0x10000
        except simpy.Interrupt:
            return

    def jitter(self, dynamic: Dynamic) -> Generator[simpy.Event, Any, None]:
        """Process: put a noisy register at its base ± ``amplitude`` every period."""
        values = self._tables[dynamic.table]
        key = (dynamic.table, dynamic.register)
        try:
            while True:
                yield self.env.timeout(dynamic.period_s)
                offset = self.rng.randint(-dynamic.amplitude, dynamic.amplitude)
                values[dynamic.register] = min(max(self._noise_base[key] + offset, 0), 0xFFFF)
        except simpy.Interrupt:
            return

    def answer(self, frame: bytes, epoch: int) -> Generator[simpy.Event, Any, None]:
        """Process: send ``frame`` after the response delay, unless reset or silenced meanwhile."""
        yield self.env.timeout(self.config.response_delay_s)
        if epoch == self._epoch:
            self.tap.send(frame)
            self.stats.replies += 1

    def _power_on(self) -> None:
        self._tables = {
            table: {
                start + offset: value
                for start, values in self.config.blocks(table).items()
                for offset, value in enumerate(values)
            }
            for table in Table
        }
        self._noise_base = {
            (dynamic.table, dynamic.register): self._tables[dynamic.table][dynamic.register]
            for dynamic in self.config.dynamics
            if dynamic.kind is DynamicKind.NOISE
        }
        self._dynamics = [
            self.env.process(
                self.count_up(dynamic)
                if dynamic.kind is DynamicKind.COUNTER
                else self.jitter(dynamic)
            )
            for dynamic in self.config.dynamics
        ]

    def _forget_traffic(self) -> None:
        self._epoch += 1
        self._rx.clear()
        self._rx_chunks += 1

    def _check_address(self, table: Table, address: int) -> None:
        if address not in self._tables[table]:
            raise ValueError(
                f"{table} address must be one of {_describe(self.config.blocks(table))} "
                f"on slave {self.address}, not {address!r}"
            )

    def _store(self, table: Table, address: int, value: int) -> None:
        self._tables[table][address] = value
        if (table, address) in self._noise_base:
            self._noise_base[(table, address)] = value

    def _end_frame(self, chunk: int) -> None:
        if chunk != self._rx_chunks:
            return
        frame = bytes(self._rx)
        self._rx.clear()
        self._handle(frame)

    def _handle(self, frame: bytes) -> None:
        self.stats.frames += 1
        if not check_crc(frame):
            self.stats.bad_crc += 1
            return
        address = frame[0]
        if address not in (BROADCAST, self.address):
            self.stats.not_mine += 1
            return
        response: Response
        try:
            request = decode_request(frame)
        except IllegalRequestError as exc:
            response = self._refuse(frame[1], exc.code)
        except RemoteProtocolError:
            self.stats.bad_frame += 1
            return
        else:
            response = self._execute(request)
        if address == BROADCAST:
            self.stats.broadcasts += 1
            return
        self.env.process(self.answer(encode_response(response), self._epoch))

    def _refuse(self, function: int, code: ExceptionCode) -> ExceptionResponse:
        self.stats.exceptions += 1
        return ExceptionResponse(address=self.address, function=function, code=code)

    def _has_span(self, table: Table, start: int, quantity: int) -> bool:
        values = self._tables[table]
        return all(address in values for address in range(start, start + quantity))

    def _execute(self, request: Request) -> Response:
        match request:
            case ReadRequest(function=function, start=start, quantity=quantity):
                table = _READ_TABLE[function]
                if not self._has_span(table, start, quantity):
                    return self._refuse(function, ExceptionCode.ILLEGAL_DATA_ADDRESS)
                values = tuple(self._tables[table][start + i] for i in range(quantity))
                if function in READ_BIT_FUNCTIONS:
                    bits = tuple(bool(value) for value in values)
                    return ReadBitsResponse(address=self.address, function=function, bits=bits)
                return ReadRegistersResponse(address=self.address, function=function, values=values)
            case WriteSingleCoil(start=start, value=on):
                if not self._has_span(Table.COIL, start, 1):
                    return self._refuse(
                        FunctionCode.WRITE_SINGLE_COIL, ExceptionCode.ILLEGAL_DATA_ADDRESS
                    )
                self._store(Table.COIL, start, int(on))
                return replace(request, address=self.address)
            case WriteSingleRegister(start=start, value=value):
                if not self._has_span(Table.HOLDING, start, 1):
                    return self._refuse(
                        FunctionCode.WRITE_SINGLE_REGISTER, ExceptionCode.ILLEGAL_DATA_ADDRESS
                    )
                self._store(Table.HOLDING, start, value)
                return replace(request, address=self.address)
            case WriteMultipleCoils(start=start, values=bits):
                return self._write_many(
                    FunctionCode.WRITE_MULTIPLE_COILS, Table.COIL, start, [int(bit) for bit in bits]
                )
            case WriteMultipleRegisters(start=start, values=values):
                return self._write_many(
                    FunctionCode.WRITE_MULTIPLE_REGISTERS, Table.HOLDING, start, list(values)
                )
            case _:
                assert_never(request)

    def _write_many(
        self, function: FunctionCode, table: Table, start: int, values: list[int]
    ) -> Response:
        if not self._has_span(table, start, len(values)):
            return self._refuse(function, ExceptionCode.ILLEGAL_DATA_ADDRESS)
        for offset, value in enumerate(values):
            self._store(table, start + offset, value)
        return WriteMultipleResponse(
            address=self.address, function=function, start=start, quantity=len(values)
        )
