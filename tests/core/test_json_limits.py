"""The bounded JSON decoder every QuecPython input path uses (``vdtu.json_limits``)."""

from __future__ import annotations

import json

import pytest

from vdtu.json_limits import JsonLimitError, JsonLimits, decode

SMALL = JsonLimits(max_bytes=200, max_depth=3, max_digits=5, max_string=10)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, 2, {"b": "c"}], "d": -12.5e3, "e": null, "f": true}',
        '"[[[[[[[[ not nesting, a string"',
        "[1, [2, [3]]]",
        '{"k": "0123456789"}',
    ],
)
def test_input_within_the_limits_decodes_as_json_loads_does(text: str) -> None:
    """Within the limits the result is exactly json.loads's (brackets in strings do not count)."""
    limits = JsonLimits(max_depth=3, max_digits=5, max_string=40)
    assert decode(text, limits) == json.loads(text)
    assert decode(text.encode(), limits) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9" * 150, "a number has 150 digits (at most 5)"),
        ("-" + "9" * 6, "a number has 6 digits (at most 5)"),
        ("[1.23456e7]", "a number has 7 digits (at most 5)"),
        ("[" * 90 + "]" * 90, "nesting deeper than 3 levels"),
        ('{"a": {"b": {"c": {"d": 1}}}}', "nesting deeper than 3 levels"),
        ('["' + "x" * 11 + '"]', "a string has 11 characters (at most 10)"),
        ('{"' + "k" * 11 + '": 1}', "a string has 11 characters (at most 10)"),
        ("[NaN]", "NaN is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ("[" + " " * 200 + "]", "202 bytes (at most 200)"),
    ],
)
def test_input_over_a_limit_is_a_limit_error_naming_the_limit_not_the_value(
    text: str, message: str
) -> None:
    """Huge numbers, deep nesting, long strings, NaN and big inputs are refused by name."""
    with pytest.raises(JsonLimitError) as caught:
        decode(text, SMALL)
    assert str(caught.value) == message
    assert "99999" not in str(caught.value)


def test_deep_nesting_is_refused_before_json_loads_could_recurse() -> None:
    """Nesting far past the interpreter's recursion limit is a limit error, not RecursionError."""
    text = "[" * 200_000 + "]" * 200_000
    with pytest.raises(JsonLimitError, match="nesting deeper than 32 levels"):
        decode(text, JsonLimits(max_bytes=1_000_000))


def test_bad_syntax_and_bad_utf8_stay_value_errors() -> None:
    """Not JSON and not UTF-8 are the usual ValueErrors (one except clause for callers)."""
    with pytest.raises(json.JSONDecodeError):
        decode("{nope", SMALL)
    with pytest.raises(UnicodeDecodeError):
        decode(b"\xff", SMALL)


def test_limits_must_be_positive_integers() -> None:
    """A limit of 0 or a non-integer is refused with the field named."""
    with pytest.raises(ValueError, match="max_depth must be an integer >= 1, not 0"):
        JsonLimits(max_depth=0)
