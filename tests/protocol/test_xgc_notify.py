"""Encoders of the frames the cloud sends through the DTU: DATA_PACK, NOTIFY_CONFIG, NOTIFY_OTA."""

from __future__ import annotations

from urllib.parse import unquote

from tests.protocol.test_xgc_seed_frames import OTA_URL
from vdtu.firmware.xgc.content import format_pairs, parse_pairs
from vdtu.firmware.xgc.notify import data_pack, notify_config, notify_ota

SN = "867435053362828"


def test_data_pack_case_one_switch_with_trailing_separator() -> None:
    """Seed case one: {"switch1": true} -> 'switch1:true;' (the seed prints the trailing ';')."""
    frame = data_pack({"switch1": True}, sn="SN", timestamp="Timestamp", trailing_separator=True)
    assert frame.body() == b"$XGC#DATA_PACK#SN#Timestamp#switch1:true;"


def test_data_pack_case_two_object() -> None:
    """Seed case two: {"up": true, "temperature": 32} -> 'up:true;temperature:32'."""
    frame = data_pack({"up": True, "temperature": 32}, sn="SN", timestamp="Timestamp")
    assert frame.body() == b"$XGC#DATA_PACK#SN#Timestamp#up:true;temperature:32"


def test_data_pack_case_three_plain_string() -> None:
    """Seed case three: the string "abcdefg" is sent as its text."""
    frame = data_pack("abcdefg", sn="SN", timestamp="Timestamp")
    assert frame.body() == b"$XGC#DATA_PACK#SN#Timestamp#abcdefg"


def test_data_pack_value_types() -> None:
    """Floats, negative numbers, false, null and nested values print as JSON; strings bare."""
    frame = data_pack({"t": -1.5, "ok": False, "n": None, "s": "hi", "l": [1, 2]}, sn=SN)
    assert frame.content == "t:-1.5;ok:false;n:null;s:hi;l:[1,2]"


def test_data_pack_encodes_with_valid_code() -> None:
    """A DATA_PACK frame's encoding ends in its XOR check code and CRLF."""
    encoded = data_pack({"switch1": True}, sn=SN).encode()
    assert encoded.startswith(b"$XGC#DATA_PACK#867435053362828#0#switch1:true&#")
    assert encoded.endswith(b"#\r\n")


def test_notify_config_format() -> None:
    """NOTIFY_CONFIG puts configVersion first, then the custom keys, as the seed's format line."""
    frame = notify_config(
        1693894843740, {"key1": "value1", "key2": "value2"}, sn="SN", timestamp="Timestamp"
    )
    assert (
        frame.body()
        == b"$XGC#NOTIFY_CONFIG#SN#Timestamp#configVersion:1693894843740;key1:value1;key2:value2"
    )


def test_notify_ota_reproduces_the_seed_example_body() -> None:
    """The seed's NOTIFY_OTA example, from the plain URL, byte for byte (its code 03 is a slip)."""
    frame = notify_ota(
        fw_version="v1.0",
        filename="update.bin",
        md5="SD9VY9H3932J0AS08310EF3",
        url=unquote(OTA_URL),
        sn="SN",
        timestamp="Timestamp",
    )
    expected = (
        "$XGC#NOTIFY_OTA#SN#Timestamp#fwVersion:v1.0;filename:update.bin;"
        f"md5:SD9VY9H3932J0AS08310EF3;url:{OTA_URL}"
    )
    assert frame.body() == expected.encode()


def test_notify_ota_with_config_version_first() -> None:
    """The format line of the seed puts configVersion before fwVersion."""
    frame = notify_ota(
        fw_version="1", filename="f", md5="m", url="http://h/p", sn=SN, config_version=7
    )
    assert frame.content == "configVersion:7;fwVersion:1;filename:f;md5:m;url:http%3A%2F%2Fh%2Fp"


def test_pairs_round_trip() -> None:
    """parse_pairs(format_pairs(x)) gives the values back as text."""
    assert parse_pairs(format_pairs({"a": 1, "b": True, "c": "x:y"})) == {
        "a": "1",
        "b": "true",
        "c": "x:y",
    }
