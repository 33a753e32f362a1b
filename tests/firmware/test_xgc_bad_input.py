"""Bad host input gets a defined answer or a visible diagnostic; the unit keeps answering."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.xgc_harness import XgcBench
from vdtu.firmware.xgc.options import CheckMode, XgcOptions

GET_IMEI = b"$XGC#GET_IMEI#0#0&#5A#\r\n"
IMEI_REPLY = b"$XGC_ACK#GET_IMEI#867435053362828#0#867435053362828&#95#\r\n"


def booted(**config: object) -> XgcBench:
    bench = XgcBench(**config)  # type: ignore[arg-type]
    bench.boot()
    bench.frames()
    return bench


def still_answers(bench: XgcBench, within_s: float = 1.0) -> None:
    before = len(bench.host.received)
    bench.send_raw(GET_IMEI)
    bench.clock.run_for(within_s)
    assert b"".join(c for _t, c in bench.host.received[before:]).endswith(IMEI_REPLY)


def test_wrong_check_code_is_rejected_in_strict_mode() -> None:
    """Strict (default): a wrong code gets error:bad-check-code naming both codes; no action."""
    bench = booted()
    bench.send_raw(b"$XGC#SAVE_KEYS#0#0#a:1&#00#\r\n")
    bench.clock.run_for(0.2)
    (reply,) = bench.frames()
    assert reply.action == "SAVE_KEYS"
    assert reply.content is not None
    assert reply.content.startswith("error:bad-check-code;msg:got 00 expected")
    assert "keys" not in bench.unit.flash.load()
    assert bench.firmware.stats.bad_check_codes == 1
    still_answers(bench)


def test_wrong_check_code_is_acted_on_in_warn_mode() -> None:
    """Warn: the command runs, and the log says the code was wrong."""
    bench = booted(options=XgcOptions(check_mode=CheckMode.WARN))
    bench.send_raw(b"$XGC#SAVE_KEYS#0#0#a:1&#00#\r\n")
    bench.clock.run_for(0.2)
    assert [f.content for f in bench.frames()] == ["ok"]
    assert any("bad check code" in r.text for r in bench.unit.log.records)


def test_check_codes_are_ignored_in_off_mode() -> None:
    """Off: a wrong code is neither answered nor logged."""
    bench = booted(options=XgcOptions(check_mode=CheckMode.OFF))
    bench.send_raw(b"$XGC#SAVE_KEYS#0#0#a:1&#00#\r\n")
    bench.clock.run_for(0.2)
    assert [f.content for f in bench.frames()] == ["ok"]
    assert bench.firmware.stats.bad_check_codes == 0


def test_decimal_check_code_from_the_host_is_accepted() -> None:
    """A host that prints codes in decimal (90 for 0x5A) is understood."""
    bench = booted()
    bench.send_raw(b"$XGC#GET_IMEI#0#0&#90#\r\n")
    bench.clock.run_for(0.2)
    assert [f.content for f in bench.frames()] == ["867435053362828"]


def test_unknown_action_gets_an_error_reply() -> None:
    """An action the protocol does not have gets error:unknown-action under its own name."""
    assert booted().ask("MAKE_COFFEE", "sugar:2").startswith("error:unknown-action;msg:MAKE_COFFEE")


def test_dtu_only_frames_from_the_host_are_refused() -> None:
    """NOTIFY_CONFIG travels DTU -> host; sent to the DTU it is an error, not a crash."""
    assert booted().ask("NOTIFY_CONFIG", "configVersion:1").startswith("error:unknown-action;")


def test_malformed_frame_gets_an_error_reply_naming_the_action() -> None:
    """'$XGC#GET_KEYS#0#0#a' without its code is malformed; the reply names GET_KEYS."""
    bench = booted()
    bench.send_raw(b"$XGC#GET_KEYS#0#0#a\r\n")
    bench.clock.run_for(0.2)
    (reply,) = bench.frames()
    assert (reply.action, (reply.content or "").split(";")[0]) == (
        "GET_KEYS",
        "error:malformed-frame",
    )
    still_answers(bench)


def test_ack_frames_from_the_host_are_ignored_with_a_diagnostic() -> None:
    """A host echoing the DTU's own replies back gets no answer (no ping-pong), only a log line."""
    bench = booted()
    bench.send_raw(IMEI_REPLY)
    bench.clock.run_for(0.2)
    assert bench.frames() == []
    assert any("$XGC_ACK frames are sent by the DTU" in r.text for r in bench.unit.log.records)


@pytest.mark.parametrize(
    ("action", "content", "error"),
    [
        ("SET_PRJINFO", "PID:abc", "missing-field"),
        ("SET_PRJINFO", "PID:a-b;PSECRET:x", "bad-param"),
        ("SET_PRJINFO", "PID:a;PSECRET:b;EXTRA:1", "bad-param"),
        ("SET_PRJINFO", "garbage", "bad-param"),
        ("GET_NOW", "yesterday", "bad-param"),
        ("SET_GPIO", "", "missing-field"),
        ("SET_GPIO", "out1:2", "bad-param"),
        ("SET_GPIO", "in1:1", "bad-param"),
        ("SET_GPIO", "relay:1", "bad-param"),
        ("SET_DTU_PIPE", "usb", "bad-param"),
        ("SEND_MBR_485", "addr:01;instructions:03;reg:0000", "missing-field"),
        ("SEND_MBR_485", "addr:zz;instructions:03;reg:0000;value:0001", "bad-param"),
        ("SEND_MBR_485", "addr:01;instructions:03;reg:0000;value:0200", "bad-param"),
        ("SEND_MBR_485", "addr:F8;instructions:03;reg:0000;value:0001", "bad-param"),
        ("SEND_MBR_485", "addr:01;instructions:07;reg:0000;value:0001", "bad-param"),
        ("SEND_RAW_485", "", "missing-field"),
        ("SEND_RAW_485", "0x12", "bad-param"),
        ("SAVE_KEYS", "", "missing-field"),
        ("SAVE_KEYS", "bad key:1", "bad-param"),
        ("SAVE_KEYS", "k:" + "v" * 300, "bad-param"),
        ("SET_LOG_LEVEL", "", "bad-param"),
        ("SET_UPDATE_PROPS", "interval:10000000000", "bad-param"),
        ("DTU_OTA", "filename:XGC-RG88C.bin;fwVersion:1", "missing-field"),
        ("DTU_OTA", "filename:XGC-RG88C.bin;fwVersion:1;url:ftp%3A%2F%2Fh%2Fa", "bad-param"),
        ("SEND_SMS", "CONTENT:hi", "missing-field"),
        ("SEND_SMS", "PHONE:abc;CONTENT:hi", "bad-param"),
        ("SEND_SMS", "PHONE:13800138000;CONTENT:", "bad-param"),
        ("AT", "", "missing-field"),
        ("DATA_PACK", "a:1", "no-project"),
    ],
)
def test_bad_parameters_get_a_specific_error(action: str, content: str, error: str) -> None:
    """Every malformed or out-of-range field is answered with error:<code> naming the problem."""
    bench = booted()
    reply = bench.ask(action, content, wait_s=5)
    assert reply.startswith(f"error:{error};msg:")
    assert len(reply) > len(f"error:{error};msg:") + 5
    still_answers(bench)


def test_storage_full_is_reported() -> None:
    """Saving more than the key area holds gets error:storage-full and keeps the old keys."""
    bench = booted()
    for batch in range(4):
        pairs = ";".join(f"k{batch}x{i}:{'v' * 40}" for i in range(15))
        assert bench.ask("SAVE_KEYS", pairs) == "ok"
    assert bench.ask("SAVE_KEYS", "last:1;one:2;more:3;x:4;y:5").startswith("error:storage-full;")
    assert bench.ask("GET_KEYS", "last") == ""


def test_second_long_action_while_one_runs_is_busy() -> None:
    """A second DTU_OTA while one downloads gets error:busy; the first still finishes."""
    bench = booted()
    content = "filename:XGC-RG88C_2.bin;fwVersion:2;url:http%3A%2F%2Fh%2Fa"
    bench.send("DTU_OTA", content)
    bench.clock.run_for(0.5)
    assert bench.ask("DTU_OTA", content).startswith("error:busy;")
    bench.clock.run_for(20)
    assert [f.content for f in bench.frames()] == ["stage:finish;fwVersion:2"]


def test_send_mbr_485_while_the_pipe_is_485_is_refused() -> None:
    """With the host on the bus, SEND_MBR_485 would collide with itself: error:pipe-is-485."""
    bench = booted(slaves=())
    bench.send_raw(b"SET_DTU_PIPE#485\r\n")
    bench.clock.run_for(0.1)
    reply = bench.ask("SEND_MBR_485", "addr:01;instructions:03;reg:0000;value:0001", port="rs485")
    assert reply.startswith("error:pipe-is-485;")


def test_garbage_between_frames_is_logged_and_counted() -> None:
    """Noise lines between commands are counted and logged; both commands are answered."""
    bench = booted()
    bench.send_raw(GET_IMEI + b"\x00\x01\x02 line noise\r\n" + GET_IMEI)
    bench.clock.run_for(0.2)
    assert len(bench.frames()) == 2
    assert bench.firmware.stats.garbage_bytes == len(b"\x00\x01\x02 line noise")


def test_frame_split_across_many_reads() -> None:
    """A command arriving in 3-byte pieces over time is answered once, after its last piece."""
    bench = booted()
    for i in range(0, len(GET_IMEI), 3):
        bench.send_raw(GET_IMEI[i : i + 3])
        bench.clock.run_for(0.01)
    bench.clock.run_for(0.1)
    assert [f.action for f in bench.frames()] == ["GET_IMEI"]


def test_100_kb_line_without_newline_then_a_command_is_answered_within_a_second() -> None:
    """100 KB of noise without a line end is dropped (error:line-too-long); the next command is
    answered within a second of arriving."""
    bench = booted()
    bench.send_raw(b"A" * 100_000)
    bench.clock.run_for(0.1)
    still_answers(bench, within_s=1.0)
    assert bench.firmware.stats.long_lines == 1
    assert bench.firmware.buffered("uart") == 0


def test_over_4k_line_with_newline_gets_line_too_long() -> None:
    """A 5 KB line ending in CRLF is dropped with error:line-too-long under action ERROR."""
    bench = booted()
    bench.send_raw(b"$XGC#SAVE_KEYS#0#0#" + b"a" * 5000 + b"\r\n")
    bench.clock.run_for(0.2)
    (reply,) = bench.frames()
    assert reply.action == "ERROR"
    assert (reply.content or "").startswith("error:line-too-long;")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noise=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=10))
def test_any_noise_leaves_the_unit_answering(noise: list[bytes]) -> None:
    """Whatever bytes arrive (random chunks, no crash), a clean command afterwards is answered."""
    bench = booted(rssi_spread=0)
    for chunk in noise:
        bench.send_raw(chunk)
        bench.clock.run_for(0.01)
    bench.send_raw(b"\r\n")
    still_answers(bench)


def test_a_command_ended_by_cr_alone_is_answered() -> None:
    """picocom sends only CR on Enter: the unit answers at the CR, and a LF after it is no
    extra line."""
    bench = booted()
    bench.send_raw(GET_IMEI[:-1])
    bench.clock.run_for(0.2)
    assert [f.content for f in bench.frames()] == ["867435053362828"]
    bench.send_raw(b"\n")
    bench.clock.run_for(0.2)
    assert bench.frames() == []
    assert bench.firmware.stats.garbage_bytes == 0


def test_a_cr_alone_waits_for_lf_when_lone_crs_do_not_end_lines() -> None:
    """With lone_cr_ends_line off, a CR-only command is answered only when a LF comes."""
    bench = booted(options=XgcOptions(lone_cr_ends_line=False))
    bench.send_raw(GET_IMEI[:-1])
    bench.clock.run_for(0.2)
    assert bench.frames() == []
    bench.send_raw(b"\n")
    bench.clock.run_for(0.2)
    assert [f.content for f in bench.frames()] == ["867435053362828"]


def test_a_blank_line_then_a_command_in_one_read_is_answered_at_once() -> None:
    """CRLF and a command arriving together: the command is answered without waiting for more."""
    bench = booted()
    bench.send_raw(b"\r\n" + GET_IMEI)
    bench.clock.run_for(0.2)
    assert [f.content for f in bench.frames()] == ["867435053362828"]


def test_a_command_after_an_overlong_line_starting_with_a_marker_is_answered() -> None:
    """'$XGC#' and 4092 bytes, no line end, then a command: one line-too-long, then the answer."""
    bench = booted()
    bench.send_raw(b"$XGC#" + b"a" * 4092)
    bench.clock.run_for(0.5)
    bench.send_raw(GET_IMEI)
    bench.clock.run_for(0.5)
    replies = bench.frames()
    assert [f.action for f in replies] == ["ERROR", "GET_IMEI"]
    assert (replies[0].content or "").startswith("error:line-too-long;")
    assert bench.firmware.stats.long_lines == 1
