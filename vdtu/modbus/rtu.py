"""Modbus RTU frames: CRC, typed requests and responses, and their codecs (pure, stdlib only).

An RTU frame is the slave address, a PDU and a CRC-16, with nothing around it:
frames are delimited on the wire by 3.5 character times of silence, which is
the job of whoever listens to the line (``vdtu.io.modbus_slave``), not of this
module. Every function here takes one *complete* frame (or builds one).

Frame layouts (all multi-byte fields big-endian, except the CRC)::

    request, functions 1-4   | addr | fc | start | quantity |                crc |  8 bytes
    request, function 5      | addr | 05 | coil  | FF 00 (on) / 00 00 (off) | crc |  8 bytes
    request, function 6      | addr | 06 | reg   | value    |                crc |  8 bytes
    request, functions 15/16 | addr | fc | start | quantity | n | n data bytes | crc |  9+n
    response, functions 1/2  | addr | fc | n | n bytes of bits |  crc |  5+n
    response, functions 3/4  | addr | fc | n | n/2 registers  |  crc |  5+n
    response, functions 5/6  an echo of the request                     8 bytes
    response, functions 15/16| addr | fc | start | quantity |   crc |  8 bytes
    exception response       | addr | fc|0x80 | code |         crc |  5 bytes

    crc: CRC-16/MODBUS (reflected polynomial 0xA001, initial value 0xFFFF) over
    every byte before it, sent LOW byte first. Bits are packed LSB first: coil
    ``start`` is bit 0 of the first data byte.

Invariants:

* A request or response object is valid once it exists (``__post_init__``
  checks every field), so ``encode_*`` cannot fail on a constructed object,
  except that a response never carries the broadcast address 0.
* ``decode_*`` either returns a valid object or raises ``RemoteProtocolError``
  whose ``reply_hint`` says what a slave does about it: ``bad-crc`` and
  ``bad-frame`` (a slave stays silent), or, from ``decode_request`` only, an
  ``IllegalRequestError`` carrying the Modbus exception code to answer with.
* ``decode_response(encode_response(r)) == r`` for every response, except
  that read-bits responses come back padded to whole bytes (the frame does
  not say how many bits were asked for).
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass
from enum import IntEnum
from typing import assert_never

from vdtu.errors import RemoteProtocolError

BROADCAST = 0
"""The broadcast address: every slave acts on a write sent to it, none answers."""

MAX_READ_BITS = 2000
MAX_READ_REGISTERS = 125
MAX_WRITE_COILS = 1968
MAX_WRITE_REGISTERS = 123

COIL_ON = 0xFF00
"""The value that switches a coil on in function 5 (``0x0000`` switches it off)."""


class FunctionCode(IntEnum):
    """The Modbus function codes vdtu speaks."""

    READ_COILS = 1
    READ_DISCRETE_INPUTS = 2
    READ_HOLDING_REGISTERS = 3
    READ_INPUT_REGISTERS = 4
    WRITE_SINGLE_COIL = 5
    WRITE_SINGLE_REGISTER = 6
    WRITE_MULTIPLE_COILS = 15
    WRITE_MULTIPLE_REGISTERS = 16


READ_BIT_FUNCTIONS = frozenset({FunctionCode.READ_COILS, FunctionCode.READ_DISCRETE_INPUTS})
READ_REGISTER_FUNCTIONS = frozenset(
    {FunctionCode.READ_HOLDING_REGISTERS, FunctionCode.READ_INPUT_REGISTERS}
)
READ_FUNCTIONS = READ_BIT_FUNCTIONS | READ_REGISTER_FUNCTIONS
_FUNCTION_VALUES = frozenset(int(code) for code in FunctionCode)
WRITE_MULTIPLE_FUNCTIONS = frozenset(
    {FunctionCode.WRITE_MULTIPLE_COILS, FunctionCode.WRITE_MULTIPLE_REGISTERS}
)


class ExceptionCode(IntEnum):
    """Modbus exception codes (the byte after ``fc | 0x80``)."""

    ILLEGAL_FUNCTION = 1
    ILLEGAL_DATA_ADDRESS = 2
    ILLEGAL_DATA_VALUE = 3
    SLAVE_DEVICE_FAILURE = 4
    ACKNOWLEDGE = 5
    SLAVE_DEVICE_BUSY = 6
    MEMORY_PARITY_ERROR = 8
    GATEWAY_PATH_UNAVAILABLE = 10
    GATEWAY_TARGET_FAILED_TO_RESPOND = 11

    @property
    def hint(self) -> str:
        """The name as a reply hint: ``ILLEGAL_DATA_VALUE`` -> ``illegal-data-value``."""
        return self.name.lower().replace("_", "-")


class IllegalRequestError(RemoteProtocolError):
    """A well-framed request that a slave must refuse with a Modbus exception response.

    Args:
        message: what was wrong, naming the bad value.
        code: the exception code to answer with; ``reply_hint`` is its ``hint``.
    """

    def __init__(self, message: str, *, code: ExceptionCode) -> None:
        super().__init__(message, reply_hint=code.hint)
        self.code = code


def _make_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


def _make_pair_table() -> array[int]:
    """The CRC after two bytes, for each value of (CRC xor the two bytes, low byte first):
    two steps of ``_CRC_TABLE`` folded into one lookup (128 KB)."""
    table = _CRC_TABLE
    return array(
        "H",
        ((table[x & 0xFF] >> 8) ^ table[((x >> 8) ^ table[x & 0xFF]) & 0xFF] for x in range(65536)),
    )


_CRC_PAIR_TABLE = _make_pair_table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of ``data``, two bytes a step (``_CRC_PAIR_TABLE``).

    Returns:
        The CRC as an integer; on the wire it goes low byte first
        (``crc16(b"\\x01\\x03\\x00\\x00\\x00\\x01") == 0x0A84``, sent as ``84 0A``).
    """
    even = len(data) & ~1
    words = array("H", bytes(data[:even]))
    if sys.byteorder == "big":
        words.byteswap()  # each pair is read low byte first
    crc, pairs = 0xFFFF, _CRC_PAIR_TABLE
    for word in words:
        crc = pairs[crc ^ word]
    if even != len(data):
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ data[-1]) & 0xFF]
    return crc


def append_crc(data: bytes) -> bytes:
    """``data`` (address and PDU) followed by its CRC, low byte first."""
    return bytes(data) + crc16(data).to_bytes(2, "little")


def check_crc(frame: bytes) -> bool:
    """True if the last two bytes of ``frame`` are the CRC of the rest.

    Frames shorter than 4 bytes (address, function, CRC) are never valid.
    """
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}, not {value!r}")


def _check_function(function: int, allowed: frozenset[FunctionCode]) -> None:
    if function not in allowed:
        names = ", ".join(str(int(code)) for code in sorted(allowed))
        raise ValueError(f"function must be one of {names}, not {function}")


def _read_limit(function: int) -> int:
    return MAX_READ_BITS if function in READ_BIT_FUNCTIONS else MAX_READ_REGISTERS


def _write_limit(function: int) -> int:
    return MAX_WRITE_COILS if function == FunctionCode.WRITE_MULTIPLE_COILS else MAX_WRITE_REGISTERS


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadRequest:
    """Read coils, discrete inputs, holding or input registers (functions 1-4)."""

    address: int
    """Slave address, 1..247 (a read is never broadcast)."""
    function: FunctionCode
    """One of the four read functions."""
    start: int
    """Data address of the first item, 0..65535."""
    quantity: int
    """How many items: 1..2000 bits or 1..125 registers."""

    def __post_init__(self) -> None:
        _check_function(self.function, READ_FUNCTIONS)
        _check_range("address", self.address, 1, 247)
        _check_range("start", self.start, 0, 0xFFFF)
        _check_range("quantity", self.quantity, 1, _read_limit(self.function))


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteSingleCoil:
    """Switch one coil (function 5). Also its response, which is an echo."""

    address: int
    """Slave address, 0 (broadcast) or 1..247."""
    start: int
    """Data address of the coil, 0..65535."""
    value: bool
    """On (``FF 00`` on the wire) or off (``00 00``)."""

    def __post_init__(self) -> None:
        _check_range("address", self.address, 0, 247)
        _check_range("start", self.start, 0, 0xFFFF)


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteSingleRegister:
    """Write one holding register (function 6). Also its response, which is an echo."""

    address: int
    """Slave address, 0 (broadcast) or 1..247."""
    start: int
    """Data address of the register, 0..65535."""
    value: int
    """The new value, 0..65535."""

    def __post_init__(self) -> None:
        _check_range("address", self.address, 0, 247)
        _check_range("start", self.start, 0, 0xFFFF)
        _check_range("value", self.value, 0, 0xFFFF)


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteMultipleCoils:
    """Switch consecutive coils (function 15)."""

    address: int
    """Slave address, 0 (broadcast) or 1..247."""
    start: int
    """Data address of the first coil, 0..65535."""
    values: tuple[bool, ...]
    """1..1968 coil states, the first one for ``start``."""

    def __post_init__(self) -> None:
        _check_range("address", self.address, 0, 247)
        _check_range("start", self.start, 0, 0xFFFF)
        _check_range("number of coils", len(self.values), 1, MAX_WRITE_COILS)


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteMultipleRegisters:
    """Write consecutive holding registers (function 16)."""

    address: int
    """Slave address, 0 (broadcast) or 1..247."""
    start: int
    """Data address of the first register, 0..65535."""
    values: tuple[int, ...]
    """1..123 values of 0..65535, the first one for ``start``."""

    def __post_init__(self) -> None:
        _check_range("address", self.address, 0, 247)
        _check_range("start", self.start, 0, 0xFFFF)
        _check_range("number of registers", len(self.values), 1, MAX_WRITE_REGISTERS)
        for value in self.values:
            _check_range("register value", value, 0, 0xFFFF)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadBitsResponse:
    """Coils or discrete inputs read (response to function 1 or 2)."""

    address: int
    """Slave address, 1..247."""
    function: FunctionCode
    """``READ_COILS`` or ``READ_DISCRETE_INPUTS``."""
    bits: tuple[bool, ...]
    """1..2000 bit values; on the wire padded with zeros to whole bytes."""

    def __post_init__(self) -> None:
        _check_function(self.function, READ_BIT_FUNCTIONS)
        _check_range("address", self.address, 1, 247)
        _check_range("number of bits", len(self.bits), 1, MAX_READ_BITS)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadRegistersResponse:
    """Holding or input registers read (response to function 3 or 4)."""

    address: int
    """Slave address, 1..247."""
    function: FunctionCode
    """``READ_HOLDING_REGISTERS`` or ``READ_INPUT_REGISTERS``."""
    values: tuple[int, ...]
    """1..125 register values of 0..65535."""

    def __post_init__(self) -> None:
        _check_function(self.function, READ_REGISTER_FUNCTIONS)
        _check_range("address", self.address, 1, 247)
        _check_range("number of registers", len(self.values), 1, MAX_READ_REGISTERS)
        for value in self.values:
            _check_range("register value", value, 0, 0xFFFF)


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteMultipleResponse:
    """Acknowledgement of function 15 or 16: where and how many were written."""

    address: int
    """Slave address, 1..247."""
    function: FunctionCode
    """``WRITE_MULTIPLE_COILS`` or ``WRITE_MULTIPLE_REGISTERS``."""
    start: int
    """Data address of the first item written, 0..65535."""
    quantity: int
    """How many were written: 1..1968 coils or 1..123 registers."""

    def __post_init__(self) -> None:
        _check_function(self.function, WRITE_MULTIPLE_FUNCTIONS)
        _check_range("address", self.address, 1, 247)
        _check_range("start", self.start, 0, 0xFFFF)
        _check_range("quantity", self.quantity, 1, _write_limit(self.function))


@dataclass(frozen=True, slots=True, kw_only=True)
class ExceptionResponse:
    """A refusal: ``function | 0x80`` and an exception code."""

    address: int
    """Slave address, 1..247."""
    function: int
    """The function code of the refused request, 1..127 (without the 0x80 bit)."""
    code: ExceptionCode
    """Why it was refused."""

    def __post_init__(self) -> None:
        _check_range("address", self.address, 1, 247)
        _check_range("function", self.function, 1, 127)


Request = (
    ReadRequest
    | WriteSingleCoil
    | WriteSingleRegister
    | WriteMultipleCoils
    | WriteMultipleRegisters
)
"""Every request a master can send."""

Response = (
    ReadBitsResponse
    | ReadRegistersResponse
    | WriteSingleCoil
    | WriteSingleRegister
    | WriteMultipleResponse
    | ExceptionResponse
)
"""Every answer a slave can give (single writes are answered with an echo)."""


def pack_bits(bits: tuple[bool, ...]) -> bytes:
    """Pack bits LSB first into whole bytes, padding the last byte with zeros."""
    packed = bytearray((len(bits) + 7) // 8)
    for index, bit in enumerate(bits):
        if bit:
            packed[index // 8] |= 1 << (index % 8)
    return bytes(packed)


def unpack_bits(data: bytes, count: int) -> tuple[bool, ...]:
    """The first ``count`` bits of ``data``, LSB of the first byte first."""
    return tuple(bool(data[index // 8] >> (index % 8) & 1) for index in range(count))


def _coil_word(value: bool) -> int:
    return COIL_ON if value else 0x0000


def _encode_single(request: WriteSingleCoil | WriteSingleRegister) -> bytes:
    if isinstance(request, WriteSingleCoil):
        return struct.pack(
            ">BBHH",
            request.address,
            FunctionCode.WRITE_SINGLE_COIL,
            request.start,
            _coil_word(request.value),
        )
    return struct.pack(
        ">BBHH", request.address, FunctionCode.WRITE_SINGLE_REGISTER, request.start, request.value
    )


def encode_request(request: Request) -> bytes:
    """The complete RTU frame (with CRC) for ``request``."""
    match request:
        case ReadRequest():
            body = struct.pack(
                ">BBHH", request.address, request.function, request.start, request.quantity
            )
        case WriteSingleCoil() | WriteSingleRegister():
            body = _encode_single(request)
        case WriteMultipleCoils():
            data = pack_bits(request.values)
            body = struct.pack(
                ">BBHHB",
                request.address,
                FunctionCode.WRITE_MULTIPLE_COILS,
                request.start,
                len(request.values),
                len(data),
            )
            body += data
        case WriteMultipleRegisters():
            count = len(request.values)
            body = struct.pack(
                f">BBHHB{count}H",
                request.address,
                FunctionCode.WRITE_MULTIPLE_REGISTERS,
                request.start,
                count,
                2 * count,
                *request.values,
            )
        case _:
            assert_never(request)
    return append_crc(body)


def encode_response(response: Response) -> bytes:
    """The complete RTU frame (with CRC) for ``response``.

    Raises:
        ValueError: a single-write echo carries the broadcast address (nobody
            answers a broadcast).
    """
    match response:
        case ReadBitsResponse():
            data = pack_bits(response.bits)
            body = bytes((response.address, response.function, len(data))) + data
        case ReadRegistersResponse():
            count = len(response.values)
            body = struct.pack(
                f">BBB{count}H", response.address, response.function, 2 * count, *response.values
            )
        case WriteSingleCoil() | WriteSingleRegister():
            _check_range("address", response.address, 1, 247)
            body = _encode_single(response)
        case WriteMultipleResponse():
            body = struct.pack(
                ">BBHH", response.address, response.function, response.start, response.quantity
            )
        case ExceptionResponse():
            body = bytes((response.address, response.function | 0x80, response.code))
        case _:
            assert_never(response)
    return append_crc(body)


def _unwrap(frame: bytes) -> bytes:
    """Check length, CRC and address; return the frame without its CRC."""
    if len(frame) < 4:
        raise RemoteProtocolError(
            f"a Modbus RTU frame has at least 4 bytes, not {len(frame)}: {frame.hex(' ')!r}",
            reply_hint="bad-frame",
        )
    if not check_crc(frame):
        raise RemoteProtocolError(
            f"CRC must be {crc16(frame[:-2]).to_bytes(2, 'little').hex(' ')!r}, "
            f"not {frame[-2:].hex(' ')!r}",
            reply_hint="bad-crc",
        )
    if frame[0] > 247:
        raise RemoteProtocolError(
            f"slave address must be 0..247, not {frame[0]}", reply_hint="bad-frame"
        )
    return bytes(frame[:-2])


def _expect_length(body: bytes, length: int, what: str, *, at_least: bool = False) -> None:
    if len(body) < length or (len(body) > length and not at_least):
        size = f"at least {length + 2}" if at_least else str(length + 2)
        raise RemoteProtocolError(
            f"{what} must have {size} bytes with the CRC, not {len(body) + 2}: {body.hex(' ')!r}",
            reply_hint="bad-frame",
        )


def _refuse_bad_value(exc: ValueError) -> IllegalRequestError:
    return IllegalRequestError(str(exc), code=ExceptionCode.ILLEGAL_DATA_VALUE)


def decode_request(frame: bytes) -> Request:
    """Parse one complete request frame, as a slave does.

    Args:
        frame: the bytes between two silences, CRC included.

    Returns:
        The request (address 0 means broadcast: act, do not answer).

    Raises:
        IllegalRequestError: the frame is sound but the request must be
            refused: ``code`` is ``ILLEGAL_FUNCTION`` for a function other than
            1-6, 15, 16 and ``ILLEGAL_DATA_VALUE`` for a bad quantity, byte
            count or coil value.
        RemoteProtocolError: ``reply_hint`` ``bad-crc`` (checksum wrong) or
            ``bad-frame`` (too short, wrong length for its function, function
            0 or >= 128, address above 247, or a broadcast read); a slave
            answers none of these.
    """
    body = _unwrap(frame)
    address, function = body[0], body[1]
    if function == 0 or function >= 0x80:
        raise RemoteProtocolError(
            f"function code must be 1..127, not {function}", reply_hint="bad-frame"
        )
    if function not in _FUNCTION_VALUES:
        raise IllegalRequestError(
            f"function code must be one of 1, 2, 3, 4, 5, 6, 15, 16, not {function}",
            code=ExceptionCode.ILLEGAL_FUNCTION,
        )
    code = FunctionCode(function)
    if code in READ_FUNCTIONS and address == BROADCAST:
        raise RemoteProtocolError(
            f"a read (function {function}) cannot be broadcast", reply_hint="bad-frame"
        )
    if code in WRITE_MULTIPLE_FUNCTIONS:
        return _decode_write_multiple(body, code)
    _expect_length(body, 6, f"a function {function} request")
    start, word = struct.unpack(">HH", body[2:6])
    if code == FunctionCode.WRITE_SINGLE_COIL:
        if word not in (COIL_ON, 0x0000):
            raise IllegalRequestError(
                f"coil value must be 0xFF00 or 0x0000, not {word:#06x}",
                code=ExceptionCode.ILLEGAL_DATA_VALUE,
            )
        return WriteSingleCoil(address=address, start=start, value=word == COIL_ON)
    if code == FunctionCode.WRITE_SINGLE_REGISTER:
        return WriteSingleRegister(address=address, start=start, value=word)
    try:
        return ReadRequest(address=address, function=code, start=start, quantity=word)
    except ValueError as exc:
        raise _refuse_bad_value(exc) from exc


def _check_byte_count(byte_count: int, expected: int, what: str) -> None:
    if byte_count != expected:
        raise ValueError(f"byte count for {what} must be {expected}, not {byte_count}")


def _decode_write_multiple(body: bytes, code: FunctionCode) -> Request:
    _expect_length(body, 7, f"a function {int(code)} request", at_least=True)
    address = body[0]
    start, quantity, byte_count = struct.unpack(">HHB", body[2:7])
    _expect_length(body, 7 + byte_count, f"a function {int(code)} request with {byte_count} bytes")
    data = body[7:]
    try:
        _check_range("quantity", quantity, 1, _write_limit(code))
        if code == FunctionCode.WRITE_MULTIPLE_COILS:
            _check_byte_count(byte_count, (quantity + 7) // 8, f"{quantity} coils")
            return WriteMultipleCoils(
                address=address, start=start, values=unpack_bits(data, quantity)
            )
        _check_byte_count(byte_count, 2 * quantity, f"{quantity} registers")
        values = struct.unpack(f">{quantity}H", data)
        return WriteMultipleRegisters(address=address, start=start, values=values)
    except ValueError as exc:
        raise _refuse_bad_value(exc) from exc


def decode_response(frame: bytes) -> Response:
    """Parse one complete response frame, as a master does.

    Args:
        frame: the bytes between two silences, CRC included.

    Returns:
        The response. Read-bits responses carry every bit of their data bytes
        (a multiple of 8): trim them to the quantity that was asked for.

    Raises:
        RemoteProtocolError: ``reply_hint`` ``bad-crc`` (checksum wrong) or
            ``bad-frame`` (anything else: address 0 or above 247, unknown
            function or exception code, length or byte count that does not
            fit, out-of-range quantity).
    """
    body = _unwrap(frame)
    try:
        return _decode_response_body(body)
    except ValueError as exc:
        raise RemoteProtocolError(
            f"bad response {frame.hex(' ')!r}: {exc}", reply_hint="bad-frame"
        ) from exc


def _decode_response_body(body: bytes) -> Response:
    """Decode a CRC-checked response; any ``ValueError`` means a bad frame."""
    address, function = body[0], body[1]
    _check_range("address", address, 1, 247)
    if function & 0x80:
        _expect_length(body, 3, "an exception response")
        return ExceptionResponse(
            address=address, function=function & 0x7F, code=ExceptionCode(body[2])
        )
    code = FunctionCode(function)
    if code in READ_FUNCTIONS:
        return _decode_read_response(body, code)
    _expect_length(body, 6, f"a function {function} response")
    start, word = struct.unpack(">HH", body[2:6])
    match code:
        case FunctionCode.WRITE_SINGLE_COIL:
            if word not in (COIL_ON, 0x0000):
                raise ValueError(f"coil value must be 0xFF00 or 0x0000, not {word:#06x}")
            return WriteSingleCoil(address=address, start=start, value=word == COIL_ON)
        case FunctionCode.WRITE_SINGLE_REGISTER:
            return WriteSingleRegister(address=address, start=start, value=word)
        case _:
            return WriteMultipleResponse(address=address, function=code, start=start, quantity=word)


def _decode_read_response(body: bytes, code: FunctionCode) -> Response:
    _expect_length(body, 3, f"a function {int(code)} response", at_least=True)
    byte_count = body[2]
    _expect_length(body, 3 + byte_count, f"a function {int(code)} response of {byte_count} bytes")
    data = body[3:]
    if code in READ_BIT_FUNCTIONS:
        return ReadBitsResponse(
            address=body[0], function=code, bits=unpack_bits(data, 8 * byte_count)
        )
    if byte_count % 2:
        raise ValueError(f"byte count of a register response must be even, not {byte_count}")
    values = struct.unpack(f">{byte_count // 2}H", data)
    return ReadRegistersResponse(address=body[0], function=code, values=values)


def _coil_from_word(value: int) -> bool:
    if value in (1, COIL_ON):
        return True
    if value == 0:
        return False
    raise ValueError(f"coil value must be 0, 1, 0x0000 or 0xFF00, not {value!r}")


def build_request(addr: int, function: int, reg: int, value: int) -> bytes:
    """The RTU frame for the XGC ``SEND_MBR_485`` command (docs/spec/xgc.md#5.14).

    ``addr:01;instructions:03;reg:0000;value:0001`` becomes
    ``build_request(1, 3, 0, 1) == bytes.fromhex("01 03 00 00 00 01 84 0A")``.

    Args:
        addr: slave address, 1..247 (0 broadcasts a write).
        function: 1-4 read ``value`` items from ``reg``; 5 switches coil ``reg``
            (``value`` 0/1 or 0x0000/0xFF00); 6 writes register ``reg``; 15 and
            16 write one coil or register with the multiple-write functions.
        reg: data address, 0..65535.
        value: quantity (1-4), coil state (5, 15) or register value (6, 16).

    Raises:
        ValueError: any argument out of range; the message names it and the
            allowed values.
    """
    request: Request
    match function:
        case 1 | 2 | 3 | 4:
            request = ReadRequest(
                address=addr, function=FunctionCode(function), start=reg, quantity=value
            )
        case 5:
            request = WriteSingleCoil(address=addr, start=reg, value=_coil_from_word(value))
        case 6:
            request = WriteSingleRegister(address=addr, start=reg, value=value)
        case 15:
            request = WriteMultipleCoils(address=addr, start=reg, values=(_coil_from_word(value),))
        case 16:
            request = WriteMultipleRegisters(address=addr, start=reg, values=(value,))
        case _:
            raise ValueError(f"function must be one of 1, 2, 3, 4, 5, 6, 15, 16, not {function!r}")
    return encode_request(request)
