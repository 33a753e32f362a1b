"""The QuecPython firmware's cloud input: what a channel's downlink does.

How it works. A downlink goes through ``commands.parse_downlink`` with the work mode
in force (docs/spec/quec.md#2.4): a command is run (``QuecFirmware.run_command``) and
its reply published on the same channel, on the topic ``topic_id`` picks; a Modbus
request becomes RTU frames on the bus (``modbus_side``); data is written to the
channel's UART as a frame of the work mode (in passthrough only by the channel the
UART is bound to); a refused one is answered with its error reply; anything else is
ignored with a WARN and a code 5 diagnostic. These functions work on the
``QuecFirmware``'s state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vdtu.firmware.quec.commands import (
    CommandRequest,
    ForwardData,
    Ignored,
    ModbusRequest,
    Refused,
    parse_downlink,
)
from vdtu.firmware.quec.executor import Diagnostic, DiagnosticCode
from vdtu.firmware.quec.frames import ChannelType, CommandFrame, PassthroughFrame, WorkMode
from vdtu.firmware.quec.modbus_side import modbus_request
from vdtu.firmware.quec.serial_side import bound_channel
from vdtu.firmware.quec.uplinks import publish_reply
from vdtu.log import LogLevel, preview

if TYPE_CHECKING:
    from vdtu.firmware.quec.firmware import QuecFirmware


def channel_received(
    firmware: QuecFirmware, cid: str, topic_id: str | None, payload: bytes
) -> None:
    """A downlink on channel ``cid`` (in sim time)."""
    config = firmware.config
    if config is None or not firmware.listening:
        return
    firmware.stats.downlinks += 1
    if firmware.log.observer is not None:
        firmware.event(
            "downlink", {"channel": cid, "topic_id": topic_id, "payload": preview(payload)}
        )
    message = parse_downlink(payload, mode=config.work_mode, options=firmware.options.commands)
    match message:
        case CommandRequest():
            firmware.run_command(message, lambda reply: publish_reply(firmware, cid, reply))
        case ModbusRequest():
            modbus_request(firmware, cid, message)
        case ForwardData():
            _forward(firmware, cid, topic_id, message.text)
        case Refused():
            firmware.stats.downlinks_refused += 1
            firmware.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_PARSE_ERROR))
            firmware.write_log(LogLevel.WARN, f"ch{cid}", f"downlink refused: {message.reason}")
            publish_reply(firmware, cid, message.reply)
        case Ignored():
            firmware.stats.downlinks_ignored += 1
            firmware.note(Diagnostic(func_code=0, error_code=DiagnosticCode.JSON_LOAD_ERROR))
            firmware.write_log(LogLevel.WARN, f"ch{cid}", f"downlink ignored: {message.reason}")


def _forward(firmware: QuecFirmware, cid: str, topic_id: str | None, data: str) -> None:
    config = firmware.config
    assert config is not None  # checked by the caller
    channel = config.conf[cid]
    uart = channel.serial_id
    if uart not in firmware.taps or uart not in config.uconf:
        _unroutable(firmware, cid, f"its serialID {uart!r} is not an open UART")
        return
    kind = channel.protocol
    frame_id = None
    if kind.has_topic_id:
        frame_id = "0" if kind is ChannelType.QUECTHING else (topic_id or "0")
    if config.work_mode is WorkMode.PASSTHROUGH:
        if bound_channel(firmware, uart) != cid:
            _unroutable(firmware, cid, f"UART {uart} is bound to another channel in passthrough")
            return
        frame: CommandFrame | PassthroughFrame = PassthroughFrame(topic_id=frame_id, data=data)
    else:
        frame = CommandFrame(cid=cid, topic_id=frame_id, data=data)
    firmware.write_uart(uart, frame.encode())


def _unroutable(firmware: QuecFirmware, cid: str, why: str) -> None:
    firmware.stats.downlinks_unroutable += 1
    firmware.note(Diagnostic(func_code=0, error_code=DiagnosticCode.THROUGH_CHANNEL_ERROR))
    firmware.write_log(LogLevel.WARN, f"ch{cid}", f"downlink dropped: {why}")
