"""No log line and no reply carries the project secret or a device password."""

from __future__ import annotations

import pytest

from tests.xgc_harness import XgcBench
from vdtu.firmware.xgc.codec import CodeFormat, Frame, FrameKind
from vdtu.firmware.xgc.content import REDACTED, redact, redact_line
from vdtu.firmware.xgc.options import XgcOptions
from vdtu.log import LogLevel

SECRET = "Zq9Xw7Vt5Rs3Pm1"
LEAK = SECRET[:5]
"""Even five characters of the secret in a log line or a reply are a leak."""


def frame(content: str) -> bytes:
    return Frame(kind=FrameKind.COMMAND, action="SET_PRJINFO", content=content).encode(
        CodeFormat.HEX
    )


@pytest.mark.parametrize(
    "line",
    [
        f"$XGC#SET_PRJINFO#0#0#PID:abc;PSECRET:{SECRET}\r\n".encode(),
        f"$XGC#SET_PRJINFO#0#0#PID:abc;PSECRET:{SECRET}&#00#\r\n".encode(),
        f"$XGC#SET_PRJINFO#0#0#PID:abc;PSECRET:{SECRET}&#zz#\r\n".encode(),
        f"XGC#SET_PRJINFO#0#0#PID:a;PSECRET:{SECRET}&#50#\r\n".encode(),
        f"#0#0#PSECRET:{SECRET}\r\n".encode(),
        f"$XGC#SET_PRJINFO#0#0#PID:abc;PSECRET:{SECRET}\xff&#00#\r\n".encode("latin-1"),
        f"$XGC#SET_PRJINFO#0&#0#PID:abc;PSECRET:{SECRET}&#00#\r\n".encode(),
        frame(f"PID:abc;{SECRET}"),
        frame(f"PID:abc;PSECRET:{SECRET}!"),
        frame(f"PID:abc;PSECRET:{SECRET};PSECRET:{SECRET}"),
        frame(f"PID:abc;PSECRET:{SECRET};password:{SECRET}"),
        frame(f"PSECRET:{SECRET}"),
        frame(f"PID:a b;PSECRET:{SECRET}"),
        b"$XGC#SET_PRJINFO#0#0#PID:abc;PSECRET:" + SECRET.encode() + b"x" * 5000 + b"\r\n",
    ],
    ids=[
        "no check code",
        "wrong check code",
        "check code not hex",
        "lost its dollar",
        "a fragment",
        "not UTF-8",
        "ampersand in the timestamp",
        "secret without its key",
        "secret with a bad character",
        "secret twice",
        "unknown password field",
        "no PID",
        "bad PID",
        "line too long",
    ],
)
def test_a_bad_set_prjinfo_never_shows_its_secret(line: bytes) -> None:
    """Whatever is wrong with a SET_PRJINFO line, its secret is in no log record (at any
    level) and in no reply."""
    bench = XgcBench()
    bench.boot()
    bench.unit.log.threshold = LogLevel.TRACE
    before, logged = len(bench.host.received), len(bench.unit.log.records)
    bench.send_raw(line)
    bench.clock.run_for(0.5)
    replies = b"".join(chunk for _at, chunk in bench.host.received[before:])
    assert replies or len(bench.unit.log.records) > logged, "the bad line left no trace"
    assert LEAK.encode() not in replies
    assert not [r.text for r in bench.unit.log.records if LEAK in r.text]
    assert "project" not in bench.flash.load()


def test_a_bad_set_prjinfo_in_lf_only_mode_never_shows_its_secret() -> None:
    """With LF as the only line end a CR inside the content makes the frame malformed; the
    reason must not quote the content."""
    bench = XgcBench(options=XgcOptions(lone_cr_ends_line=False))
    bench.boot()
    bench.unit.log.threshold = LogLevel.TRACE
    before = len(bench.host.received)
    bench.send_raw(f"$XGC#SET_PRJINFO#0#0#PID:abc;PSECRET:{SECRET}\r&#00#\r\n".encode())
    bench.clock.run_for(0.5)
    replies = b"".join(chunk for _at, chunk in bench.host.received[before:])
    assert b"malformed-frame" in replies
    assert LEAK.encode() not in replies
    assert not [r.text for r in bench.unit.log.records if LEAK in r.text]


def test_a_good_set_prjinfo_keeps_the_secret_out_of_the_log() -> None:
    """A valid SET_PRJINFO is saved (the secret in flash) and logged by its PID only."""
    bench = XgcBench()
    bench.boot()
    bench.unit.log.threshold = LogLevel.TRACE
    replies = bench.command("SET_PRJINFO", f"PID:abc;PSECRET:{SECRET}")
    assert (replies[0].action, replies[0].content) == ("SET_PRJINFO", "ok")
    assert bench.flash.load()["project"] == {"pid": "abc", "secret": SECRET}
    assert not [r.text for r in bench.unit.log.records if LEAK in r.text]


@pytest.mark.parametrize(
    "text",
    [
        f"PID:abc;PSECRET:{SECRET};x:1",
        f"PID=abc,PSECRET={SECRET}",
        f"bad answer: {{'clientId': 'x', 'password': '{SECRET}'}}",
        f'{{"projectSecret": "{SECRET}"}}',
        f"device_password={SECRET} end",
    ],
)
def test_redact_hides_the_value_of_every_secret_key(text: str) -> None:
    """PSECRET, password, projectSecret...: the value is replaced, the key stays readable."""
    hidden = redact(text)
    assert SECRET not in hidden
    assert REDACTED in hidden


def test_redact_leaves_other_text_alone_and_redact_line_hides_set_prjinfo_content() -> None:
    """Text without a secret key is unchanged; a raw SET_PRJINFO line keeps only its start."""
    assert redact("wrong project secret; PID abc") == "wrong project secret; PID abc"
    line = f"$XGC#SET_PRJINFO#0#0#PID:abc;{SECRET}&#00#".encode()
    assert redact_line(line) == f"$XGC#SET_PRJINFO#{REDACTED}"
    assert len(redact_line(b"x" * 500, 40)) == 40
