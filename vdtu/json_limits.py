"""JSON from outside, decoded within limits: a bad input is a ``ValueError``, never a crash.

Pure (standard library only), shared by the firmware and the local clouds: anything that
reads JSON a peer sent (a cloud downlink, a serial frame, an HTTP body) decodes it with
``decode(data, limits)``. Plain ``json.loads`` has three ways to take a process down on
hostile input: a number of more than 4300 digits (``ValueError: Exceeds the limit``, a
plain ValueError, not a ``JSONDecodeError``), nesting deep enough for a ``RecursionError``,
and no bound on size or work at all. Here:

* ``max_bytes``: the input's size (UTF-8 bytes for ``bytes``, characters for ``str``) is
  checked first, before any work.
* ``max_depth`` and ``max_string``: one iterative pass over the strings and brackets (a
  regular expression, no recursion) measures the nesting and the longest string *before*
  ``json.loads`` runs, so the decoder never recurses deeper than ``max_depth``. Texts
  with fewer brackets than ``max_depth`` and no more characters than ``max_string`` skip
  the pass: they cannot break either limit.
* ``max_digits``: numbers go through ``parse_int``/``parse_float`` hooks that refuse more
  digits, so the interpreter's own digit limit is never reached.
* ``NaN``, ``Infinity`` and ``-Infinity`` are refused: they are not JSON, and what
  ``json.dumps`` writes for them no other decoder reads.

Errors are ``JsonLimitError`` (a ``ValueError``) for a limit, ``json.JSONDecodeError``
for bad syntax and ``UnicodeDecodeError`` for bad UTF-8: all ``ValueError``, so callers
catch one class. Messages say which limit and the measured size, never the value (which
may be huge, or a secret).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_TOKEN_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
"""A JSON string (escapes included) or a bracket: what the pre-scan looks at."""


class JsonLimitError(ValueError):
    """The input is over one of the ``JsonLimits``; the message names the limit, not the value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonLimits:
    """How much JSON one input may hold."""

    max_bytes: int = 64 * 1024
    """The whole input, in bytes (characters for a ``str``)."""
    max_depth: int = 32
    """Nested arrays and objects; the top-level value is depth 1."""
    max_digits: int = 32
    """Digits of one number (sign, point and exponent marker not counted)."""
    max_string: int = 64 * 1024
    """Characters of one string or key, as written (escapes count as written)."""

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_digits", "max_string"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, not {value!r}")

    def describe(self) -> str:
        """The limits in one line, for documentation and error messages."""
        return (
            f"at most {self.max_bytes} bytes, {self.max_depth} levels of nesting, "
            f"{self.max_digits} digits per number and {self.max_string} characters per string"
        )


DEFAULT = JsonLimits()
"""64 KiB, depth 32, 32 digits, strings up to the whole input."""


def _number_hooks(max_digits: int) -> tuple[Callable[[str], int], Callable[[str], float]]:
    def parse_int(text: str) -> int:
        digits = len(text) - text.startswith("-")
        if digits > max_digits:
            raise JsonLimitError(f"a number has {digits} digits (at most {max_digits})")
        return int(text)

    def parse_float(text: str) -> float:
        digits = sum(char.isdigit() for char in text)
        if digits > max_digits:
            raise JsonLimitError(f"a number has {digits} digits (at most {max_digits})")
        return float(text)

    return parse_int, parse_float


def _refuse_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not a JSON number")


def check_shape(text: str, limits: JsonLimits = DEFAULT) -> None:
    """Check the nesting depth and string lengths of ``text`` without decoding it.

    Raises:
        JsonLimitError: a string longer than ``max_string`` or nesting deeper than
            ``max_depth``.
    """
    if len(text) <= limits.max_string and (text.count("[") + text.count("{") <= limits.max_depth):
        return
    depth = 0
    for match in _TOKEN_RE.finditer(text):
        token = match.group()
        if token[0] == '"':
            if len(token) - 2 > limits.max_string:
                raise JsonLimitError(
                    f"a string has {len(token) - 2} characters (at most {limits.max_string})"
                )
        elif token in "[{":
            depth += 1
            if depth > limits.max_depth:
                raise JsonLimitError(f"nesting deeper than {limits.max_depth} levels")
        else:
            depth -= 1


def decode(
    data: bytes | str,
    limits: JsonLimits = DEFAULT,
    *,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """The JSON value in ``data``, decoded within ``limits``.

    Args:
        data: UTF-8 bytes or text.
        limits: the limits to enforce.
        object_pairs_hook: as ``json.loads``'s (e.g. to refuse duplicate keys).

    Raises:
        JsonLimitError: ``data`` is over a limit (the message names which).
        UnicodeDecodeError: ``data`` is bytes but not UTF-8.
        json.JSONDecodeError: ``data`` is not JSON.
    """
    if len(data) > limits.max_bytes:
        raise JsonLimitError(f"{len(data)} bytes (at most {limits.max_bytes})")
    text = data.decode() if isinstance(data, bytes) else data
    check_shape(text, limits)
    parse_int, parse_float = _number_hooks(limits.max_digits)
    return json.loads(
        text,
        parse_int=parse_int,
        parse_float=parse_float,
        parse_constant=_refuse_constant,
        object_pairs_hook=object_pairs_hook,
    )


def holds_text(value: Any) -> bool:
    """Whether a decoded JSON value has a string anywhere in it (keys included); iterative."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            return True
        if isinstance(item, dict):
            if item:
                return True  # JSON keys are strings
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False
