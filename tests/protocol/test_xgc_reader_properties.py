"""Invariants of the XGC frame reader on any input (Hypothesis).

Whatever bytes arrive, in whatever pieces: every ``events()`` call ends, the buffer stays
within ``max_line`` (plus the CR of a CRLF), a valid frame is recognised as soon as its
line end arrives (after garbage, an overlong line or a blank line), and the events do not
depend on how the bytes were split into reads. Small ``max_line`` values make overlong
lines common.
"""

from __future__ import annotations

from itertools import islice, pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from vdtu.firmware.xgc.codec import (
    Frame,
    FrameKind,
    FrameReader,
    FrameReceived,
    ReaderEvent,
)

EVENT_CAP = 100_000
MARKERS = (b"$XGC#", b"$XGC_ACK#", b"SET_DTU_PIPE#")
GET_IMEI = b"$XGC#GET_IMEI#0#0&#5A#"

max_lines = st.integers(min_value=64, max_value=300)
lone_cr = st.booleans()

pieces = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([*MARKERS, b"\r", b"\n", b"\r\n", b"&#", b"#", b"$XGC", GET_IMEI]),
    st.integers(min_value=1, max_value=700).map(lambda n: b"a" * n),
    st.builds(
        lambda content: Frame(kind=FrameKind.COMMAND, action="DATA_PACK", content=content).encode(),
        st.text(
            alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]),
            max_size=120,
        ),
    ),
)
streams = st.lists(pieces, max_size=30).map(b"".join)


def no_marker(data: bytes) -> bool:
    return not any(marker in data for marker in MARKERS)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given positions (taken modulo its length, sorted)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)]


def drain(reader: FrameReader) -> list[ReaderEvent]:
    events = list(islice(reader.events(), EVENT_CAP))
    assert len(events) < EVENT_CAP, "events() did not terminate"
    return events


def feed_all(reader: FrameReader, chunks: list[bytes]) -> list[ReaderEvent]:
    events: list[ReaderEvent] = []
    for chunk in chunks:
        reader.receive_data(chunk)
        events += drain(reader)
    return events


@settings(max_examples=300, deadline=None)
@given(data=streams, cuts=st.lists(st.integers(min_value=0), max_size=40), max_line=max_lines)
def test_every_events_call_ends_and_the_buffer_stays_bounded(
    data: bytes, cuts: list[int], max_line: int
) -> None:
    """After any read, events() ends, a second call finds nothing new, and at most max_line
    bytes (+1: the CR of a CRLF still to come) stay buffered."""
    for cr in (True, False):
        reader = FrameReader(max_line=max_line, lone_cr_ends_line=cr)
        for chunk in split(data, cuts):
            reader.receive_data(chunk)
            drain(reader)
            assert drain(reader) == []
            assert reader.buffered <= max_line + 1


@settings(max_examples=300, deadline=None)
@given(
    data=streams,
    cuts=st.lists(st.integers(min_value=0), max_size=40),
    max_line=max_lines,
    cr=lone_cr,
)
def test_the_events_do_not_depend_on_how_the_bytes_were_split(
    data: bytes, cuts: list[int], max_line: int, cr: bool
) -> None:
    """Feeding the same bytes in one read, byte by byte, or in any pieces gives the same events."""
    whole = feed_all(FrameReader(max_line=max_line, lone_cr_ends_line=cr), [data])
    pieces = feed_all(FrameReader(max_line=max_line, lone_cr_ends_line=cr), split(data, cuts))
    single = feed_all(
        FrameReader(max_line=max_line, lone_cr_ends_line=cr), [bytes([b]) for b in data]
    )
    assert pieces == whole
    assert single == whole


def _frame_found_when_its_line_ends(
    before: bytes, cuts: list[int], max_line: int, *, cr: bool, line_end: bytes
) -> None:
    frame = Frame(kind=FrameKind.COMMAND, action="GET_KEYS", content="a,b")
    stream = before + frame.encode()[:-2] + line_end
    # The byte that ends the frame's line: its CR, or the LF of a CRLF when CRs do not count.
    lf_of_crlf = not cr and line_end == b"\r\n"
    end_at = len(stream) - len(line_end) + (1 if lf_of_crlf else 0)
    reader = FrameReader(max_line=max_line, lone_cr_ends_line=cr)
    fed = 0
    for chunk in split(stream, cuts):
        reader.receive_data(chunk)
        fed += len(chunk)
        found = [e.frame for e in drain(reader) if isinstance(e, FrameReceived) and e.code_ok]
        if fed <= end_at:
            assert found == [], "a frame was reported before its line end arrived"
        else:
            assert found == [frame], "the frame was not reported when its line end arrived"
            return
    raise AssertionError("the stream ended before the frame's line end")


@settings(max_examples=300, deadline=None)
@given(
    garbage=st.binary(max_size=600).filter(no_marker),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    max_line=max_lines,
    cr=lone_cr,
    line_end=st.sampled_from([b"\r\n", b"\n", b"\r"]),
)
def test_a_frame_after_garbage_is_recognised_when_its_line_end_arrives(
    garbage: bytes, cuts: list[int], max_line: int, cr: bool, line_end: bytes
) -> None:
    """Garbage of any length (with or without line ends) in front of a frame does not hide it."""
    if line_end == b"\r" and not cr:
        line_end = b"\r\n"  # with lone CRs not ending lines, a CR-only frame is never complete
    _frame_found_when_its_line_ends(garbage, cuts, max_line, cr=cr, line_end=line_end)


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=3000),
    filler=st.sampled_from([b"a", b"$XGC#", b"$XGC_ACK#x", b"SET_DTU_PIPE#", b"\x00\xff"]),
    overlong_end=st.sampled_from([b"", b"\r\n", b"\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    max_line=max_lines,
    cr=lone_cr,
)
def test_a_frame_after_an_overlong_line_is_recognised_when_its_line_end_arrives(
    size: int, filler: bytes, overlong_end: bytes, cuts: list[int], max_line: int, cr: bool
) -> None:
    """An overlong line (even one full of start markers, ended or not) does not hide the next
    frame."""
    overlong = (filler * (max_line + size))[: max_line + 1 + size]
    if overlong_end == b"\r" and not cr:
        overlong_end = b"\r\n"
    if filler == b"SET_DTU_PIPE#" and not overlong_end:
        overlong_end = b"\n"  # a shortcut's value runs to its line end, so it would take the frame
    _frame_found_when_its_line_ends(
        overlong + overlong_end, cuts, max_line, cr=cr, line_end=b"\r\n"
    )


@settings(max_examples=100, deadline=None)
@given(
    blanks=st.lists(st.sampled_from([b"\r\n", b"\n", b" \r\n", b"\t\n"]), max_size=10),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
    cr=lone_cr,
)
def test_a_frame_after_blank_lines_is_recognised_when_its_line_end_arrives(
    blanks: list[bytes], cuts: list[int], cr: bool
) -> None:
    """Blank lines before a frame never delay it."""
    _frame_found_when_its_line_ends(b"".join(blanks), cuts, 4096, cr=cr, line_end=b"\r\n")
