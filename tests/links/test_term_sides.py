"""The term sides: what ``vdtu term`` sends for a typed line and shows for what a unit writes."""

from __future__ import annotations

import zlib

import pytest

from vdtu.firmware.quec.frames import ChannelType, CommandFrame, PortBinding, parse_chunk
from vdtu.firmware.xgc.codec import CodeFormat, Frame, FrameKind
from vdtu.links.sides import SIDES
from vdtu.unit import DEFAULT_BAUDS

XGC, QUEC = SIDES["xgc"].term, SIDES["quec"].term


def test_every_personality_has_a_term_side() -> None:
    for entry in SIDES.values():
        assert entry.term.example


def test_xgc_frames_the_short_form_with_a_hex_check_code() -> None:
    host = XGC.open(device="/tmp/x/dtu0/uart", sn="7", raw=False, bauds=DEFAULT_BAUDS)
    expected = Frame(
        kind=FrameKind.COMMAND, action="SAVE_KEYS", sn="7", timestamp="0", content="a:1;b:2"
    ).encode(CodeFormat.HEX)
    assert host.frame("save_keys a:1;b:2\n") == expected
    assert host.frame("SET_DTU_PIPE#485") == b"SET_DTU_PIPE#485\r\n"


def test_xgc_shows_a_reply_decoded_and_the_pipe_note() -> None:
    host = XGC.open(device="/tmp/x/dtu0/uart", sn="0", raw=True, bauds=DEFAULT_BAUDS)
    reply = Frame(
        kind=FrameKind.ACK, action="GET_IMEI", sn="0", timestamp="0", content="8674"
    ).encode(CodeFormat.DECIMAL)
    lines = host.receive(reply[:5]) + host.receive(reply[5:])
    assert lines[0] == f"< {reply!r}"
    assert lines[1].startswith("< GET_IMEI       8674   [")
    assert lines[1].endswith("code ok]")
    assert host.receive(b"SET_DTU_PIPE#485-ok\r\n") == [
        "< SET_DTU_PIPE#485-ok",
        "! the host pipe is now RS-485: the unit answers on its rs485 port, no longer here; "
        "open it with: vdtu term --baud 9600 /tmp/x/dtu0/rs485 "
        "(SET_DTU_PIPE#uart there brings the pipe back)",
    ]


def test_quec_frames_a_line_as_a_command_mode_frame_the_firmware_reads() -> None:
    host = QUEC.open(device="/tmp/x/dtu0/uart", sn="0", raw=False, bauds=DEFAULT_BAUDS)
    data = host.frame("hello, world\n")
    assert data == b"1,0,12,%d,hello, world" % zlib.crc32(b"hello, world")
    assert parse_chunk(data, PortBinding.command({"1": ChannelType.MQTT})) == CommandFrame(
        cid="1", topic_id="0", data="hello, world"
    )
    with pytest.raises(ValueError, match="UTF-8"):
        host.frame("\ud800")


def test_quec_shows_what_the_unit_writes() -> None:
    plain = QUEC.open(device="d", sn="0", raw=False, bauds=DEFAULT_BAUDS)
    assert plain.receive(b"1,0,2,123,hi") == ["< 1,0,2,123,hi"]
    assert plain.receive(b"\x01\xff") == ["< '\\x01\\\\xff'"]
    raw = QUEC.open(device="d", sn="0", raw=True, bauds=DEFAULT_BAUDS)
    assert raw.receive(b"ok\r\n") == ["< b'ok\\r\\n'", "< ok"]
