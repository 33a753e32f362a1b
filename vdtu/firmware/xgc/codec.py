"""The XGC text protocol on the wire: frames, check codes, and a reader that hunts for frames.

A frame (seed 004, "协议格式")::

    $XGC#ACTION#SN#Timestamp#Content&#Code#\\r\\n        host -> DTU (and cloud notifications)
    $XGC_ACK#ACTION#SN#Timestamp#Content&#Code#\\r\\n    DTU -> host replies and notifications
    SET_DTU_PIPE#485\\r\\n                               a shortcut command, no frame, no code

``Code`` is the XOR of every byte from the leading ``$`` up to (not including) the
``&``. The seed writes it as two hex digits in host frames and, in DTU frames,
sometimes decimal and sometimes hex; so a reader accepts a code if either reading
matches, and a writer emits one configured form (see ``CodeFormat``). A frame with
no content (``$XGC#GET_IMEI#0#0&#5A#``) has no fourth ``#``; an empty content
(``...#0#&#125#``) has one. Content runs from the fourth ``#`` to the last ``&#``,
so it may itself contain ``#``.

``FrameReader`` is sans-I/O (h11 style): ``receive_data(bytes)`` buffers,
``events()`` yields what was found. It works line by line but hunts for the
start markers ``$XGC#``, ``$XGC_ACK#`` and ``SET_DTU_PIPE#`` inside a line, so
noise before a frame is reported as garbage and the frame is still found; if a
line fails to parse (or its code is wrong) and another marker follows inside it,
the reader resynchronises there.

Line ends. The seed says every frame ends in ``\\r\\n``. The reader also takes a
bare ``\\n``, and by default a lone ``\\r`` (a terminal such as picocom sends only
CR on Enter): a CR ends the line at once, and a LF right after it (in the same
read or the next) belongs to it, so CR LF is one line end and never an extra
empty line. ``FrameReceived.crlf`` is True when the line end began with CR.
With ``lone_cr_ends_line=False`` only LF ends a line and a CR before it is the
CRLF's (a CR elsewhere is an ordinary byte of the line).

Limits. A line is at most ``max_line`` bytes, its line end not counted. In a
longer line the reader keeps only what can still start a frame that fits: the
first start marker whose rest of the line is within ``max_line``; the bytes in
front of it are dropped and reported once, when the line ends, as
``LineTooLong``, and the rest is read as a line of its own. So memory stays
bounded (``max_line`` + 1 bytes after ``events()``), a frame right after an
overlong line is found even without a line end first, and the events depend
only on the bytes, never on how they were split into reads. Blank lines make
no event.
The reader has no policy: whether a wrong check code rejects the frame is the
firmware's decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never


class FrameKind(StrEnum):
    """The two frame prefixes."""

    COMMAND = "$XGC"
    ACK = "$XGC_ACK"


_KINDS = {kind.value: kind for kind in FrameKind}


class CodeFormat(StrEnum):
    """How a writer prints the check code."""

    DECIMAL = "decimal"
    """Decimal without padding (``95``, ``8``): the form of most DTU replies in the seed."""
    HEX = "hex"
    """Two upper-case hex digits (``5A``, ``0C``): the form of every host command in the seed."""
    HEX_LOWER = "hex-lower"
    """Two lower-case hex digits (``4f``, ``0b``)."""


_ACTION_RE = re.compile(r"[A-Z0-9_]{1,32}")
_CODE_RE = re.compile(r"[0-9A-Fa-f]{1,3}")
_MARKERS = (b"$XGC#", b"$XGC_ACK#", b"SET_DTU_PIPE#")
_MARKER_RE = re.compile(b"|".join(re.escape(marker) for marker in _MARKERS))
"""The first start marker from a position (a regex search: one scan for all three)."""
_SHORTCUT = b"SET_DTU_PIPE#"
_LONGEST_MARKER = max(len(m) for m in _MARKERS)
_CR_OR_LF = re.compile(rb"[\r\n]")
_LF = re.compile(rb"\n")
_LF_BYTE = 0x0A
_CR_BYTE = 0x0D


def check_code(data: bytes) -> int:
    """XOR of every byte of ``data`` (the frame from ``$`` up to, not including, ``&``)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def format_code(value: int, code_format: CodeFormat) -> str:
    """Print a check code in the given form."""
    if not 0 <= value <= 0xFF:
        raise ValueError(f"check code must be 0..255, not {value}")
    match code_format:
        case CodeFormat.DECIMAL:
            return str(value)
        case CodeFormat.HEX:
            return f"{value:02X}"
        case CodeFormat.HEX_LOWER:
            return f"{value:02x}"
        case _:
            assert_never(code_format)


def code_readings(text: str) -> set[int]:
    """Every value a printed check code may mean (hex always, decimal if it is all digits)."""
    readings = {int(text, 16)}
    if text.isdigit():
        readings.add(int(text, 10))
    return readings


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One XGC frame, without its check code (which is derived)."""

    kind: FrameKind
    action: str
    sn: str = ""
    timestamp: str = "0"
    content: str | None = None
    """``None``: the frame has no content field at all; ``""``: an empty one."""

    def __post_init__(self) -> None:
        if not _ACTION_RE.fullmatch(self.action):
            raise ValueError(f"action must be 1..32 of A-Z, 0-9, _; not {self.action!r}")
        for name, value in (("sn", self.sn), ("timestamp", self.timestamp)):
            if "#" in value or "&" in value or "\n" in value:
                raise ValueError(f"{name} must not contain '#', '&' or a newline: {value!r}")
        if self.content is not None and ("\n" in self.content or "\r" in self.content):
            at = min(i for i in (self.content.find("\r"), self.content.find("\n")) if i >= 0)
            # The content is not quoted: it may be long, or hold a secret (SET_PRJINFO).
            raise ValueError(f"content must not contain CR or LF (one at character {at})")

    def body(self) -> bytes:
        """The bytes the check code covers: ``$`` up to, not including, ``&``."""
        text = f"{self.kind}#{self.action}#{self.sn}#{self.timestamp}"  # a StrEnum: its value
        if self.content is not None:
            text += "#" + self.content
        return text.encode()

    def encode(self, code_format: CodeFormat = CodeFormat.DECIMAL) -> bytes:
        """The frame as it goes on the wire, check code and CRLF included."""
        body = self.body()
        return body + b"&#" + format_code(check_code(body), code_format).encode() + b"#\r\n"


def encode_shortcut(value: str) -> bytes:
    """A shortcut command or reply, e.g. ``SET_DTU_PIPE#485`` or ``SET_DTU_PIPE#485-ok``."""
    return _SHORTCUT + value.encode() + b"\r\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameReceived:
    """A well-formed frame arrived. ``code_ok`` says whether its check code matched."""

    frame: Frame
    code: str
    """The check code as printed on the wire."""
    expected_code: int
    code_ok: bool
    crlf: bool
    """True if the line end began with CR (CR LF, the protocol's rule, or a lone CR when
    lone CRs end lines: the frame is reported at the CR, before a LF could follow);
    False for a bare LF."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShortcutReceived:
    """A shortcut line ``SET_DTU_PIPE#<value>`` arrived."""

    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MalformedFrame:
    """A line started like a frame but is not one. ``sn`` is the frame's SN if it could be read."""

    line: bytes
    reason: str
    action: str | None = None
    sn: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GarbageDiscarded:
    """Bytes that were not part of any frame were dropped."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class LineTooLong:
    """A line was longer than ``max_line``; ``size`` bytes of it (line end not counted) were
    dropped. Reported when the line ends; a frame at its end is reported after this."""

    size: int


ReaderEvent = FrameReceived | ShortcutReceived | MalformedFrame | GarbageDiscarded | LineTooLong


def _find_marker(data: bytes | bytearray, start: int = 0) -> int:
    found = _MARKER_RE.search(data, start)
    return -1 if found is None else found.start()


def parse_frame(text: bytes) -> FrameReceived | ShortcutReceived | MalformedFrame:
    """Parse one line that starts with a marker, without its LF (a CR at its end is the CRLF's)."""
    crlf = text.endswith(b"\r")
    return _parse_line(text[:-1] if crlf else text, crlf=crlf)


def parse_written(data: bytes) -> list[FrameReceived | ShortcutReceived | MalformedFrame]:
    """The frames in bytes written in one go (a reply, a notification): each line from its
    start marker (text before a marker and lines without one are skipped)."""
    found: list[FrameReceived | ShortcutReceived | MalformedFrame] = []
    for line in data.split(b"\n"):
        start = _find_marker(line)
        if start >= 0:
            found.append(parse_frame(line[start:]))
    return found


def _parse_line(line: bytes, *, crlf: bool) -> FrameReceived | ShortcutReceived | MalformedFrame:
    """Parse one line (without its line end) that starts with a marker."""
    if line.startswith(_SHORTCUT):
        try:
            return ShortcutReceived(value=line[len(_SHORTCUT) :].decode("ascii"))
        except UnicodeDecodeError:
            return MalformedFrame(line=line, reason="shortcut is not ASCII")
    try:
        decoded = line.decode()
    except UnicodeDecodeError:
        return MalformedFrame(line=line, reason="frame is not valid UTF-8")
    amp = decoded.rfind("&#")
    if amp < 0 or not decoded.endswith("#") or amp + 2 >= len(decoded):
        return MalformedFrame(line=line, reason="no '&#code#' at the end", **_peek(decoded))
    code = decoded[amp + 2 : -1]
    body = decoded[:amp]
    parts = body.split("#", 4)
    if not _CODE_RE.fullmatch(code):
        return MalformedFrame(
            line=line, reason=f"check code {code!r} is not 1-3 hex digits", **_peek(body)
        )
    if len(parts) < 4:
        return MalformedFrame(
            line=line, reason="expected $XGC#ACTION#SN#Timestamp[#Content]", **_peek(body)
        )
    prefix, action, sn, timestamp = parts[:4]
    content = parts[4] if len(parts) == 5 else None
    try:
        kind = _KINDS.get(prefix) or FrameKind(prefix)  # the lookup, or the enum's ValueError
        frame = Frame(kind=kind, action=action, sn=sn, timestamp=timestamp, content=content)
    except ValueError as exc:
        return MalformedFrame(line=line, reason=str(exc), **_peek(body))
    expected = check_code(body.encode())
    return FrameReceived(
        frame=frame,
        code=code,
        expected_code=expected,
        code_ok=expected in code_readings(code),
        crlf=crlf,
    )


def _peek(body: str) -> dict[str, str]:
    """What can be read of a broken frame, for an error reply that names the action."""
    parts = body.split("#", 4)
    found: dict[str, str] = {}
    if len(parts) > 1 and _ACTION_RE.fullmatch(parts[1]):
        found["action"] = parts[1]
    if len(parts) > 2 and "&" not in parts[2]:
        found["sn"] = parts[2]
    return found


class FrameReader:
    """Turn a byte stream into frames, shortcuts and diagnostics (see the module comment).

    Args:
        max_line: the longest line (bytes, its line end not counted); longer ones are
            dropped up to the last frame that fits, and reported as ``LineTooLong``.
        lone_cr_ends_line: a CR alone ends a line (CR LF is still one line end); False:
            only LF does.

    Raises:
        ValueError: ``max_line`` below 64.
    """

    __slots__ = ("_after_cr", "_buffer", "_dropped", "_ends", "_pending", "max_line")

    def __init__(self, *, max_line: int = 4096, lone_cr_ends_line: bool = True) -> None:
        if max_line < 64:
            raise ValueError(f"max_line must be >= 64, not {max_line}")
        self.max_line = max_line
        self._ends = _CR_OR_LF if lone_cr_ends_line else _LF
        self._buffer = bytearray()
        """The current line's bytes (its kept part, see ``_dropped``) and any not yet read."""
        self._pending: list[ReaderEvent] = []
        """Events found but not yet taken, oldest first (a list: a unit keeps a reader per
        port, and an empty deque would cost 760 bytes)."""
        self._dropped = 0
        """Bytes of the current (overlong) line already dropped from the buffer's front."""
        self._after_cr = False
        """A CR ended the last line: a LF that comes next is part of that line end."""

    @property
    def lone_cr_ends_line(self) -> bool:
        """Whether a CR alone ends a line."""
        return self._ends is _CR_OR_LF

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the end of a line."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the line. ``b""`` is not end-of-stream; it is simply nothing."""
        self._buffer += data

    def events(self) -> Iterator[ReaderEvent]:
        """Yield every event the buffered bytes make complete.

        Each call ends: every step takes a whole line from the buffer or stops. An
        incomplete line stays buffered, cut down to at most ``max_line`` + 1 bytes.
        """
        pending = self._pending
        while True:
            if pending:
                yield pending.pop(0)
            elif not self._take_line():
                return

    def _take_line(self) -> bool:
        """Read one complete line into events; False when no line end is buffered."""
        buffer = self._buffer
        if self._after_cr and buffer:
            self._after_cr = False
            if buffer[0] == _LF_BYTE:
                del buffer[0]
        found = self._ends.search(buffer)
        if found is None:
            self._trim()
            return False
        end = found.start()
        ending = buffer[end]
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        if ending == _CR_BYTE:
            crlf = self._after_cr = True
        else:
            crlf = line.endswith(b"\r")
            if crlf:
                line = line[:-1]
        dropped, self._dropped = self._dropped, 0
        if dropped + len(line) <= self.max_line:
            self._split_line(line, crlf=crlf)
            return True
        start = _find_marker(line, max(0, len(line) - self.max_line))
        if start < 0:
            self._pending.append(LineTooLong(size=dropped + len(line)))
        else:
            self._pending.append(LineTooLong(size=dropped + start))
            self._split_line(line[start:], crlf=crlf)
        return True

    def _trim(self) -> None:
        """Drop the front of an unfinished overlong line that cannot start a frame that fits."""
        buffer = self._buffer
        if len(buffer) <= self.max_line:
            return  # within the window, whichever it is
        window = self.max_line + (0 if self.lone_cr_ends_line else 1)  # LF-only: the CRLF's CR
        if len(buffer) <= window:
            return
        start = len(buffer) - window
        cut = _find_marker(buffer, start)
        if cut < 0:
            cut = len(buffer) - (_LONGEST_MARKER - 1)  # a marker may be arriving
        del buffer[:cut]
        self._dropped += cut

    def _split_line(self, line: bytes, *, crlf: bool) -> None:
        start = _find_marker(line)
        if start < 0:
            if line.strip():
                self._pending.append(GarbageDiscarded(data=line))
            return
        if line[:start].strip():
            self._pending.append(GarbageDiscarded(data=line[:start]))
        while True:
            result = _parse_line(line[start:], crlf=crlf)
            good = isinstance(result, ShortcutReceived) or (
                isinstance(result, FrameReceived) and result.code_ok
            )
            inner = -1 if good else _find_marker(line, start + 1)
            if inner < 0:
                self._pending.append(result)
                return
            self._pending.append(GarbageDiscarded(data=line[start:inner]))
            start = inner
