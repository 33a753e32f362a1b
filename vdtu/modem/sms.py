"""Short messages the modem has sent: the record, the outbox and the segmentation rule.

How many parts (segments) a text takes, as a GSM modem encodes it (3GPP TS 23.038
and 23.040):

* Text made only of the GSM 7-bit default alphabet and its extension table is
  sent as GSM-7: 160 septets fit in a single message; a concatenated message
  carries 153 septets per part (the user-data header takes the rest). A
  character from the extension table (``^{}\\[~]|€`` and form feed) costs two
  septets (escape + code), and an escape pair is never split across parts.
* Anything else is sent as UCS-2: 70 UTF-16 code units single, 67 per part; a
  character outside the Basic Multilingual Plane costs two code units (a
  surrogate pair), never split across parts.

Validation: the phone number is ``+`` (optional) and 3..20 ASCII digits; the
text is 1..670 characters (670 is ten UCS-2 parts of 67). Errors are
``ValueError`` naming the bad value.

The outbox keeps the last ``capacity`` records (a fleet of thousands of units
must not grow without bound) and counts every message ever sent.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet, in code order (0x1B is the escape to the extension table)."""
GSM7_EXTENSION = "\f^{}\\[~]|€"
"""Characters of the GSM 03.38 extension table: two septets each."""

GSM7_SINGLE = 160
GSM7_PER_PART = 153
UCS2_SINGLE = 70
UCS2_PER_PART = 67
MAX_TEXT_CHARS = 670

_GSM7_COST = {char: 1 for char in GSM7_BASIC if char != "\x1b"} | dict.fromkeys(GSM7_EXTENSION, 2)
_PHONE_RE = re.compile(r"\+?[0-9]{3,20}")


def check_phone(phone: str) -> str:
    """Return ``phone`` if it is ``+`` (optional) and 3..20 digits.

    Raises:
        ValueError: it is not.
    """
    if not isinstance(phone, str) or not _PHONE_RE.fullmatch(phone):
        raise ValueError(f"phone must be '+' (optional) and 3..20 digits, not {phone!r}")
    return phone


def check_text(text: str) -> str:
    """Return ``text`` if it has 1..670 characters.

    Raises:
        ValueError: it has not.
    """
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT_CHARS:
        raise ValueError(f"text must be 1..{MAX_TEXT_CHARS} characters, not {text!r}")
    return text


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent in the GSM 7-bit alphabet (with its extension table)."""
    return all(char in _GSM7_COST for char in text)


def sms_parts(text: str) -> int:
    """The number of messages ``text`` is sent as (see the module docstring).

    Raises:
        ValueError: ``text`` is not 1..670 characters.
    """
    check_text(text)
    if is_gsm7(text):
        return _count_parts([_GSM7_COST[char] for char in text], GSM7_SINGLE, GSM7_PER_PART)
    costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return _count_parts(costs, UCS2_SINGLE, UCS2_PER_PART)


def _count_parts(costs: list[int], single: int, per_part: int) -> int:
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts += 1
            used = 0
        used += cost
    return parts


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsRecord:
    """A short message the modem has sent.

    Attributes:
        at: sim time (s) at which the network accepted it.
        phone: the destination number.
        text: the message text.
        parts: how many messages it took (``sms_parts(text)``).
    """

    at: float
    phone: str
    text: str
    parts: int

    def __post_init__(self) -> None:
        if not self.at >= 0:
            raise ValueError(f"at must be a sim time >= 0, not {self.at!r}")
        check_phone(self.phone)
        expected = sms_parts(self.text)
        if self.parts != expected:
            raise ValueError(f"parts must be {expected} for this text, not {self.parts!r}")


class SmsOutbox:
    """The messages a modem has sent, newest last.

    Args:
        capacity: how many records are kept (older ones are dropped; ``sent``
            still counts them).
    """

    __slots__ = ("_capacity", "_records", "on_sms_sent", "sent")

    def __init__(self, *, capacity: int = 100) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, not {capacity!r}")
        self._capacity = capacity
        self._records: deque[SmsRecord] | tuple[()] = ()
        """The kept records; the deque (760 bytes even when empty) comes with the first one."""
        self.sent = 0
        """Messages sent since the outbox was created, including dropped records."""
        self.on_sms_sent: tuple[Callable[[SmsRecord], None], ...] = ()
        """Called with each record as it is appended."""

    @property
    def capacity(self) -> int:
        """How many records are kept."""
        return self._capacity

    def append(self, record: SmsRecord) -> None:
        """Add a sent message."""
        if not isinstance(self._records, deque):
            self._records = deque(maxlen=self._capacity)
        self._records.append(record)
        self.sent += 1
        for listener in self.on_sms_sent:
            listener(record)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[SmsRecord]:
        return iter(self._records)

    def __getitem__(self, index: int) -> SmsRecord:
        return self._records[index]
