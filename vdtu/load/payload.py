"""The uplink each simulated host sends in a load run, and how the subscriber finds it again.

Wire form: one compact JSON object, ASCII only, keys in this order::

    {"u":12,"s":345,"t":1700000000123,"p":"xxxxxxxx"}
      |      |       |                  +-- padding: "x" repeated to the size asked for
      |      |       +-- send time, integer milliseconds (the runner's clock)
      |      +-- sequence number of this uplink for this unit (0, 1, 2, ...)
      +-- unit number

The smallest text is the one with empty padding (``"p":""``); a requested size at
or below it gives that smallest text, so ``encode_uplink`` never truncates a field.

On its way to the verifying subscriber the text may be wrapped: a QuecPython unit
in command mode publishes ``{"data": "<text>"}``, in passthrough the text itself;
the XGC platform turns a host DATA_PACK into JSON, where the object can come back
as a nested object (``key:value`` content typed by ``xgc_api.uplink_json``), as a
string, or, when the content was the JSON text itself, split at its first ``:``
into a one-entry object ``{"{\\"u\\"": "12,\\"s\\":..."}``. ``find_uplink`` looks
for the object in all of these: it scans the text for ``{"u":`` first (the raw
case costs one JSON parse), then parses the payload and walks objects, lists and
strings (a string may hold JSON text again, to ``MAX_NESTING`` levels). Garbage
gives ``None``; nothing here raises on input from the network. The two forms nearly
every message has, the text itself and a QuecPython unit's ``{"data": "<text>"}`` with
``encode_uplink``'s exact layout, are read by one regular expression each first: a
match gives the uplink the parse would give (the numbers are JSON integers, the
padding only ``x``), anything else takes the parse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_NESTING = 4
"""How many times a JSON string inside a payload is parsed again as JSON."""
MAX_SCAN_HITS = 64
"""How many ``{"u":`` occurrences in one text are tried before giving up."""

_MARK = '{"u":'
_KEYS = frozenset({"u", "s", "t"})
_KEYS_PADDED = frozenset({"u", "s", "t", "p"})
_JSON_STARTS = frozenset('{["')
_DECODER = json.JSONDecoder()
_COUNT = rb"(0|[1-9][0-9]*)"
_PLAIN = re.compile(rb'\{"u":%s,"s":%s,"t":%s,"p":"x*"\}' % (_COUNT, _COUNT, _COUNT))
"""``encode_uplink``'s text, as it is."""
_WRAPPED = re.compile(
    rb'\{"data": "\{\\"u\\":%s,\\"s\\":%s,\\"t\\":%s,\\"p\\":\\"x*\\"\}"\}'
    % (_COUNT, _COUNT, _COUNT)
)
"""The same text in a QuecPython unit's ``{"data": "<text>"}`` (its quotes escaped)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Uplink:
    """One uplink as the subscriber reads it back."""

    unit: int
    """The unit that sent it (``u``)."""
    seq: int
    """Its sequence number for that unit (``s``)."""
    sent_ms: int
    """When the host handed it to the unit, integer milliseconds (``t``)."""

    def __post_init__(self) -> None:
        _check_counts(self.unit, self.seq, self.sent_ms)


def encode_uplink(*, unit: int, seq: int, sent_ms: int, size: int) -> str:
    """The uplink text for one message (see the module comment for the layout).

    Args:
        unit: the unit number, >= 0.
        seq: the unit's sequence number for this uplink, >= 0.
        sent_ms: the send time in integer milliseconds, >= 0.
        size: the wanted length of the text in characters (= bytes, it is ASCII);
            sizes below the smallest text give the smallest text.

    Returns:
        The JSON text, exactly ``size`` characters long when ``size`` is at least
        the length of the unpadded text.

    Raises:
        ValueError: a number is negative or not an integer.
    """
    _check_counts(unit, seq, sent_ms)
    if not _is_count(size):
        raise ValueError(f"size must be an integer >= 0, not {size!r}")
    head = f'{{"u":{unit},"s":{seq},"t":{sent_ms},"p":"'
    padding = max(0, size - len(head) - 2)
    return head + "x" * padding + '"}'


def decode_uplink(text: str) -> Uplink | None:
    """The uplink in ``text`` when the whole text is one of ours, else None.

    Accepts the object with or without ``p`` and with any JSON whitespace; any
    other key, a missing key, a negative or non-integer number gives None.
    """
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    return _from_value(value)


def find_uplink(payload: bytes) -> Uplink | None:
    """The first uplink of ours anywhere in ``payload``, or None.

    Args:
        payload: a message as the subscriber received it: our text, or JSON
            wrapping it (see the module comment); undecodable bytes are tolerated.

    Returns:
        The first uplink written plainly in the payload's text; failing that, the
        first one in document order inside the parsed JSON (in a nested string, in
        the XGC split form); None when there is none.
    """
    exact = _PLAIN.fullmatch(payload) or _WRAPPED.fullmatch(payload)
    if exact is not None:
        unit, seq, sent_ms = exact.groups()
        return Uplink(unit=int(unit), seq=int(seq), sent_ms=int(sent_ms))
    if payload.startswith(b'{"u":'):
        found = decode_uplink(payload.decode("ascii", errors="replace"))
        if found is not None:
            return found
    return _search(payload.decode("utf-8", errors="replace"))


def _search(text: str) -> Uplink | None:
    """Depth-first through the text and what it parses to, in document order."""
    stack: list[tuple[object, int]] = [(text, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            found = _scan(value)
            if found is not None:
                return found
            if depth < MAX_NESTING and value.lstrip()[:1] in _JSON_STARTS:
                try:
                    parsed = _DECODER.decode(value)
                except (ValueError, RecursionError):
                    continue  # not JSON after all
                stack.append((parsed, depth + 1))
        elif isinstance(value, dict):
            found = _from_mapping(value) or _rejoined(value)
            if found is not None:
                return found
            stack += [(item, depth) for item in reversed(value.values())]
        elif isinstance(value, list):
            stack += [(item, depth) for item in reversed(value)]
    return None


def _scan(text: str) -> Uplink | None:
    """Try each ``{"u":`` in ``text`` as the start of one of our objects."""
    start = text.find(_MARK)
    tries = 0
    while start >= 0 and tries < MAX_SCAN_HITS:
        tries += 1
        try:
            value, _ = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            value = None
        found = _from_mapping(value) if isinstance(value, dict) else None
        if found is not None:
            return found
        start = text.find(_MARK, start + 1)
    return None


def _rejoined(mapping: Mapping[Any, Any]) -> Uplink | None:
    """Our text split at its first ``:`` into a one-entry object, put back together."""
    if len(mapping) != 1:
        return None
    ((key, value),) = mapping.items()
    if not isinstance(key, str) or not isinstance(value, str) or not key.startswith("{"):
        return None
    return _scan(f"{key}:{value}")


def _from_value(value: object) -> Uplink | None:
    return _from_mapping(value) if isinstance(value, dict) else None


def _from_mapping(mapping: Mapping[Any, Any]) -> Uplink | None:
    keys = mapping.keys()
    if not (_KEYS <= keys <= _KEYS_PADDED):
        return None
    if not isinstance(mapping.get("p", ""), str):
        return None
    try:
        return Uplink(unit=mapping["u"], seq=mapping["s"], sent_ms=mapping["t"])
    except ValueError:  # a number that is not a count
        return None


def _check_counts(unit: object, seq: object, sent_ms: object) -> None:
    """Raise ValueError naming the first of an uplink's numbers that is not a count."""
    if type(unit) is type(seq) is type(sent_ms) is int and min(unit, seq, sent_ms) >= 0:
        return  # plain ints: what hosts write and JSON reads (a subclass is checked below)
    if _is_count(unit) and _is_count(seq) and _is_count(sent_ms):
        return
    for name, value in (("unit", unit), ("seq", seq), ("sent_ms", sent_ms)):
        if not _is_count(value):
            raise ValueError(f"Uplink.{name} must be an integer >= 0, not {value!r}")


def _is_count(value: object) -> bool:
    """An int >= 0 that is not a bool (JSON ``true`` loads as one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
