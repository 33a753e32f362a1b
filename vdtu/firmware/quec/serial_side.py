"""The QuecPython firmware's serial side: chunks from the UARTs, framed by work mode.

How it works. Serial input is cut into chunks at line silences (the firmware's
``SilenceChunker`` per UART) and each chunk is one frame, read with the UART's
``PortBinding`` (``bindings``: docs/spec/quec.md#9, framings #10):

* ``99,len,crc32,json``: a command on the serial configuration channel, answered
  on the same UART (``ConfigReplyForm``), in every work mode;
* command mode ``cid,[topic_id,]len,crc32,data``: ``{"data": "<data>"}`` goes to
  channel ``cid`` (topic ``topic_id``); passthrough ``[topic_id,]len,crc32,data``:
  the raw data goes to the UART's one channel;
* modbus (and a Modbus-looking chunk in command mode): the bytes go up as the hex
  list ``format_bus_data`` writes, to the UART's first channel;
* a bad length, CRC or shape: dropped, logged and counted (``QuecStats``); a host
  frame naming a publish topic its channel lacks: dropped and counted, never stored.

A chunk that a poll is waiting for (``modbus_side.polling``) is the poll's answer and
nothing else. These functions work on the ``QuecFirmware``'s state.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING

from vdtu.firmware.quec.commands import Ignored, Reply, parse_config_command
from vdtu.firmware.quec.executor import Diagnostic, DiagnosticCode
from vdtu.firmware.quec.frames import (
    BadCrc,
    BadLength,
    ChannelType,
    CommandFrame,
    ConfigReply,
    ConfigRequest,
    Malformed,
    ModbusChunk,
    PassthroughFrame,
    PortBinding,
    WorkMode,
    parse_chunk,
)
from vdtu.firmware.quec.modbus_mode import format_bus_data
from vdtu.firmware.quec.serial_schema import UART_PORTS
from vdtu.firmware.quec.uplinks import cut, publish_topic_known, send_uplink
from vdtu.log import LogLevel

if TYPE_CHECKING:
    from vdtu.firmware.quec.config import DtuConfig
    from vdtu.firmware.quec.firmware import QuecFirmware

_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(..., ensure_ascii=False)`` with one encoder (``dumps`` builds one per call)."""


def on_chunk(firmware: QuecFirmware, uart: str, chunk: bytes) -> None:
    """One chunk (bytes between two silences) from UART ``uart``."""
    config = firmware.config
    if config is None or not firmware.listening:
        return
    firmware.stats.chunks += 1
    waiter = firmware.poll_waiters.pop(uart, None)
    if waiter is not None and not waiter.triggered:
        waiter.succeed(chunk)
        return
    binding = firmware.bindings.get(uart)
    source = UART_PORTS[uart]
    if binding is None:
        firmware.stats.unbound_port_chunks += 1
        firmware.write_log(
            LogLevel.WARN,
            source,
            f"{len(chunk)} bytes dropped: UART {uart} is not in uconf or has no channel",
        )
        return
    result = parse_chunk(chunk, binding)
    match result:
        case ConfigRequest():
            _serial_command(firmware, uart, result)
        case CommandFrame():
            firmware.stats.frames_up += 1
            if _topic_known(firmware, source, result.cid, result.topic_id):
                send_uplink(firmware, result.cid, result.topic_id, data_body(result.data))
        case PassthroughFrame():
            firmware.stats.frames_up += 1
            cid = bound_channel(firmware, uart)
            if cid is not None and _topic_known(firmware, source, cid, result.topic_id):
                send_uplink(firmware, cid, result.topic_id, result.data)
        case ModbusChunk():
            _bus_data(firmware, uart, result.data)
        case BadLength() | BadCrc() | Malformed():
            _refused(firmware, source, result)


def data_body(data: str) -> str:
    """What a command-mode frame's data is published as: ``{"data": "<data>"}``, as
    ``json.dumps`` writes it (the string is encoded alone: encoding the dict would build
    a new encoder on every uplink)."""
    return '{"data": ' + _ENCODE(data) + "}"


def _topic_known(firmware: QuecFirmware, source: str, cid: str, topic_id: str | None) -> bool:
    """Whether a host frame's topic id is a publish topic of its channel; a frame naming
    one the channel lacks can never be sent, so it is dropped and counted, not stored
    (where it would push sendable uplinks out and block its channel's replay)."""
    if publish_topic_known(firmware.config, cid, topic_id):
        return True
    firmware.stats.uplinks_unroutable += 1
    firmware.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_SEND_ERROR))
    firmware.write_log(
        LogLevel.WARN,
        source,
        f"frame dropped: topic id {cut(topic_id)} is not a publish topic of channel {cid}",
    )
    return False


def _refused(firmware: QuecFirmware, source: str, result: BadLength | BadCrc | Malformed) -> None:
    match result:
        case BadLength():
            firmware.stats.bad_length += 1
        case BadCrc():
            firmware.stats.bad_crc += 1
        case Malformed():
            firmware.stats.malformed += 1
    firmware.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_PARSE_ERROR))
    firmware.write_log(LogLevel.WARN, source, f"frame dropped: {result.reason}: {_preview(result)}")


def bound_channel(firmware: QuecFirmware, uart: str) -> str | None:
    """The first channel bound to UART ``uart`` (its only one in passthrough)."""
    config = firmware.config
    if config is None:
        return None
    for cid, channel in config.conf.items():
        if channel.serial_id == uart:
            return cid
    return None


def _bus_data(firmware: QuecFirmware, uart: str, data: bytes) -> None:
    firmware.stats.modbus_frames += 1
    cid = bound_channel(firmware, uart)
    if cid is None:
        firmware.stats.unbound_port_chunks += 1
        firmware.write_log(LogLevel.WARN, UART_PORTS[uart], "bus data dropped: no channel")
        return
    send_uplink(firmware, cid, None, format_bus_data(data, options=firmware.options.modbus))


def _serial_command(firmware: QuecFirmware, uart: str, request: ConfigRequest) -> None:
    firmware.stats.config_requests += 1
    command = parse_config_command(request)
    if isinstance(command, Ignored):
        firmware.stats.config_requests_ignored += 1
        firmware.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_PARSE_ERROR))
        firmware.write_log(LogLevel.WARN, UART_PORTS[uart], f"config request: {command.reason}")
        return

    def answer(reply: Reply) -> None:
        firmware.write_uart(
            uart, ConfigReply(text=reply.to_json()).encode(firmware.options.config_reply)
        )

    firmware.run_command(command, answer)


def _preview(result: BadLength | BadCrc | Malformed) -> str:
    """The start of a refused chunk, for the log; never a configuration request's JSON,
    which carries the command password."""
    chunk = result.chunk
    if chunk.startswith(b"99,"):
        return f"a 99 frame of {len(chunk)} bytes (content not shown: it may hold the password)"
    return repr(chunk[:60])


def bindings(config: DtuConfig) -> dict[str, PortBinding]:
    """Each open UART's binding (docs/spec/quec.md#9): command mode every channel with that
    serialID; passthrough and modbus the first channel on UARTs 0..2."""
    bindings: dict[str, PortBinding] = {}
    for uart in config.uconf:
        if uart not in UART_PORTS:
            continue
        channels = tuple(
            (cid, channel.protocol)
            for cid, channel in config.conf.items()
            if channel.serial_id == uart
        )
        if channels or config.work_mode is WorkMode.MODBUS:
            bindings[uart] = _binding(config.work_mode, channels)
    return bindings


@lru_cache(maxsize=256)
def _binding(mode: WorkMode, channels: tuple[tuple[str, ChannelType], ...]) -> PortBinding:
    """The binding of a UART in ``mode`` carrying ``channels`` (cid, type): one frozen
    ``PortBinding`` for every unit whose UART is bound the same way (a fleet's units share
    the few there are; about 300 bytes a unit)."""
    if mode is WorkMode.MODBUS:
        return PortBinding.modbus()
    if mode is WorkMode.COMMAND:
        return PortBinding.command(dict(channels))
    return PortBinding.passthrough(channels[0][1])
