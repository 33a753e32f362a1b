"""The local XGC platform's wire contract: topics, credentials and the JSON of each message.

Pure (standard library only): the firmware, the platform, the cloud console and
the tests all use these functions, so the two ends cannot drift apart.

Topics, for project ``P`` and device ``D`` (its IMEI)::

    xgc/P/D/up             device -> cloud  host DATA_PACK as JSON (object, or a string)
    xgc/P/D/down           cloud -> device  JSON object or string -> DATA_PACK to the host
    xgc/P/D/props          device -> cloud  {"rssi", "vbat", "vbus", "iccid"[, "lbs"]}
    xgc/P/D/config         cloud -> device  {"configVersion": V, key: value...} -> NOTIFY_CONFIG
    xgc/P/D/config/status  device -> cloud  the host's UPLOAD_CONFIG_STATUS
    xgc/P/D/ota            cloud -> device  {"fwVersion", "filename", "md5", "url"[, ...]}
    xgc/P/D/ota/status     device -> cloud  the host's UPLOAD_OTA_STATUS
    xgc/P/D/state          device -> cloud  retained {"state": "online"|"offline"} (will: offline)

Credentials: the device asks the platform's HTTP endpoint ``POST /xgc/v1/mqtt-info``
with ``{"projectId", "projectSecret", "imei"}`` and gets the broker, a client id
``xgc-<IMEI>``, the user name (the IMEI) and a password: an HMAC of the IMEI under
the project secret, so the broker can check it without a table.

DATA_PACK typing (host -> cloud): ``a:1;b:true;c:x`` becomes ``{"a": 1, "b": true,
"c": "x"}`` (integers of up to 32 digits, finite decimals, true/false are typed;
everything else stays a string); content that is not all ``key:value`` pairs
(``abcdefg``) stays a string.

Downlinks (cloud -> device) are untrusted: ``downlink_value`` decodes them within
``DOWNLINK_LIMITS`` (at most ``MAX_DOWNLINK_BYTES``, nesting 8 deep, 32 digits a
number; ``vdtu.json_limits``, so no recursion or digit limit of the interpreter is
ever reached) and refuses, with ``DownlinkRefusedError`` naming the field, a string that
cannot reach the host intact: a CR or LF in the message text, a top-level key or a
top-level string value (it would end the host's line; nested values go as JSON, which
escapes them), or a lone surrogate anywhere (it is not UTF-8).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vdtu.json_limits import JsonLimitError, JsonLimits, decode

MQTT_INFO_PATH = "/xgc/v1/mqtt-info"
PROJECT_ID_RE = re.compile(r"[A-Za-z0-9]{1,64}")
"""A ProjectId: 1..64 letters or digits (SET_PRJINFO's rule, and the platform's)."""
PROJECT_SECRET_RE = re.compile(r"[A-Za-z0-9]{1,128}")
"""A ProjectSecret: 1..128 letters or digits."""
IMEI_RE = re.compile(r"[0-9]{15}")
"""An IMEI as a device gives it to the platform: 15 digits."""
TOPIC_ROOT = "xgc"
_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT_RE = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+([eE][-+]?[0-9]+)?")
MAX_UPLINK_INT_DIGITS = 32
"""Longer integers in a host's DATA_PACK stay strings (no JSON reader keeps them exact)."""
MAX_DOWNLINK_BYTES = 4096
"""The largest cloud message a device passes on to its host (its frame must also fit
the host's line)."""
DOWNLINK_LIMITS = JsonLimits(
    max_bytes=MAX_DOWNLINK_BYTES, max_depth=8, max_digits=32, max_string=MAX_DOWNLINK_BYTES
)
"""How much JSON one downlink may hold."""


class Channel(StrEnum):
    """The last part(s) of a device topic."""

    UP = "up"
    DOWN = "down"
    PROPS = "props"
    CONFIG = "config"
    CONFIG_STATUS = "config/status"
    OTA = "ota"
    OTA_STATUS = "ota/status"
    STATE = "state"


DOWNLINK_CHANNELS = (Channel.DOWN, Channel.CONFIG, Channel.OTA)
"""What a device subscribes to."""
_CHANNELS = {channel.value: channel for channel in Channel}


def device_topic(project_id: str, imei: str, channel: Channel) -> str:
    """``xgc/<project>/<imei>/<channel>``."""
    return f"{TOPIC_ROOT}/{project_id}/{imei}/{channel.value}"


def parse_topic(topic: str) -> tuple[str, str, Channel] | None:
    """``(project, imei, channel)`` of a device topic, or None when it is not one."""
    parts = topic.split("/", 3)
    if len(parts) != 4 or parts[0] != TOPIC_ROOT:
        return None
    channel = _CHANNELS.get(parts[3])
    return None if channel is None else (parts[1], parts[2], channel)


def device_password(project_secret: str, imei: str) -> str:
    """The MQTT password of device ``imei`` in a project: HMAC-SHA256, 32 hex digits."""
    return hmac.new(project_secret.encode(), imei.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttInfo:
    """What the platform gives a device: where to connect and as whom."""

    host: str
    port: int
    tls: bool
    client_id: str
    username: str
    password: str
    project_id: str

    def to_json(self) -> dict[str, Any]:
        """The HTTP response body."""
        return {
            "broker": {"host": self.host, "port": self.port, "tls": self.tls},
            "clientId": self.client_id,
            "username": self.username,
            "password": self.password,
            "projectId": self.project_id,
        }

    @classmethod
    def from_json(cls, data: object) -> MqttInfo:
        """Read the HTTP response body; ValueError naming what is missing or wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("broker"), dict):
            raise ValueError(  # noqa: TRY004 (a bad answer, not a bad argument)
                f"expected an object with a broker object, not {repr(data)[:80]}"
            )
        broker = data["broker"]
        try:
            info = cls(
                host=str(broker["host"]),
                port=int(broker["port"]),
                tls=bool(broker.get("tls", False)),
                client_id=str(data["clientId"]),
                username=str(data["username"]),
                password=str(data["password"]),
                project_id=str(data["projectId"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"mqtt-info response lacks or mangles {exc}") from None
        if not 1 <= info.port <= 65535:
            raise ValueError(f"broker port must be 1..65535, not {info.port}")
        return info


def uplink_json(content: str) -> Any:
    """The JSON value a host DATA_PACK content becomes (see the module comment)."""
    value: dict[str, Any] = {}
    for segment in content.split(";"):
        if not segment:
            continue
        key, sep, text = segment.partition(":")
        if not key or not sep or key in value:
            return content  # not all pairs, or a key twice
        value[key] = _typed(text)
    return value or content


def _typed(text: str) -> Any:
    if text == "true":
        return True
    if text == "false":
        return False
    if _INT_RE.fullmatch(text):
        if len(text) - text.startswith("-") > MAX_UPLINK_INT_DIGITS:
            return text
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else text
    return text


class DownlinkRefusedError(ValueError):
    """A cloud message the device does not pass on to its host. The message says why: it
    names the limit or the field, and never quotes the value (which may be huge)."""


def downlink_value(payload: bytes) -> dict[str, Any] | str:
    """A cloud message for the host: a JSON object, or text (a JSON string, other JSON, or raw).

    Raises:
        DownlinkRefusedError: the message is over ``DOWNLINK_LIMITS``, or holds a string that
            cannot reach the host intact (see the module comment).
    """
    if len(payload) > MAX_DOWNLINK_BYTES:
        raise DownlinkRefusedError(f"{len(payload)} bytes (at most {MAX_DOWNLINK_BYTES})")
    text = payload.decode("utf-8", errors="replace")
    try:
        value = decode(text, DOWNLINK_LIMITS)
    except JsonLimitError as exc:
        raise DownlinkRefusedError(str(exc)) from None
    except json.JSONDecodeError:
        value = text
    if isinstance(value, dict):
        _check_fields(value)
        return value
    if not isinstance(value, str):
        value = text  # other JSON (a number, a list) goes as it was written
    _check_line_text("the message", value)
    _check_unicode("the message", value)
    return value


def _check_fields(value: dict[str, Any]) -> None:
    for key, item in value.items():
        where = f"field {key[:32]!r}"
        _check_line_text(where, key)
        if isinstance(item, str):
            _check_line_text(where, item)
        _check_unicode(where, key, item)


def _check_line_text(where: str, text: str) -> None:
    if "\r" in text or "\n" in text:
        raise DownlinkRefusedError(f"{where} holds a CR or LF, which would end the host's line")


def _check_unicode(where: str, *values: object) -> None:
    """Refuse a lone surrogate in any string of ``values`` (walked without recursion)."""
    stack = list(values)
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    raise DownlinkRefusedError(
                        f"{where} holds a lone surrogate, which is not UTF-8"
                    ) from None
        elif isinstance(item, dict):
            stack += item.keys()
            stack += item.values()
        elif isinstance(item, list):
            stack += item


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""One encoder for every message (``json.dumps`` with options builds one per call)."""


def encode_json(value: object) -> bytes:
    """Compact UTF-8 JSON, as every device message is sent."""
    return _ENCODE(value).encode()
