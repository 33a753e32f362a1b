"""The Modbus RTU codec: CRC, a case table both ways, errors, properties, pymodbus as oracle."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.pdu import ExceptionResponse as PymodbusExceptionResponse
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadCoilsResponse,
    WriteMultipleCoilsRequest,
    WriteSingleCoilRequest,
)
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersResponse,
    WriteMultipleRegistersRequest,
    WriteSingleRegisterRequest,
)

from vdtu.errors import RemoteProtocolError
from vdtu.modbus import (
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
    append_crc,
    build_request,
    check_crc,
    crc16,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    pack_bits,
    unpack_bits,
)

F = FunctionCode

REQUEST_CASES: list[tuple[Request, str]] = [
    (
        ReadRequest(address=1, function=F.READ_HOLDING_REGISTERS, start=0, quantity=1),
        "010300000001840a",
    ),
    (
        ReadRequest(address=1, function=F.READ_HOLDING_REGISTERS, start=0, quantity=10),
        "01030000000ac5cd",
    ),
    (ReadRequest(address=1, function=F.READ_COILS, start=0, quantity=16), "0101000000103dc6"),
    (WriteSingleCoil(address=1, start=3, value=True), "01050003ff007c3a"),
    (WriteSingleRegister(address=1, start=3, value=7), "0106000300073808"),
    (WriteMultipleCoils(address=1, start=3, values=(True, False, True)), "010f0003000301050b54"),
    (WriteMultipleRegisters(address=1, start=3, values=(1, 2)), "011000030002040001000263bb"),
]
"""Requests and their frames, as pymodbus 3.16 builds them."""

RESPONSE_CASES: list[tuple[Response, str]] = [
    (
        ReadRegistersResponse(address=1, function=F.READ_HOLDING_REGISTERS, values=(0x0115,)),
        "0103020115781b",
    ),
    (
        ExceptionResponse(address=1, function=3, code=ExceptionCode.ILLEGAL_DATA_ADDRESS),
        "018302c0f1",
    ),
    (WriteSingleCoil(address=1, start=3, value=True), "01050003ff007c3a"),
]
"""Responses and their frames: the reply of docs/spec/xgc.md#5.14, and two built by pymodbus."""


def client_framer() -> FramerRTU:
    """A pymodbus RTU framer on the master side (decodes responses)."""
    return FramerRTU(DecodePDU(is_server=False))


def pymodbus_parse(frame: bytes, *, is_server: bool) -> ModbusPDU:
    """Decode one complete frame with pymodbus and insist that it consumed all of it."""
    used, pdu = FramerRTU(DecodePDU(is_server=is_server)).handleFrame(frame, 0, 0)
    assert used == len(frame)
    assert pdu is not None
    return pdu


def test_crc_matches_the_seed() -> None:
    """The xgc.md#5.14 request gets CRC 84 0A on the wire and its reply's 78 1B checks."""
    assert crc16(bytes.fromhex("010300000001")) == 0x0A84
    assert append_crc(bytes.fromhex("010300000001")) == bytes.fromhex("01030000000184 0A")
    assert check_crc(bytes.fromhex("0103020115781B"))


def test_crc_matches_pymodbus() -> None:
    """Our CRC equals pymodbus's (which reports it byte-swapped, high byte first on the wire)."""
    data = bytes.fromhex("01030000000a")
    assert crc16(data).to_bytes(2, "little") == FramerRTU.compute_CRC(data).to_bytes(2, "big")


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_crc_two_bytes_a_step_matches_pymodbus_on_any_length(data: bytes) -> None:
    """Odd and even lengths, the empty frame included, give pymodbus's CRC."""
    assert crc16(data).to_bytes(2, "little") == FramerRTU.compute_CRC(data).to_bytes(2, "big")


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x01",
        b"\x01\x03\x84",
        bytes.fromhex("0103020115781C"),
        bytes.fromhex("0103020115781BFF"),
    ],
)
def test_check_crc_rejects_short_and_damaged_frames(frame: bytes) -> None:
    """Frames under 4 bytes, a flipped CRC bit and trailing garbage all fail the check."""
    assert not check_crc(frame)


@pytest.mark.parametrize(("request_", "frame_hex"), REQUEST_CASES)
def test_request_case_table_both_ways(request_: Request, frame_hex: str) -> None:
    """Each request encodes to its frame and the frame decodes to the request."""
    frame = bytes.fromhex(frame_hex)
    assert encode_request(request_) == frame
    assert decode_request(frame) == request_


@pytest.mark.parametrize(("response", "frame_hex"), RESPONSE_CASES)
def test_response_case_table_both_ways(response: Response, frame_hex: str) -> None:
    """Each response encodes to its frame and the frame decodes to the response."""
    frame = bytes.fromhex(frame_hex)
    assert encode_response(response) == frame
    assert decode_response(frame) == response


def test_build_request_matches_the_seed() -> None:
    """SEND_MBR_485 addr:01;instructions:03;reg:0000;value:0001 sends 01 03 00 00 00 01 84 0A."""
    assert build_request(1, 3, 0, 1) == bytes.fromhex("01 03 00 00 00 01 84 0A")


@pytest.mark.parametrize(("value", "on"), [(1, True), (0xFF00, True), (0, False)])
def test_build_request_coil_values(value: int, on: bool) -> None:
    """Function 5 takes 0/1 or 0x0000/0xFF00 and always emits 0x0000/0xFF00."""
    frame = build_request(1, 5, 2, value)
    assert frame[4:6] == (b"\xff\x00" if on else b"\x00\x00")
    assert decode_request(frame) == WriteSingleCoil(address=1, start=2, value=on)


def test_build_request_multiple_writes_carry_one_item() -> None:
    """Functions 15 and 16 write a single coil or register with quantity 1."""
    assert decode_request(build_request(1, 15, 4, 1)) == WriteMultipleCoils(
        address=1, start=4, values=(True,)
    )
    assert decode_request(build_request(2, 16, 4, 0xBEEF)) == WriteMultipleRegisters(
        address=2, start=4, values=(0xBEEF,)
    )
    assert decode_request(build_request(0, 6, 1, 9)) == WriteSingleRegister(
        address=0, start=1, value=9
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1, 7, 0, 1), "function must be one of 1, 2, 3, 4, 5, 6, 15, 16, not 7"),
        ((1, 5, 0, 2), "coil value must be 0, 1, 0x0000 or 0xFF00, not 2"),
        ((0, 3, 0, 1), "address must be 1..247, not 0"),
        ((248, 6, 0, 1), "address must be 0..247, not 248"),
        ((1, 3, 0, 126), "quantity must be 1..125, not 126"),
        ((1, 1, 0, 2001), "quantity must be 1..2000, not 2001"),
        ((1, 6, 0x10000, 1), "start must be 0..65535, not 65536"),
        ((1, 16, 0, 0x10000), "register value must be 0..65535, not 65536"),
    ],
)
def test_build_request_rejects_bad_arguments(args: tuple[int, int, int, int], message: str) -> None:
    """Bad SEND_MBR_485 arguments raise ValueError naming the value and the allowed range."""
    with pytest.raises(ValueError, match=re.escape(message)):
        build_request(*args)


def test_requests_validate_quantity_limits() -> None:
    """Write-multiple limits are 1968 coils and 123 registers; 0 items is never allowed."""
    WriteMultipleCoils(address=1, start=0, values=(False,) * 1968)
    with pytest.raises(ValueError, match=re.escape("number of coils must be 1..1968, not 1969")):
        WriteMultipleCoils(address=1, start=0, values=(False,) * 1969)
    with pytest.raises(ValueError, match=re.escape("number of registers must be 1..123, not 124")):
        WriteMultipleRegisters(address=1, start=0, values=(0,) * 124)
    with pytest.raises(ValueError, match=re.escape("number of registers must be 1..123, not 0")):
        WriteMultipleRegisters(address=1, start=0, values=())


def test_responses_validate_fields() -> None:
    """Responses refuse the broadcast address and a function that does not match the type."""
    with pytest.raises(ValueError, match=re.escape("address must be 1..247, not 0")):
        ReadBitsResponse(address=0, function=F.READ_COILS, bits=(True,))
    with pytest.raises(ValueError, match="function must be one of 3, 4, not 1"):
        ReadRegistersResponse(address=1, function=F.READ_COILS, values=(1,))
    with pytest.raises(ValueError, match=re.escape("function must be 1..127, not 128")):
        ExceptionResponse(address=1, function=128, code=ExceptionCode.ILLEGAL_FUNCTION)
    with pytest.raises(ValueError, match=re.escape("address must be 1..247, not 0")):
        encode_response(WriteSingleRegister(address=0, start=0, value=0))


def test_pack_and_unpack_bits_lsb_first() -> None:
    """Bit 0 is the LSB of the first byte; the last byte is padded with zeros."""
    assert pack_bits((True, False, True, True, False, False, False, False, True)) == b"\x0d\x01"
    assert unpack_bits(b"\x0d\x01", 9) == (
        True,
        False,
        True,
        True,
        False,
        False,
        False,
        False,
        True,
    )


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (bytes.fromhex("0107"), "illegal-function"),
        (bytes.fromhex("012b0e0100"), "illegal-function"),
        (bytes.fromhex("010300000000"), "illegal-data-value"),
        (bytes.fromhex("01030000007e"), "illegal-data-value"),
        (bytes.fromhex("0101000007d1"), "illegal-data-value"),
        (bytes.fromhex("010500001234"), "illegal-data-value"),
        (bytes.fromhex("010f000007b1f7") + bytes(247), "illegal-data-value"),
        (bytes.fromhex("010f0000000901ff"), "illegal-data-value"),
        (bytes.fromhex("011000000002020001"), "illegal-data-value"),
        (bytes.fromhex("01100000007cf8") + bytes(248), "illegal-data-value"),
        (bytes.fromhex("01100000000000"), "illegal-data-value"),
    ],
)
def test_decode_request_refusals(body: bytes, hint: str) -> None:
    """A sound frame with an unsupported function or a bad value names the exception to answer."""
    with pytest.raises(IllegalRequestError) as caught:
        decode_request(append_crc(body))
    assert caught.value.reply_hint == hint
    assert caught.value.code.hint == hint


@pytest.mark.parametrize(
    ("frame", "hint"),
    [
        (b"\x01\x03", "bad-frame"),
        (bytes.fromhex("010300000001840b"), "bad-crc"),
        (bytes.fromhex("010300000001840aff"), "bad-crc"),
        (append_crc(bytes.fromhex("0103000000")), "bad-frame"),
        (append_crc(bytes.fromhex("01030000000100")), "bad-frame"),
        (append_crc(bytes.fromhex("000300000001")), "bad-frame"),
        (append_crc(bytes.fromhex("f80300000001")), "bad-frame"),
        (append_crc(bytes.fromhex("0183")), "bad-frame"),
        (append_crc(bytes.fromhex("0100")), "bad-frame"),
        (append_crc(bytes.fromhex("010f00000009")), "bad-frame"),
        (append_crc(bytes.fromhex("0110000000010200")), "bad-frame"),
    ],
)
def test_decode_request_framing_errors(frame: bytes, hint: str) -> None:
    """Short, damaged, mis-sized, bad-address and broadcast-read frames are not answerable."""
    with pytest.raises(RemoteProtocolError) as caught:
        decode_request(frame)
    assert caught.value.reply_hint == hint
    assert not isinstance(caught.value, IllegalRequestError)


@pytest.mark.parametrize(
    "body",
    [
        bytes.fromhex("000302000a"),  # address 0
        bytes.fromhex("018309"),  # unknown exception code
        bytes.fromhex("018000"),  # exception for function 0
        bytes.fromhex("01030300010002"),  # odd register byte count
        bytes.fromhex("0103040001"),  # byte count larger than the data
        bytes.fromhex("010100"),  # zero bytes of bits
        bytes.fromhex("010500011234"),  # coil echo with a bad value
        bytes.fromhex("010f00000000"),  # zero coils written
        bytes.fromhex("0107"),  # unknown function
        bytes.fromhex("0103"),  # no byte count
    ],
)
def test_decode_response_bad_frames(body: bytes) -> None:
    """Every malformed response is reported as bad-frame."""
    frame = append_crc(body)
    with pytest.raises(RemoteProtocolError) as caught:
        decode_response(frame)
    assert caught.value.reply_hint == "bad-frame"


def test_decode_response_bad_crc() -> None:
    """A response whose CRC does not match is reported as bad-crc."""
    with pytest.raises(RemoteProtocolError) as caught:
        decode_response(bytes.fromhex("0103020115781C"))
    assert caught.value.reply_hint == "bad-crc"


def test_read_bits_response_is_padded_to_whole_bytes() -> None:
    """Three bits read come back as eight, the extra ones zero: the frame has no bit count."""
    frame = encode_response(
        ReadBitsResponse(address=1, function=F.READ_COILS, bits=(True, False, True))
    )
    decoded = decode_response(frame)
    assert decoded == ReadBitsResponse(
        address=1, function=F.READ_COILS, bits=(True, False, True) + (False,) * 5
    )


# --- properties ---------------------------------------------------------------------

addresses = st.integers(1, 247)
write_addresses = st.integers(0, 247)
starts = st.integers(0, 0xFFFF)
words = st.integers(0, 0xFFFF)

read_requests = st.sampled_from(
    [F.READ_COILS, F.READ_DISCRETE_INPUTS, F.READ_HOLDING_REGISTERS, F.READ_INPUT_REGISTERS]
).flatmap(
    lambda function: st.builds(
        ReadRequest,
        address=addresses,
        function=st.just(function),
        start=starts,
        quantity=st.integers(1, 125 if function >= F.READ_HOLDING_REGISTERS else 2000),
    )
)
requests: st.SearchStrategy[Request] = st.one_of(
    read_requests,
    st.builds(WriteSingleCoil, address=write_addresses, start=starts, value=st.booleans()),
    st.builds(WriteSingleRegister, address=write_addresses, start=starts, value=words),
    st.builds(
        WriteMultipleCoils,
        address=write_addresses,
        start=starts,
        values=st.lists(st.booleans(), min_size=1, max_size=1968).map(tuple),
    ),
    st.builds(
        WriteMultipleRegisters,
        address=write_addresses,
        start=starts,
        values=st.lists(words, min_size=1, max_size=123).map(tuple),
    ),
)
responses: st.SearchStrategy[Response] = st.one_of(
    st.builds(
        ReadBitsResponse,
        address=addresses,
        function=st.sampled_from([F.READ_COILS, F.READ_DISCRETE_INPUTS]),
        bits=st.integers(1, 250)
        .flatmap(lambda size: st.lists(st.booleans(), min_size=8 * size, max_size=8 * size))
        .map(tuple),
    ),
    st.builds(
        ReadRegistersResponse,
        address=addresses,
        function=st.sampled_from([F.READ_HOLDING_REGISTERS, F.READ_INPUT_REGISTERS]),
        values=st.lists(words, min_size=1, max_size=125).map(tuple),
    ),
    st.builds(WriteSingleCoil, address=addresses, start=starts, value=st.booleans()),
    st.builds(WriteSingleRegister, address=addresses, start=starts, value=words),
    st.builds(
        WriteMultipleResponse,
        address=addresses,
        function=st.just(F.WRITE_MULTIPLE_REGISTERS),
        start=starts,
        quantity=st.integers(1, 123),
    ),
    st.builds(
        WriteMultipleResponse,
        address=addresses,
        function=st.just(F.WRITE_MULTIPLE_COILS),
        start=starts,
        quantity=st.integers(1, 1968),
    ),
    st.builds(
        ExceptionResponse,
        address=addresses,
        function=st.integers(1, 127),
        code=st.sampled_from(ExceptionCode),
    ),
)


@given(requests)
def test_request_round_trip(request_: Request) -> None:
    """decode_request(encode_request(r)) == r, and every encoded frame carries a valid CRC."""
    frame = encode_request(request_)
    assert check_crc(frame)
    assert decode_request(frame) == request_


@given(responses)
def test_response_round_trip(response: Response) -> None:
    """decode_response(encode_response(r)) == r for responses of whole bytes of bits."""
    assert decode_response(encode_response(response)) == response


@given(st.binary(min_size=2, max_size=40))
def test_decode_request_of_any_checksummed_bytes_is_valid_or_refused(body: bytes) -> None:
    """Any bytes with a good CRC decode to a request that re-encodes stably, or are refused."""
    try:
        request_ = decode_request(append_crc(body))
    except RemoteProtocolError as exc:
        hint = exc.reply_hint
    else:
        hint = "ok"
        assert decode_request(encode_request(request_)) == request_
    assert hint in {"ok", "bad-frame", "illegal-function", "illegal-data-value"}


@given(st.binary(min_size=2, max_size=40))
def test_decode_response_of_any_checksummed_bytes_is_valid_or_bad_frame(body: bytes) -> None:
    """Any bytes with a good CRC decode to a response that re-encodes stably, or are bad-frame."""
    try:
        response = decode_response(append_crc(body))
    except RemoteProtocolError as exc:
        hint = exc.reply_hint
    else:
        hint = "ok"
        assert decode_response(encode_response(response)) == response
    assert hint in {"ok", "bad-frame"}


# --- pymodbus as an independent oracle ------------------------------------------------


@given(addresses, st.integers(0, 0xFFFF - 125), st.integers(1, 125))
def test_read_holding_request_equals_pymodbus(address: int, start: int, count: int) -> None:
    """Our read-holding-registers frame is byte for byte what pymodbus builds."""
    ours = encode_request(
        ReadRequest(address=address, function=F.READ_HOLDING_REGISTERS, start=start, quantity=count)
    )
    theirs = client_framer().buildFrame(
        ReadHoldingRegistersRequest(address=start, count=count, dev_id=address)
    )
    assert ours == theirs


@given(addresses, starts, st.lists(words, min_size=1, max_size=123))
def test_write_registers_request_equals_pymodbus(
    address: int, start: int, values: list[int]
) -> None:
    """Our write-multiple-registers frame is byte for byte what pymodbus builds."""
    ours = encode_request(
        WriteMultipleRegisters(address=address, start=start, values=tuple(values))
    )
    theirs = client_framer().buildFrame(
        WriteMultipleRegistersRequest(address=start, registers=values, dev_id=address)
    )
    assert ours == theirs


@given(addresses, starts, st.lists(st.booleans(), min_size=1, max_size=1968))
def test_write_coils_request_equals_pymodbus(address: int, start: int, bits: list[bool]) -> None:
    """Our write-multiple-coils frame is byte for byte what pymodbus builds."""
    ours = encode_request(WriteMultipleCoils(address=address, start=start, values=tuple(bits)))
    theirs = client_framer().buildFrame(
        WriteMultipleCoilsRequest(address=start, bits=bits, dev_id=address)
    )
    assert ours == theirs


def test_single_writes_equal_pymodbus() -> None:
    """Our function 5 and 6 frames are byte for byte what pymodbus builds."""
    framer = client_framer()
    assert encode_request(WriteSingleCoil(address=9, start=300, value=False)) == framer.buildFrame(
        WriteSingleCoilRequest(address=300, bits=[False], dev_id=9)
    )
    assert encode_request(
        WriteSingleRegister(address=9, start=300, value=4660)
    ) == framer.buildFrame(WriteSingleRegisterRequest(address=300, registers=[4660], dev_id=9))


def test_pymodbus_decodes_our_requests_as_a_server() -> None:
    """pymodbus on the server side reads our read-coils request."""
    pdu = pymodbus_parse(
        encode_request(ReadRequest(address=4, function=F.READ_COILS, start=7, quantity=12)),
        is_server=True,
    )
    assert isinstance(pdu, ReadCoilsRequest)
    assert (pdu.dev_id, pdu.address, pdu.count) == (4, 7, 12)


@given(addresses, st.lists(words, min_size=1, max_size=125))
def test_pymodbus_decodes_our_register_responses(address: int, values: list[int]) -> None:
    """pymodbus on the master side reads our input-register responses."""
    frame = encode_response(
        ReadRegistersResponse(
            address=address, function=F.READ_INPUT_REGISTERS, values=tuple(values)
        )
    )
    pdu = pymodbus_parse(frame, is_server=False)
    assert isinstance(pdu, ReadInputRegistersResponse)
    assert (pdu.dev_id, pdu.registers) == (address, values)


def test_pymodbus_decodes_our_bit_responses() -> None:
    """pymodbus on the master side reads our read-coils response, padded to 8 bits."""
    bits = (True, True, False, True)
    frame = encode_response(ReadBitsResponse(address=3, function=F.READ_COILS, bits=bits))
    pdu = pymodbus_parse(frame, is_server=False)
    assert isinstance(pdu, ReadCoilsResponse)
    assert pdu.bits == [True, True, False, True, False, False, False, False]


def test_we_decode_a_pymodbus_exception_response() -> None:
    """A frame pymodbus builds for an exception decodes to our ExceptionResponse."""
    frame = client_framer().buildFrame(PymodbusExceptionResponse(4, 4, device_id=7))
    assert decode_response(frame) == ExceptionResponse(
        address=7, function=4, code=ExceptionCode.SLAVE_DEVICE_FAILURE
    )
