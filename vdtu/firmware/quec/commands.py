"""The QuecPython DTU's cloud command protocol: parse, check, reply.

The protocol is docs/spec/quec.md#2 (messages) to #6 (settings).

Pure (standard library only). This module reads downlinks, checks passwords and
parameters, and builds replies; it never *executes* a command. The parameter schemas
and their checks are in ``params``.

A downlink (docs/spec/quec.md#2.1) is JSON::

    {"msg_id": 1700000000123, "data": ...[, "cmd_code": 51, "topic_id": 1, "password": "012345"]}

``parse_downlink(payload, mode=...)`` gives one of:

* ``CommandRequest``: ``cmd_code`` present (command mode; see ``CommandOptions``
  for modbus mode). ``cmd_code`` may be an integer or a numeric string (the
  firmware runs ``int()`` on it and its PC tool sends strings).
* ``ModbusRequest``: no ``cmd_code`` but a ``modbus`` key (command and modbus mode).
* ``ForwardData``: anything else that is a JSON object: the value of ``data``
  goes to the serial port; with no ``data`` key the whole JSON text goes (the
  issue's rule; v2 writes nothing, v1 writes the whole text).
* ``Refused``: a command or Modbus request whose ``msg_id`` is too big to echo
  (``MAX_MSG_ID_CHARS``): answered with an error reply (null ``msg_id``), not run.
* ``Ignored``: non-JSON, JSON that is not an object, a ``data`` of ``null``, a
  bad ``cmd_code`` or ``topic_id``, a payload over ``MAX_DOWNLINK_BYTES`` (in
  every mode) or JSON over ``frames.COMMAND_LIMITS`` (nesting, digits, string
  length; decoded by ``vdtu.json_limits``, so never a ``RecursionError`` or the
  interpreter's digit-limit ``ValueError``): the firmware drops these; here they
  carry a reason for a visible diagnostic. In passthrough mode every UTF-8
  payload is ``ForwardData`` of its raw text.

The firmware's order for a ``CommandRequest``: ``check_password`` first (so an
unknown code without the password gets "Password verify error", as on the
device), then ``params.validate_params`` (an unknown code gets "Command code error"),
then the command runs and answers with ``ok_reply`` or ``failure_reply``.

Replies (what v1/v2 really send)::

    {"code": 51, "data": ..., "status": 1, "msg_id": <echo>}      success; data may be absent
    {"code": 51, "status": 0, "error": "Password verify error", "msg_id": <echo>}

``code`` is the request's command code; the request's ``topic_id`` picks the
publish topic and is returned beside the body (``Reply.topic_id``), never in it.
Replies to the serial configuration channel carry no ``msg_id``.

Where the seed and the firmware differ:

* Reply shape (docs/spec/quec.md#2.3). The seed's per-command samples mix ``"success": 1`` and
  ``"status": 1``, and show ``"code": "20000"`` for codes 56-59; but the seed's
  own rules say the reply's code is the request's function code (quec.md#3.2,
  rule 1) and that ``status`` reports success (#2.2). Those samples are v0
  leftovers contradicting the seed's rules, so the one reply shape here is the
  one the rules and the firmware agree on; there is no v0 switch. (#2.2
  calls the echoed code ``cmd_code``; every per-command sample and the firmware
  call it ``code``, and so does this module.)
* The reset sample (docs/spec/quec.md#5) writes ``"code": 255`` and ``"Password"``:
  a slip for ``cmd_code``/``password``, which are the only keys read.
* ``CommandOptions`` holds a switch for each difference a user could want the
  firmware's way; the defaults follow the seed, ``CommandOptions.firmware()``
  follows v2.
* Parameters are checked against the seed's types (``params.PARAMS``); v2 stores a
  wrongly typed value and answers success, v1/v2 answer a missing key with a
  bare ``status: 0``. Here a bad parameter gets a failure reply naming the field.
* Codes 64 (TTS) and 65 (NTP) exist in the firmware but not in the seed (#3.1); they are
  unknown codes here. ``conf``, ``uconf`` and ``dtu_config`` are checked as
  JSON objects only; their content is the configuration schema's business.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from typing import Any, Literal

from vdtu.firmware.quec.frames import COMMAND_LIMITS, ConfigRequest, WorkMode
from vdtu.json_limits import JsonLimitError, holds_text
from vdtu.json_limits import decode as decode_json

PASSWORD_ERROR = "Password verify error"
"""The firmware's (v2) error text for a wrong or missing password."""
CODE_ERROR = "Command code error"
"""The firmware's (v2) error text for an unknown command code."""

MAX_DOWNLINK_BYTES = COMMAND_LIMITS.max_bytes
"""The largest downlink read, in every work mode (16 KiB); a larger one is ``Ignored``."""
MAX_MSG_ID_CHARS = 64
"""The longest ``msg_id`` echoed: a string of at most 64 characters, or another JSON value
whose encoding is at most 64 characters. A longer one gets an error reply with a null
``msg_id`` and the command does not run."""

CODE_RE = re.compile(r"-?[0-9]{1,20}")
"""A command code as a string (the firmware runs ``int()`` on it), or a numeric parameter."""


class CommandCode(IntEnum):
    """Every command code of docs/spec/quec.md#3.1 (0-49 queries, 50-143 settings, 255 reset)."""

    GET_IMEI = 0
    GET_NUMBER = 1
    GET_VERSION = 2
    GET_CSQ = 3
    GET_CONFIG = 4
    GET_DIAGNOSTICS = 5
    GET_ICCID = 6
    GET_ADC = 7
    GET_GPIO = 8
    GET_VBATT = 9
    GET_TEMP_HUMIDITY = 10
    GET_NETWORK_CONNECTION = 11
    GET_NETWORK_STATE = 12
    GET_CELL_LOCATION = 13
    SEND_SMS = 50
    SET_PASSWORD = 51
    SET_PLATE = 52
    SET_REG = 53
    SET_VERSION = 54
    SET_FOTA = 55
    SET_NOLOG = 56
    SET_SERVICE_ACQUIRE = 57
    SET_UCONF = 58
    SET_CONF = 59
    SET_APN = 60
    SET_PINS = 61
    SET_OTA = 62
    SET_PARAMS = 63
    RESTART = 255

    @property
    def is_query(self) -> bool:
        """Codes 0-49 read something; the others change something."""
        return self < 50


SEED_EXEMPT = frozenset(
    {
        CommandCode.GET_IMEI,
        CommandCode.GET_NUMBER,
        CommandCode.GET_VERSION,
        CommandCode.GET_CSQ,
    }
)
"""The codes that need no password (docs/spec/quec.md#3.3: IMEI, number, version, CSQ)."""


class Origin(StrEnum):
    """Where a command came from, which decides whether its reply echoes ``msg_id``."""

    CLOUD = "cloud"
    SERIAL = "serial"
    """The serial configuration channel (``99,...`` frames)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandOptions:
    """Switches between the seed's documented behaviour (the defaults) and the v2 firmware's.

    Each switch is a difference that docs/spec/quec.md marks **firmware**.
    """

    exempt_diagnostics: bool = False
    """Code 5 needs no password either (the firmware's exempt list is 0, 1, 2, 3, 5)."""
    flat_sms: bool = False
    """Code 50 reads ``number``/``sms_msg`` straight from ``data`` (the seed nests them
    under ``data.message``; docs/spec/quec.md#6.1)."""
    any_pin_count: bool = False
    """Code 61 takes any number of pins (the seed: exactly three; docs/spec/quec.md#6.12)."""
    plate_removed: bool = False
    """Code 52 is unknown ("Command code error"), as in v2 (the seed lists it; v1 has it;
    docs/spec/quec.md#6.3)."""
    commands_in_modbus_mode: bool = False
    """``cmd_code`` runs commands in modbus mode too (the seed: command mode only;
    docs/spec/quec.md#2.4, #9)."""

    @classmethod
    def firmware(cls) -> CommandOptions:
        """Every switch set the way the v2 firmware behaves."""
        return cls(
            exempt_diagnostics=True,
            flat_sms=True,
            any_pin_count=True,
            plate_removed=True,
            commands_in_modbus_mode=True,
        )


SEED = CommandOptions()
"""The default options: the seed's documented behaviour."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRequest:
    """A command to run: from the cloud (``parse_downlink``) or the serial channel."""

    code: int
    """The command code as sent; it may be unknown (``params.validate_params`` says so)."""
    password: str | None = None
    """The ``password`` field; None when absent or not a string (it then never matches)."""
    data: Any = None
    """The value of ``data`` (None when absent)."""
    msg_id: Any = None
    """The ``msg_id`` to echo (None when absent: the firmware then echoes null)."""
    topic_id: str | None = None
    """The id of the publish topic for the reply; never published itself."""
    origin: Origin = Origin.CLOUD

    def __post_init__(self) -> None:
        if isinstance(self.code, bool) or not isinstance(self.code, int):
            raise ValueError(f"code must be an integer, not {self.code!r}")  # noqa: TRY004
        if self.topic_id == "":
            raise ValueError("topic_id must be None or a non-empty string, not ''")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusRequest:
    """A ``{"modbus": {...}}`` downlink for the Modbus side (``groups`` or ``command``)."""

    body: Any
    """The value of ``modbus``, unchecked."""
    msg_id: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardData:
    """Something to write to the serial port in a frame."""

    value: Any
    """The value of ``data`` (any JSON value but null), or the whole payload text."""

    @property
    def text(self) -> str:
        """The frame's data: a string as is, any other value as JSON.

        (The firmware writes ``str(value)``, a Python repr such as ``{'a': 1}`` or
        ``True``; JSON is what a host can parse, so that is what is written here.)
        """
        if isinstance(self.value, str):
            return self.value
        return json.dumps(self.value, ensure_ascii=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignored:
    """A downlink the DTU drops; ``reason`` is for the diagnostic."""

    reason: str
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """A command or Modbus request answered with an error reply without running.

    Its ``msg_id`` is too big to echo (``MAX_MSG_ID_CHARS``): the reply carries a null
    ``msg_id`` and an ``error`` that names the field and its size, never its value.
    """

    reply: Reply
    reason: str
    """For the diagnostic (the same text as the reply's ``error``)."""


Downlink = CommandRequest | ModbusRequest | ForwardData | Refused | Ignored
"""What ``parse_downlink`` returns."""


def show_value(value: Any) -> str:
    """A bad value for an error message: its ``repr`` cut to 60 characters (cloud input
    can be any size), except a list or object holding text, shown by its size only: it
    may hold a password or a secret (``conf``, ``apn``, ``dtu_config``)."""
    if isinstance(value, list | dict) and holds_text(value):
        what = "a list of" if isinstance(value, list) else "a JSON object with"
        noun = "items" if isinstance(value, list) else "keys"
        return f"{what} {len(value)} {noun} (not shown)"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _msg_id_problem(msg_id: Any) -> str | None:
    """Why ``msg_id`` is too big to echo (None: it is echoed as it came)."""
    if isinstance(msg_id, str):
        size, what = len(msg_id), "a string of"
    else:
        size, what = len(json.dumps(msg_id, ensure_ascii=False)), "a JSON value of"
    if size <= MAX_MSG_ID_CHARS:
        return None
    return (
        f"msg_id is {what} {size} characters (at most {MAX_MSG_ID_CHARS}): refused, and not echoed"
    )


def _decode_json(payload: bytes) -> tuple[str, Any] | Ignored:
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        return Ignored(
            reason=f"not valid UTF-8 ({exc.reason} at byte {exc.start})", payload=payload
        )
    try:
        value = decode_json(text, COMMAND_LIMITS)
    except JsonLimitError as exc:
        return Ignored(reason=f"over the limits of a downlink: {exc}", payload=payload)
    except json.JSONDecodeError as exc:
        return Ignored(reason=f"not JSON ({exc.msg} at character {exc.pos})", payload=payload)
    if "\\u" in text:  # an escape may hide a lone surrogate, which no frame can carry
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return Ignored(reason="JSON with a lone surrogate (\\ud800-\\udfff)", payload=payload)
    return text, value


def _command_code(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and CODE_RE.fullmatch(value):
        return int(value)
    return None


def _command(
    message: dict[str, Any], payload: bytes, origin: Origin
) -> CommandRequest | Refused | Ignored:
    code = _command_code(message["cmd_code"])
    if code is None:
        return Ignored(
            reason="cmd_code must be an integer or a numeric string of at most 20 digits, "
            f"not {show_value(message['cmd_code'])}",
            payload=payload,
        )
    topic = message.get("topic_id")
    if topic is not None and (
        isinstance(topic, bool) or not isinstance(topic, (str, int)) or topic == ""
    ):
        return Ignored(
            reason=f"topic_id must be a non-empty string or an integer, not {show_value(topic)}",
            payload=payload,
        )
    topic_id = None if topic is None else str(topic)
    problem = _msg_id_problem(message.get("msg_id")) if origin is Origin.CLOUD else None
    if problem is not None:
        body = {"code": code, "status": 0, "error": problem, "msg_id": None}
        return Refused(reply=Reply(body=body, topic_id=topic_id), reason=problem)
    password = message.get("password")
    return CommandRequest(
        code=code,
        password=password if isinstance(password, str) else None,
        data=message.get("data"),
        msg_id=message.get("msg_id"),
        topic_id=topic_id,
        origin=origin,
    )


def parse_downlink(payload: bytes, *, mode: WorkMode, options: CommandOptions = SEED) -> Downlink:
    """Read one cloud message (an MQTT payload, a TCP/UDP read, an HTTP response body).

    Args:
        payload: the message as received.
        mode: the DTU's work mode.
        options: seed or firmware behaviour (``commands_in_modbus_mode``).
    """
    if len(payload) > MAX_DOWNLINK_BYTES:
        return Ignored(
            reason=f"a downlink of {len(payload)} bytes (at most {MAX_DOWNLINK_BYTES})",
            payload=payload,
        )
    if mode is WorkMode.PASSTHROUGH:
        try:
            return ForwardData(value=payload.decode())
        except UnicodeDecodeError as exc:
            return Ignored(
                reason=f"not valid UTF-8 ({exc.reason} at byte {exc.start}): "
                "a serial frame counts characters",
                payload=payload,
            )
    decoded = _decode_json(payload)
    if isinstance(decoded, Ignored):
        return decoded
    text, message = decoded
    if not isinstance(message, dict):
        return Ignored(reason=f"JSON but not an object: {text[:60]!r}", payload=payload)
    runs_commands = mode is WorkMode.COMMAND or options.commands_in_modbus_mode
    if runs_commands and message.get("cmd_code") is not None:
        return _command(message, payload, Origin.CLOUD)
    if message.get("modbus") is not None:
        problem = _msg_id_problem(message.get("msg_id"))
        if problem is not None:
            body = {"code": 0, "status": 0, "error": problem, "msg_id": None}
            return Refused(reply=Reply(body=body), reason=problem)
        return ModbusRequest(body=message["modbus"], msg_id=message.get("msg_id"))
    if "data" not in message:
        return ForwardData(value=text)
    if message["data"] is None:
        return Ignored(reason="'data' is null: nothing to forward", payload=payload)
    return ForwardData(value=message["data"])


def parse_config_command(request: ConfigRequest) -> CommandRequest | Ignored:
    """The command carried by a serial configuration request (``99,len,crc32,json``).

    ``ConfigRequest`` guarantees a JSON object with a ``cmd_code`` within
    ``COMMAND_LIMITS``; a ``cmd_code`` or ``topic_id`` of the wrong kind is ``Ignored``.
    """
    payload = request.text.encode()
    try:
        message = decode_json(request.text, COMMAND_LIMITS)
    except ValueError as exc:  # ConfigRequest checked it; kept total all the same
        return Ignored(reason=f"not a usable command: {exc}", payload=payload)
    command = _command(message, payload, Origin.SERIAL)
    assert not isinstance(command, Refused)  # serial replies echo no msg_id
    return command


class _NoData(Enum):
    NO_DATA = "no-data"


NO_DATA = _NoData.NO_DATA
"""Pass as ``data`` to ``ok_reply`` for a reply without a ``data`` key (setting commands)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """A reply to publish: ``body`` on the topic that ``topic_id`` names (None: the default)."""

    body: dict[str, Any]
    """The JSON object published (do not mutate it)."""
    topic_id: str | None = None
    """The publish-topic id the request asked for; not part of the body."""

    def to_json(self) -> str:
        """The body as the firmware's ``ujson.dumps`` writes it (``", "``/``": "``, UTF-8)."""
        return json.dumps(self.body, ensure_ascii=False)


def _finish(request: CommandRequest, body: dict[str, Any]) -> Reply:
    if request.origin is Origin.CLOUD:
        body["msg_id"] = request.msg_id
    return Reply(body=body, topic_id=request.topic_id)


def ok_reply(request: CommandRequest, data: Any = NO_DATA) -> Reply:
    """``{"code": c, "data": data, "status": 1, "msg_id": m}`` (no ``data`` key for ``NO_DATA``)."""
    body: dict[str, Any] = {"code": request.code}
    if data is not NO_DATA:
        body["data"] = data
    body["status"] = 1
    return _finish(request, body)


def failure_reply(request: CommandRequest, error: str | None = None) -> Reply:
    """``{"code": c, "status": 0, "error": error, "msg_id": m}`` (no ``error`` key for None)."""
    body: dict[str, Any] = {"code": request.code, "status": 0}
    if error is not None:
        body["error"] = error
    return _finish(request, body)


def needs_password(code: int, options: CommandOptions = SEED) -> bool:
    """Whether a command code needs the password (unknown codes do)."""
    if code in SEED_EXEMPT:
        return False
    return not (options.exempt_diagnostics and code == CommandCode.GET_DIAGNOSTICS)


def check_password(
    request: CommandRequest, stored: str, *, options: CommandOptions = SEED
) -> Literal[True] | Reply:
    """True if the command may run, else the "Password verify error" reply.

    The check is the firmware's: the request's ``password`` must equal the stored
    string exactly (no hashing, no lock-out).
    """
    if not needs_password(request.code, options) or request.password == stored:
        return True
    return failure_reply(request, PASSWORD_ERROR)
