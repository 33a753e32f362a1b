"""Frame content: ``key:value;key:value`` pairs, and the typed readers the actions use.

Every reader raises ``RemoteProtocolError`` whose ``reply_hint`` is the error code
the firmware answers with (``missing-field``, ``bad-param``), and whose message
names the field, the value and what is allowed. Empty segments are skipped, so
the trailing ``;`` of ``switch1:true;`` (seed, DATA_PACK case one) is harmless.
A value may contain ``:`` (only the first one splits).

``redact`` and ``redact_line`` keep secrets out of logs and error replies: the value of
any key naming a secret or a password (``PSECRET:...``, ``password=...``), and, in a raw
line, everything of a SET_PRJINFO frame after its action.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from vdtu.errors import RemoteProtocolError

MISSING_FIELD = "missing-field"
BAD_PARAM = "bad-param"
REDACTED = "<redacted>"
"""What stands in a log line or reply where a secret was."""
SECRET_ACTION = "SET_PRJINFO"
"""The action whose content holds the project secret."""
_SECRET_WORDS = ("secret", "passw", "pwd", "token")
"""What names a secret, in any case."""
_SECRET_HINT = re.compile("(?i)" + "|".join(_SECRET_WORDS))
_SECRET_FIELD = re.compile(
    r"""(?i)(\w*(?:secret|passw(?:or)?d|pwd|token)\w*["']?\s*[:=]\s*["']?)[^;&#,"'\s)]*"""
)
"""A key naming a secret, its separator, and the value that is hidden."""


def parse_pairs(content: str) -> dict[str, str]:
    """``a:1;b:x`` -> ``{"a": "1", "b": "x"}``. A segment without ``:`` is an error."""
    pairs: dict[str, str] = {}
    for segment in content.split(";"):
        if not segment:
            continue
        key, sep, value = segment.partition(":")
        if not sep or not key:
            raise RemoteProtocolError(f"expected key:value, not {segment!r}", reply_hint=BAD_PARAM)
        if key in pairs:
            raise RemoteProtocolError(f"key {key!r} given twice", reply_hint=BAD_PARAM)
        pairs[key] = value
    return pairs


def format_pairs(pairs: Mapping[str, object]) -> str:
    """``{"a": 1, "b": True}`` -> ``a:1;b:true`` (booleans lower case as in the seed)."""
    return ";".join(f"{key}:{format_value(value)}" for key, value in pairs.items())


def format_value(value: object) -> str:
    """A value as the XGC text protocol prints it: strings bare, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def require(pairs: Mapping[str, str], key: str) -> str:
    """The value of ``key``, or a ``missing-field`` error naming it."""
    if key not in pairs:
        raise RemoteProtocolError(f"field {key!r} is missing", reply_hint=MISSING_FIELD)
    return pairs[key]


def parse_int(key: str, text: str, *, low: int, high: int, base: int = 10) -> int:
    """An integer field within ``low..high`` (``base`` 16 for the hex fields of SEND_MBR_485)."""
    try:
        value = int(text, base)
    except ValueError:
        kind = "hex" if base == 16 else "decimal"
        raise RemoteProtocolError(
            f"{key} must be a {kind} number, not {text!r}", reply_hint=BAD_PARAM
        ) from None
    if not low <= value <= high:
        raise RemoteProtocolError(
            f"{key} must be in {low}..{high}, not {value}", reply_hint=BAD_PARAM
        )
    return value


def parse_bool(key: str, text: str) -> bool:
    """``true``/``false`` (also ``1``/``0``), case-insensitive."""
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise RemoteProtocolError(f"{key} must be true or false, not {text!r}", reply_hint=BAD_PARAM)


def reject_unknown(pairs: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """A ``bad-param`` error if ``pairs`` has a key outside ``allowed``."""
    unknown = [key for key in pairs if key not in allowed]
    if unknown:
        raise RemoteProtocolError(
            f"unknown field {unknown[0]!r}; allowed: {', '.join(allowed)}", reply_hint=BAD_PARAM
        )


def sanitize(text: str, limit: int = 120) -> str:
    """Make free text safe inside content: no separators, no frame characters, bounded."""
    table = str.maketrans({";": ",", ":": "=", "#": " ", "&": "+", "\r": " ", "\n": " "})
    cleaned = text.translate(table)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def redact(text: str) -> str:
    """``text`` with the value of every key naming a secret or a password hidden."""
    if not _names_secret(text):
        return text
    return _SECRET_FIELD.sub(lambda found: found.group(1) + REDACTED, text)


def _names_secret(text: str) -> bool:
    """Whether ``_SECRET_HINT`` is in ``text``. ASCII text (nearly every frame) is lowered and
    searched for the words: the case-insensitive regex takes 5 us on a frame, on every event
    text. Other text goes to the regex, whose Unicode folding also matches the long s
    (U+017F) and the Kelvin sign (U+212A)."""
    if text.isascii():
        lowered = text.lower()
        return any(word in lowered for word in _SECRET_WORDS)
    return _SECRET_HINT.search(text) is not None


def redact_line(line: bytes, limit: int = 80) -> str:
    """A raw line from the wire, safe to log: decoded, secrets hidden (a SET_PRJINFO
    frame's content entirely), then cut to ``limit`` characters."""
    text = line.decode("utf-8", errors="replace")
    at = text.find(SECRET_ACTION)
    if at >= 0:
        text = text[: at + len(SECRET_ACTION)] + "#" + REDACTED
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
