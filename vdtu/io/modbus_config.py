"""Configuration of a simulated Modbus RTU slave: its tables, register dynamics, the demo slave.

Config tables are blocks: ``{start address: [value, value, ...]}``, each value for
the next address up. A JSON config writes the start as a string (``"0"``,
``"0x10"``). ``ModbusSlaveConfig.from_dict`` reads a config file's entry; every
bad field is a ``ConfigError`` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self, assert_never

from vdtu.errors import ConfigError
from vdtu.modbus.rtu import FunctionCode


class Table(StrEnum):
    """The four Modbus data tables of a slave."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING = "holding"
    INPUT = "input"


MAX_FRAME_BYTES = 256
"""The longest Modbus RTU frame; a slave buffers no more."""

BIT_TABLES = frozenset({Table.COIL, Table.DISCRETE_INPUT})

READ_TABLE = {
    FunctionCode.READ_COILS: Table.COIL,
    FunctionCode.READ_DISCRETE_INPUTS: Table.DISCRETE_INPUT,
    FunctionCode.READ_HOLDING_REGISTERS: Table.HOLDING,
    FunctionCode.READ_INPUT_REGISTERS: Table.INPUT,
}


class DynamicKind(StrEnum):
    """How a register changes on its own."""

    COUNTER = "counter"
    """Adds ``step`` every period, wrapping at 65536."""
    NOISE = "noise"
    """Becomes base ± a uniform integer up to ``amplitude`` every period; the base
    is the register's configured value, moved by any write to it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dynamic:
    """A register that changes by itself (a counter or a noisy measurement).

    Its periods count from the slave's power-on; nothing ticks: the slave computes the
    value when the register is read (see ``vdtu.io.modbus_slave``)."""

    table: Table
    """``Table.HOLDING`` or ``Table.INPUT``."""
    register: int
    """Its address; it must exist in the slave's table."""
    kind: DynamicKind
    period_s: float
    """How often it changes, > 0 s."""
    step: int = 1
    """Counter increment, 1..65535."""
    amplitude: int = 0
    """Noise half-width, 0..65535."""

    def __post_init__(self) -> None:
        if self.table not in (Table.HOLDING, Table.INPUT):
            raise ConfigError(
                f"dynamic table must be 'holding' or 'input', not {str(self.table)!r}"
            )
        _check_config_int("dynamic register", self.register, 0, 0xFFFF)
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ConfigError(
                f"dynamic period_s must be a finite number > 0, not {self.period_s!r}"
            )
        _check_config_int("dynamic step", self.step, 1, 0xFFFF)
        _check_config_int("dynamic amplitude", self.amplitude, 0, 0xFFFF)


def _check_config_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer {low}..{high}, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusSlaveConfig:
    """Everything that defines a slave at power-on.

    Each table is a mapping of blocks: ``{start: (v0, v1, ...)}`` puts ``v0``
    at ``start``, ``v1`` at ``start + 1`` and so on. Blocks of one table must
    not overlap. Bit tables hold 0 or 1, register tables 0..65535.

    Raises:
        ConfigError: any field out of range; the message names the field, the
            value and what is allowed.
    """

    address: int
    """Slave address, 1..247."""
    coils: Mapping[int, Sequence[int]] = field(default_factory=dict)
    discrete_inputs: Mapping[int, Sequence[int]] = field(default_factory=dict)
    holding_registers: Mapping[int, Sequence[int]] = field(default_factory=dict)
    input_registers: Mapping[int, Sequence[int]] = field(default_factory=dict)
    response_delay_s: float = 0.005
    """Processing time between recognising a request and starting the answer, 0..10 s."""
    dynamics: tuple[Dynamic, ...] = ()
    values: Mapping[Table, Mapping[int, int]] = field(init=False, repr=False, compare=False)
    """Each table's value at each configured address, from the blocks (read-only, shared
    by every slave built from this config: a slave keeps only what changed)."""
    dynamic_of: Mapping[tuple[Table, int], Dynamic] = field(init=False, repr=False, compare=False)
    """The dynamic of each register that has one, by (table, address) (read-only)."""

    def __post_init__(self) -> None:
        _check_config_int("address", self.address, 1, 247)
        for table in Table:
            blocks = _frozen_blocks(table, self.blocks(table))
            object.__setattr__(self, _CONFIG_FIELD[table], blocks)
        values = {
            table: MappingProxyType(
                {
                    start + offset: value
                    for start, block in self.blocks(table).items()
                    for offset, value in enumerate(block)
                }
            )
            for table in Table
        }
        object.__setattr__(self, "values", MappingProxyType(values))
        dynamic_of = {(dynamic.table, dynamic.register): dynamic for dynamic in self.dynamics}
        object.__setattr__(self, "dynamic_of", MappingProxyType(dynamic_of))
        delay = self.response_delay_s
        if not (math.isfinite(delay) and 0 <= delay <= 10):
            raise ConfigError(f"response_delay_s must be 0..10 (seconds), not {delay!r}")
        seen: set[tuple[Table, int]] = set()
        for dynamic in self.dynamics:
            key = (dynamic.table, dynamic.register)
            if not any(
                start <= dynamic.register < start + len(values)
                for start, values in self.blocks(dynamic.table).items()
            ):
                configured = describe_blocks(self.blocks(dynamic.table))
                raise ConfigError(
                    f"dynamic register {dynamic.register} must be one of the configured "
                    f"{_CONFIG_FIELD[dynamic.table]} ({configured})"
                )
            if key in seen:
                raise ConfigError(
                    f"dynamics: {dynamic.table} register {dynamic.register} has two dynamics"
                )
            seen.add(key)

    def blocks(self, table: Table) -> Mapping[int, Sequence[int]]:
        """The configured blocks of ``table``."""
        match table:
            case Table.COIL:
                return self.coils
            case Table.DISCRETE_INPUT:
                return self.discrete_inputs
            case Table.HOLDING:
                return self.holding_registers
            case Table.INPUT:
                return self.input_registers
            case _:
                assert_never(table)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build a config from parsed JSON/TOML.

        Example::

            {"address": 2, "holding_registers": {"0": [277, 1]},
             "coils": {"0x10": [0, 1, 1]}, "response_delay_s": 0.01,
             "dynamics": [{"table": "input", "register": 0, "kind": "counter",
                           "period_s": 1.0}]}

        Raises:
            ConfigError: an unknown key, a value of the wrong type or out of
                range; the message names the field, the value and what is
                allowed.
        """
        unknown = sorted(set(data) - _CONFIG_KEYS)
        if unknown:
            raise ConfigError(
                f"unknown Modbus slave config keys {unknown}; allowed: {sorted(_CONFIG_KEYS)}"
            )
        if "address" not in data:
            raise ConfigError("address is required: the slave address, 1..247")
        kwargs: dict[str, Any] = {"address": data["address"]}
        for table, name in _CONFIG_FIELD.items():
            if name in data:
                kwargs[name] = _parse_blocks(name, data[name], bits=table in BIT_TABLES)
        if "response_delay_s" in data:
            kwargs["response_delay_s"] = _parse_number("response_delay_s", data["response_delay_s"])
        if "dynamics" in data:
            entries = data["dynamics"]
            if not isinstance(entries, list):
                raise ConfigError(f"dynamics must be a list of objects, not {entries!r}")
            kwargs["dynamics"] = tuple(
                _parse_dynamic(f"dynamics[{index}]", entry) for index, entry in enumerate(entries)
            )
        return cls(**kwargs)


_CONFIG_FIELD = {
    Table.COIL: "coils",
    Table.DISCRETE_INPUT: "discrete_inputs",
    Table.HOLDING: "holding_registers",
    Table.INPUT: "input_registers",
}
_CONFIG_KEYS = frozenset({"address", "response_delay_s", "dynamics", *_CONFIG_FIELD.values()})
_DYNAMIC_KEYS = frozenset({"table", "register", "kind", "period_s", "step", "amplitude"})


def _frozen_blocks(
    table: Table, blocks: Mapping[int, Sequence[int]]
) -> Mapping[int, tuple[int, ...]]:
    """Validate one table's blocks and return them as an immutable mapping."""
    name = _CONFIG_FIELD[table]
    high = 1 if table in BIT_TABLES else 0xFFFF
    frozen: dict[int, tuple[int, ...]] = {}
    for start, values in sorted(blocks.items()):
        _check_config_int(f"{name} start address", start, 0, 0xFFFF)
        if not values:
            raise ConfigError(f"{name}[{start}] must hold at least one value, not {values!r}")
        if start + len(values) > 0x10000:
            raise ConfigError(
                f"{name}[{start}] must end at address 65535 or below, not {start + len(values) - 1}"
            )
        for value in values:
            _check_config_int(f"{name}[{start}] value", value, 0, high)
        for other, other_values in frozen.items():
            if start < other + len(other_values):
                raise ConfigError(
                    f"{name}[{start}] overlaps {name}[{other}] "
                    f"(addresses {other}..{other + len(other_values) - 1})"
                )
        frozen[start] = tuple(values)
    return MappingProxyType(frozen)


def describe_blocks(blocks: Mapping[int, Sequence[int]]) -> str:
    """``0..9, 100..101`` (or ``none``) for a table's blocks."""
    spans = [f"{start}..{start + len(values) - 1}" for start, values in sorted(blocks.items())]
    return ", ".join(spans) or "none"


def _parse_blocks(name: str, raw: object, *, bits: bool) -> dict[int, list[int]]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be an object of start address -> list, not {raw!r}")
    blocks: dict[int, list[int]] = {}
    for key, values in raw.items():
        start = _parse_address(name, key)
        if not isinstance(values, list):
            raise ConfigError(f"{name}[{key!r}] must be a list of values, not {values!r}")
        blocks[start] = [
            int(value) if bits and isinstance(value, bool) else value for value in values
        ]
    return blocks


def _parse_address(name: str, key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str):
        try:
            return int(key, 0)
        except ValueError as exc:
            raise ConfigError(
                f"{name} start address must be an integer such as '16' or '0x10', not {key!r}"
            ) from exc
    raise ConfigError(f"{name} start address must be an integer, not {key!r}")


def _parse_number(name: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConfigError(f"{name} must be a number, not {raw!r}")
    return float(raw)


def _parse_dynamic(name: str, raw: object) -> Dynamic:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be an object, not {raw!r}")
    unknown = sorted(set(raw) - _DYNAMIC_KEYS)
    if unknown:
        raise ConfigError(f"{name}: unknown keys {unknown}; allowed: {sorted(_DYNAMIC_KEYS)}")
    missing = sorted({"table", "register", "kind", "period_s"} - set(raw))
    if missing:
        raise ConfigError(f"{name}: missing keys {missing}")
    try:
        table = Table(raw["table"])
    except ValueError as exc:
        raise ConfigError(
            f"{name}.table must be 'holding' or 'input', not {raw['table']!r}"
        ) from exc
    try:
        kind = DynamicKind(raw["kind"])
    except ValueError as exc:
        raise ConfigError(f"{name}.kind must be 'counter' or 'noise', not {raw['kind']!r}") from exc
    try:
        return Dynamic(
            table=table,
            register=raw["register"],
            kind=kind,
            period_s=_parse_number(f"{name}.period_s", raw["period_s"]),
            step=raw.get("step", 1),
            amplitude=raw.get("amplitude", 0),
        )
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from exc


DEMO_SLAVE = ModbusSlaveConfig(
    address=1,
    holding_registers={0: (0x0115, 1, 2, 3, 4, 5, 6, 7, 8, 9)},
    input_registers={0: (0, 250, 500)},
    coils={0: (0,) * 16},
    discrete_inputs={0: (1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0)},
    dynamics=(
        Dynamic(table=Table.INPUT, register=0, kind=DynamicKind.COUNTER, period_s=1.0),
        Dynamic(table=Table.INPUT, register=1, kind=DynamicKind.NOISE, period_s=5.0, amplitude=3),
    ),
)
"""The default unit's demo slave at address 1.

Holding 0..9: ``0x0115`` then 1..9 (the SEND_MBR_485 example of docs/spec/xgc.md#5.14, a read of one
register at 0, is answered ``01 03 02 01 15 78 1B``). Input 0: a counter, +1 every second.
Input 1: a temperature in 0.1 °C, 25.0 °C ± 0.3 every 5 s. Input 2: a
humidity in 0.1 %, 50.0 %. Coils 0..15 all off. Discrete inputs 0..15.
"""


def load_slaves(path: Path) -> tuple[ModbusSlaveConfig, ...]:
    """Read a JSON file holding a list of slave configs (``[]``: no slaves on the bus).

    Raises:
        ConfigError: the file cannot be read, is not a JSON list, or an entry is
            invalid; the message names the file, the entry and the field.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the Modbus slave list ({exc})") from exc
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a JSON list of slaves, not {type(data).__name__}")
    slaves: list[ModbusSlaveConfig] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: slave [{index}] must be an object, not {entry!r}")
        try:
            slaves.append(ModbusSlaveConfig.from_dict(entry))
        except ConfigError as exc:
            raise ConfigError(f"{path}: slave [{index}]: {exc}") from exc
    addresses = [slave.address for slave in slaves]
    duplicated = sorted({a for a in addresses if addresses.count(a) > 1})
    if duplicated:
        raise ConfigError(f"{path}: slave addresses {duplicated} are used twice")
    return tuple(slaves)
