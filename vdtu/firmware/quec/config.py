"""``dtu_config.json`` of the QuecPython DTU: load and validate it, write it back, edit it.

The file (seed 000 sections 6-10, plus the v2 firmware's ``work_mode``,
``offline_storage``, ``modbus`` and ``direction_pin``; every field is described in
``docs/quec-config.md``)::

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

* Reading takes two steps. Each dataclass field carries, in its metadata, its JSON
  name, a *reader* and a *writer*. A reader only turns the seed's loose JSON into
  the field's type (``"8305"`` or ``8305`` -> ``8305``; ``true``, ``1`` or ``"1"``
  -> ``True``; ``""`` -> ``None``, "the default"), so it fails only on a value of a
  kind the field never takes. The dataclass's ``__post_init__`` then checks ranges
  and cross-field rules. So an invalid config cannot exist, whether it came from a
  file, a setting command (``with_*``) or Python code.
* Every error is a ``ConfigError`` whose message starts with the field's path in
  the file (``conf.1.port``, ``uconf.2.baudrate``, ``modbus.poll.0.count``) and
  gives the bad value and what is allowed. ``__post_init__`` messages start with the
  field's JSON name; the reader that built the object puts the path in front. Secrets
  (``password``, ``DeviceSecret``, ``ProductSecret``, the APN and MQTT passwords)
  are never quoted.
* Unknown keys are refused with the list of allowed keys, and a JSON text with a key
  twice in one object is refused: a typo must not pass silently.
* The text is decoded within ``FILE_LIMITS`` (``vdtu.json_limits``): a huge number,
  deep nesting or an oversized file is a ``ConfigError`` naming the limit, never a
  ``ValueError`` or ``RecursionError`` from the decoder.
* ``password`` and ``work_mode`` are required; every other top-level key, when
  missing, takes the empty value of its type, as the v1 firmware does.
* ``to_json`` writes every field in the form the seed's examples use (``"port":
  "8305"``, ``"qos": "1"``, ``"cleanSession": true``, ``"keepAlive": ""`` for the
  default), so ``load_config(c.to_json()) == c`` for every config ``c``.
* The setting commands 51-63 are ``with_*`` functions: each reads one value exactly
  as the loader reads that field and returns a new, validated ``DtuConfig``.
  Storing the result and applying it after a reset are the firmware's business.

Pure: the standard library and vdtu's own pure modules only.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar, cast

from vdtu.errors import ConfigError
from vdtu.firmware.quec.frames import ChannelType, WorkMode
from vdtu.json_limits import JsonLimitError, JsonLimits, holds_text
from vdtu.json_limits import decode as decode_json
from vdtu.modbus.rtu import (
    MAX_READ_BITS,
    MAX_READ_REGISTERS,
    READ_BIT_FUNCTIONS,
    READ_FUNCTIONS,
    FunctionCode,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

UART_PORTS: Final[Mapping[str, str]] = MappingProxyType({"0": "rs232", "1": "rs485", "2": "uart"})
"""Which of the unit's ports each ``uconf`` key (a module UART number) drives.

``"2"`` is the module's MAIN UART, the one the firmware's shipped files configure,
and the unit's host port ``uart``. The firmware binds channels to serial ports in
modbus and passthrough mode only for UARTs 0, 1 and 2, so all three ports are in
that range; ``"1"`` is the RS-485 bus with the Modbus slaves, ``"0"`` the RS-232 port.
"""

PORT_UARTS: Final[Mapping[str, str]] = MappingProxyType({p: u for u, p in UART_PORTS.items()})
"""The ``uconf`` key of each of the unit's ports (``{"uart": "2", ...}``)."""

BAUD_RATES: Final = (
    300,
    600,
    1200,
    2400,
    4800,
    9600,
    19200,
    38400,
    57600,
    115200,
    230400,
    460800,
    921600,
)
"""The baud rates a ``uconf`` entry may ask for: the POSIX/Linux standard rates from
300 to 921600, which a host can set on the unit's pseudo-terminal."""

MQTT_KEEPALIVE_DEFAULT_S: Final = 60
"""MQTT channels: keep-alive when ``keepAlive`` is ``""`` (seed 6.1.9.1.4)."""
CLOUD_KEEPALIVE_DEFAULT_S: Final = 300
"""Aliyun and Tencent channels: keep-alive when ``keepAlive`` is ``""`` (seed 6.1.9.1.5-6)."""
QUECTHING_KEEPALIVE_DEFAULT_S: Final = 120
"""Quectel cloud channels: lifetime when ``keepAlive`` is ``""`` (seed 6.1.9.1.7)."""
SOCKET_KEEPALIVE_DEFAULT_S: Final = 300
"""TCP/UDP channels: connection timeout when ``keepAlive`` is ``""`` (seed 6.1.9.1.2-3)."""
HTTP_TIMEOUT_DEFAULT_S: Final = 30
"""HTTP channels: request timeout when ``timeout`` is ``""`` (vdtu's choice; the seed has none)."""

SUBSCRIBE_TOPIC: Final = "quec/{imei}/down"
"""The default config's subscribe topic (cloud -> unit); ``{imei}`` is the unit's IMEI."""
PUBLISH_TOPIC: Final = "quec/{imei}/up"
"""The default config's publish topic (unit -> cloud)."""

FILE_LIMITS: Final = JsonLimits(
    max_bytes=64 * 1024, max_depth=16, max_digits=20, max_string=8 * 1024
)
"""The limits of ``dtu_config.json``'s text: 64 KiB, 16 levels of nesting (the deepest
field is at 5), 20 digits per number, 8 KiB per string."""

_INT32_MAX = 2**31 - 1
_MAX_GPIO = 128
_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")
_ID_RE = re.compile(r"0|[1-9][0-9]*")
_HEX_ADDRESS_RE = re.compile(r"0[xX][0-9a-fA-F]{1,2}")
_PIN_RE = re.compile(r"(?:pio)?([0-9]{1,3})", re.IGNORECASE)
_PING_RE = re.compile(r"[0-9A-Za-z]{1,64}")
_PHONE_RE = re.compile(r"\+?[0-9]{1,31}")
_WHITESPACE_RE = re.compile(r"\s")


class Parity(IntEnum):
    """A ``uconf`` entry's parity, as the firmware numbers it."""

    NONE = 0
    EVEN = 1
    ODD = 2


class HttpMethod(StrEnum):
    """An HTTP channel's request method."""

    GET = "get"
    POST = "post"
    PUT = "put"
    DELETE = "delete"
    HEAD = "head"


class AuthType(StrEnum):
    """How an Aliyun or Tencent channel authenticates (its ``type``)."""

    MOS = "mos"
    """One device, one secret: logs in with ``DeviceSecret``."""
    TAS = "tas"
    """One type, one secret: registers with ``ProductSecret`` to get a device secret."""


class SendMode(StrEnum):
    """How a Quectel cloud channel sends data (its ``sendMode``)."""

    PHY = "phy"
    """As object-model (物模型) data."""
    PASS = "pass"
    """As passthrough data (the only mode the v2 firmware uses)."""


# --- error messages --------------------------------------------------------------------


def _show(value: object) -> str:
    """``repr(value)``, cut to 80 characters so a message stays one line; a list or an
    object holding text by its size only, as it may hold a password or a secret."""
    if isinstance(value, list | tuple | dict) and holds_text(value):
        what = "a JSON object with" if isinstance(value, dict) else "a list of"
        noun = "keys" if isinstance(value, dict) else "items"
        return f"{what} {len(value)} {noun} (not shown)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _label(path: str) -> str:
    return path or "dtu_config"


@contextmanager
def _at(path: str) -> Iterator[None]:
    """Put ``path`` in front of the messages of errors raised by a constructor."""
    try:
        yield
    except ConfigError as exc:
        if not path:
            raise
        raise ConfigError(f"{path}.{exc}") from exc


# --- readers: loose JSON -> typed values ----------------------------------------------

_Reader = Callable[[str, object], Any]
"""Turns a raw JSON value at a path into a field's type, or raises ``ConfigError``."""
_Writer = Callable[[Any], object]
"""Turns a field's value into its JSON form."""


def _read_int(path: str, raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()):
        return int(raw.strip())
    raise ConfigError(
        f"{path} must be an integer (a number or a string of digits), not {_show(raw)}"
    )


def _read_optional_int(path: str, raw: object) -> int | None:
    if isinstance(raw, str) and not raw.strip():
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()):
        return int(raw.strip())
    raise ConfigError(
        f'{path} must be an integer (a number or a string of digits), or "" for the default; '
        f"not {_show(raw)}"
    )


def _read_json_int(path: str, raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise ConfigError(f"{path} must be a JSON integer, not {_show(raw)}")


def _read_number(path: str, raw: object) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    raise ConfigError(f"{path} must be a number of seconds, not {_show(raw)}")


_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})


def _read_flag(path: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ConfigError(
        f'{path} must be true/false, 0/1, "0"/"1" or "true"/"false"; not {_show(raw)}'
    )


def _read_flag_or_empty(path: str, raw: object) -> bool:
    if isinstance(raw, str) and not raw.strip():
        return False
    return _read_flag(path, raw)


def _read_ota(path: str, raw: object) -> bool:
    if isinstance(raw, list):
        raise ConfigError(
            f"{path} must be 0 or 1 (the v2 firmware's switch for module firmware updates), "
            f"not {_show(raw)}: the v1 form [uid, module_type, pk] is not supported"
        )
    return _read_flag(path, raw)


def _unicode(path: str, text: str, *, secret: bool = False) -> str:
    """``text`` if it can be written as UTF-8 (a JSON ``\\ud800`` escape gives a lone
    surrogate, which no file, topic or packet can carry)."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        shown = "value not shown" if secret else f"character {exc.start}"
        raise ConfigError(
            f"{path} must be valid Unicode text: it holds a lone surrogate ({shown})"
        ) from None
    return text


def _read_str(path: str, raw: object) -> str:
    if isinstance(raw, str):
        return _unicode(path, raw)
    raise ConfigError(f"{path} must be a string, not {_show(raw)}")


def _read_token(path: str, raw: object) -> str:
    """A name, key or host: a string with surrounding whitespace dropped."""
    return _read_str(path, raw).strip()


def _read_secret(path: str, raw: object) -> str:
    if isinstance(raw, str):
        return _unicode(path, raw, secret=True)
    raise ConfigError(f"{path} must be a string, not a {type(raw).__name__} (value not shown)")


def _read_secret_token(path: str, raw: object) -> str:
    return _read_secret(path, raw).strip()


def _read_password(path: str, raw: object) -> str:
    """A command password: a string, or an integer stored as its digits (as ``str()`` does)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, str):
        return _unicode(path, raw, secret=True)
    raise ConfigError(
        f"{path} must be a string (or an integer), not a {type(raw).__name__} (value not shown)"
    )


def _read_id(path: str, raw: object) -> str:
    """A channel, UART or topic id: ``"2"`` or ``2`` -> ``"2"`` (checked later by ``_check_id``)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, str):
        return raw
    raise ConfigError(
        f"{path} must be a string of digits such as '1' (or a number), not {_show(raw)}"
    )


def _read_optional_id(path: str, raw: object) -> str | None:
    return None if raw is None else _read_id(path, raw)


def _read_object(path: str, raw: object) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_label(path)} must be a JSON object, not {_show(raw)}")
    keys = [key for key in raw if not isinstance(key, str)]
    if keys:
        raise ConfigError(f"{_label(path)}: keys must be strings, not {keys!r}")
    return cast("Mapping[str, object]", raw)


def _read_list(path: str, raw: object) -> list[object]:
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"{path} must be a JSON list, not {_show(raw)}")
    return list(raw)


def _read_topics(path: str, raw: object) -> dict[str, str]:
    data = _read_object(path, raw)
    return {key: _read_str(_join(path, key), topic) for key, topic in data.items()}


_E = TypeVar("_E", bound=StrEnum)


def _enum_reader(
    kind: type[_E], *, fold_case: bool = False, hints: Mapping[str, str] | None = None
) -> _Reader:
    """Reads a value of ``kind`` (in any case if ``fold_case``); ``hints`` explain near misses."""
    allowed = [member.value for member in kind]

    def read(path: str, raw: object) -> _E:
        if isinstance(raw, str):
            text = raw.strip().lower() if fold_case else raw
            if text in allowed:
                return kind(text)
        hint = (hints or {}).get(raw) if isinstance(raw, str) else None
        extra = f" ({hint})" if hint else ""
        raise ConfigError(f"{path} must be one of {allowed}, not {_show(raw)}{extra}")

    return read


_read_work_mode = _enum_reader(
    WorkMode, hints={"though": "a typo in the v1 firmware's shipped file: write 'through'"}
)


def _read_pins(path: str, raw: object) -> tuple[int | None, ...]:
    pins: list[int | None] = []
    for index, entry in enumerate(_read_list(path, raw)):
        if isinstance(entry, int) and not isinstance(entry, bool):
            pins.append(entry)
        elif isinstance(entry, str) and not entry.strip():
            pins.append(None)
        elif isinstance(entry, str) and (match := _PIN_RE.fullmatch(entry.strip())):
            pins.append(int(match.group(1)))
        else:
            raise ConfigError(
                f"{path}.{index} must be a GPIO number 1..{_MAX_GPIO} such as '1' (or 'pio1'), "
                f'or "" for none; not {_show(entry)}'
            )
    return tuple(pins)


def _read_slave_addresses(path: str, raw: object) -> tuple[int, ...]:
    addresses: list[int] = []
    for index, entry in enumerate(_read_list(path, raw)):
        if isinstance(entry, int) and not isinstance(entry, bool):
            addresses.append(entry)
        elif isinstance(entry, str) and _HEX_ADDRESS_RE.fullmatch(entry.strip()):
            addresses.append(int(entry.strip(), 16))
        else:
            raise ConfigError(
                f"{path}.{index} must be a hex string such as '0x01' or a number, not "
                f"{_show(entry)} (the firmware reads every string as hex, so write the 0x)"
            )
    return tuple(addresses)


# --- the JSON metadata of fields, and the generic reader and writer -------------------


@dataclass(frozen=True, slots=True)
class _JsonField:
    name: str
    read: _Reader
    write: _Writer
    omit_default: bool
    """Leave the key out of ``to_json`` when the value is the field's default."""


def _same(value: object) -> object:
    return value


def _json(
    name: str, read: _Reader, write: _Writer = _same, *, omit_default: bool = False
) -> dict[str, _JsonField]:
    """A field's metadata: its JSON ``name``, ``read`` (loose -> typed) and ``write``."""
    return {"json": _JsonField(name, read, write, omit_default)}


def _json_fields(kind: type[DataclassInstance]) -> list[tuple[Field[Any], _JsonField]]:
    return [
        (f, cast("_JsonField", f.metadata["json"])) for f in fields(kind) if "json" in f.metadata
    ]


def _has_default(item: Field[Any]) -> bool:
    return item.default is not MISSING or item.default_factory is not MISSING


def _default_of(item: Field[Any]) -> object:
    if item.default_factory is not MISSING:
        return item.default_factory()
    return item.default


_D = TypeVar("_D", bound="DataclassInstance")


def _build(
    kind: type[_D], path: str, raw: object, *, extra_keys: Collection[str] = (), context: str = ""
) -> _D:
    """Read the JSON object ``raw`` at ``path`` into a ``kind``, naming any bad field."""
    data = _read_object(path, raw)
    specs = _json_fields(kind)
    allowed = {spec.name for _, spec in specs} | set(extra_keys)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{_label(path)}: unknown keys {unknown}{context}; allowed: {sorted(allowed)}"
        )
    missing = [
        spec.name for item, spec in specs if not _has_default(item) and spec.name not in data
    ]
    if missing:
        raise ConfigError(f"{_label(path)}: missing required keys {missing}{context}")
    kwargs = {
        item.name: spec.read(_join(path, spec.name), data[spec.name])
        for item, spec in specs
        if spec.name in data
    }
    with _at(path):
        return cast("Callable[..., _D]", kind)(**kwargs)


def _dump(obj: DataclassInstance) -> dict[str, Any]:
    """``obj``'s JSON form: each field under its JSON name, in field order."""
    out: dict[str, Any] = {}
    for item, spec in _json_fields(type(obj)):
        value = getattr(obj, item.name)
        if spec.omit_default and value == _default_of(item):
            continue
        out[spec.name] = spec.write(value)
    return out


class _JsonObject:
    """Gives a config dataclass its ``to_json``."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """This object as ``dtu_config.json`` writes it (seed forms; see the module docstring)."""
        return _dump(cast("DataclassInstance", self))


def _write_str(value: object) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


def _write_int(value: object) -> int:
    return int(cast("int", value))


def _write_optional_int(value: int | None) -> int | str:
    return "" if value is None else value


def _write_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


def _write_objects(value: Mapping[str, _JsonObject]) -> dict[str, Any]:
    return {key: item.to_json() for key, item in value.items()}


# --- checks on typed values (messages start with the field's JSON name) ---------------


def _check_range(name: str, value: float, low: float, high: float, unit: str = "") -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name} must be {low}..{high}{unit}, not {_show(value)}")


def _check_choice(name: str, value: object, allowed: Collection[object]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {_listed(allowed)}, not {_show(value)}")


def _listed(allowed: Collection[object]) -> list[object]:
    """``allowed`` as a list, ids in numeric order (``['1', '2', '10']``)."""
    if all(isinstance(item, str) and item.isdigit() for item in allowed):
        return sorted(allowed, key=lambda item: int(cast("str", item)))
    return list(allowed)


def _check_keep_alive(name: str, value: int | None, low: int, high: int, default: int) -> None:
    if value is not None and not low <= value <= high:
        raise ConfigError(
            f'{name} must be {low}..{high} seconds, or "" for the default {default}; '
            f"not {_show(value)}"
        )


def _check_id(name: str, value: str, what: str) -> None:
    if not _ID_RE.fullmatch(value):
        raise ConfigError(
            f"{name} must be a {what}: a string of digits such as '1', without sign, spaces "
            f"or leading zeros; not {_show(value)}"
        )


def _check_token(name: str, value: str, *, secret: bool = False, required: bool = True) -> None:
    shown = "(value not shown)" if secret else _show(value)
    if required and not value:
        raise ConfigError(f"{name} must not be empty")
    if _WHITESPACE_RE.search(value):
        raise ConfigError(f"{name} must not contain whitespace, not {shown}")


def _check_text(name: str, value: str, *, max_chars: int, secret: bool = False) -> None:
    shown = "(value not shown)" if secret else _show(value)
    if len(value) > max_chars or not value.isprintable():
        raise ConfigError(f"{name} must be at most {max_chars} printable characters, not {shown}")


def _check_host(name: str, value: str) -> None:
    if not value or len(value) > 253 or _WHITESPACE_RE.search(value) or "/" in value:
        raise ConfigError(
            f"{name} must be a host name or IP address such as 'broker.example' "
            f"(no scheme, no path, no spaces), not {_show(value)}"
        )


def _check_topics(name: str, topics: Mapping[str, str], *, publish: bool) -> None:
    for key, topic in topics.items():
        _check_id(f"{name}: topic id {key!r}", key, "topic id")
        where = f"{name}.{key}"
        if not topic or "\0" in topic or len(topic.encode()) > 65535:
            raise ConfigError(
                f"{where} must be an MQTT topic of 1..65535 bytes without NUL, not {_show(topic)}"
            )
        levels = topic.split("/")
        if publish and ("+" in topic or "#" in topic):
            raise ConfigError(
                f"{where} is a publish topic: it must not contain + or #, not {_show(topic)}"
            )
        for index, level in enumerate(levels):
            bad_hash = "#" in level and (level != "#" or index != len(levels) - 1)
            if bad_hash or ("+" in level and level != "+"):
                raise ConfigError(
                    f"{where} must use + only as a whole level and # only as the whole last "
                    f"level, not {_show(topic)}"
                )


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


# --- serial ports ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UartConfig(_JsonObject):
    """One ``uconf`` entry: how the firmware opens a UART (every value a string in the seed).

    Raises:
        ConfigError: a value outside the allowed set, naming it.
    """

    baudrate: int = field(metadata=_json("baudrate", _read_int, _write_str))
    """One of ``BAUD_RATES``."""
    databits: int = field(metadata=_json("databits", _read_int, _write_str))
    """5..8."""
    parity: Parity = field(metadata=_json("parity", _read_int, _write_str))
    """0 none, 1 even, 2 odd."""
    stopbits: int = field(metadata=_json("stopbits", _read_int, _write_str))
    """1 or 2."""
    flowctl: int = field(metadata=_json("flowctl", _read_int, _write_str))
    """0 none, 1 RTS/CTS."""

    def __post_init__(self) -> None:
        _check_choice("baudrate", self.baudrate, BAUD_RATES)
        _check_range("databits", self.databits, 5, 8)
        if self.parity not in {p.value for p in Parity}:
            raise ConfigError(
                f"parity must be 0 (none), 1 (even) or 2 (odd), not {_show(self.parity)}"
            )
        object.__setattr__(self, "parity", Parity(self.parity))
        _check_choice("stopbits", self.stopbits, (1, 2))
        _check_choice("flowctl", self.flowctl, (0, 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectionPin(_JsonObject):
    """One ``direction_pin`` entry: the GPIO that switches an RS-485 transceiver's direction.

    The firmware calls ``uart.control_485(Pin.GPIO<GPIOn>, direction)``.
    """

    gpio: int = field(metadata=_json("GPIOn", _read_int))
    """The GPIO number, 1..128."""
    direction: int = field(metadata=_json("direction", _read_int))
    """1: the pin goes high while sending; 0: it goes low while sending."""

    def __post_init__(self) -> None:
        _check_range("GPIOn", self.gpio, 1, _MAX_GPIO)
        _check_choice("direction", self.direction, (0, 1))


# --- channels ------------------------------------------------------------------------


class _Channel(_JsonObject):
    """Gives a channel class its ``to_json`` (``protocol`` first)."""

    __slots__ = ()
    protocol: ClassVar[ChannelType]

    def to_json(self) -> dict[str, Any]:
        """The channel as its ``conf`` entry, ``protocol`` first."""
        return {"protocol": self.protocol.value, **_dump(cast("DataclassInstance", self))}


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpChannel(_Channel):
    """An ``http`` channel (seed 6.1.9.1.1): one request per serial uplink."""

    protocol: ClassVar[ChannelType] = ChannelType.HTTP
    method: HttpMethod = field(metadata=_json("method", _enum_reader(HttpMethod, fold_case=True)))
    """get, post, put, delete or head (read in any case, written in lower case)."""
    url: str = field(metadata=_json("url", _read_token))
    """``http://`` or ``https://`` URL of the request."""
    reg_data: str = field(default="", metadata=_json("reg_data", _read_str))
    """Body of the request the v1 firmware makes at boot."""
    timeout_s: int | None = field(
        default=None, metadata=_json("timeout", _read_optional_int, _write_optional_int)
    )
    """1..300 s; ``None`` (``""`` in the file): ``HTTP_TIMEOUT_DEFAULT_S``."""
    serial_id: str = field(metadata=_json("serialID", _read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        lowered = self.url.lower()
        if not lowered.startswith(("http://", "https://")) or _WHITESPACE_RE.search(self.url):
            raise ConfigError(
                f"url must be an http:// or https:// URL without spaces, not {_show(self.url)}"
            )
        if self.timeout_s is not None:
            _check_range("timeout", self.timeout_s, 1, 300, " seconds")
        _check_id("serialID", self.serial_id, "UART id")

    @property
    def effective_timeout_s(self) -> int:
        """The request timeout, the default applied."""
        return HTTP_TIMEOUT_DEFAULT_S if self.timeout_s is None else self.timeout_s


@dataclass(frozen=True, slots=True, kw_only=True)
class _SocketChannel(_Channel):
    """The fields of ``tcp`` and ``udp`` channels (seed 6.1.9.1.2-3)."""

    ping: str = field(default="", metadata=_json("ping", _read_str))
    """The heartbeat payload: 1..64 letters and digits, or ``""`` for none."""
    heartbeat_s: int = field(default=0, metadata=_json("heartbeat", _read_int))
    """Seconds between heartbeats, 0 (off) .. 86400."""
    url: str = field(metadata=_json("url", _read_token))
    """Server host name or IP address."""
    port: int = field(metadata=_json("port", _read_int, str))
    """1..65535."""
    keep_alive_s: int | None = field(
        default=None, metadata=_json("keepAlive", _read_optional_int, _write_optional_int)
    )
    """Connection timeout, 60..600 s; ``None`` (``""``): ``SOCKET_KEEPALIVE_DEFAULT_S``."""
    serial_id: str = field(metadata=_json("serialID", _read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        if self.ping and not _PING_RE.fullmatch(self.ping):
            raise ConfigError(
                f'ping must be 1..64 letters and digits, or "", not {_show(self.ping)}'
            )
        _check_range("heartbeat", self.heartbeat_s, 0, 86400, " seconds")
        _check_host("url", self.url)
        _check_range("port", self.port, 1, 65535)
        _check_keep_alive("keepAlive", self.keep_alive_s, 60, 600, SOCKET_KEEPALIVE_DEFAULT_S)
        _check_id("serialID", self.serial_id, "UART id")

    @property
    def effective_keep_alive_s(self) -> int:
        """The connection timeout, the default applied."""
        return SOCKET_KEEPALIVE_DEFAULT_S if self.keep_alive_s is None else self.keep_alive_s


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpChannel(_SocketChannel):
    """A ``tcp`` channel (seed 6.1.9.1.2)."""

    protocol: ClassVar[ChannelType] = ChannelType.TCP


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpChannel(_SocketChannel):
    """A ``udp`` channel (seed 6.1.9.1.3)."""

    protocol: ClassVar[ChannelType] = ChannelType.UDP


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttChannel(_Channel):
    """An ``mqtt`` channel (seed 6.1.9.1.4) to any MQTT 3.1.1 broker."""

    protocol: ClassVar[ChannelType] = ChannelType.MQTT
    client_id: str = field(default="", metadata=_json("clientID", _read_token))
    """The MQTT client id; ``""``: the unit's IMEI (seed: "leave empty to use the IMEI")."""
    keep_alive_s: int | None = field(
        default=None, metadata=_json("keepAlive", _read_optional_int, _write_optional_int)
    )
    """0 (off) .. 65535 s; ``None`` (``""``): ``MQTT_KEEPALIVE_DEFAULT_S``."""
    url: str = field(metadata=_json("url", _read_token))
    """Broker host name or IP address."""
    port: int = field(default=1883, metadata=_json("port", _read_int, str))
    """1..65535."""
    clean_session: bool = field(default=True, metadata=_json("cleanSession", _read_flag))
    """True: the broker forgets the session at disconnect."""
    subscribe: Mapping[str, str] = field(
        default_factory=dict, metadata=_json("subscribe", _read_topics, _write_mapping)
    )
    """Topic id -> topic filter; the id goes into serial frames of cloud data."""
    publish: Mapping[str, str] = field(metadata=_json("publish", _read_topics, _write_mapping))
    """Topic id -> topic name, at least one; the id picks the topic of a serial uplink."""
    qos: int = field(default=0, metadata=_json("qos", _read_int, str))
    """0 or 1."""
    retain: bool = field(default=False, metadata=_json("retain", _read_flag, _write_str))
    """Publish with the retain flag."""
    username: str = field(default="", metadata=_json("username", _read_str, omit_default=True))
    """Login user name (firmware v3, vdtu extension); ``""``: no login."""
    password: str = field(
        default="", repr=False, metadata=_json("password", _read_secret, omit_default=True)
    )
    """Login password (firmware v3, vdtu extension); needs ``username``."""
    serial_id: str = field(metadata=_json("serialID", _read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "subscribe", _frozen(self.subscribe))
        object.__setattr__(self, "publish", _frozen(self.publish))
        _check_token("clientID", self.client_id, required=False)
        if len(self.client_id.encode()) > 65535:
            raise ConfigError(
                f"clientID must be at most 65535 bytes, not {len(self.client_id)} characters"
            )
        _check_keep_alive("keepAlive", self.keep_alive_s, 0, 65535, MQTT_KEEPALIVE_DEFAULT_S)
        _check_host("url", self.url)
        _check_range("port", self.port, 1, 65535)
        _check_mqtt_topics(self.subscribe, self.publish)
        _check_choice("qos", self.qos, (0, 1))
        if self.password and not self.username:
            raise ConfigError("password needs a username (MQTT 3.1.1 [MQTT-3.1.2-22])")
        _check_id("serialID", self.serial_id, "UART id")

    @property
    def effective_keep_alive_s(self) -> int:
        """The keep-alive, the default applied."""
        return MQTT_KEEPALIVE_DEFAULT_S if self.keep_alive_s is None else self.keep_alive_s


def _check_mqtt_topics(subscribe: Mapping[str, str], publish: Mapping[str, str]) -> None:
    _check_topics("subscribe", subscribe, publish=False)
    if not publish:
        raise ConfigError('publish must hold at least one topic, e.g. {"0": "dtu/up"}, not {}')
    _check_topics("publish", publish, publish=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class _IotChannel(_Channel):
    """The fields of ``aliyun`` and ``txyun`` channels (seed 6.1.9.1.5-6)."""

    auth_type: AuthType = field(metadata=_json("type", _enum_reader(AuthType)))
    """``mos`` (needs ``DeviceSecret``) or ``tas`` (needs ``ProductSecret``)."""
    keep_alive_s: int | None = field(
        default=None, metadata=_json("keepAlive", _read_optional_int, _write_optional_int)
    )
    """60..1200 s; ``None`` (``""`` or ``" "``): ``CLOUD_KEEPALIVE_DEFAULT_S``."""
    client_id: str = field(default="", metadata=_json("clientID", _read_token))
    """At most 64 characters; ``""``: the unit's IMEI."""
    device_name: str = field(metadata=_json("Devicename", _read_token))
    product_key: str = field(metadata=_json("ProductKey", _read_token))
    device_secret: str = field(
        default="", repr=False, metadata=_json("DeviceSecret", _read_secret_token)
    )
    """Used with ``mos``."""
    product_secret: str = field(
        default="", repr=False, metadata=_json("ProductSecret", _read_secret_token)
    )
    """Used with ``tas``."""
    clean_session: bool = field(default=True, metadata=_json("cleanSession", _read_flag))
    qos: int = field(default=0, metadata=_json("qos", _read_int, str))
    """0 or 1."""
    subscribe: Mapping[str, str] = field(
        default_factory=dict, metadata=_json("subscribe", _read_topics, _write_mapping)
    )
    publish: Mapping[str, str] = field(metadata=_json("publish", _read_topics, _write_mapping))
    """At least one topic."""
    serial_id: str = field(metadata=_json("serialID", _read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "subscribe", _frozen(self.subscribe))
        object.__setattr__(self, "publish", _frozen(self.publish))
        _check_keep_alive("keepAlive", self.keep_alive_s, 60, 1200, CLOUD_KEEPALIVE_DEFAULT_S)
        _check_token("clientID", self.client_id, required=False)
        if len(self.client_id) > 64:
            raise ConfigError(
                f"clientID must be at most 64 characters, not {_show(self.client_id)}"
            )
        _check_token("Devicename", self.device_name)
        _check_token("ProductKey", self.product_key)
        _check_token("DeviceSecret", self.device_secret, secret=True, required=False)
        _check_token("ProductSecret", self.product_secret, secret=True, required=False)
        if self.auth_type is AuthType.MOS and not self.device_secret:
            raise ConfigError(
                "DeviceSecret must not be empty when type is 'mos' (one device, one secret)"
            )
        if self.auth_type is AuthType.TAS and not self.product_secret:
            raise ConfigError(
                "ProductSecret must not be empty when type is 'tas' (one type, one secret)"
            )
        _check_choice("qos", self.qos, (0, 1))
        _check_mqtt_topics(self.subscribe, self.publish)
        _check_id("serialID", self.serial_id, "UART id")

    @property
    def effective_keep_alive_s(self) -> int:
        """The keep-alive, the default applied."""
        return CLOUD_KEEPALIVE_DEFAULT_S if self.keep_alive_s is None else self.keep_alive_s


@dataclass(frozen=True, slots=True, kw_only=True)
class AliyunChannel(_IotChannel):
    """An ``aliyun`` channel: Alibaba Cloud IoT (seed 6.1.9.1.5)."""

    protocol: ClassVar[ChannelType] = ChannelType.ALIYUN


@dataclass(frozen=True, slots=True, kw_only=True)
class TxyunChannel(_IotChannel):
    """A ``txyun`` channel: Tencent Cloud IoT (seed 6.1.9.1.6); its device secret is base64."""

    protocol: ClassVar[ChannelType] = ChannelType.TXYUN

    def __post_init__(self) -> None:
        _IotChannel.__post_init__(self)
        if self.auth_type is AuthType.MOS:
            try:
                base64.b64decode(self.device_secret, validate=True)
            except ValueError as exc:  # binascii.Error, or a non-ASCII string
                raise ConfigError(
                    "DeviceSecret must be base64 (Tencent's device PSK) when type is 'mos' "
                    "(value not shown)"
                ) from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class QuecthingChannel(_Channel):
    """A ``quecthing`` channel: Quectel's IoT platform (seed 6.1.9.1.7)."""

    protocol: ClassVar[ChannelType] = ChannelType.QUECTHING
    keep_alive_s: int | None = field(
        default=None, metadata=_json("keepAlive", _read_optional_int, _write_optional_int)
    )
    """Lifetime, 60..1200 s; ``None`` (``""``): ``QUECTHING_KEEPALIVE_DEFAULT_S``."""
    product_key: str = field(metadata=_json("ProductKey", _read_token))
    product_secret: str = field(
        default="", repr=False, metadata=_json("ProductSecret", _read_secret_token)
    )
    """The product secret; ``""`` is allowed (the seed's own example leaves it empty)."""
    device_name: str = field(
        default="", metadata=_json("Devicename", _read_token, omit_default=True)
    )
    """Device key (DK) when preset; the v2 firmware reads it, the seed does not list it."""
    device_secret: str = field(
        default="",
        repr=False,
        metadata=_json("DeviceSecret", _read_secret_token, omit_default=True),
    )
    """Device secret (DS) when preset; as ``device_name``."""
    qos: int = field(default=0, metadata=_json("qos", _read_int, str))
    """0 or 1."""
    session_flag: bool = field(default=False, metadata=_json("SessionFlag", _read_flag_or_empty))
    """Encrypt the session; ``""`` in the file means False."""
    send_mode: SendMode = field(
        default=SendMode.PASS, metadata=_json("sendMode", _enum_reader(SendMode))
    )
    serial_id: str = field(metadata=_json("serialID", _read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        _check_keep_alive("keepAlive", self.keep_alive_s, 60, 1200, QUECTHING_KEEPALIVE_DEFAULT_S)
        _check_token("ProductKey", self.product_key)
        _check_token("ProductSecret", self.product_secret, secret=True, required=False)
        _check_token("Devicename", self.device_name, required=False)
        _check_token("DeviceSecret", self.device_secret, secret=True, required=False)
        _check_choice("qos", self.qos, (0, 1))
        _check_id("serialID", self.serial_id, "UART id")

    @property
    def effective_keep_alive_s(self) -> int:
        """The lifetime, the default applied."""
        return QUECTHING_KEEPALIVE_DEFAULT_S if self.keep_alive_s is None else self.keep_alive_s


Channel = (
    HttpChannel
    | TcpChannel
    | UdpChannel
    | MqttChannel
    | AliyunChannel
    | TxyunChannel
    | QuecthingChannel
)
"""Any ``conf`` entry."""

CHANNEL_TYPES: Final[Mapping[ChannelType, type[Channel]]] = MappingProxyType(
    {
        kind.protocol: kind
        for kind in (
            HttpChannel,
            TcpChannel,
            UdpChannel,
            MqttChannel,
            AliyunChannel,
            TxyunChannel,
            QuecthingChannel,
        )
    }
)
"""The class of each protocol vdtu simulates (every ``ChannelType`` except ``hwyun``)."""

_PROTOCOLS = [kind.value for kind in CHANNEL_TYPES]


def _read_channel(path: str, raw: object) -> Channel:
    data = _read_object(path, raw)
    if "protocol" not in data:
        raise ConfigError(f"{path}: missing required key 'protocol' (one of {_PROTOCOLS})")
    name = data["protocol"]
    text = name.strip().lower() if isinstance(name, str) else name
    if text == ChannelType.HWYUN:
        raise ConfigError(
            f"{path}.protocol 'hwyun' (Huawei cloud) is in the firmware but not in the seed, and "
            f"vdtu does not simulate it; allowed: {_PROTOCOLS}"
        )
    kind = next((k for p, k in CHANNEL_TYPES.items() if p == text), None)
    if kind is None:
        raise ConfigError(f"{path}.protocol must be one of {_PROTOCOLS}, not {_show(name)}")
    return _build(
        kind, path, data, extra_keys=("protocol",), context=f" for protocol {kind.protocol.value!r}"
    )


def _read_conf(path: str, raw: object) -> dict[str, Channel]:
    data = _read_object(path, raw)
    return {key: _read_channel(_join(path, key), value) for key, value in data.items()}


def _table_reader(kind: type[_D]) -> _Reader:
    def read(path: str, raw: object) -> dict[str, _D]:
        data = _read_object(path, raw)
        return {key: _build(kind, _join(path, key), value) for key, value in data.items()}

    return read


# --- smaller top-level values --------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsMessage(_JsonObject):
    """The ``message`` key: an SMS (seed 6.1.1). The firmware never acts on the stored one."""

    number: str = field(metadata=_json("number", _read_token))
    """1..31 digits, optionally after a ``+`` (the seed's 32-byte field)."""
    text: str = field(metadata=_json("sms_msg", _read_str))
    """At most 1024 bytes in UTF-8."""

    def __post_init__(self) -> None:
        if not _PHONE_RE.fullmatch(self.number):
            raise ConfigError(
                f"number must be 1..31 digits after an optional +, not {_show(self.number)}"
            )
        if len(self.text.encode()) > 1024:
            raise ConfigError(f"sms_msg must be at most 1024 bytes, not {len(self.text.encode())}")


def _read_message(path: str, raw: object) -> SmsMessage | None:
    if isinstance(raw, Mapping) and not raw:
        return None
    return _build(SmsMessage, path, raw)


def _write_message(value: SmsMessage | None) -> dict[str, Any]:
    return {} if value is None else value.to_json()


@dataclass(frozen=True, slots=True, kw_only=True)
class Apn:
    """The ``apn`` list ``[apn, user, password]`` (seed 7)."""

    name: str = ""
    """The APN, at most 100 characters."""
    user: str = ""
    """At most 64 characters."""
    password: str = field(default="", repr=False)
    """At most 64 characters."""

    def __post_init__(self) -> None:
        _check_text("apn.0", self.name, max_chars=100)
        _check_text("apn.1", self.user, max_chars=64)
        _check_text("apn.2", self.password, max_chars=64, secret=True)

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
    name = _read_str(f"{path}.0", entries[0])
    user = _read_str(f"{path}.1", entries[1])
    password = _read_secret(f"{path}.2", entries[2])
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
    raise ConfigError(f"{path} must be 0, 1 or a registration message string, not {_show(raw)}")


def _write_pins(value: tuple[int | None, ...]) -> list[str]:
    return ["" if pin is None else str(pin) for pin in value]


# --- modbus ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusGroup(_JsonObject):
    """One ``modbus.groups`` entry: slaves that a cloud command addresses together."""

    device_type: str = field(default="", metadata=_json("device_type", _read_str))
    device_model: str = field(default="", metadata=_json("device_model", _read_str))
    slave_addresses: tuple[int, ...] = field(
        metadata=_json("slave_address", _read_slave_addresses, lambda v: [f"0x{a:02x}" for a in v])
    )
    """One or more distinct addresses 1..247 (``"0x01"`` in the file)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "slave_addresses", tuple(self.slave_addresses))
        if not self.slave_addresses:
            raise ConfigError('slave_address must list at least one address such as "0x01", not []')
        for index, address in enumerate(self.slave_addresses):
            _check_range(f"slave_address.{index}", address, 1, 247)
        repeated = sorted({a for a in self.slave_addresses if self.slave_addresses.count(a) > 1})
        if repeated:
            raise ConfigError(f"slave_address lists {repeated} more than once")


@dataclass(frozen=True, slots=True, kw_only=True)
class PollEntry(_JsonObject):
    """One ``modbus.poll`` entry (vdtu extension): a read the unit repeats on its own.

    Exactly one of ``slave`` and ``group`` is set. The runtime sends the request
    every ``interval_s`` on the UART ``serial_id`` and reports the answer on
    ``channel`` (or, when it is ``None``, on the first channel bound to that UART).
    """

    slave: int | None = field(
        default=None, metadata=_json("slave", _read_json_int, omit_default=True)
    )
    """A slave address, 1..247."""
    group: int | None = field(
        default=None, metadata=_json("group", _read_json_int, omit_default=True)
    )
    """An index into ``modbus.groups``: every slave of that group is read."""
    function: FunctionCode = field(metadata=_json("function", _read_json_int, _write_int))
    """1 coils, 2 discrete inputs, 3 holding registers, 4 input registers."""
    start: int = field(metadata=_json("start", _read_json_int))
    """The first address, 0..65535."""
    count: int = field(metadata=_json("count", _read_json_int))
    """How many: 1..2000 bits (functions 1, 2) or 1..125 registers (3, 4)."""
    interval_s: float = field(metadata=_json("interval_s", _read_number))
    """Seconds between reads, > 0."""
    serial_id: str = field(default=PORT_UARTS["rs485"], metadata=_json("serialID", _read_id))
    """The ``uconf`` key of the bus's UART (default: the RS-485 port, ``"1"``)."""
    channel: str | None = field(
        default=None, metadata=_json("channel", _read_optional_id, omit_default=True)
    )
    """The ``conf`` key of the channel the readings go to."""

    def __post_init__(self) -> None:
        if (self.slave is None) == (self.group is None):
            raise ConfigError(
                "slave: give exactly one of slave (an address 1..247) or group (an index into "
                f"modbus.groups), not slave={self.slave!r} and group={self.group!r}"
            )
        if self.slave is not None:
            _check_range("slave", self.slave, 1, 247)
        if self.group is not None:
            _check_range("group", self.group, 0, _INT32_MAX)
        if self.function not in READ_FUNCTIONS:
            raise ConfigError(
                "function must be 1 (coils), 2 (discrete inputs), 3 (holding registers) or "
                f"4 (input registers), not {_show(self.function)}"
            )
        object.__setattr__(self, "function", FunctionCode(self.function))
        _check_range("start", self.start, 0, 65535)
        most = MAX_READ_BITS if self.function in READ_BIT_FUNCTIONS else MAX_READ_REGISTERS
        if not 1 <= self.count <= most:
            function = int(self.function)
            raise ConfigError(
                f"count must be 1..{most} for function {function}, not {_show(self.count)}"
            )
        if self.start + self.count > 0x10000:
            raise ConfigError(f"count {self.count} from start {self.start} runs past address 65535")
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise ConfigError(
                f"interval_s must be a number of seconds > 0, not {_show(self.interval_s)}"
            )
        object.__setattr__(self, "interval_s", float(self.interval_s))
        _check_id("serialID", self.serial_id, "UART id")
        if self.channel is not None:
            _check_id("channel", self.channel, "channel id")


def _tuple_reader(kind: type[_D]) -> _Reader:
    def read(path: str, raw: object) -> tuple[_D, ...]:
        entries = _read_list(path, raw)
        return tuple(_build(kind, _join(path, i), entry) for i, entry in enumerate(entries))

    return read


def _write_list(value: tuple[_JsonObject, ...]) -> list[dict[str, Any]]:
    return [item.to_json() for item in value]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusConfig(_JsonObject):
    """The ``modbus`` key: slave groups for cloud commands, and the vdtu ``poll`` table."""

    groups: tuple[ModbusGroup, ...] = field(
        default=(), metadata=_json("groups", _tuple_reader(ModbusGroup), _write_list)
    )
    """Group number = list index, as the cloud's ``{"groups": {"num": n, ...}}`` uses it."""
    poll: tuple[PollEntry, ...] = field(
        default=(), metadata=_json("poll", _tuple_reader(PollEntry), _write_list, omit_default=True)
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


def _read_modbus(path: str, raw: object) -> ModbusConfig:
    return _build(ModbusConfig, path, raw)


# --- the whole file --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DtuConfig(_JsonObject):
    """``dtu_config.json``: every key of seed 000 and of the v2 firmware's file.

    Build one with ``load_config`` or ``default_config``; change it with the ``with_*``
    functions. Switches that the firmware stores as 0/1 are ``bool`` here.

    Raises:
        ConfigError: a field out of range or a broken cross-reference (a channel on a
            UART missing from ``uconf``, ...); the message names the field's path.
    """

    plate: bool = field(default=False, metadata=_json("plate", _read_flag, _write_int))
    """Add the IMEI to messages (code 52, v1 only; no behaviour in v1/v2)."""
    password: str = field(repr=False, metadata=_json("password", _read_password))
    """The command password, 1..64 printable characters (default: the IMEI's last six digits)."""
    conf: Mapping[str, Channel] = field(
        default_factory=dict, metadata=_json("conf", _read_conf, _write_objects)
    )
    """Channel id -> channel, in file order (the order matters to the firmware)."""
    reg: int | str = field(default=0, metadata=_json("reg", _read_reg))
    """0, 1 (send the registration message at first login) or a custom message."""
    convert: int = field(default=0, metadata=_json("convert", _read_int))
    """Undocumented; no behaviour. 0..2**31-1."""
    version: int = field(default=0, metadata=_json("version", _read_int))
    """The parameter version (code 54), 0..2**31-1."""
    nolog: bool = field(default=False, metadata=_json("nolog", _read_flag, _write_int))
    message: SmsMessage | None = field(
        default=None, metadata=_json("message", _read_message, _write_message)
    )
    """``{}`` in the file is ``None``."""
    uconf: Mapping[str, UartConfig] = field(
        default_factory=dict, metadata=_json("uconf", _table_reader(UartConfig), _write_objects)
    )
    """UART id (a key of ``UART_PORTS``) -> how it is opened."""
    fota: bool = field(default=False, metadata=_json("fota", _read_flag, _write_int))
    """v2: allow project-script updates (SOTA)."""
    ota: bool = field(default=False, metadata=_json("ota", _read_ota, _write_int))
    """v2: allow module-firmware updates (FOTA) and the boot OTA check."""
    pins: tuple[int | None, ...] = field(
        default=(None, None, None), metadata=_json("pins", _read_pins, _write_pins)
    )
    """GPIOs for the network LED, the server-connected output, the reset-parameters input.

    ``None``: not set (``""`` in the file)."""
    direction_pin: Mapping[str, DirectionPin] = field(
        default_factory=dict,
        metadata=_json("direction_pin", _table_reader(DirectionPin), _write_objects),
    )
    """UART id -> its RS-485 direction GPIO."""
    apn: Apn = field(default=Apn(), metadata=_json("apn", _read_apn, _write_apn))
    service_acquire: bool = field(
        default=False, metadata=_json("service_acquire", _read_flag, _write_int)
    )
    """Fetch parameters from the server (code 57; no behaviour in v1/v2)."""
    work_mode: WorkMode = field(metadata=_json("work_mode", _read_work_mode, str))
    auto_connect: bool = field(
        default=False, metadata=_json("auto_connect", _read_flag, _write_int)
    )
    offline_storage: bool = field(default=False, metadata=_json("offline_storage", _read_flag))
    """Keep uplinks that could not be sent (up to 100) and resend them at boot."""
    modbus: ModbusConfig = field(
        default=ModbusConfig(), metadata=_json("modbus", _read_modbus, ModbusConfig.to_json)
    )
    """Modbus slave groups and the vdtu ``poll`` table."""

    def __post_init__(self) -> None:
        for name in ("conf", "uconf", "direction_pin"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "pins", tuple(self.pins))
        if not 1 <= len(self.password) <= 64 or not self.password.isprintable():
            raise ConfigError("password must be 1..64 printable characters (value not shown)")
        if isinstance(self.reg, str):
            _check_text("reg", self.reg, max_chars=1024)
            if not self.reg:
                raise ConfigError('reg must be 0, 1 or a registration message string, not ""')
        else:
            _check_choice("reg", self.reg, (0, 1))
        _check_range("convert", self.convert, 0, _INT32_MAX)
        _check_range("version", self.version, 0, _INT32_MAX)
        for uart_id in self.uconf:
            if uart_id not in UART_PORTS:
                ports = ", ".join(f"{u} = {p}" for u, p in UART_PORTS.items())
                raise ConfigError(
                    f"uconf: UART id {uart_id!r} must be one of {_listed(UART_PORTS)} "
                    f"(the unit's ports: {ports})"
                )
        self._check_pins()
        for uart_id in self.direction_pin:
            self._check_uart(f"direction_pin: UART id {uart_id!r}", uart_id)
        for channel_id, channel in self.conf.items():
            _check_id(f"conf: channel id {channel_id!r}", channel_id, "channel id")
            self._check_uart(f"conf.{channel_id}.serialID", channel.serial_id)
        self._check_poll()

    def _check_pins(self) -> None:
        if len(self.pins) != 3:
            raise ConfigError(
                "pins must hold 3 entries [network LED, server connected, reset parameters], "
                f"not {len(self.pins)}: {_show(_write_pins(self.pins))}"
            )
        for index, pin in enumerate(self.pins):
            if pin is not None:
                _check_range(f"pins.{index}", pin, 1, _MAX_GPIO)
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
                    f"{where}.channel must be one of the conf keys {_listed(self.conf)}, "
                    f"not {entry.channel!r}"
                )

    def _check_uart(self, name: str, uart_id: str) -> None:
        if uart_id not in self.uconf:
            raise ConfigError(
                f"{name} must be one of the uconf keys {_listed(self.uconf)}, not {uart_id!r}"
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
    return _build(DtuConfig, "", parsed)


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
    with _at("conf.1"):
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
    for item, spec in _json_fields(DtuConfig):
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
        raise ConfigError(f"dtu_config must be a JSON object, not {_show(value)}")
    return load_config(value)
