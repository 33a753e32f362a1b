"""The ``modbus`` key of ``dtu_config.json``: slave groups, and vdtu's poll table.

How it works: ``groups`` is the seed's table of slaves that a cloud Modbus command
addresses together (group number = list index; docs/spec/quec.md#7.4); ``poll`` is a
vdtu extension, reads the unit repeats on its own like a Modbus gateway (#11.3). Each
is a frozen dataclass read and written by the field mechanism of ``fields`` and checked
in ``__post_init__`` against the Modbus limits of ``vdtu.modbus.rtu`` (address 1..247,
at most 2000 bits or 125 registers a read). ``ModbusConfig`` checks that a poll entry's
group exists; that its ``serialID`` and ``channel`` exist is checked by the whole document
(``config.DtuConfig``).

Pure: the standard library and vdtu's own pure modules only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from vdtu.errors import ConfigError
from vdtu.firmware.quec.fields import (
    INT32_MAX,
    JsonObject,
    build,
    check_id,
    check_range,
    json_meta,
    read_id,
    read_json_int,
    read_list,
    read_number,
    read_optional_id,
    read_str,
    show,
    tuple_reader,
    write_int,
    write_list,
)
from vdtu.firmware.quec.serial_schema import PORT_UARTS
from vdtu.modbus.rtu import (
    MAX_READ_BITS,
    MAX_READ_REGISTERS,
    READ_BIT_FUNCTIONS,
    READ_FUNCTIONS,
    FunctionCode,
)

_HEX_ADDRESS_RE = re.compile(r"0[xX][0-9a-fA-F]{1,2}")


def _read_slave_addresses(path: str, raw: object) -> tuple[int, ...]:
    addresses: list[int] = []
    for index, entry in enumerate(read_list(path, raw)):
        if isinstance(entry, int) and not isinstance(entry, bool):
            addresses.append(entry)
        elif isinstance(entry, str) and _HEX_ADDRESS_RE.fullmatch(entry.strip()):
            addresses.append(int(entry.strip(), 16))
        else:
            raise ConfigError(
                f"{path}.{index} must be a hex string such as '0x01' or a number, not "
                f"{show(entry)} (the firmware reads every string as hex, so write the 0x)"
            )
    return tuple(addresses)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusGroup(JsonObject):
    """One ``modbus.groups`` entry: slaves that a cloud command addresses together."""

    device_type: str = field(default="", metadata=json_meta("device_type", read_str))
    device_model: str = field(default="", metadata=json_meta("device_model", read_str))
    slave_addresses: tuple[int, ...] = field(
        metadata=json_meta(
            "slave_address", _read_slave_addresses, lambda v: [f"0x{a:02x}" for a in v]
        )
    )
    """One or more distinct addresses 1..247 (``"0x01"`` in the file)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "slave_addresses", tuple(self.slave_addresses))
        if not self.slave_addresses:
            raise ConfigError('slave_address must list at least one address such as "0x01", not []')
        for index, address in enumerate(self.slave_addresses):
            check_range(f"slave_address.{index}", address, 1, 247)
        repeated = sorted({a for a in self.slave_addresses if self.slave_addresses.count(a) > 1})
        if repeated:
            raise ConfigError(f"slave_address lists {repeated} more than once")


@dataclass(frozen=True, slots=True, kw_only=True)
class PollEntry(JsonObject):
    """One ``modbus.poll`` entry (vdtu extension): a read the unit repeats on its own.

    Exactly one of ``slave`` and ``group`` is set. The runtime sends the request
    every ``interval_s`` on the UART ``serial_id`` and reports the answer on
    ``channel`` (or, when it is ``None``, on the first channel bound to that UART).
    """

    slave: int | None = field(
        default=None, metadata=json_meta("slave", read_json_int, omit_default=True)
    )
    """A slave address, 1..247."""
    group: int | None = field(
        default=None, metadata=json_meta("group", read_json_int, omit_default=True)
    )
    """An index into ``modbus.groups``: every slave of that group is read."""
    function: FunctionCode = field(metadata=json_meta("function", read_json_int, write_int))
    """1 coils, 2 discrete inputs, 3 holding registers, 4 input registers."""
    start: int = field(metadata=json_meta("start", read_json_int))
    """The first address, 0..65535."""
    count: int = field(metadata=json_meta("count", read_json_int))
    """How many: 1..2000 bits (functions 1, 2) or 1..125 registers (3, 4)."""
    interval_s: float = field(metadata=json_meta("interval_s", read_number))
    """Seconds between reads, > 0."""
    serial_id: str = field(default=PORT_UARTS["rs485"], metadata=json_meta("serialID", read_id))
    """The ``uconf`` key of the bus's UART (default: the RS-485 port, ``"1"``)."""
    channel: str | None = field(
        default=None, metadata=json_meta("channel", read_optional_id, omit_default=True)
    )
    """The ``conf`` key of the channel the readings go to."""

    def __post_init__(self) -> None:
        if (self.slave is None) == (self.group is None):
            raise ConfigError(
                "slave: give exactly one of slave (an address 1..247) or group (an index into "
                f"modbus.groups), not slave={self.slave!r} and group={self.group!r}"
            )
        if self.slave is not None:
            check_range("slave", self.slave, 1, 247)
        if self.group is not None:
            check_range("group", self.group, 0, INT32_MAX)
        if self.function not in READ_FUNCTIONS:
            raise ConfigError(
                "function must be 1 (coils), 2 (discrete inputs), 3 (holding registers) or "
                f"4 (input registers), not {show(self.function)}"
            )
        object.__setattr__(self, "function", FunctionCode(self.function))
        check_range("start", self.start, 0, 65535)
        most = MAX_READ_BITS if self.function in READ_BIT_FUNCTIONS else MAX_READ_REGISTERS
        if not 1 <= self.count <= most:
            function = int(self.function)
            raise ConfigError(
                f"count must be 1..{most} for function {function}, not {show(self.count)}"
            )
        if self.start + self.count > 0x10000:
            raise ConfigError(f"count {self.count} from start {self.start} runs past address 65535")
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise ConfigError(
                f"interval_s must be a number of seconds > 0, not {show(self.interval_s)}"
            )
        object.__setattr__(self, "interval_s", float(self.interval_s))
        check_id("serialID", self.serial_id, "UART id")
        if self.channel is not None:
            check_id("channel", self.channel, "channel id")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusConfig(JsonObject):
    """The ``modbus`` key: slave groups for cloud commands, and the vdtu ``poll`` table."""

    groups: tuple[ModbusGroup, ...] = field(
        default=(), metadata=json_meta("groups", tuple_reader(ModbusGroup), write_list)
    )
    """Group number = list index, as the cloud's ``{"groups": {"num": n, ...}}`` uses it."""
    poll: tuple[PollEntry, ...] = field(
        default=(),
        metadata=json_meta("poll", tuple_reader(PollEntry), write_list, omit_default=True),
    )
    """vdtu extension: reads the unit repeats on its own, like a Modbus gateway."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "poll", tuple(self.poll))
        for index, entry in enumerate(self.poll):
            if entry.group is not None and entry.group >= len(self.groups):
                raise ConfigError(
                    f"poll.{index}.group must be the index of one of the {len(self.groups)} "
                    f"modbus groups (0..{len(self.groups) - 1}), not {entry.group}"
                )


def read_modbus(path: str, raw: object) -> ModbusConfig:
    """The ``modbus`` object."""
    return build(ModbusConfig, path, raw)
