"""The QuecPython DTU's serial framings: CRC32, every frame form both ways, and bad chunks."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdtu.firmware.quec.frames import (
    BadCrc,
    BadLength,
    ChannelType,
    CommandFrame,
    ConfigReply,
    ConfigReplyForm,
    ConfigRequest,
    Malformed,
    ModbusChunk,
    PassthroughFrame,
    PortBinding,
    WorkMode,
    crc32_text,
    parse_chunk,
    parse_config_reply,
    parse_config_request,
    parse_frame,
)
from vdtu.firmware.quec.serial_side import data_body
from vdtu.modbus.rtu import append_crc

TOPIC_TYPES = [t for t in ChannelType if t.has_topic_id]
PLAIN_TYPES = [ChannelType.TCP, ChannelType.UDP]
IMEI_REQUEST = '{"cmd_code": 0, "password": "", "data": {}}'


def firmware_crc32(text: str) -> int:
    """The firmware's ``DtuCrc.crc32`` transcribed: a table, ``ord(ch)`` per character."""
    table = []
    for index in range(256):
        byte, crc = index, 0
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if (byte ^ crc) & 1 else crc >> 1
            byte >>= 1
        table.append(crc)
    value = 0xFFFFFFFF
    for char in text:
        value = table[(ord(char) ^ value) & 0xFF] ^ (value >> 8)
    return (-1 - value) & 0xFFFFFFFF


MIXED_PORT = PortBinding.command(
    {"1": ChannelType.TCP, "2": ChannelType.MQTT, "3": ChannelType.HTTP}
)

ids = st.text(min_size=1, max_size=8).filter(lambda s: "," not in s)
payloads = st.text(max_size=200)


# --- CRC32 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "crc"),
    [("abcedf", 1398235801), ("ijklmn", 2584251182), ("test", 3632233996), ("", 0)],
)
def test_crc32_matches_the_documented_check_values(text: str, crc: int) -> None:
    """The check values the firmware's docs give come out of crc32_text."""
    assert crc32_text(text) == crc


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=100))
def test_crc32_of_ascii_is_zlib_crc32(text: str) -> None:
    """For ASCII text the firmware's CRC is zlib's CRC-32 of the bytes."""
    assert crc32_text(text) == zlib.crc32(text.encode())


@given(payloads)
def test_crc32_follows_the_firmware_per_character_rule(text: str) -> None:
    """Any text gives what the firmware's table code gives (ord(c) & 0xFF per character)."""
    assert crc32_text(text) == firmware_crc32(text)


def test_crc32_of_non_ascii_is_not_the_utf8_byte_crc() -> None:
    """Non-ASCII characters count as one low byte each, not as their UTF-8 bytes."""
    text = "温度25℃"
    assert crc32_text(text) == zlib.crc32(bytes(ord(c) & 0xFF for c in text))
    assert crc32_text(text) != zlib.crc32(text.encode())


# --- exact encodings ----------------------------------------------------------------


def test_each_frame_form_encodes_to_the_documented_bytes() -> None:
    """Every form puts its fields, the character length and the decimal CRC in order."""
    crc = crc32_text("test")
    assert CommandFrame(cid="1", data="test").encode() == f"1,4,{crc},test".encode()
    assert CommandFrame(cid="2", topic_id="0", data="test").encode() == f"2,0,4,{crc},test".encode()
    assert PassthroughFrame(data="test").encode() == f"4,{crc},test".encode()
    assert PassthroughFrame(topic_id="1", data="test").encode() == f"1,4,{crc},test".encode()
    text = '{"cmd_code": 0}'
    text_crc = crc32_text(text)
    assert ConfigRequest(text=text).encode() == f"99,15,{text_crc},{text}".encode()
    reply = ConfigReply(text='{"code": 0, "status": 1}')
    reply_crc = crc32_text(reply.text)
    assert reply.encode() == f"99,24,{reply_crc},{reply.text}".encode()
    assert reply.encode(ConfigReplyForm.FIRMWARE) == f"24,{reply_crc},{reply.text}".encode()


def test_the_documented_reply_form_is_the_default() -> None:
    """Without a form, a configuration reply carries the documented 99 prefix."""
    reply = ConfigReply(text="{}")
    assert reply.encode() == reply.encode(ConfigReplyForm.DOCUMENTED)
    assert reply.encode().startswith(b"99,")


def test_empty_data_encodes_in_the_full_form() -> None:
    """An empty payload is written as len 0, CRC 0 and no data, as the firmware packages it."""
    assert CommandFrame(cid="1", data="").encode() == b"1,0,0,"
    assert PassthroughFrame(topic_id="0", data="").encode() == b"0,0,0,"


def test_non_ascii_data_counts_characters_and_goes_out_as_utf8() -> None:
    """len counts characters; the wire carries the UTF-8 bytes; the CRC follows the char rule."""
    data = "温度,25℃"
    wire = CommandFrame(cid="1", data=data).encode()
    assert wire == f"1,6,{firmware_crc32(data)},{data}".encode()
    assert len(data.encode()) != 6


# --- round trips: every form both ways ----------------------------------------------


@pytest.mark.parametrize("kind", list(ChannelType))
def test_command_frames_round_trip_on_every_channel_type(kind: ChannelType) -> None:
    """A command-mode frame for each channel type parses back to itself."""
    frame = CommandFrame(cid="7", topic_id="3" if kind.has_topic_id else None, data="a,b,c")
    assert parse_frame(frame.encode(), PortBinding.command({"7": kind})) == frame
    assert parse_chunk(frame.encode(), PortBinding.command({"7": kind})) == frame


@pytest.mark.parametrize("kind", list(ChannelType))
def test_passthrough_frames_round_trip_on_every_channel_type(kind: ChannelType) -> None:
    """A passthrough frame for each bound channel type parses back to itself."""
    frame = PassthroughFrame(topic_id="0" if kind.has_topic_id else None, data="x,,y")
    assert parse_frame(frame.encode(), PortBinding.passthrough(kind)) == frame
    assert parse_chunk(frame.encode(), PortBinding.passthrough(kind)) == frame


@pytest.mark.parametrize(
    "binding",
    [PortBinding.modbus(), PortBinding.passthrough(ChannelType.TCP), MIXED_PORT],
)
def test_config_requests_are_recognised_in_every_mode(binding: PortBinding) -> None:
    """A 99 frame with a cmd_code is a configuration request whatever the work mode."""
    request = ConfigRequest(text=IMEI_REQUEST)
    assert parse_chunk(request.encode(), binding) == request


@pytest.mark.parametrize("form", list(ConfigReplyForm))
def test_config_replies_round_trip_in_both_forms(form: ConfigReplyForm) -> None:
    """A reply encoded in either form parses back in that form."""
    reply = ConfigReply(text='{"code": 0, "data": "温度,1", "status": 1}')
    assert parse_config_reply(reply.encode(form), form=form) == reply


def test_a_reply_read_in_the_other_form_is_refused() -> None:
    """A host expecting the documented prefix refuses the firmware's bare reply, and back."""
    reply = ConfigReply(text='{"code": 0, "status": 1}')
    assert isinstance(
        parse_config_reply(reply.encode(ConfigReplyForm.FIRMWARE)), Malformed | BadLength
    )
    result = parse_config_reply(reply.encode(), form=ConfigReplyForm.FIRMWARE)
    assert isinstance(result, Malformed | BadLength)


@given(cid=ids, topic=ids, data=payloads, kind=st.sampled_from(list(ChannelType)))
def test_any_command_frame_round_trips(cid: str, topic: str, data: str, kind: ChannelType) -> None:
    """Any ids and any text data survive encode then parse in command mode."""
    frame = CommandFrame(cid=cid, topic_id=topic if kind.has_topic_id else None, data=data)
    assert parse_frame(frame.encode(), PortBinding.command({cid: kind})) == frame


@given(topic=ids, data=payloads, kind=st.sampled_from(list(ChannelType)))
def test_any_passthrough_frame_round_trips(topic: str, data: str, kind: ChannelType) -> None:
    """Any topic id and any text data survive encode then parse in passthrough."""
    frame = PassthroughFrame(topic_id=topic if kind.has_topic_id else None, data=data)
    assert parse_frame(frame.encode(), PortBinding.passthrough(kind)) == frame


@given(
    data=st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3),
    form=st.sampled_from(list(ConfigReplyForm)),
)
def test_any_config_request_and_reply_round_trip(
    data: dict[str, str], form: ConfigReplyForm
) -> None:
    """Configuration requests and replies with any JSON content survive a round trip."""
    request = ConfigRequest(text=json.dumps({"cmd_code": 4, "data": data}, ensure_ascii=False))
    assert parse_config_request(request.encode()) == request
    reply = ConfigReply(text=json.dumps({"code": 4, "data": data}, ensure_ascii=False))
    assert parse_config_reply(reply.encode(form), form=form) == reply


# --- the short empty forms -----------------------------------------------------------


def test_short_empty_uplinks_are_accepted_where_the_firmware_accepts_them() -> None:
    """``cid,0``, ``cid,topic,0`` and passthrough tcp ``0`` are empty frames."""
    assert parse_chunk(b"1,0", MIXED_PORT) == CommandFrame(cid="1", data="")
    assert parse_chunk(b"2,5,0", MIXED_PORT) == CommandFrame(cid="2", topic_id="5", data="")
    tcp = PortBinding.passthrough(ChannelType.TCP)
    assert parse_chunk(b"0", tcp) == PassthroughFrame(data="")
    assert parse_chunk(b"0,0,", tcp) == PassthroughFrame(data="")


def test_short_empty_form_is_malformed_on_a_passthrough_topic_channel() -> None:
    """Passthrough on a topic channel has no short form (the firmware fails on it too)."""
    result = parse_chunk(b"1,0", PortBinding.passthrough(ChannelType.MQTT))
    assert isinstance(result, Malformed)
    assert "topic_id,len,crc32,data" in result.reason


# --- commas, non-ASCII, chunks ------------------------------------------------------


def test_commas_inside_data_survive_on_every_layout() -> None:
    """Only the header fields split; data keeps all its commas."""
    data = ",a,,b,"
    cases: list[tuple[PortBinding, CommandFrame | PassthroughFrame]] = [
        (MIXED_PORT, CommandFrame(cid="1", data=data)),
        (MIXED_PORT, CommandFrame(cid="2", topic_id="9", data=data)),
        (PortBinding.passthrough(ChannelType.UDP), PassthroughFrame(data=data)),
        (PortBinding.passthrough(ChannelType.HWYUN), PassthroughFrame(topic_id="1", data=data)),
    ]
    for binding, frame in cases:
        assert parse_chunk(frame.encode(), binding) == frame


def test_non_ascii_frame_parses_with_character_length() -> None:
    """A UTF-8 frame whose length field counts characters is accepted."""
    data = "温度,25℃ ok"
    chunk = f"2,1,{len(data)},{crc32_text(data)},{data}".encode()
    assert parse_chunk(chunk, MIXED_PORT) == CommandFrame(cid="2", topic_id="1", data=data)


def test_a_byte_length_on_non_ascii_data_is_a_bad_length() -> None:
    """Counting UTF-8 bytes instead of characters is refused with both numbers."""
    data = "温度"
    chunk = f"1,{len(data.encode())},{crc32_text(data)},{data}".encode()
    assert parse_chunk(chunk, MIXED_PORT) == BadLength(expected=6, got=2, chunk=chunk)


def test_a_utf8_crc_on_non_ascii_data_is_a_bad_crc() -> None:
    """A CRC over the UTF-8 bytes is not the firmware's CRC and is refused."""
    data = "温度"
    chunk = f"1,2,{zlib.crc32(data.encode())},{data}".encode()
    result = parse_chunk(chunk, MIXED_PORT)
    assert result == BadCrc(expected=crc32_text(data), got=zlib.crc32(data.encode()), chunk=chunk)


def test_a_frame_split_over_two_chunks_is_two_bad_chunks() -> None:
    """Chunks are whole: halves of a frame are each refused, nothing is buffered."""
    wire = CommandFrame(cid="2", topic_id="1", data="hello world").encode()
    cut = wire.index(b" world")
    first, second = parse_chunk(wire[:cut], MIXED_PORT), parse_chunk(wire[cut:], MIXED_PORT)
    assert first == BadLength(expected=11, got=5, chunk=wire[:cut])
    assert second == ModbusChunk(data=b" world")
    assert parse_chunk(wire, MIXED_PORT) == CommandFrame(cid="2", topic_id="1", data="hello world")


def test_parsing_is_stateless() -> None:
    """The same chunk gives the same result whatever came before it."""
    wire = PassthroughFrame(topic_id="1", data="abc").encode()
    binding = PortBinding.passthrough(ChannelType.MQTT)
    before = parse_chunk(wire, binding)
    parse_chunk(b"1,99,1,x", binding)
    assert parse_chunk(wire, binding) == before


def test_two_frames_in_one_chunk_are_one_bad_chunk() -> None:
    """Two frames with no silence between them read as one chunk, refused by its length."""
    one = CommandFrame(cid="1", data="ab").encode()
    result = parse_chunk(one + one, MIXED_PORT)
    assert result == BadLength(expected=2, got=len("ab" + one.decode()), chunk=one + one)


# --- refusals -----------------------------------------------------------------------


def test_bad_length_reports_declared_and_actual() -> None:
    """A length field that disagrees with the data is a BadLength naming both."""
    chunk = f"1,5,{crc32_text('abcd')},abcd".encode()
    result = parse_chunk(chunk, MIXED_PORT)
    assert result == BadLength(expected=5, got=4, chunk=chunk)
    assert "says 5 characters but the data has 4" in result.reason


def test_a_trailing_newline_is_data_and_the_diagnostic_says_so() -> None:
    """A line ending typed after a frame makes the length wrong; the reason points at it."""
    chunk = CommandFrame(cid="1", data="abc").encode() + b"\r\n"
    result = parse_chunk(chunk, MIXED_PORT)
    assert result == BadLength(expected=3, got=5, chunk=chunk)
    assert "line ending" in result.reason


def test_bad_crc_reports_computed_and_received() -> None:
    """A CRC field that disagrees with the data is a BadCrc naming both values."""
    chunk = b"4,12345,test"
    result = parse_chunk(chunk, PortBinding.passthrough(ChannelType.TCP))
    assert result == BadCrc(expected=3632233996, got=12345, chunk=chunk)
    assert "12345" in result.reason
    assert "3632233996" in result.reason


@pytest.mark.parametrize(
    ("chunk", "binding", "words"),
    [
        (b"", MIXED_PORT, "empty"),
        (b"\xff\xfe,1,2", MIXED_PORT, "UTF-8"),
        (b"5,4,3632233996,test", MIXED_PORT, "'5' is not bound"),
        (b"1,x,3632233996,test", MIXED_PORT, "length 'x'"),
        (b"1,4,03632233996,test", MIXED_PORT, "leading zeros"),
        (b"1,4,-1,test", MIXED_PORT, "crc '-1'"),
        (b"1,4", MIXED_PORT, "cid,len,crc32,data"),
        (b"2,,4,3632233996,test", MIXED_PORT, "cid,topic_id,len,crc32,data"),
        (b"3,4,3632233996", MIXED_PORT, "cid,request_id,len,crc32,data"),
        (b"test", PortBinding.passthrough(ChannelType.TCP), "len,crc32,data"),
        (b",4,3632233996,test", PortBinding.passthrough(ChannelType.QUECTHING), "pkgid"),
    ],
)
def test_malformed_chunks_say_what_was_expected(
    chunk: bytes, binding: PortBinding, words: str
) -> None:
    """A chunk that is not a frame of this port is Malformed with a reason naming the problem."""
    result = parse_chunk(chunk, binding)
    assert isinstance(result, Malformed)
    assert words in result.reason
    assert result.chunk == chunk


def test_a_broken_config_frame_is_reported_as_one() -> None:
    """A 99 frame with a bad CRC is refused as a configuration frame where nothing else fits."""
    good = ConfigRequest(text=IMEI_REQUEST).encode()
    broken = good.replace(b",{", b",{ ", 1)
    assert isinstance(parse_chunk(broken, PortBinding.passthrough(ChannelType.TCP)), BadLength)
    tampered = b"99,5,1,hello"
    result = parse_chunk(tampered, PortBinding.modbus())
    assert result == BadCrc(expected=crc32_text("hello"), got=1, chunk=tampered)


def test_a_99_frame_without_cmd_code_is_not_a_config_request() -> None:
    """Data that is not a JSON object with cmd_code leaves a 99 frame to the mode's framing."""
    data = '{"x": 1}'
    chunk = f"99,{len(data)},{crc32_text(data)},{data}".encode()
    result = parse_chunk(chunk, PortBinding.passthrough(ChannelType.MQTT))
    assert result == PassthroughFrame(topic_id="99", data=data)
    refused = parse_chunk(chunk, PortBinding.passthrough(ChannelType.TCP))
    assert isinstance(refused, Malformed)
    assert "cmd_code" in refused.reason


def test_channel_99_in_command_mode_still_takes_frames() -> None:
    """With a channel 99 bound, a 99 frame that is not a config request is that channel's."""
    binding = PortBinding.command({"99": ChannelType.TCP})
    frame = CommandFrame(cid="99", data="plain")
    assert parse_chunk(frame.encode(), binding) == frame


# --- modbus classification ----------------------------------------------------------


def test_modbus_mode_passes_every_non_config_chunk_as_modbus() -> None:
    """In modbus mode a chunk that is not a config request is raw Modbus, even text."""
    rtu = append_crc(b"\x01\x03\x00\x00\x00\x01")
    assert parse_chunk(rtu, PortBinding.modbus()) == ModbusChunk(data=rtu)
    assert parse_chunk(b"1,2,3", PortBinding.modbus()) == ModbusChunk(data=b"1,2,3")


def test_command_mode_sends_modbus_looking_chunks_to_modbus() -> None:
    """In command mode a chunk with no comma, or a whole RTU frame, goes the Modbus way."""
    assert parse_chunk(b"hello", MIXED_PORT) == ModbusChunk(data=b"hello")
    rtu = append_crc(b"\x01\x03,\x00\x00\x01")
    assert parse_chunk(rtu, MIXED_PORT) == ModbusChunk(data=rtu)


def test_passthrough_never_reads_modbus() -> None:
    """In passthrough an RTU-looking chunk is still a (bad) passthrough frame."""
    rtu = append_crc(b"\x01\x03\x00\x00\x00\x01")
    assert isinstance(parse_chunk(rtu, PortBinding.passthrough(ChannelType.TCP)), Malformed)


def test_parse_frame_refuses_a_modbus_port() -> None:
    """Asking for the text frame of a modbus port is a programming error."""
    with pytest.raises(ValueError, match="raw RTU"):
        parse_frame(b"1,0", PortBinding.modbus())


# --- construction checks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: CommandFrame(cid="", data="x"), "cid"),
        (lambda: CommandFrame(cid="1,2", data="x"), "cid"),
        (lambda: CommandFrame(cid="1", topic_id="", data="x"), "topic_id"),
        (lambda: PassthroughFrame(topic_id="a,b", data="x"), "topic_id"),
        (lambda: PassthroughFrame(data="\ud800"), "UTF-8"),
        (lambda: ConfigRequest(text='{"data": 1}'), "cmd_code"),
        (lambda: ConfigReply(text="[1]"), "JSON object"),
        (lambda: PortBinding.command({}), "command-mode"),
        (lambda: PortBinding.command({"1": "tcp"}), "type must be one of"),  # type: ignore[dict-item]
        (lambda: PortBinding(mode=WorkMode.PASSTHROUGH), "passthrough"),
        (lambda: PortBinding(mode=WorkMode.MODBUS, bound=ChannelType.TCP), "modbus"),
    ],
)
def test_invalid_frames_and_bindings_cannot_be_built(
    build: Callable[[], object], words: str
) -> None:
    """Constructors refuse bad fields with a ValueError naming the value."""
    with pytest.raises(ValueError, match=words):
        build()


def test_a_binding_does_not_follow_later_changes_to_its_source() -> None:
    """The channel map is copied: mutating the caller's dict changes nothing."""
    source = {"1": ChannelType.TCP}
    binding = PortBinding.command(source)
    source["2"] = ChannelType.MQTT
    assert dict(binding.channels) == {"1": ChannelType.TCP}


def test_channel_types_name_their_second_id() -> None:
    """The second frame id is a topic id, a request id (http) or a pkgid (quecthing)."""
    assert [t.value for t in PLAIN_TYPES] == ["tcp", "udp"]
    assert all(not t.has_topic_id for t in PLAIN_TYPES)
    assert ChannelType.HTTP.id_name == "request_id"
    assert ChannelType.QUECTHING.id_name == "pkgid"
    assert {t.id_name for t in TOPIC_TYPES} == {"topic_id", "request_id", "pkgid"}


@given(st.text())
def test_a_command_frames_data_is_published_as_json_dumps_writes_the_object(data: str) -> None:
    assert data_body(data) == json.dumps({"data": data}, ensure_ascii=False)
