"""The XGC wire contract on hostile input: downlinks within limits, uplink typing that cannot fail.

``downlink_value`` is the one decoder of cloud messages for the host; whatever the bytes,
it returns a value or raises ``DownlinkRefusedError`` naming why (never another exception).
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdtu.cloud.xgc_api import (
    DOWNLINK_LIMITS,
    MAX_DOWNLINK_BYTES,
    DownlinkRefusedError,
    downlink_value,
    encode_json,
    uplink_json,
)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b'{"a":' + b"1" * 5000 + b"}", "bytes"),
        (b'{"a":' + b"1" * 33 + b"}", "digits"),
        (b"[" * 1000 + b"]" * 1000, "nesting"),
        (b'{"a":' * 9 + b"1" + b"}" * 9, "nesting"),
        (b'{"a":"\\udfff"}', "surrogate"),
        (b'{"\\ud800":1}', "surrogate"),
        (b'{"a":"x\\ny"}', "CR or LF"),
        (b'"x\\ry"', "CR or LF"),
        (b"[1,\n2]", "CR or LF"),
        (b'{"a":NaN}', "NaN"),
    ],
)
def test_a_hostile_downlink_raises_downlink_refused_naming_why(payload: bytes, why: str) -> None:
    """Each hostile message is a DownlinkRefusedError whose message says which rule it broke."""
    with pytest.raises(DownlinkRefusedError, match=why):
        downlink_value(payload)


def test_a_refusal_does_not_quote_the_value() -> None:
    """The reason names the field and the limit, not the (possibly huge) value."""
    with pytest.raises(DownlinkRefusedError) as caught:
        downlink_value(b'{"k":"' + b"secret\\n" * 100 + b'"}')
    assert "secret" not in str(caught.value)
    assert "'k'" in str(caught.value)


def test_downlinks_within_the_limits_decode_as_before() -> None:
    """Objects, JSON strings, other JSON and raw text: the values the host frames are built from."""
    assert downlink_value(b'{"up": true, "t": 32}') == {"up": True, "t": 32}
    assert downlink_value(b'"abcdefg"') == "abcdefg"
    assert downlink_value(b"[1, 2]") == "[1, 2]"
    assert downlink_value(b"not json") == "not json"
    assert downlink_value(b'{"a":{"b":"x\\ny"}}') == {"a": {"b": "x\ny"}}
    depth_8 = b'{"a":' * 7 + b"[1]" + b"}" * 7
    assert isinstance(downlink_value(depth_8), dict)
    assert DOWNLINK_LIMITS.max_depth == 8


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=MAX_DOWNLINK_BYTES + 10))
def test_any_bytes_give_a_value_or_downlink_refused(payload: bytes) -> None:
    """No input makes downlink_value raise anything but DownlinkRefusedError."""
    try:
        value = downlink_value(payload)
    except DownlinkRefusedError:
        return
    assert isinstance(value, dict | str)


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=30,
    )
)
def test_any_json_gives_a_value_or_downlink_refused(value: object) -> None:
    """Any JSON document (with surrogates, line ends, big numbers) is decoded or refused."""
    try:
        decoded = downlink_value(json.dumps(value).encode())
    except DownlinkRefusedError:
        return
    assert isinstance(decoded, dict | str)


def test_a_host_integer_of_more_than_32_digits_goes_up_as_a_string() -> None:
    """'a:<5000 digits>' must not hit the interpreter's digit limit: it stays a string."""
    digits = "1" * 5000
    assert uplink_json(f"a:{digits};b:{'9' * 32}") == {"a": digits, "b": int("9" * 32)}
    assert json.loads(encode_json(uplink_json(f"a:-{digits}"))) == {"a": f"-{digits}"}


def test_a_host_decimal_that_overflows_goes_up_as_a_string() -> None:
    """'a:1.0e999' is not a finite number: it goes up as the text, so the JSON stays valid."""
    value = uplink_json("a:1.0e999;b:2.5")
    assert value == {"a": "1.0e999", "b": 2.5}
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in value.values())
    assert b"Infinity" not in encode_json(value)
