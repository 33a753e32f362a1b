"""Hardware models of the DTU's I/O: relays and opto inputs, battery, ADC, sensor, Modbus slaves.

Each model takes a ``simpy.Environment`` (and its own random source where
anything is random), keyword-only settings, has ``reset()`` for a power cycle
and ``snapshot()`` for displays, and announces changes through plain lists of
listeners.
"""

from __future__ import annotations

from vdtu.io.adc import Adc, AdcSnapshot
from vdtu.io.gpio import Gpio, GpioSnapshot
from vdtu.io.modbus_config import DEMO_SLAVE, Dynamic, DynamicKind, ModbusSlaveConfig, Table
from vdtu.io.modbus_slave import ModbusSlave, ModbusSlaveSnapshot, SlaveStats
from vdtu.io.power import Battery, BatterySnapshot
from vdtu.io.sensor import SensorSnapshot, TempHumiditySensor

__all__ = [
    "DEMO_SLAVE",
    "Adc",
    "AdcSnapshot",
    "Battery",
    "BatterySnapshot",
    "Dynamic",
    "DynamicKind",
    "Gpio",
    "GpioSnapshot",
    "ModbusSlave",
    "ModbusSlaveConfig",
    "ModbusSlaveSnapshot",
    "SensorSnapshot",
    "SlaveStats",
    "Table",
    "TempHumiditySensor",
]
