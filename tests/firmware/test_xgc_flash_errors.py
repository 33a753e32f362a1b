"""A flash that cannot be written is a device condition: the command gets its error reply,
the unit runs on, and nothing is half-changed (in memory as in flash)."""

from __future__ import annotations

import errno

import pytest

from tests.xgc_harness import XgcBench
from vdtu.firmware.xgc.codec import ShortcutReceived
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.storage import MemoryStorage

IMEI = "867435053362828"
GET_IMEI = b"$XGC#GET_IMEI#0#0&#5A#\r\n"


def booted() -> tuple[XgcBench, MemoryStorage]:
    flash = MemoryStorage()
    bench = XgcBench(flash=flash)
    bench.boot()
    bench.frames()
    return bench, flash


@pytest.mark.parametrize(
    ("fault", "reason"),
    [(errno.ENOSPC, "flash-full"), (errno.EROFS, "flash-read-only"), (errno.EIO, "flash-io")],
)
@pytest.mark.parametrize(
    ("action", "content", "read_back"),
    [
        ("SAVE_KEYS", "a:1;b:2", ("GET_KEYS", "")),
        ("SET_PRJINFO", "PID:abc;PSECRET:def", ("GET_DTU_STATE", "no-project-info")),
        ("SET_LOG_LEVEL", "ERROR", None),
        ("SET_UPDATE_PROPS", "interval:20000", None),
        ("SET_DTU_PIPE", "232", ("GET_DTU_PIPE", "uart")),
    ],
)
def test_a_command_that_cannot_write_the_flash_gets_its_error_and_changes_nothing(
    fault: int, reason: str, action: str, content: str, read_back: tuple[str, str] | None
) -> None:
    """The reply is error:<flash condition>, flash and memory keep the old state, the unit
    answers on; once the flash works again the same command succeeds."""
    bench, flash = booted()
    before_flash, before_memory = flash.load(), dict(bench.firmware.nvram)
    flash.fail_writes = fault
    reply = bench.ask(action, content)
    assert reply.startswith(f"error:{reason};msg:"), reply
    assert flash.load() == before_flash
    assert bench.firmware.nvram == before_memory
    assert bench.firmware.pipe is Pipe.UART
    if read_back is not None:
        assert bench.ask(*read_back[:1]) == read_back[1]
    assert bench.ask("GET_IMEI") == IMEI
    assert bench.firmware.stats.flash_errors == 1
    flash.fail_writes = None
    replies = bench.command(action, content)
    assert replies[0].content in ("ok", "232-ok")
    assert flash.load() != before_flash


def test_the_pipe_shortcut_reports_a_flash_error_and_keeps_the_pipe() -> None:
    """SET_DTU_PIPE#232 with a failing flash answers SET_DTU_PIPE#232-error; uart stays the pipe."""
    bench, flash = booted()
    flash.fail_writes = errno.ENOSPC
    bench.send_raw(b"SET_DTU_PIPE#232\r\n")
    bench.clock.run_for(0.2)
    assert bench.events() == [ShortcutReceived(value="232-error")]
    assert bench.firmware.pipe is Pipe.UART
    assert bench.ask("GET_IMEI") == IMEI


def test_an_ota_whose_version_cannot_be_saved_fails_and_keeps_the_version() -> None:
    """DTU_OTA downloads, cannot record the new version: stage:failed, and a reboot keeps
    the old version."""
    bench, flash = booted()
    flash.fail_writes = errno.EIO
    bench.send("DTU_OTA", "filename:XGC-RG88C_2.bin;fwVersion:2;url:http%3A%2F%2Fh%2Fa")
    bench.clock.run_for(20)
    assert [f.content for f in bench.frames()] == ["stage:failed"]
    assert "pending_fw_version" not in bench.firmware.nvram
    assert bench.firmware.stats.flash_errors == 1


def test_a_failing_flash_at_boot_does_not_stop_the_unit() -> None:
    """A pending firmware version cannot be recorded at boot: the unit boots the new version
    and retries at the next boot."""
    flash = MemoryStorage()
    flash.save({"pending_fw_version": "2"})
    flash.fail_writes = errno.EROFS
    bench = XgcBench(flash=flash)
    bench.boot()
    assert bench.firmware.version == "2"
    assert bench.ask("GET_IMEI") == IMEI
    assert flash.load() == {"pending_fw_version": "2"}
