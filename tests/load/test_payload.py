"""Load-test uplinks: exact sizes, strict decoding, and finding them inside cloud wrappers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vdtu.cloud.xgc_api import uplink_json
from vdtu.load.payload import Uplink, decode_uplink, encode_uplink, find_uplink

SAMPLE = {"unit": 12, "seq": 345, "sent_ms": 1_700_000_000_123}
SMALLEST = '{"u":12,"s":345,"t":1700000000123,"p":""}'
counts = st.integers(min_value=0, max_value=10**15)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def text(size: int = 0, **changes: int) -> str:
    return encode_uplink(**(SAMPLE | changes), size=size)


# -- encode_uplink -------------------------------------------------------------------------


def test_smallest_text_is_compact_json_with_empty_padding() -> None:
    assert text() == SMALLEST
    assert json.loads(SMALLEST) == {"u": 12, "s": 345, "t": 1_700_000_000_123, "p": ""}


@pytest.mark.parametrize("extra", [0, 1, 2, 5, 7, 100, 4096])
def test_text_is_exactly_the_size_asked_for(extra: int) -> None:
    size = len(SMALLEST) + extra
    encoded = text(size)
    assert len(encoded) == size
    assert encoded.isascii()
    assert json.loads(encoded)["p"] == "x" * extra


@pytest.mark.parametrize("size", [0, 1, len(SMALLEST) - 1])
def test_a_size_below_the_smallest_text_gives_the_smallest_text(size: int) -> None:
    assert text(size) == SMALLEST


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unit": -1}, "unit"),
        ({"seq": -5}, "seq"),
        ({"sent_ms": -1}, "sent_ms"),
        ({"size": -1}, "size"),
        ({"seq": True}, "seq"),
    ],
)
def test_encode_rejects_a_negative_or_non_integer_number_naming_it(
    changes: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = SAMPLE | {"size": 0} | changes
    with pytest.raises(ValueError, match=field):
        encode_uplink(**arguments)


def test_encode_rejects_a_float_sent_time() -> None:
    with pytest.raises(ValueError, match=r"sent_ms must be an integer >= 0, not 1\.5"):
        encode_uplink(unit=1, seq=1, sent_ms=1.5, size=0)  # type: ignore[arg-type]


# -- decode_uplink -------------------------------------------------------------------------


@given(unit=counts, seq=counts, sent_ms=counts, size=st.integers(0, 300))
def test_decode_reads_back_what_encode_wrote(unit: int, seq: int, sent_ms: int, size: int) -> None:
    encoded = encode_uplink(unit=unit, seq=seq, sent_ms=sent_ms, size=size)
    assert decode_uplink(encoded) == Uplink(unit=unit, seq=seq, sent_ms=sent_ms)


def test_decode_accepts_whitespace_and_no_padding_key() -> None:
    assert decode_uplink(' { "u" : 1 , "s" : 2 , "t" : 3 } ') == Uplink(unit=1, seq=2, sent_ms=3)


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "{",
        "null",
        "[]",
        '"{\\"u\\":1}"',
        '{"u":1,"s":2}',
        '{"u":1,"s":2,"t":3,"x":0}',
        '{"u":1,"s":2,"t":3,"p":5}',
        '{"u":-1,"s":2,"t":3}',
        '{"u":1.0,"s":2,"t":3}',
        '{"u":true,"s":2,"t":3}',
        '{"u":"1","s":2,"t":3}',
        '{"u":1,"s":null,"t":3}',
        "[" * 100_000,
        '{"u":' + "9" * 5000 + ',"s":1,"t":1}',
        "NaN",
    ],
)
def test_decode_returns_none_for_anything_not_ours(candidate: str) -> None:
    assert decode_uplink(candidate) is None


def test_uplink_rejects_negative_fields() -> None:
    with pytest.raises(ValueError, match=r"Uplink\.seq must be an integer >= 0, not -1"):
        Uplink(unit=0, seq=-1, sent_ms=0)


# -- find_uplink ---------------------------------------------------------------------------

OURS = Uplink(unit=12, seq=345, sent_ms=1_700_000_000_123)


def test_finds_the_raw_passthrough_text() -> None:
    assert find_uplink(text(80).encode()) == OURS


def test_finds_the_text_inside_a_quec_command_mode_data_string() -> None:
    assert find_uplink(json.dumps({"data": text(80)}).encode()) == OURS


def test_finds_the_object_an_xgc_key_value_content_becomes() -> None:
    content = "u:12;s:345;t:1700000000123;p:xxxx"
    assert find_uplink(json.dumps(uplink_json(content)).encode()) == OURS


def test_finds_the_json_text_the_xgc_typing_split_at_its_first_colon() -> None:
    split = uplink_json(text(60))
    assert isinstance(split, dict)
    assert len(split) == 1
    assert find_uplink(json.dumps(split).encode()) == OURS


def test_finds_a_nested_object_in_pretty_printed_json() -> None:
    wrapper = {"meta": {"imei": "86"}, "items": [0, {"payload": json.loads(text(50))}]}
    assert find_uplink(json.dumps(wrapper, indent=2).encode()) == OURS


def test_finds_the_text_encoded_as_a_string_twice() -> None:
    inner = json.dumps({"data": text()})
    assert find_uplink(json.dumps({"body": inner}).encode()) == OURS


def test_finds_the_text_among_garbage_and_invalid_utf8() -> None:
    payload = b"\xff\xfe" + b"noise {not json} " + text().encode() + b"\x00 trailing"
    assert find_uplink(payload) == OURS


def test_prefers_a_plainly_written_uplink_then_takes_the_first_in_document_order() -> None:
    first = json.loads(text(seq=1))
    second = json.loads(text(seq=2))
    assert find_uplink(json.dumps({"a": [first], "b": second}).encode()) == Uplink(
        unit=12, seq=1, sent_ms=1_700_000_000_123
    )
    assert find_uplink(json.dumps([{"x": [json.dumps(second)]}, {"y": first}]).encode()) == Uplink(
        unit=12, seq=1, sent_ms=1_700_000_000_123
    )
    split = {"z": {"x": [json.dumps(second)]}, "y": uplink_json(text(seq=3))}
    assert find_uplink(json.dumps(split).encode()) == Uplink(
        unit=12, seq=2, sent_ms=1_700_000_000_123
    )


def test_skips_a_look_alike_and_finds_ours_after_it() -> None:
    payload = '{"u":"no","s":1,"t":1} then ' + text()
    assert find_uplink(payload.encode()) == OURS


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{",
        b'{"u":',
        b"[" * 100_000,
        b'{"u":1,"s":2}',
        b'{"data":"{\\"u\\":1,\\"s\\":2}"}',
        b'{"props":{"rssi":-70,"vbat":3.9}}',
        b"\xff" * 64,
        b'{"u":' * 10_000,
        b'"' + b"\\" * 1001 + b'"',
    ],
)
def test_returns_none_when_no_uplink_is_there(payload: bytes) -> None:
    assert find_uplink(payload) is None


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_never_raises_on_arbitrary_bytes(payload: bytes) -> None:
    found = find_uplink(payload)
    assert found is None or isinstance(found, Uplink)


@settings(max_examples=300)
@given(json_values)
def test_never_raises_on_arbitrary_json(value: object) -> None:
    found = find_uplink(json.dumps(value).encode())
    assert found is None or isinstance(found, Uplink)


@given(json_values, counts, counts)
def test_finds_our_text_planted_before_arbitrary_json(value: object, unit: int, seq: int) -> None:
    planted = [{"data": encode_uplink(unit=unit, seq=seq, sent_ms=1, size=0)}, value]
    assert find_uplink(json.dumps(planted).encode()) == Uplink(unit=unit, seq=seq, sent_ms=1)


# -- the two exact forms, read without a parse ---------------------------------------------


@settings(max_examples=200)
@given(counts, counts, counts, st.integers(min_value=0, max_value=200))
def test_the_exact_forms_read_without_a_parse_give_what_the_parse_gives(
    unit: int, seq: int, sent_ms: int, size: int
) -> None:
    plain = encode_uplink(unit=unit, seq=seq, sent_ms=sent_ms, size=size)
    wanted = Uplink(unit=unit, seq=seq, sent_ms=sent_ms)
    wrapped = json.dumps({"data": plain})
    assert decode_uplink(plain) == decode_uplink(json.loads(wrapped)["data"]) == wanted
    assert find_uplink(plain.encode()) == find_uplink(wrapped.encode()) == wanted


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"u":012,"s":1,"t":2,"p":""}', None),  # a leading zero: not JSON, not ours
        (b'{"u":12,"s":1,"t":2,"p":"xy"}', Uplink(unit=12, seq=1, sent_ms=2)),  # other padding
        (b'{"u":12,"s":1,"t":2}', Uplink(unit=12, seq=1, sent_ms=2)),  # no padding key
        (b'{"data": "{\\"u\\":1,\\"s\\":-2,\\"t\\":3,\\"p\\":\\"\\"}"}', None),
        (
            b'{"data":"{\\"u\\":1,\\"s\\":2,\\"t\\":3,\\"p\\":\\"\\"}"}',
            Uplink(unit=1, seq=2, sent_ms=3),
        ),
    ],
)
def test_a_near_miss_of_the_exact_forms_is_read_by_the_parse(
    payload: bytes, expected: Uplink | None
) -> None:
    assert find_uplink(payload) == expected
