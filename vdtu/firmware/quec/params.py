"""The parameters of the QuecPython DTU's cloud commands: schemas, checks, typed values.

Pure (standard library only). ``PARAMS`` is the ``data`` schema of each command code
(docs/spec/quec.md#6 for the settings, #4.8 and #4.9 for the two queries that take
data); ``param_schema`` applies the ``CommandOptions`` that change a schema (the
firmware's flat SMS form, any number of pins). ``validate_params`` checks a
``CommandRequest``'s code and ``data`` against its schema and returns the typed
``CommandParams``, or the failure reply to send: an unknown code gets "Command code
error", a bad parameter a reply whose ``error`` names the field, the bad value (never
a secret's) and what is allowed. Keys outside the schema are ignored, as the firmware
ignores them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, assert_never

from vdtu.firmware.quec.commands import (
    CODE_ERROR,
    CODE_RE,
    SEED,
    CommandCode,
    CommandOptions,
    CommandRequest,
    Reply,
    failure_reply,
    show_value,
)

_PIN_RE = re.compile(r"[1-9][0-9]{0,2}")
_PHONE_RE = re.compile(r"\+?[0-9]+")


class ParamKind(StrEnum):
    """The type of one parameter; the value is how an error message names it."""

    FLAG = "0 or 1"
    INTEGER = "an integer"
    NUMERIC = "an integer or a numeric string"
    TEXT = "a string"
    TEXT_OR_INTEGER = "a string or an integer"
    FLAG_OR_TEXT = "0, 1 or a string"
    OBJECT = "a JSON object"
    TEXT_LIST = "a list of strings"
    PIN_LIST = 'a list of GPIO numbers ("1".."128", or "" for unused)'


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamSpec:
    """One key of a command's ``data``: its type and limits."""

    name: str
    kind: ParamKind
    parent: str | None = None
    """The key of the object in ``data`` that holds this one (``message`` for SMS)."""
    required: bool = True
    default: int | None = None
    """The value when the key is absent and not required."""
    minimum: int | None = None
    """For INTEGER and NUMERIC."""
    length: int | None = None
    """For lists: the exact number of items."""
    pattern: str | None = None
    """For TEXT: a regular expression the whole string must match."""
    max_bytes: int | None = None
    """For TEXT: the longest UTF-8 encoding allowed."""
    secret: bool = False
    """The value is a password: error messages never quote it, nor anything in it."""

    @property
    def path(self) -> str:
        """The key's place in the message, as error messages name it (``data.message.number``)."""
        inner = self.name if self.parent is None else f"{self.parent}.{self.name}"
        return f"data.{inner}"


def _spec(name: str, kind: ParamKind, **limits: Any) -> ParamSpec:
    return ParamSpec(name=name, kind=kind, **limits)


_SMS_NUMBER = {"pattern": _PHONE_RE.pattern, "max_bytes": 32}
_SMS_TEXT = {"max_bytes": 1024}

PARAMS: Mapping[CommandCode, tuple[ParamSpec, ...]] = {
    CommandCode.GET_ADC: (_spec("adcn", ParamKind.INTEGER, required=False, default=0, minimum=0),),
    CommandCode.GET_GPIO: (_spec("pins", ParamKind.NUMERIC, minimum=1),),
    CommandCode.SEND_SMS: (
        _spec("number", ParamKind.TEXT, parent="message", **_SMS_NUMBER),
        _spec("sms_msg", ParamKind.TEXT, parent="message", **_SMS_TEXT),
    ),
    CommandCode.SET_PASSWORD: (_spec("new_password", ParamKind.TEXT_OR_INTEGER, secret=True),),
    CommandCode.SET_PLATE: (_spec("plate", ParamKind.FLAG),),
    CommandCode.SET_REG: (_spec("reg", ParamKind.FLAG_OR_TEXT),),
    CommandCode.SET_VERSION: (_spec("version", ParamKind.NUMERIC, minimum=0),),
    CommandCode.SET_FOTA: (_spec("fota", ParamKind.FLAG),),
    CommandCode.SET_NOLOG: (_spec("nolog", ParamKind.FLAG),),
    CommandCode.SET_SERVICE_ACQUIRE: (_spec("service_acquire", ParamKind.FLAG),),
    CommandCode.SET_UCONF: (_spec("uconf", ParamKind.OBJECT),),
    CommandCode.SET_CONF: (_spec("conf", ParamKind.OBJECT),),
    CommandCode.SET_APN: (_spec("apn", ParamKind.TEXT_LIST, length=3, secret=True),),
    CommandCode.SET_PINS: (_spec("pins", ParamKind.PIN_LIST, length=3),),
    CommandCode.SET_OTA: (_spec("ota", ParamKind.FLAG),),
    CommandCode.SET_PARAMS: (_spec("dtu_config", ParamKind.OBJECT),),
}
"""The seed's ``data`` schema of each command; codes not listed take no parameters.

Sources: docs/spec/quec.md#6 (50-63; 52 from v1, ``{"plate": 0|1}``), and for the
queries 7 and 8, which the seed does not detail, the firmware's ``adcn``/``pins`` (#4.8,
#4.9). ``version`` is "a numeric string" in the seed (#6.5) and an integer in the config file;
``new_password`` is stored as a string (the firmware runs ``str()`` on it).
"""

_FIRMWARE_SMS = (
    _spec("number", ParamKind.TEXT, **_SMS_NUMBER),
    _spec("sms_msg", ParamKind.TEXT, **_SMS_TEXT),
)


def param_schema(code: CommandCode, options: CommandOptions = SEED) -> tuple[ParamSpec, ...]:
    """The parameters of ``code`` under ``options`` (``flat_sms``, ``any_pin_count``)."""
    if code is CommandCode.SEND_SMS and options.flat_sms:
        return _FIRMWARE_SMS
    if code is CommandCode.SET_PINS and options.any_pin_count:
        return (_spec("pins", ParamKind.PIN_LIST),)
    return PARAMS.get(code, ())


ParamValue = int | str | tuple[str, ...] | dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandParams:
    """A command's checked parameters, converted to their types, keyed by name.

    SMS parameters are ``number`` and ``sms_msg`` whichever way they were nested.
    """

    code: CommandCode
    values: Mapping[str, ParamValue]

    def get_int(self, name: str) -> int:
        """An integer parameter (FLAG, INTEGER, NUMERIC)."""
        value = self.values[name]
        if not isinstance(value, int):
            raise TypeError(f"parameter {name!r} of {self.code.name} is {value!r}, not an int")
        return value

    def get_text(self, name: str) -> str:
        """A string parameter (TEXT, TEXT_OR_INTEGER)."""
        value = self.values[name]
        if not isinstance(value, str):
            raise TypeError(f"parameter {name!r} of {self.code.name} is {value!r}, not a str")
        return value

    def get_texts(self, name: str) -> tuple[str, ...]:
        """A list parameter (TEXT_LIST, PIN_LIST)."""
        value = self.values[name]
        if not isinstance(value, tuple):
            raise TypeError(f"parameter {name!r} of {self.code.name} is {value!r}, not a list")
        return value

    def get_object(self, name: str) -> dict[str, Any]:
        """An OBJECT parameter."""
        value = self.values[name]
        if not isinstance(value, dict):
            raise TypeError(f"parameter {name!r} of {self.code.name} is {value!r}, not an object")
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(spec: ParamSpec, value: Any) -> str:
    if spec.secret and not (value is None or isinstance(value, bool)):
        return f"a {type(value).__name__} (value not shown)"
    return show_value(value)


def _wrong(spec: ParamSpec, value: Any) -> ValueError:
    return ValueError(f"{spec.path} must be {spec.kind.value}, not {_shown(spec, value)}")


def _convert(spec: ParamSpec, value: Any) -> ParamValue:
    """The typed value, or ValueError with the message for the failure reply."""
    match spec.kind:
        case ParamKind.FLAG | ParamKind.INTEGER | ParamKind.NUMERIC:
            return _convert_int(spec, value)
        case ParamKind.TEXT | ParamKind.TEXT_OR_INTEGER | ParamKind.FLAG_OR_TEXT:
            return _convert_text(spec, value)
        case ParamKind.OBJECT:
            if not isinstance(value, dict):
                raise _wrong(spec, value)
            return value
        case ParamKind.TEXT_LIST | ParamKind.PIN_LIST:
            return _convert_list(spec, value)
        case _:
            assert_never(spec.kind)


def _convert_int(spec: ParamSpec, value: Any) -> int:
    if spec.kind is ParamKind.NUMERIC and isinstance(value, str) and CODE_RE.fullmatch(value):
        value = int(value)
    if not _is_int(value) or (spec.kind is ParamKind.FLAG and value not in (0, 1)):
        raise _wrong(spec, value)
    if spec.minimum is not None and value < spec.minimum:
        raise ValueError(f"{spec.path} must be >= {spec.minimum}, not {show_value(value)}")
    return int(value)


def _convert_text(spec: ParamSpec, value: Any) -> int | str:
    if _is_int(value):
        if spec.kind is ParamKind.TEXT_OR_INTEGER:
            return str(value)
        if spec.kind is ParamKind.FLAG_OR_TEXT and value in (0, 1):
            return int(value)
    if not isinstance(value, str):
        raise _wrong(spec, value)
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise ValueError(f"{spec.path} must match {spec.pattern}, not {show_value(value)}")
    if spec.max_bytes is not None and len(value.encode()) > spec.max_bytes:
        raise ValueError(
            f"{spec.path} must be at most {spec.max_bytes} bytes, not {len(value.encode())}"
        )
    return value


def _convert_list(spec: ParamSpec, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _wrong(spec, value)
    if spec.length is not None and len(value) != spec.length:
        raise ValueError(f"{spec.path} must have {spec.length} items, not {len(value)}")
    if spec.kind is ParamKind.PIN_LIST:
        for index, item in enumerate(value):
            if item and not (_PIN_RE.fullmatch(item) and int(item) <= 128):
                raise ValueError(
                    f'{spec.path}[{index}] must be "1".."128" or "", not {show_value(item)}'
                )
    return tuple(value)


def validate_params(
    request: CommandRequest, *, options: CommandOptions = SEED
) -> CommandParams | Reply:
    """The request's code and typed parameters, or the failure reply to send.

    An unknown code (or 52 under ``plate_removed``) gets "Command code error"; a
    bad parameter gets a failure reply whose ``error`` names the field, the bad
    value and what is allowed. Keys outside the schema are ignored, as the
    firmware ignores them; so is ``data`` for a command without parameters.
    """
    try:
        code = CommandCode(request.code)
    except ValueError:
        return failure_reply(request, CODE_ERROR)
    if code is CommandCode.SET_PLATE and options.plate_removed:
        return failure_reply(request, CODE_ERROR)
    specs = param_schema(code, options)
    if not specs:
        return CommandParams(code=code, values={})
    data = request.data
    if data is None and not any(spec.required for spec in specs):
        data = {}
    if not isinstance(data, dict):
        names = ", ".join(spec.path for spec in specs)
        shown = show_value(data)
        return failure_reply(request, f"data must be a JSON object with {names}, not {shown}")
    values: dict[str, ParamValue] = {}
    for spec in specs:
        holder: Any = data if spec.parent is None else data.get(spec.parent)
        if spec.parent is not None and not isinstance(holder, dict):
            shown = show_value(holder)
            problem = "is missing" if holder is None else f"must be a JSON object, not {shown}"
            return failure_reply(request, f"data.{spec.parent} {problem}")
        if spec.name not in holder:
            if spec.required or spec.default is None:
                return failure_reply(request, f"{spec.path} is missing")
            values[spec.name] = spec.default
            continue
        try:
            values[spec.name] = _convert(spec, holder[spec.name])
        except ValueError as exc:
            return failure_reply(request, str(exc))
    return CommandParams(code=code, values=values)
