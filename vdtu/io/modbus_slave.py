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
control-side pokes can change values, never the set of addresses.

Register dynamics (counters, noise) do not tick: a dynamic register's value is
computed when it is read (a Modbus read, ``peek``, ``snapshot``), from its anchor,
the value it had at the start of some period (the configured value at power-on, or
what a write or poke put there), and the number of whole periods since:

* a counter reads ``(anchor + step * periods) mod 65536``;
* a noisy register reads its anchor until its first period ends after the anchor,
  then ``anchor ± offset``, clamped to 0..65535, where the offset of period ``k`` is
  drawn from ``keyed(key, power cycle, register, k)``: a function of the slave's key
  (one draw from its ``rng`` when it is built), so a run replays from its seed and a
  value reads the same whenever, and however often, it is read.

Periods count from power-on (``reset()`` starts them again); one that ends exactly
at the read is not yet counted (``vdtu.clock.periods``). A slave nobody reads
costs nothing, however long the run.

Faults (their record lives in the ``_faults`` slot, None on a healthy slave):

* offline (``set_online(False)``): hears nothing, says nothing;
* ``answer_late(ms)``: every answer leaves ``ms`` after the request was recognised
  instead of ``response_delay_s`` (past the master's timeout it is no answer, and
  the late answer then lands on the bus as a stray frame);
* ``corrupt_crc(rate)``: a fraction ``rate`` of the answers go out with their CRC
  inverted (``crc ^ 0xFFFF``, so never right by chance); whether one answer is hit is
  drawn from the slave's ``rng`` (rate 1.0 draws nothing);
* ``answer_exception(code)``: every request addressed to the slave (a sound frame,
  function 1..127) is refused with exception ``code`` and not carried out; a
  broadcast is neither carried out nor answered.

They are conditions of the slave device, so they outlast ``reset()`` (a power cycle
of the unit); ``clear_faults`` ends the last three, ``set_online(True)`` the first.

The slave's configuration (tables, dynamics, the demo slave) is in ``modbus_config``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, assert_never

import simpy

from vdtu.checks import check_choice, check_number, check_probability
from vdtu.clock.periods import periods_before
from vdtu.clock.rng import keyed
from vdtu.errors import RemoteProtocolError
from vdtu.io.modbus_config import (
    BIT_TABLES,
    MAX_FRAME_BYTES,
    READ_TABLE,
    Dynamic,
    DynamicKind,
    ModbusSlaveConfig,
    Table,
    describe_blocks,
)
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
    crc16,
    decode_request,
    encode_response,
)

if TYPE_CHECKING:
    from vdtu.clock.rng import RandomSource


_TABLE_KEY = {table: index << 16 for index, table in enumerate(Table)}


def _key(table: Table, address: int) -> int:
    """One int for (table, address): the table's index above the 16-bit address."""
    return _TABLE_KEY[table] | address


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
    corrupted: int = 0
    """Answers sent with a bad CRC (the slave-crc fault)."""


MAX_LATE_MS = 60_000.0
"""The latest a slow slave answers (the slave-slow fault)."""


class _SlaveFaults:
    """A faulted slave's answers (see the module docstring)."""

    __slots__ = ("crc_rate", "delay_s", "exception")

    def __init__(self) -> None:
        self.delay_s: float | None = None
        self.crc_rate: float | None = None
        self.exception: ExceptionCode | None = None

    @property
    def idle(self) -> bool:
        return self.delay_s is None and self.crc_rate is None and self.exception is None

    def snapshot(self) -> dict[str, Any]:
        return {
            "late_ms": None if self.delay_s is None else self.delay_s * 1000.0,
            "crc_rate": self.crc_rate,
            "exception": None if self.exception is None else int(self.exception),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusSlaveSnapshot:
    """A copy of a slave's state for displays and the control API."""

    name: str
    address: int
    online: bool
    tables: dict[Table, dict[int, int]]
    """Every table, address -> value."""
    stats: SlaveStats
    faults: dict[str, Any] | None = None
    """``late_ms``, ``crc_rate`` and ``exception`` while a fault is on, else None."""


class ModbusSlave:
    """A Modbus RTU slave device on an RS-485 bus.

    Args:
        env: the SimPy environment.
        rng: the slave's own random source (the key of its noise dynamics, CRC faults).
        line: the bus to attach to (a ``SerialLine``).
        config: address, tables, response delay and dynamics.
        name: the tap's name on the bus (default ``modbus-<address>``).
    """

    __slots__ = (
        "_anchors",
        "_changed",
        "_cycle",
        "_epoch",
        "_faults",
        "_noise_key",
        "_on_at",
        "_online",
        "_rx",
        "_rx_chunks",
        "config",
        "env",
        "line",
        "name",
        "rng",
        "stats",
        "tap",
    )

    def __init__(
        self,
        env: simpy.Environment,
        rng: RandomSource,
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
        self._faults: _SlaveFaults | None = None
        """How the slave's answers are faulted; None while healthy."""
        self._epoch = 0
        self._rx = bytearray()
        self._rx_chunks = 0
        self._changed: dict[int, int] = {}
        """Values of registers without a dynamic that differ from the config's (written or
        poked), by ``_key``; the config's ``values`` hold the rest, shared by every slave."""
        self._anchors: dict[int, tuple[int, int]] = {}
        """Dynamic registers written or poked since power-on, by ``_key``: (the value
        written, the index of the period it was written in). The others are anchored at
        their configured value and period 0."""
        self._noise_key = rng.randrange(1 << 64)
        """The key of the noise draws (see the module docstring)."""
        self._on_at = float(env.now)
        """The sim time of the last power-on: periods count from here."""
        self._cycle = 0
        """Power cycles so far (noise draws differ from one to the next)."""
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

    def answer_late(self, ms: float) -> None:
        """The slave-slow fault: answer ``ms`` (0..60000) after a request, not
        ``response_delay_s``.

        Raises:
            ValueError: ``ms`` out of range.
        """
        delay_s = check_number("ms", ms, 0.0, MAX_LATE_MS) / 1000.0
        self._ensure_faults().delay_s = delay_s

    def answer_on_time(self) -> None:
        """End the slave-slow fault."""
        if self._faults is not None:
            self._faults.delay_s = None
            self._drop_idle_faults()

    def corrupt_crc(self, rate: float = 1.0) -> None:
        """The slave-crc fault: a fraction ``rate`` (0..1) of the answers carry a bad CRC.

        Raises:
            ValueError: ``rate`` out of range.
        """
        self._ensure_faults().crc_rate = check_probability("rate", rate)

    def stop_corrupting_crc(self) -> None:
        """End the slave-crc fault."""
        if self._faults is not None:
            self._faults.crc_rate = None
            self._drop_idle_faults()

    def answer_exception(self, code: int) -> None:
        """The slave-exception fault: refuse every request with exception ``code``
        (1, 2, 3, 4, 5, 6, 8, 10 or 11).

        Raises:
            ValueError: not a Modbus exception code.
        """
        allowed = [int(member) for member in ExceptionCode]
        self._ensure_faults().exception = ExceptionCode(check_choice("code", code, allowed))

    def stop_exception(self) -> None:
        """End the slave-exception fault: requests are carried out again."""
        if self._faults is not None:
            self._faults.exception = None
            self._drop_idle_faults()

    def clear_faults(self) -> None:
        """End the slow, CRC and exception faults (``online`` is left as it is)."""
        self._faults = None

    def _ensure_faults(self) -> _SlaveFaults:
        if self._faults is None:
            self._faults = _SlaveFaults()
        return self._faults

    def _drop_idle_faults(self) -> None:
        if self._faults is not None and self._faults.idle:
            self._faults = None

    def reset(self) -> None:
        """Power-cycle the slave: tables back to the config, traffic dropped, dynamics restarted.

        ``online`` and the answer faults are kept: being cut off the bus, or a slave's
        own failure, is not cured by a power cycle of the unit.
        """
        self._forget_traffic()
        self._power_on()

    def snapshot(self) -> ModbusSlaveSnapshot:
        """A copy of the tables, flags and counters."""
        return ModbusSlaveSnapshot(
            name=self.name,
            address=self.address,
            online=self._online,
            tables={
                table: {address: self._value(table, address) for address in values}
                for table, values in self.config.values.items()
            },
            stats=replace(self.stats),
            faults=None if self._faults is None else self._faults.snapshot(),
        )

    def peek(self, table: Table, address: int) -> int:
        """The value at ``address`` of ``table`` (0/1 for bits).

        Raises:
            ValueError: ``address`` is not configured in that table.
        """
        self._check_address(table, address)
        return self._value(table, address)

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

    def _period(self, dynamic: Dynamic) -> int:
        """The index of the period of ``dynamic`` running now (0 until the first ends)."""
        return periods_before(self._on_at, float(self.env.now), dynamic.period_s)

    def _dynamic_value(self, dynamic: Dynamic) -> int:
        """A dynamic register's value now (see the module docstring)."""
        key = _key(dynamic.table, dynamic.register)
        anchor = self._anchors.get(key)
        if anchor is None:
            anchor = (self.config.values[dynamic.table][dynamic.register], 0)
        value, since = anchor
        period = self._period(dynamic)
        if dynamic.kind is DynamicKind.COUNTER:
            return (value + dynamic.step * (period - since)) % 0x10000
        if period == since:
            return value
        draws = keyed(self._noise_key, self._cycle, key, period)
        offset = draws.randint(-dynamic.amplitude, dynamic.amplitude)
        return min(max(value + offset, 0), 0xFFFF)

    def answer(self, frame: bytes, epoch: int) -> Generator[simpy.Event, Any, None]:
        """Process: send ``frame`` after the response delay, unless reset or silenced meanwhile.

        A slow slave waits its fault's delay instead; a slave with the CRC fault may
        corrupt the frame's CRC as it sends it.
        """
        faults = self._faults
        delay_s = self.config.response_delay_s
        if faults is not None and faults.delay_s is not None:
            delay_s = faults.delay_s
        yield self.env.timeout(delay_s)
        if epoch != self._epoch:
            return
        faults = self._faults
        if faults is not None and faults.crc_rate is not None:
            rate = faults.crc_rate
            if rate >= 1.0 or (rate > 0.0 and self.rng.random() < rate):
                bad = crc16(frame[:-2]) ^ 0xFFFF
                frame = frame[:-2] + bad.to_bytes(2, "little")
                self.stats.corrupted += 1
        self.tap.send(frame)
        self.stats.replies += 1

    def _power_on(self) -> None:
        self._changed = {}
        self._anchors = {}
        self._on_at = float(self.env.now)
        self._cycle += 1

    def _forget_traffic(self) -> None:
        self._epoch += 1
        self._rx.clear()
        self._rx_chunks += 1

    def _check_address(self, table: Table, address: int) -> None:
        if address not in self.config.values[table]:
            raise ValueError(
                f"{table} address must be one of {describe_blocks(self.config.blocks(table))} "
                f"on slave {self.address}, not {address!r}"
            )

    def _value(self, table: Table, address: int) -> int:
        """The value at a configured address: its dynamic's, changed, or as configured."""
        dynamic = self.config.dynamic_of.get((table, address))
        if dynamic is not None:
            return self._dynamic_value(dynamic)
        value = self._changed.get(_key(table, address))
        return self.config.values[table][address] if value is None else value

    def _store(self, table: Table, address: int, value: int) -> None:
        """Write a value; a dynamic register is anchored there (a noisy one's base moves)."""
        dynamic = self.config.dynamic_of.get((table, address))
        if dynamic is None:
            self._changed[_key(table, address)] = value
        else:
            self._anchors[_key(table, address)] = (value, self._period(dynamic))

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
        faults = self._faults
        if faults is not None and faults.exception is not None:
            if not 1 <= frame[1] < 0x80:
                self.stats.bad_frame += 1
                return
            if address == BROADCAST:
                self.stats.broadcasts += 1
                return
            response = self._refuse(frame[1], faults.exception)
            self.env.process(self.answer(encode_response(response), self._epoch))
            return
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
        values = self.config.values[table]
        return all(address in values for address in range(start, start + quantity))

    def _execute(self, request: Request) -> Response:
        match request:
            case ReadRequest(function=function, start=start, quantity=quantity):
                table = READ_TABLE[function]
                if not self._has_span(table, start, quantity):
                    return self._refuse(function, ExceptionCode.ILLEGAL_DATA_ADDRESS)
                values = tuple(self._value(table, start + i) for i in range(quantity))
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
