"""The QuecPython firmware's Modbus mode: cloud requests on the bus, and vdtu's polls.

How it works. A cloud ``modbus`` request is planned by ``modbus_mode.plan_modbus``
(docs/spec/quec.md#11.1); its frames go out on the channel's UART when that is a
bus, else on rs485, ``gap_s`` apart, and the reply is published after the last.
Each ``modbus.poll`` entry (#11.3) is a process that reads its slaves every
``interval_s``: it writes a request, takes the next chunk on that UART as the answer
(``serial_side.on_chunk`` hands it over) or times out after ``POLL_ANSWER_S``, and
uploads the report. These functions work on the ``QuecFirmware``'s state.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from vdtu.firmware.quec.commands import ModbusRequest, Reply
from vdtu.firmware.quec.modbus_mode import (
    ModbusPlan,
    plan_modbus,
    poll_report,
    poll_requests,
    poll_slaves,
)
from vdtu.firmware.quec.serial_schema import PORT_UARTS
from vdtu.firmware.quec.serial_side import bound_channel
from vdtu.firmware.quec.uplinks import publish_reply, send_uplink
from vdtu.log import LogLevel

if TYPE_CHECKING:
    from vdtu.firmware.quec.firmware import QuecFirmware
    from vdtu.firmware.quec.modbus_schema import PollEntry

POLL_ANSWER_S = 1.0
"""How long a poll waits for a slave's answer."""


def modbus_request(firmware: QuecFirmware, cid: str, request: ModbusRequest) -> None:
    config = firmware.config
    assert config is not None  # checked by the caller
    plan = plan_modbus(request, config.modbus, options=firmware.options.modbus)
    if isinstance(plan, Reply):
        publish_reply(firmware, cid, plan)
        return
    uart = _bus_uart(firmware, cid)
    firmware.spawn(_writing_frames(firmware, uart, plan, cid))


def _bus_uart(firmware: QuecFirmware, cid: str) -> str:
    """The UART a channel's Modbus frames go out on: its own when it is a bus, else rs485."""
    config = firmware.config
    assert config is not None  # checked by the callers
    uart = config.conf[cid].serial_id
    return uart if uart in firmware.taps else PORT_UARTS["rs485"]


def _writing_frames(
    firmware: QuecFirmware, uart: str, plan: ModbusPlan, cid: str
) -> Generator[simpy.Event, Any, None]:
    for index, frame in enumerate(plan.frames):
        if index:
            yield firmware.env.timeout(plan.gap_s)
        firmware.write_uart(uart, frame)
    publish_reply(firmware, cid, plan.reply)


def polling(
    firmware: QuecFirmware, index: int, entry: PollEntry
) -> Generator[simpy.Event, Any, None]:
    """vdtu's poll table: read the slaves every ``interval_s`` and report the readings."""
    config = firmware.config
    assert config is not None  # set before the boot process started
    cid = entry.channel or bound_channel(firmware, entry.serial_id)
    if cid is None or cid not in config.conf:
        firmware.write_log(
            LogLevel.ERROR, "modbus", f"poll {index}: no channel to report to; not polling"
        )
        return
    while True:
        yield firmware.env.timeout(entry.interval_s)
        slaves = poll_slaves(entry, config.modbus)
        for slave, frame in zip(slaves, poll_requests(entry, config.modbus), strict=True):
            waiter = firmware.env.event()
            firmware.poll_waiters[entry.serial_id] = waiter
            firmware.write_uart(entry.serial_id, frame)
            answered = yield waiter | firmware.env.timeout(POLL_ANSWER_S)
            firmware.poll_waiters.pop(entry.serial_id, None)
            answer = answered[waiter] if waiter in answered else None  # noqa: SIM401 (a ConditionValue has no get)
            report = poll_report(entry, slave, answer, float(firmware.env.now))
            firmware.stats.polls += 1
            send_uplink(firmware, cid, None, json.dumps(report))
