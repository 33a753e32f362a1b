"""The XGC frame reader on a noisy line: split reads, garbage, overlong lines, round trips."""

from __future__ import annotations

from itertools import islice

from hypothesis import given
from hypothesis import strategies as st

from vdtu.firmware.xgc.codec import (
    CodeFormat,
    Frame,
    FrameKind,
    FrameReader,
    FrameReceived,
    GarbageDiscarded,
    LineTooLong,
    MalformedFrame,
    ReaderEvent,
    ShortcutReceived,
    code_readings,
    encode_shortcut,
)

GET_IMEI = b"$XGC#GET_IMEI#0#0&#5A#\r\n"
SAVE_KEYS = b"$XGC#SAVE_KEYS#867435053362828#0#a:123;b:abc&#42#\r\n"


def feed(reader: FrameReader, *chunks: bytes) -> list[ReaderEvent]:
    events: list[ReaderEvent] = []
    for chunk in chunks:
        reader.receive_data(chunk)
        events.extend(reader.events())
    return events


def frames(events: list[ReaderEvent]) -> list[Frame]:
    return [e.frame for e in events if isinstance(e, FrameReceived)]


def test_frame_fed_byte_by_byte_is_found_once_complete() -> None:
    """Feeding a frame one byte at a time yields nothing until the newline, then the frame
    (with lone CRs not ending lines; with them, the CR completes it)."""
    reader = FrameReader(lone_cr_ends_line=False)
    for byte in GET_IMEI[:-1]:
        assert feed(reader, bytes([byte])) == []
    (event,) = feed(reader, GET_IMEI[-1:])
    assert isinstance(event, FrameReceived)
    assert event.frame.action == "GET_IMEI"
    assert event.code_ok
    reader = FrameReader()
    for byte in GET_IMEI[:-2]:
        assert feed(reader, bytes([byte])) == []
    assert frames(feed(reader, b"\r")) == [event.frame]
    assert feed(reader, b"\n") == []


def test_two_frames_in_one_read_are_both_found() -> None:
    """Two frames arriving in one chunk give two events in order."""
    events = feed(FrameReader(), GET_IMEI + SAVE_KEYS)
    assert [f.action for f in frames(events)] == ["GET_IMEI", "SAVE_KEYS"]


def test_garbage_before_a_frame_on_the_same_line_is_reported_and_skipped() -> None:
    """Noise in front of a frame is reported as garbage; the frame is still parsed."""
    events = feed(FrameReader(), b"\x00\xffnoise" + GET_IMEI)
    assert events[0] == GarbageDiscarded(data=b"\x00\xffnoise")
    assert [f.action for f in frames(events)] == ["GET_IMEI"]


def test_garbage_lines_between_frames_are_reported() -> None:
    """A whole line of noise between two frames is garbage (its line end is not); both frames
    survive."""
    events = feed(FrameReader(), GET_IMEI + b"hello world\r\n" + SAVE_KEYS)
    assert GarbageDiscarded(data=b"hello world") in events
    assert len(frames(events)) == 2


def test_blank_lines_are_ignored_silently() -> None:
    """Empty lines and bare CRs produce no event."""
    assert feed(FrameReader(), b"\r\n\n\r\n") == []


def test_truncated_frame_followed_by_a_frame_resynchronises() -> None:
    """A frame cut short by the start of another on the same line is dropped; the second is kept."""
    events = feed(FrameReader(), b"$XGC#GET_IM" + GET_IMEI)
    assert events[0] == GarbageDiscarded(data=b"$XGC#GET_IM")
    assert [f.action for f in frames(events)] == ["GET_IMEI"]


def test_overlong_line_is_dropped_and_the_next_frame_found_without_a_newline() -> None:
    """100 KB with no newline is reported once as too long; a frame right after it is parsed."""
    reader = FrameReader(max_line=4096)
    events = feed(reader, *([b"x" * 1000] * 100), GET_IMEI)
    assert events[0] == LineTooLong(size=100_000)
    assert [f.action for f in frames(events)] == ["GET_IMEI"]
    assert reader.buffered == 0


def test_reader_memory_stays_bounded_on_endless_noise() -> None:
    """However much noise arrives without a newline, the buffer stays below max_line."""
    reader = FrameReader(max_line=4096)
    for _ in range(1000):
        feed(reader, b"z" * 997)
        assert reader.buffered <= 4096 + 997


def test_malformed_frame_reports_its_action_and_reason() -> None:
    """A line that starts like a frame but lacks '&#code#' is malformed, with its action named."""
    (event,) = feed(FrameReader(), b"$XGC#GET_KEYS#0#0#a\r\n")
    assert isinstance(event, MalformedFrame)
    assert event.action == "GET_KEYS"
    assert "code" in event.reason


def test_frame_with_too_few_fields_is_malformed() -> None:
    """'$XGC#GET_IMEI&#..#' has no SN and timestamp: malformed."""
    (event,) = feed(FrameReader(), b"$XGC#GET_IMEI&#12#\r\n")
    assert isinstance(event, MalformedFrame)


def test_non_utf8_frame_is_malformed() -> None:
    """Invalid UTF-8 inside a frame is reported, not raised."""
    (event,) = feed(FrameReader(), b"$XGC#SAVE_KEYS#0#0#a:\xff&#00#\r\n")
    assert isinstance(event, MalformedFrame)
    assert "UTF-8" in event.reason


def test_shortcut_is_recognised() -> None:
    """SET_DTU_PIPE#485 is a shortcut, not a frame."""
    assert feed(FrameReader(), b"SET_DTU_PIPE#485\r\n") == [ShortcutReceived(value="485")]
    assert encode_shortcut("485-ok") == b"SET_DTU_PIPE#485-ok\r\n"


def test_lf_only_line_end_is_accepted_and_flagged() -> None:
    """A frame ending in a bare LF parses, with crlf False."""
    (event,) = feed(FrameReader(), GET_IMEI[:-2] + b"\n")
    assert isinstance(event, FrameReceived)
    assert not event.crlf


def test_check_code_accepts_hex_and_decimal_readings() -> None:
    """'95' may mean 0x95 or 95; '5F' only 0x5F; '8' both 8."""
    assert code_readings("95") == {0x95, 95}
    assert code_readings("5F") == {0x5F}
    assert code_readings("8") == {8}


def test_content_may_contain_hash() -> None:
    """Content runs to the last '&#', so a '#' inside it survives."""
    frame = Frame(kind=FrameKind.ACK, action="DATA_PACK", sn="1", content="a#b")
    (event,) = feed(FrameReader(), frame.encode())
    assert isinstance(event, FrameReceived)
    assert event.frame.content == "a#b"
    assert event.code_ok


text_field = st.text(
    alphabet=st.characters(exclude_characters="#&\r\n", exclude_categories=["Cs"]), max_size=30
)


@given(
    kind=st.sampled_from(list(FrameKind)),
    action=st.from_regex(r"[A-Z0-9_]{1,32}", fullmatch=True),
    sn=text_field,
    timestamp=text_field,
    content=st.none()
    | st.text(
        alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]),
        max_size=200,
    ),
    code_format=st.sampled_from(list(CodeFormat)),
    noise=st.binary(max_size=20).filter(
        lambda b: b"\n" not in b and b"$XGC" not in b and b"SET_DTU_PIPE#" not in b
    ),
)
def test_decode_of_encode_is_identity(
    kind: FrameKind,
    action: str,
    sn: str,
    timestamp: str,
    content: str | None,
    code_format: CodeFormat,
    noise: bytes,
) -> None:
    """Any frame survives encode -> noise in front -> byte-by-byte decode unchanged."""
    frame = Frame(kind=kind, action=action, sn=sn, timestamp=timestamp, content=content)
    reader = FrameReader(max_line=1 << 16)
    events = feed(reader, *[bytes([b]) for b in noise + frame.encode(code_format)])
    received = [e for e in events if isinstance(e, FrameReceived)]
    assert len(received) == 1
    assert received[0].frame == frame
    assert received[0].code_ok


# -- issue 9: the reader terminates, makes progress and never holds a frame back ---------------

EVENT_CAP = 10_000
"""More events than any of these inputs can make: a reader that loops forever hits it."""


def take(reader: FrameReader) -> list[ReaderEvent]:
    """The reader's events, at most EVENT_CAP of them (an endless reader fails, not hangs)."""
    return list(islice(reader.events(), EVENT_CAP))


def test_a_marker_at_the_start_of_an_overlong_line_does_not_loop_forever() -> None:
    """'$XGC#' and 4092 bytes without a line end: nothing is reported yet, the buffer is bounded,
    and the line end reports one LineTooLong for the whole line."""
    reader = FrameReader(max_line=4096)
    reader.receive_data(b"$XGC#" + b"a" * 4092)
    assert take(reader) == []
    assert reader.buffered <= 4096
    reader.receive_data(b"\r\n")
    assert take(reader) == [LineTooLong(size=5 + 4092)]
    reader.receive_data(GET_IMEI)
    assert [f.action for f in frames(take(reader))] == ["GET_IMEI"]


def test_a_data_pack_with_10000_characters_of_content_is_one_line_too_long() -> None:
    """A 10 000-character DATA_PACK arriving in 100-byte pieces is one LineTooLong, then the
    next command is found."""
    data_pack = Frame(kind=FrameKind.COMMAND, action="DATA_PACK", content="x" * 10_000).encode()
    reader = FrameReader(max_line=4096)
    events: list[ReaderEvent] = []
    for i in range(0, len(data_pack), 100):
        reader.receive_data(data_pack[i : i + 100])
        events += take(reader)
    reader.receive_data(GET_IMEI)
    events += take(reader)
    assert events[0] == LineTooLong(size=len(data_pack) - 2)
    assert [f.action for f in frames(events)] == ["GET_IMEI"]
    assert len(events) == 2


def test_200_frames_ended_by_cr_alone_are_200_frames() -> None:
    """A host that ends lines with CR only (picocom's default) gets every frame read."""
    reader = FrameReader(max_line=4096)
    reader.receive_data(GET_IMEI[:-1] * 200)
    events = take(reader)
    assert len(frames(events)) == 200
    assert all(isinstance(e, FrameReceived) and e.crlf for e in events)


def test_a_blank_line_does_not_hold_back_the_next_frame() -> None:
    """CRLF then a frame, in one read: the frame is there at once."""
    reader = FrameReader()
    reader.receive_data(b"\r\n" + GET_IMEI)
    assert [f.action for f in frames(take(reader))] == ["GET_IMEI"]


def test_many_blank_lines_do_not_hold_back_the_next_frame() -> None:
    """Blank lines of every kind before a frame produce no event and do not delay it."""
    reader = FrameReader()
    reader.receive_data(b"\r\n\n\r\r\n  \r\n" + GET_IMEI)
    assert [type(e) for e in take(reader)] == [FrameReceived]


def test_a_lone_cr_ends_a_line_and_the_frame_is_read_at_once() -> None:
    """A frame ended by CR alone is read when the CR arrives, with crlf True (CR began its end)."""
    reader = FrameReader()
    reader.receive_data(GET_IMEI[:-1])
    (event,) = take(reader)
    assert isinstance(event, FrameReceived)
    assert event.frame.action == "GET_IMEI"
    assert event.crlf


def test_crlf_split_across_two_reads_is_one_line_end() -> None:
    """CR at the end of one read and LF at the start of the next end one line, not two."""
    reader = FrameReader()
    reader.receive_data(GET_IMEI[:-1])
    assert len(frames(take(reader))) == 1
    reader.receive_data(b"\n" + SAVE_KEYS[:-1])
    reader.receive_data(b"\nhello\n")
    events = take(reader)
    assert [type(e) for e in events] == [FrameReceived, GarbageDiscarded]
    assert events[1] == GarbageDiscarded(data=b"hello")


def test_a_lone_cr_is_part_of_the_line_when_lone_crs_do_not_end_lines() -> None:
    """With lone_cr_ends_line False, only LF ends a line: CR-only frames wait for a LF, and
    a CR before the LF is the CRLF's."""
    reader = FrameReader(lone_cr_ends_line=False)
    reader.receive_data(GET_IMEI[:-1])
    assert take(reader) == []
    reader.receive_data(b"\n")
    (event,) = take(reader)
    assert isinstance(event, FrameReceived)
    assert event.crlf
    reader.receive_data(GET_IMEI[:-1] * 2 + b"\n")
    events = take(reader)
    assert [type(e) for e in events] == [GarbageDiscarded, FrameReceived]
