"""SMS segmentation, validation, records and the outbox."""

from __future__ import annotations

import pytest

from vdtu.modem.sms import (
    SmsOutbox,
    SmsRecord,
    check_phone,
    check_text,
    is_gsm7,
    sms_parts,
)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 670, 5),
        ("中", 1),
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("中" * 670, 10),
        ("a" * 69 + "中", 1),
        ("a" * 70 + "中", 2),
    ],
)
def test_parts_rule(text: str, parts: int) -> None:
    """GSM-7 text: 160 single / 153 per part; other text: 70 single / 67 per part."""
    assert sms_parts(text) == parts


def test_extension_characters_cost_two_septets() -> None:
    """Characters of the GSM-7 extension table take two septets each."""
    assert is_gsm7("{[€]}")
    assert sms_parts("€" * 80) == 1
    assert sms_parts("€" * 81) == 2


def test_escape_pair_is_not_split() -> None:
    """An extension character that would straddle a part boundary moves to the next part."""
    assert sms_parts("a" * 152 + "€" + "a" * 153) == 3
    assert sms_parts("a" * 151 + "€" + "a" * 153) == 2


def test_astral_characters_take_two_units() -> None:
    """A character outside the BMP takes two UCS-2 units and is not split."""
    assert sms_parts("😀" * 35) == 1
    assert sms_parts("😀" * 36) == 2
    assert sms_parts("a" * 66 + "😀" + "a" * 67) == 3


def test_escape_character_itself_is_not_gsm7() -> None:
    """The raw escape code 0x1B is not sendable text, so it forces UCS-2."""
    assert not is_gsm7("\x1b")


@pytest.mark.parametrize("phone", ["123", "+8613800138000", "1" * 20, "+" + "9" * 20])
def test_valid_phones(phone: str) -> None:
    """An optional '+' and 3..20 digits are accepted."""
    assert check_phone(phone) == phone


@pytest.mark.parametrize(
    "phone", ["", "12", "1" * 21, "++123", "12a4", "188 1234", "\uff11\uff12\uff13"]
)
def test_invalid_phones_name_the_value(phone: str) -> None:
    """Anything else raises ValueError naming the value."""
    with pytest.raises(ValueError, match=r"3\.\.20 digits") as info:
        check_phone(phone)
    assert repr(phone) in str(info.value)


@pytest.mark.parametrize("text", ["", "a" * 671])
def test_invalid_text_lengths(text: str) -> None:
    """Empty text and text over 670 characters are refused."""
    with pytest.raises(ValueError, match=r"1\.\.670"):
        check_text(text)


def test_record_is_validated() -> None:
    """A record must carry a valid phone and the right part count."""
    record = SmsRecord(at=1.5, phone="+8613800138000", text="hello", parts=1)
    assert record.parts == 1
    with pytest.raises(ValueError, match="parts must be 1"):
        SmsRecord(at=1.5, phone="13800138000", text="hello", parts=2)
    with pytest.raises(ValueError, match="'x'"):
        SmsRecord(at=1.5, phone="x", text="hello", parts=1)
    with pytest.raises(ValueError, match="-1"):
        SmsRecord(at=-1, phone="13800138000", text="hello", parts=1)


def test_outbox_keeps_the_last_records_and_counts_all() -> None:
    """The outbox drops the oldest beyond capacity, counts every message and notifies."""
    outbox = SmsOutbox(capacity=2)
    seen: list[SmsRecord] = []
    outbox.on_sms_sent += (seen.append,)
    records = [SmsRecord(at=float(i), phone="10086", text=str(i), parts=1) for i in range(3)]
    for record in records:
        outbox.append(record)
    assert list(outbox) == records[1:]
    assert len(outbox) == 2
    assert outbox[-1] is records[2]
    assert outbox.sent == 3
    assert outbox.capacity == 2
    assert seen == records


def test_outbox_capacity_validated() -> None:
    """Capacity below 1 is refused."""
    with pytest.raises(ValueError, match="capacity"):
        SmsOutbox(capacity=0)
