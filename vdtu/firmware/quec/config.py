"""``dtu_config.json`` of the QuecPython DTU: the whole document, loaded, defaulted, edited.

The file (docs/spec/quec.md#6 for the settings, #7 for the file: the seed's keys plus the
v2 firmware's ``work_mode``, ``offline_storage``, ``modbus`` and ``direction_pin``; every
field is described in ``docs/quec-config.md``)::

    {"plate": 0, "password": "012345", "work_mode": "command",
     "conf": {"1": {"protocol": "mqtt", "clientID": "", "keepAlive": "", "url": "broker",
                    "port": "1883", "cleanSession": true, "subscribe": {"0": "a/down"},
                    "publish": {"0": "a/up"}, "qos": "1", "retain": "0", "serialID": "2"}},
     "uconf": {"2": {"baudrate": "115200", "databits": "8", "parity": "0",
                     "stopbits": "1", "flowctl": "0"}},
     "reg": 0, "convert": 0, "version": 100, "nolog": 0, "message": {}, "fota": 1,
     "ota": 1, "pins": ["1", "2", "3"], "direction_pin": {}, "apn": ["", "", ""],
     "service_acquire": 0, "auto_connect": 1, "offline_storage": true,
     "modbus": {"groups": [{"device_type": "", "device_model": "", "slave_address": ["0x01"]}]}}

How it works:

* ``DtuConfig`` is a frozen dataclass read and written by the field mechanism of
  ``fields`` (each field's JSON name, reader and writer in its metadata; ranges and
  cross-field rules in ``__post_init__``), so an invalid config cannot exist, whether
  it came from a file, a setting command (``with_*``) or Python code. Its parts are
  in ``serial_schema`` (``uconf``, ``direction_pin``), ``channel_schema`` (``conf``)
  and ``modbus_schema`` (``modbus``); the smaller top-level values are here. The
  whole document checks the cross-references: a channel's ``serialID``, a
  ``direction_pin`` key and a poll entry's UART and channel must exist.
* Every error is a ``ConfigError`` whose message starts with the field's path in
  the file (``conf.1.port``, ``uconf.2.baudrate``, ``modbus.poll.0.count``) and
  gives the bad value and what is allowed. Secrets (``password``, ``DeviceSecret``,
  ``ProductSecret``, the APN and MQTT passwords) are never quoted.
* Unknown keys are refused with the list of allowed keys, and a JSON text with a key
  twice in one object is refused: a typo must not pass silently.
* The text is decoded within ``FILE_LIMITS`` (``vdtu.json_limits``): a huge number,
  deep nesting or an oversized file is a ``ConfigError`` naming the limit, never a
  ``ValueError`` or ``RecursionError`` from the decoder.
* ``password`` and ``work_mode`` are required; every other top-level key, when
  missing, takes the empty value of its type, as the v1 firmware does.
* ``to_json`` writes every field in the form the seed's examples use
  (docs/spec/quec.md#7.1: ``"port": "8305"``, ``"qos": "1"``, ``"cleanSession": true``,
  ``"keepAlive": ""`` for the default), so ``load_config(c.to_json()) == c`` for every config ``c``.
* The setting commands 51-63 are ``with_*`` functions: each reads one value exactly
  as the loader reads that field and returns a new, validated ``DtuConfig``.
  Storing the result and applying it after a reset are the firmware's business.

Pure: the standard library and vdtu's own pure modules only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from vdtu.errors import ConfigError
from vdtu.firmware.quec.channel_schema import Channel, MqttChannel, read_conf
from vdtu.firmware.quec.fields import (
    INT32_MAX,
    JsonObject,
    at_path,
    build,
    check_choice,
    check_id,
    check_range,
    check_text,
    enum_reader,
    frozen,
    json_fields,
    json_meta,
    listed,
    read_flag,
    read_int,
    read_list,
    read_secret,
    read_str,
    read_token,
    show,
    table_reader,
    write_int,
    write_objects,
)
from vdtu.firmware.quec.frames import WorkMode
from vdtu.firmware.quec.modbus_schema import ModbusConfig, ModbusGroup, read_modbus
from vdtu.firmware.quec.serial_schema import (
    MAX_GPIO,
    PORT_UARTS,
    UART_PORTS,
    DirectionPin,
    Parity,
    UartConfig,
)
from vdtu.json_limits import JsonLimitError, JsonLimits
from vdtu.json_limits import decode as decode_json

SUBSCRIBE_TOPIC: Final = "quec/{imei}/down"
"""The default config's subscribe topic (cloud -> unit); ``{imei}`` is the unit's IMEI."""
PUBLISH_TOPIC: Final = "quec/{imei}/up"
"""The default config's publish topic (unit -> cloud)."""

FILE_LIMITS: Final = JsonLimits(
    max_bytes=64 * 1024, max_depth=16, max_digits=20, max_string=8 * 1024
)
"""The limits of ``dtu_config.json``'s text: 64 KiB, 16 levels of nesting (the deepest
field is at 5), 20 digits per number, 8 KiB per string."""

_PIN_RE = re.compile(r"(?:pio)?([0-9]{1,3})", re.IGNORECASE)
_PHONE_RE = re.compile(r"\+?[0-9]{1,31}")


# --- smaller top-level values --------------------------------------------------------


def _read_ota(path: str, raw: object) -> bool:
    if isinstance(raw, list):
        raise ConfigError(
            f"{path} must be 0 or 1 (the v2 firmware's switch for module firmware updates), "
            f"not {show(raw)}: the v1 form [uid, module_type, pk] is not supported"
        )
    return read_flag(path, raw)


def _read_password(path: str, raw: object) -> str:
    """A command password: a string, or an integer stored as its digits (as ``str()`` does)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, str):
        return read_secret(path, raw)
    raise ConfigError(
        f"{path} must be a string (or an integer), not a {type(raw).__name__} (value not shown)"
    )


_read_work_mode = enum_reader(
    WorkMode, hints={"though": "a typo in the v1 firmware's shipped file: write 'through'"}
)


def _read_pins(path: str, raw: object) -> tuple[int | None, ...]:
    pins: list[int | None] = []
    for index, entry in enumerate(read_list(path, raw)):
        if isinstance(entry, int) and not isinstance(entry, bool):
            pins.append(entry)
        elif isinstance(entry, str) and not entry.strip():
            pins.append(None)
        elif isinstance(entry, str) and (match := _PIN_RE.fullmatch(entry.strip())):
            pins.append(int(match.group(1)))
        else:
            raise ConfigError(
                f"{path}.{index} must be a GPIO number 1..{MAX_GPIO} such as '1' (or 'pio1'), "
                f'or "" for none; not {show(entry)}'
            )
    return tuple(pins)


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsMessage(JsonObject):
    """The ``message`` key: an SMS (docs/spec/quec.md#6.1). The firmware never acts on it."""

    number: str = field(metadata=json_meta("number", read_token))
    """1..31 digits, optionally after a ``+`` (the seed's 32-byte field, docs/spec/quec.md#6.1)."""
    text: str = field(metadata=json_meta("sms_msg", read_str))
    """At most 1024 bytes in UTF-8."""

    def __post_init__(self) -> None:
        if not _PHONE_RE.fullmatch(self.number):
            raise ConfigError(
                f"number must be 1..31 digits after an optional +, not {show(self.number)}"
            )
        if len(self.text.encode()) > 1024:
            raise ConfigError(f"sms_msg must be at most 1024 bytes, not {len(self.text.encode())}")


def _read_message(path: str, raw: object) -> SmsMessage | None:
    if isinstance(raw, Mapping) and not raw:
        return None
    return build(SmsMessage, path, raw)


def _write_message(value: SmsMessage | None) -> dict[str, Any]:
    return {} if value is None else value.to_json()


@dataclass(frozen=True, slots=True, kw_only=True)
class Apn:
    """The ``apn`` list ``[apn, user, password]`` (docs/spec/quec.md#6.11)."""

    name: str = ""
    """The APN, at most 100 characters."""
    user: str = ""
    """At most 64 characters."""
    password: str = field(default="", repr=False)
    """At most 64 characters."""

    def __post_init__(self) -> None:
        check_text("apn.0", self.name, max_chars=100)
        check_text("apn.1", self.user, max_chars=64)
        check_text("apn.2", self.password, max_chars=64, secret=True)

    @property
    def in_use(self) -> bool:
        """Whether the firmware sets this APN: only when all three are non-empty."""
        return bool(self.name and self.user and self.password)


def _read_apn(path: str, raw: object) -> Apn:
    if not isinstance(raw, list | tuple) or len(raw) != 3:
        what = f"a list of {len(raw)}" if isinstance(raw, list | tuple) else type(raw).__name__
        raise ConfigError(
            f"{path} must be a list of 3 strings [apn, user, password], not {what} "
            "(value not shown: it may hold the password)"
        )
    entries = list(raw)
    name = read_str(f"{path}.0", entries[0])
    user = read_str(f"{path}.1", entries[1])
    password = read_secret(f"{path}.2", entries[2])
    return Apn(name=name, user=user, password=password)


def _write_apn(value: Apn) -> list[str]:
    return [value.name, value.user, value.password]


def _read_reg(path: str, raw: object) -> int | str:
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        return int(raw.strip()) if raw.strip() in ("0", "1") else raw
    raise ConfigError(f"{path} must be 0, 1 or a registration message string, not {show(raw)}")


def _write_pins(value: tuple[int | None, ...]) -> list[str]:
    return ["" if pin is None else str(pin) for pin in value]


# --- the whole file --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DtuConfig(JsonObject):
    """``dtu_config.json``: every key of docs/spec/quec.md#7.2 (the seed's and the
    v2 firmware's).

    Build one with ``load_config`` or ``default_config``; change it with the ``with_*``
    functions. Switches that the firmware stores as 0/1 are ``bool`` here.

    Raises:
        ConfigError: a field out of range or a broken cross-reference (a channel on a
            UART missing from ``uconf``, ...); the message names the field's path.
    """

    plate: bool = field(default=False, metadata=json_meta("plate", read_flag, write_int))
    """Add the IMEI to messages (code 52, v1 only; no behaviour in v1/v2)."""
    password: str = field(repr=False, metadata=json_meta("password", _read_password))
    """The command password, 1..64 printable characters (default: the IMEI's last six digits)."""
    conf: Mapping[str, Channel] = field(
        default_factory=dict, metadata=json_meta("conf", read_conf, write_objects)
    )
    """Channel id -> channel, in file order (the order matters to the firmware)."""
    reg: int | str = field(default=0, metadata=json_meta("reg", _read_reg))
    """0, 1 (send the registration message at first login) or a custom message."""
    convert: int = field(default=0, metadata=json_meta("convert", read_int))
    """Undocumented; no behaviour. 0..2**31-1."""
    version: int = field(default=0, metadata=json_meta("version", read_int))
    """The parameter version (code 54), 0..2**31-1."""
    nolog: bool = field(default=False, metadata=json_meta("nolog", read_flag, write_int))
    message: SmsMessage | None = field(
        default=None, metadata=json_meta("message", _read_message, _write_message)
    )
    """``{}`` in the file is ``None``."""
    uconf: Mapping[str, UartConfig] = field(
        default_factory=dict, metadata=json_meta("uconf", table_reader(UartConfig), write_objects)
    )
    """UART id (a key of ``UART_PORTS``) -> how it is opened."""
    fota: bool = field(default=False, metadata=json_meta("fota", read_flag, write_int))
    """v2: allow project-script updates (SOTA)."""
    ota: bool = field(default=False, metadata=json_meta("ota", _read_ota, write_int))
    """v2: allow module-firmware updates (FOTA) and the boot OTA check."""
    pins: tuple[int | None, ...] = field(
        default=(None, None, None), metadata=json_meta("pins", _read_pins, _write_pins)
    )
    """GPIOs for the network LED, the server-connected output, the reset-parameters input.

    ``None``: not set (``""`` in the file)."""
    direction_pin: Mapping[str, DirectionPin] = field(
        default_factory=dict,
        metadata=json_meta("direction_pin", table_reader(DirectionPin), write_objects),
    )
    """UART id -> its RS-485 direction GPIO."""
    apn: Apn = field(default=Apn(), metadata=json_meta("apn", _read_apn, _write_apn))
    service_acquire: bool = field(
        default=False, metadata=json_meta("service_acquire", read_flag, write_int)
    )
    """Fetch parameters from the server (code 57; no behaviour in v1/v2)."""
    work_mode: WorkMode = field(metadata=json_meta("work_mode", _read_work_mode, str))
    auto_connect: bool = field(
        default=False, metadata=json_meta("auto_connect", read_flag, write_int)
    )
    offline_storage: bool = field(default=False, metadata=json_meta("offline_storage", read_flag))
    """Keep uplinks that could not be sent (up to 100) and resend them at boot."""
    modbus: ModbusConfig = field(
        default=ModbusConfig(), metadata=json_meta("modbus", read_modbus, ModbusConfig.to_json)
    )
    """Modbus slave groups and the vdtu ``poll`` table."""

    def __post_init__(self) -> None:
        for name in ("conf", "uconf", "direction_pin"):
            object.__setattr__(self, name, frozen(getattr(self, name)))
        object.__setattr__(self, "pins", tuple(self.pins))
        if not 1 <= len(self.password) <= 64 or not self.password.isprintable():
            raise ConfigError("password must be 1..64 printable characters (value not shown)")
        if isinstance(self.reg, str):
            check_text("reg", self.reg, max_chars=1024)
            if not self.reg:
                raise ConfigError('reg must be 0, 1 or a registration message string, not ""')
        else:
            check_choice("reg", self.reg, (0, 1))
        check_range("convert", self.convert, 0, INT32_MAX)
        check_range("version", self.version, 0, INT32_MAX)
        for uart_id in self.uconf:
            if uart_id not in UART_PORTS:
                ports = ", ".join(f"{u} = {p}" for u, p in UART_PORTS.items())
                raise ConfigError(
                    f"uconf: UART id {uart_id!r} must be one of {listed(UART_PORTS)} "
                    f"(the unit's ports: {ports})"
                )
        self._check_pins()
        for uart_id in self.direction_pin:
            self._check_uart(f"direction_pin: UART id {uart_id!r}", uart_id)
        for channel_id, channel in self.conf.items():
            check_id(f"conf: channel id {channel_id!r}", channel_id, "channel id")
            self._check_uart(f"conf.{channel_id}.serialID", channel.serial_id)
        self._check_poll()

    def _check_pins(self) -> None:
        if len(self.pins) != 3:
            raise ConfigError(
                "pins must hold 3 entries [network LED, server connected, reset parameters], "
                f"not {len(self.pins)}: {show(_write_pins(self.pins))}"
            )
        for index, pin in enumerate(self.pins):
            if pin is not None:
                check_range(f"pins.{index}", pin, 1, MAX_GPIO)
        used = [pin for pin in self.pins if pin is not None]
        repeated = sorted({pin for pin in used if used.count(pin) > 1})
        if repeated:
            raise ConfigError(f"pins uses GPIO {repeated} for more than one role")

    def _check_poll(self) -> None:
        for index, entry in enumerate(self.modbus.poll):
            where = f"modbus.poll.{index}"
            self._check_uart(f"{where}.serialID", entry.serial_id)
            if entry.channel is None:
                if not self.channels_on(entry.serial_id):
                    raise ConfigError(
                        f"{where}.channel is needed: no channel in conf is bound to serialID "
                        f"{entry.serial_id!r}, so the readings would have nowhere to go"
                    )
            elif entry.channel not in self.conf:
                raise ConfigError(
                    f"{where}.channel must be one of the conf keys {listed(self.conf)}, "
                    f"not {entry.channel!r}"
                )

    def _check_uart(self, name: str, uart_id: str) -> None:
        if uart_id not in self.uconf:
            raise ConfigError(
                f"{name} must be one of the uconf keys {listed(self.uconf)}, not {uart_id!r}"
            )

    def channels_on(self, serial_id: str) -> tuple[str, ...]:
        """The ids of the channels bound to UART ``serial_id``, in file order."""
        return tuple(cid for cid, channel in self.conf.items() if channel.serial_id == serial_id)

    def port_of(self, serial_id: str) -> str:
        """The unit's port (``uart``, ``rs232``, ``rs485``) that UART ``serial_id`` drives."""
        return UART_PORTS[serial_id]


# --- loading, the default config, setting commands -----------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ConfigError(
                f"dtu_config.json: key {key!r} appears twice in one object "
                f"(keys there: {[k for k, _ in pairs]})"
            )
        data[key] = value
    return data


def load_config(data: Mapping[str, object] | str) -> DtuConfig:
    """Read ``dtu_config.json``: its parsed JSON, or its text.

    Args:
        data: the file's text, or the object it holds (as ``json.loads`` gives it).

    Returns:
        The validated config, every loose value normalised to its type.

    Raises:
        ConfigError: the text is not JSON (the message gives the line and column), an
            object repeats a key, a key is unknown or missing, or a value is out of
            range; the message names the field's path, the value and what is allowed.
    """
    parsed: object = data
    if isinstance(data, str):
        try:
            parsed = decode_json(data, FILE_LIMITS, object_pairs_hook=_no_duplicate_keys)
        except ConfigError:
            raise
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"dtu_config.json is not valid JSON: {exc.msg} at line {exc.lineno} "
                f"column {exc.colno}"
            ) from exc
        except JsonLimitError as exc:  # a huge number, deep nesting, a huge file
            raise ConfigError(f"dtu_config.json is not usable JSON: {exc}") from exc
    return build(DtuConfig, "", parsed)


def default_config(
    imei: str,
    *,
    broker_host: str,
    broker_port: int,
    broker_username: str = "",
    broker_password: str = "",
) -> DtuConfig:
    """The config of a unit without a file: command mode, one MQTT channel to ``broker_host``.

    Password: the IMEI's last six digits. Channel ``"1"`` is bound to the host port
    (``uart``, UART ``"2"``), its client id is the IMEI, it subscribes to
    ``quec/<IMEI>/down`` and publishes to ``quec/<IMEI>/up`` at QoS 1. All three
    ports are configured (``uart`` and ``rs232`` 115200 8N1, ``rs485`` 9600 8N1);
    offline storage is on, and Modbus group 0 holds the demo slave at address 1.

    Args:
        imei: the unit's IMEI, 15 digits.
        broker_host: the broker's host name or IP address.
        broker_port: its port.
        broker_username: a login for the broker (``""``: none).
        broker_password: its password.

    Raises:
        ValueError: ``imei`` is not 15 digits.
        ConfigError: a broker setting is invalid (the message names the field).
    """
    if not (len(imei) == 15 and imei.isascii() and imei.isdigit()):
        raise ValueError(f"imei must be 15 digits, not {imei!r}")
    with at_path("conf.1"):
        channel = _default_channel(imei, broker_host, broker_port, broker_username, broker_password)
    bauds = {"uart": 115200, "rs232": 115200, "rs485": 9600}
    return DtuConfig(
        password=imei[-6:],
        conf={"1": channel},
        version=100,
        uconf={
            uart_id: UartConfig(
                baudrate=bauds[port], databits=8, parity=Parity.NONE, stopbits=1, flowctl=0
            )
            for uart_id, port in sorted(UART_PORTS.items())
        },
        fota=True,
        ota=True,
        pins=(1, 2, 3),
        work_mode=WorkMode.COMMAND,
        auto_connect=True,
        offline_storage=True,
        modbus=ModbusConfig(
            groups=(
                ModbusGroup(
                    device_type="demo", device_model="vdtu-demo-slave", slave_addresses=(1,)
                ),
            )
        ),
    )


def _default_channel(imei: str, host: str, port: int, username: str, password: str) -> MqttChannel:
    return MqttChannel(
        client_id=imei,
        url=host,
        port=port,
        subscribe={"0": SUBSCRIBE_TOPIC.format(imei=imei)},
        publish={"0": PUBLISH_TOPIC.format(imei=imei)},
        qos=1,
        username=username,
        password=password,
        serial_id=PORT_UARTS["uart"],
    )


def _with(config: DtuConfig, name: str, value: object) -> DtuConfig:
    """``config`` with the field whose JSON name is ``name`` read from ``value``."""
    for item, spec in json_fields(DtuConfig):
        if spec.name == name:
            return replace(config, **{item.name: spec.read(name, value)})
    raise AssertionError(f"DtuConfig has no field {name!r}")


def with_password(config: DtuConfig, value: object) -> DtuConfig:
    """Code 51 ``{"new_password": value}``: a string, or an integer stored as its digits.

    Every ``with_*`` function returns a new config with one field read from ``value``
    as ``load_config`` reads it, and validated with the rest of the config.

    Raises:
        ConfigError: the value is refused; the message names the field and why.
    """
    return _with(config, "password", value)


def with_plate(config: DtuConfig, value: object) -> DtuConfig:
    """Code 52 ``{"plate": 0|1}`` (v1 firmware only)."""
    return _with(config, "plate", value)


def with_reg(config: DtuConfig, value: object) -> DtuConfig:
    """Code 53 ``{"reg": 0|1|"message"}``."""
    return _with(config, "reg", value)


def with_version(config: DtuConfig, value: object) -> DtuConfig:
    """Code 54 ``{"version": "100"}`` (an integer, or a string of digits)."""
    return _with(config, "version", value)


def with_fota(config: DtuConfig, value: object) -> DtuConfig:
    """Code 55 ``{"fota": 0|1}``."""
    return _with(config, "fota", value)


def with_nolog(config: DtuConfig, value: object) -> DtuConfig:
    """Code 56 ``{"nolog": 0|1}``."""
    return _with(config, "nolog", value)


def with_service_acquire(config: DtuConfig, value: object) -> DtuConfig:
    """Code 57 ``{"service_acquire": 0|1}``."""
    return _with(config, "service_acquire", value)


def with_uconf(config: DtuConfig, value: object) -> DtuConfig:
    """Code 58 ``{"uconf": {...}}``: replaces the whole ``uconf``, as the firmware does."""
    return _with(config, "uconf", value)


def with_conf(config: DtuConfig, value: object) -> DtuConfig:
    """Code 59 ``{"conf": {...}}``: replaces every channel, as the firmware does."""
    return _with(config, "conf", value)


def with_apn(config: DtuConfig, value: object) -> DtuConfig:
    """Code 60 ``{"apn": [apn, user, password]}``."""
    return _with(config, "apn", value)


def with_pins(config: DtuConfig, value: object) -> DtuConfig:
    """Code 61 ``{"pins": ["1", "2", "3"]}``."""
    return _with(config, "pins", value)


def with_ota(config: DtuConfig, value: object) -> DtuConfig:
    """Code 62 ``{"ota": 0|1}``."""
    return _with(config, "ota", value)


def replace_all(value: object) -> DtuConfig:
    """Code 63 ``{"dtu_config": {...}}``: a whole new config, read as ``load_config`` reads one.

    Raises:
        ConfigError: ``value`` is not an object, or is not a valid config.
    """
    if not isinstance(value, Mapping):
        raise ConfigError(f"dtu_config must be a JSON object, not {show(value)}")
    return load_config(value)
