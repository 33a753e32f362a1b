"""The firmware answers the seed's commands with the seed's exact reply bytes.

The unit has the seed's identity (IMEI 867435053362828, ICCID 898604E0092221379975),
and each case sets the code form the seed printed that reply in, so the whole
line, check code included, must match byte for byte.
"""

from __future__ import annotations

from tests.xgc_harness import XgcBench
from vdtu.firmware.xgc.codec import CodeFormat
from vdtu.firmware.xgc.options import XgcOptions
from vdtu.modbus.rtu import crc16

IMEI = "867435053362828"


def exchange(bench: XgcBench, command: bytes, *, port: str = "uart", wait_s: float = 0.5) -> bytes:
    """Send raw command bytes; return every byte the unit sent back meanwhile."""
    endpoint = bench.host_on(port)
    before = len(endpoint.received)
    bench.send_raw(command, port)
    bench.clock.run_for(wait_s)
    return b"".join(chunk for _at, chunk in endpoint.received[before:])


def booted(**config: object) -> XgcBench:
    bench = XgcBench(**config)  # type: ignore[arg-type]
    bench.boot()
    return bench


def test_get_imei_reply() -> None:
    """GET_IMEI -> the seed's reply, decimal code 95."""
    assert exchange(booted(), b"$XGC#GET_IMEI#0#0&#5A#\r\n") == (
        b"$XGC_ACK#GET_IMEI#867435053362828#0#867435053362828&#95#\r\n"
    )


def test_set_prjinfo_reply() -> None:
    """SET_PRJINFO -> ok, code 57."""
    command = (
        b"$XGC#SET_PRJINFO#867435053362828#0#PID:1000904556b23945fe90;"
        b"PSECRET:76EDCE04DE96555E16CB34175F2B1565493A7412&#50#\r\n"
    )
    reply = exchange(booted(), command)
    assert reply.startswith(b"$XGC_ACK#SET_PRJINFO#867435053362828#0#ok&#57#\r\n")


def test_get_iccid_reply() -> None:
    """GET_ICCID -> the seed's ICCID, code 89."""
    assert exchange(booted(), b"$XGC#GET_ICCID#867435053362828#0&#1E#\r\n") == (
        b"$XGC_ACK#GET_ICCID#867435053362828#0#898604E0092221379975&#89#\r\n"
    )


def test_get_net_info_reply() -> None:
    """GET_NET_INFO at rssi 30 on LTE -> the seed's reply, hex code 5F."""
    bench = booted(rssi=30, rssi_spread=0, options=XgcOptions(code_format=CodeFormat.HEX))
    command = _with_code(b"$XGC#GET_NET_INFO#0#0")
    assert exchange(bench, command) == (
        b"$XGC_ACK#GET_NET_INFO#867435053362828#0#rssi:30;netState:REGISTERED;netMode:4;"
        b"simStatus:true&#5F#\r\n"
    )


def _with_code(body: bytes) -> bytes:
    code = 0
    for byte in body:
        code ^= byte
    return body + b"&#%02X#\r\n" % code


def _booted_at_network_time(unix_ms: int) -> tuple[XgcBench, float]:
    """A booted bench whose network clock reads ``unix_ms`` right after boot."""
    probe = XgcBench()
    at = probe.boot()
    bench = XgcBench(epoch_s=unix_ms / 1000 - at)
    assert bench.boot() == at
    return bench, at


def test_get_now_timestamp_reply() -> None:
    """GET_NOW timestamp -> Unix ms, decimal code 8."""
    bench, _ = _booted_at_network_time(1692157152787)
    assert exchange(bench, b"$XGC#GET_NOW#867435053362828#0#timestamp&#41#\r\n") == (
        b"$XGC_ACK#GET_NOW#867435053362828#0#1692157152787&#8#\r\n"
    )


def test_get_now_date_reply() -> None:
    """GET_NOW date -> the local (UTC+8) date fields, decimal code 2."""
    bench, _ = _booted_at_network_time(1692157162576)
    assert exchange(bench, b"$XGC#GET_NOW#867435053362828#0#date&#3B#\r\n") == (
        b"$XGC_ACK#GET_NOW#867435053362828#0#year:2023;month:8;day:16;hour:11;minute:39;"
        b"second:22;millis:576&#2#\r\n"
    )


def test_set_gpio_off_reply() -> None:
    """SET_GPIO all outputs off -> the same pairs back, hex code 59."""
    bench = booted(options=XgcOptions(code_format=CodeFormat.HEX))
    outs = b";".join(b"out%d:0" % i for i in range(1, 9))
    assert exchange(bench, b"$XGC#SET_GPIO#867435053362828#0#" + outs + b"&#4f#\r\n") == (
        b"$XGC_ACK#SET_GPIO#867435053362828#0#" + outs + b"&#59#\r\n"
    )


def test_gpio_int_notification() -> None:
    """Input 1 going high -> GPIO_INT in1:1, decimal code 70."""
    bench = booted()
    before = len(bench.host.received)
    bench.unit.set_input(1, 1)
    bench.clock.run_for(0.1)
    sent = b"".join(chunk for _at, chunk in bench.host.received[before:])
    assert sent == b"$XGC_ACK#GPIO_INT#867435053362828#0#in1:1&#70#\r\n"


def test_get_lbs_reply() -> None:
    """GET_LBS -> the serving cell's position, zero-padded as the seed prints it, code 122."""
    bench = booted(location=(113.3160324, 22.5571994))
    assert exchange(bench, b"$XGC#GET_LBS#867435053362828#0&#07#\r\n") == (
        b"$XGC_ACK#GET_LBS#867435053362828#0#longitude:113.3160324;latitude:022.5571994&#122#\r\n"
    )


def test_send_mbr_485_reply_from_the_demo_slave() -> None:
    """SEND_MBR_485 read 1 register at 0 of slave 1 -> 01 03 00 00 00 01 84 0A on the bus, and
    the demo slave's answer as 485_RECEIVE 0103020115781B, decimal code 50."""
    bench = booted()
    before = len(bench.bus.received)
    reply = exchange(
        bench,
        b"$XGC#SEND_MBR_485#867435053362828#0#addr:01;instructions:03;reg:0000;value:0001&#33#\r\n",
    )
    assert reply == b"$XGC_ACK#485_RECEIVE#867435053362828#0#0103020115781B&#50#\r\n"
    on_bus = b"".join(chunk for _at, chunk in bench.bus.received[before:])
    assert on_bus.startswith(bytes.fromhex("010300000001840A"))


def test_send_raw_485_reply_and_answer() -> None:
    """SEND_RAW_485 -> ok (code 3); a device's ASCII answer '010203' -> 485_RECEIVE (code 75)."""
    bench = booted(slaves=())
    bench.bus.received.clear()
    reply = exchange(
        bench, b"$XGC#SEND_RAW_485#867435053362828#0#010300000001&#12#\r\n", wait_s=0.1
    )
    assert reply == b"$XGC_ACK#SEND_RAW_485#867435053362828#0#ok&#3#\r\n"
    assert bench.bus.data == bytes.fromhex("010300000001")
    bench.bus.write(b"010203")
    bench.clock.run_for(0.1)
    assert bench.host.data.endswith(b"$XGC_ACK#485_RECEIVE#867435053362828#0#303130323033&#75#\r\n")


def test_save_and_get_keys_replies() -> None:
    """SAVE_KEYS -> ok (code 56); GET_KEYS key1,key2 -> key1:value1;key2:value2 (hex code 50)."""
    bench = booted()
    assert exchange(bench, b"$XGC#SAVE_KEYS#867435053362828#0#a:123;b:abc&#42#\r\n") == (
        b"$XGC_ACK#SAVE_KEYS#867435053362828#0#ok&#56#\r\n"
    )
    bench = booted(options=XgcOptions(code_format=CodeFormat.HEX))
    exchange(bench, _with_code(b"$XGC#SAVE_KEYS#867435053362828#0#key1:value1;key2:value2"))
    assert exchange(bench, b"$XGC#GET_KEYS#867435053362828#0#key1,key2&#52#\r\n") == (
        b"$XGC_ACK#GET_KEYS#867435053362828#0#key1:value1;key2:value2&#50#\r\n"
    )


def test_set_update_props_reply() -> None:
    """SET_UPDATE_PROPS -> ok, hex-lower code 7f."""
    bench = booted(options=XgcOptions(code_format=CodeFormat.HEX_LOWER))
    assert (
        exchange(
            bench,
            b"$XGC#SET_UPDATE_PROPS#867435053362828#0#interval:165000;updateLoc:true&#0C#\r\n",
        )
        == b"$XGC_ACK#SET_UPDATE_PROPS#867435053362828#0#ok&#7f#\r\n"
    )


def test_get_dtu_pipe_reply_on_485() -> None:
    """After SET_DTU_PIPE#485, GET_DTU_PIPE on the bus -> 485, decimal code 64."""
    bench = booted(slaves=())
    assert exchange(bench, b"SET_DTU_PIPE#485\r\n") == b"SET_DTU_PIPE#485-ok\r\n"
    reply = exchange(bench, b"$XGC#GET_DTU_PIPE#867435053362828#0&#4C#\r\n", port="rs485")
    assert reply == b"$XGC_ACK#GET_DTU_PIPE#867435053362828#0#485&#64#\r\n"


def test_dtu_reboot_reply() -> None:
    """DTU_REBOOT -> an empty content reply, decimal code 125."""
    reply = exchange(booted(), b"$XGC#DTU_REBOOT#867435053362828#0&#48#\r\n", wait_s=0.05)
    assert reply == b"$XGC_ACK#DTU_REBOOT#867435053362828#0#&#125#\r\n"


def test_modbus_crc_of_the_seed_example() -> None:
    """The seed's CRC: 01 03 00 00 00 01 -> 84 0A on the wire (low byte first)."""
    assert crc16(bytes.fromhex("010300000001")).to_bytes(2, "little") == bytes.fromhex("840A")
