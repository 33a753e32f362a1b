"""The channels of ``dtu_config.json``: one frozen dataclass per ``conf`` entry's protocol.

How it works: a ``conf`` entry's ``protocol`` picks its class in ``CHANNEL_TYPES``;
the other keys are read by that class's fields through the mechanism of ``fields``
(so an unknown key is refused naming the protocol's allowed keys) and checked in
its ``__post_init__``: hosts, ports, keep-alives against the seed's ranges, MQTT
topics against MQTT's wildcard rules, and the secrets an authentication type
needs. A keep-alive left ``""`` in the file is ``None`` here, and each channel's
``effective_*`` property applies the seed's default (ranges and defaults:
docs/spec/quec.md#8.2 to #8.8). That ``serialID`` names a
``uconf`` UART is checked by the whole document (``config.DtuConfig``).

Pure: the standard library and vdtu's own pure modules only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from vdtu.errors import ConfigError
from vdtu.firmware.quec.fields import (
    WHITESPACE_RE,
    JsonObject,
    build,
    check_choice,
    check_id,
    check_range,
    check_token,
    dump,
    enum_reader,
    frozen,
    join_path,
    json_meta,
    read_flag,
    read_flag_or_empty,
    read_id,
    read_int,
    read_object,
    read_optional_int,
    read_secret,
    read_secret_token,
    read_str,
    read_token,
    show,
    write_mapping,
    write_optional_int,
    write_str,
)
from vdtu.firmware.quec.frames import ChannelType

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

MQTT_KEEPALIVE_DEFAULT_S: Final = 60
"""MQTT channels: keep-alive when ``keepAlive`` is ``""`` (docs/spec/quec.md#8.5)."""
CLOUD_KEEPALIVE_DEFAULT_S: Final = 300
"""Aliyun and Tencent channels: keep-alive when ``keepAlive`` is ``""`` (docs/spec/quec.md#8.6,
#8.7)."""
QUECTHING_KEEPALIVE_DEFAULT_S: Final = 120
"""Quectel cloud channels: lifetime when ``keepAlive`` is ``""`` (docs/spec/quec.md#8.8)."""
SOCKET_KEEPALIVE_DEFAULT_S: Final = 300
"""TCP/UDP channels: connection timeout when ``keepAlive`` is ``""`` (docs/spec/quec.md#8.3,
#8.4)."""
HTTP_TIMEOUT_DEFAULT_S: Final = 30
"""HTTP channels: request timeout when ``timeout`` is ``""`` (vdtu's choice; the seed has
none: docs/spec/quec.md#8.2)."""

_PING_RE = re.compile(r"[0-9A-Za-z]{1,64}")


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


# --- readers and checks that only channels use ----------------------------------------


def _read_topics(path: str, raw: object) -> dict[str, str]:
    data = read_object(path, raw)
    return {key: read_str(join_path(path, key), topic) for key, topic in data.items()}


def _check_keep_alive(name: str, value: int | None, low: int, high: int, default: int) -> None:
    if value is not None and not low <= value <= high:
        raise ConfigError(
            f'{name} must be {low}..{high} seconds, or "" for the default {default}; '
            f"not {show(value)}"
        )


def _check_host(name: str, value: str) -> None:
    if not value or len(value) > 253 or WHITESPACE_RE.search(value) or "/" in value:
        raise ConfigError(
            f"{name} must be a host name or IP address such as 'broker.example' "
            f"(no scheme, no path, no spaces), not {show(value)}"
        )


def _check_topics(name: str, topics: Mapping[str, str], *, publish: bool) -> None:
    for key, topic in topics.items():
        check_id(f"{name}: topic id {key!r}", key, "topic id")
        where = f"{name}.{key}"
        if not topic or "\0" in topic or len(topic.encode()) > 65535:
            raise ConfigError(
                f"{where} must be an MQTT topic of 1..65535 bytes without NUL, not {show(topic)}"
            )
        levels = topic.split("/")
        if publish and ("+" in topic or "#" in topic):
            raise ConfigError(
                f"{where} is a publish topic: it must not contain + or #, not {show(topic)}"
            )
        for index, level in enumerate(levels):
            bad_hash = "#" in level and (level != "#" or index != len(levels) - 1)
            if bad_hash or ("+" in level and level != "+"):
                raise ConfigError(
                    f"{where} must use + only as a whole level and # only as the whole last "
                    f"level, not {show(topic)}"
                )


def _check_mqtt_topics(subscribe: Mapping[str, str], publish: Mapping[str, str]) -> None:
    _check_topics("subscribe", subscribe, publish=False)
    if not publish:
        raise ConfigError('publish must hold at least one topic, e.g. {"0": "dtu/up"}, not {}')
    _check_topics("publish", publish, publish=True)


# --- channels ------------------------------------------------------------------------


class _Channel(JsonObject):
    """Gives a channel class its ``to_json`` (``protocol`` first)."""

    __slots__ = ()
    protocol: ClassVar[ChannelType]

    def to_json(self) -> dict[str, Any]:
        """The channel as its ``conf`` entry, ``protocol`` first."""
        return {"protocol": self.protocol.value, **dump(cast("DataclassInstance", self))}


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpChannel(_Channel):
    """An ``http`` channel (docs/spec/quec.md#8.2): one request per serial uplink."""

    protocol: ClassVar[ChannelType] = ChannelType.HTTP
    method: HttpMethod = field(
        metadata=json_meta("method", enum_reader(HttpMethod, fold_case=True))
    )
    """get, post, put, delete or head (read in any case, written in lower case)."""
    url: str = field(metadata=json_meta("url", read_token))
    """``http://`` or ``https://`` URL of the request."""
    reg_data: str = field(default="", metadata=json_meta("reg_data", read_str))
    """Body of the request the v1 firmware makes at boot."""
    timeout_s: int | None = field(
        default=None, metadata=json_meta("timeout", read_optional_int, write_optional_int)
    )
    """1..300 s; ``None`` (``""`` in the file): ``HTTP_TIMEOUT_DEFAULT_S``."""
    serial_id: str = field(metadata=json_meta("serialID", read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        lowered = self.url.lower()
        if not lowered.startswith(("http://", "https://")) or WHITESPACE_RE.search(self.url):
            raise ConfigError(
                f"url must be an http:// or https:// URL without spaces, not {show(self.url)}"
            )
        if self.timeout_s is not None:
            check_range("timeout", self.timeout_s, 1, 300, " seconds")
        check_id("serialID", self.serial_id, "UART id")

    @property
    def effective_timeout_s(self) -> int:
        """The request timeout, the default applied."""
        return HTTP_TIMEOUT_DEFAULT_S if self.timeout_s is None else self.timeout_s


@dataclass(frozen=True, slots=True, kw_only=True)
class _SocketChannel(_Channel):
    """The fields of ``tcp`` and ``udp`` channels (docs/spec/quec.md#8.3, #8.4)."""

    ping: str = field(default="", metadata=json_meta("ping", read_str))
    """The heartbeat payload: 1..64 letters and digits, or ``""`` for none."""
    heartbeat_s: int = field(default=0, metadata=json_meta("heartbeat", read_int))
    """Seconds between heartbeats, 0 (off) .. 86400."""
    url: str = field(metadata=json_meta("url", read_token))
    """Server host name or IP address."""
    port: int = field(metadata=json_meta("port", read_int, str))
    """1..65535."""
    keep_alive_s: int | None = field(
        default=None, metadata=json_meta("keepAlive", read_optional_int, write_optional_int)
    )
    """Connection timeout, 60..600 s; ``None`` (``""``): ``SOCKET_KEEPALIVE_DEFAULT_S``."""
    serial_id: str = field(metadata=json_meta("serialID", read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        if self.ping and not _PING_RE.fullmatch(self.ping):
            raise ConfigError(
                f'ping must be 1..64 letters and digits, or "", not {show(self.ping)}'
            )
        check_range("heartbeat", self.heartbeat_s, 0, 86400, " seconds")
        _check_host("url", self.url)
        check_range("port", self.port, 1, 65535)
        _check_keep_alive("keepAlive", self.keep_alive_s, 60, 600, SOCKET_KEEPALIVE_DEFAULT_S)
        check_id("serialID", self.serial_id, "UART id")

    @property
    def effective_keep_alive_s(self) -> int:
        """The connection timeout, the default applied."""
        return SOCKET_KEEPALIVE_DEFAULT_S if self.keep_alive_s is None else self.keep_alive_s


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpChannel(_SocketChannel):
    """A ``tcp`` channel (docs/spec/quec.md#8.3)."""

    protocol: ClassVar[ChannelType] = ChannelType.TCP


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpChannel(_SocketChannel):
    """A ``udp`` channel (docs/spec/quec.md#8.4)."""

    protocol: ClassVar[ChannelType] = ChannelType.UDP


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttChannel(_Channel):
    """An ``mqtt`` channel (docs/spec/quec.md#8.5) to any MQTT 3.1.1 broker."""

    protocol: ClassVar[ChannelType] = ChannelType.MQTT
    client_id: str = field(default="", metadata=json_meta("clientID", read_token))
    """The MQTT client id; ``""``: the unit's IMEI (docs/spec/quec.md#8.5)."""
    keep_alive_s: int | None = field(
        default=None, metadata=json_meta("keepAlive", read_optional_int, write_optional_int)
    )
    """0 (off) .. 65535 s; ``None`` (``""``): ``MQTT_KEEPALIVE_DEFAULT_S``."""
    url: str = field(metadata=json_meta("url", read_token))
    """Broker host name or IP address."""
    port: int = field(default=1883, metadata=json_meta("port", read_int, str))
    """1..65535."""
    clean_session: bool = field(default=True, metadata=json_meta("cleanSession", read_flag))
    """True: the broker forgets the session at disconnect."""
    subscribe: Mapping[str, str] = field(
        default_factory=dict, metadata=json_meta("subscribe", _read_topics, write_mapping)
    )
    """Topic id -> topic filter; the id goes into serial frames of cloud data."""
    publish: Mapping[str, str] = field(metadata=json_meta("publish", _read_topics, write_mapping))
    """Topic id -> topic name, at least one; the id picks the topic of a serial uplink."""
    qos: int = field(default=0, metadata=json_meta("qos", read_int, str))
    """0 or 1."""
    retain: bool = field(default=False, metadata=json_meta("retain", read_flag, write_str))
    """Publish with the retain flag."""
    username: str = field(default="", metadata=json_meta("username", read_str, omit_default=True))
    """Login user name (firmware v3, vdtu extension); ``""``: no login."""
    password: str = field(
        default="", repr=False, metadata=json_meta("password", read_secret, omit_default=True)
    )
    """Login password (firmware v3, vdtu extension); needs ``username``."""
    serial_id: str = field(metadata=json_meta("serialID", read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "subscribe", frozen(self.subscribe))
        object.__setattr__(self, "publish", frozen(self.publish))
        check_token("clientID", self.client_id, required=False)
        if len(self.client_id.encode()) > 65535:
            raise ConfigError(
                f"clientID must be at most 65535 bytes, not {len(self.client_id)} characters"
            )
        _check_keep_alive("keepAlive", self.keep_alive_s, 0, 65535, MQTT_KEEPALIVE_DEFAULT_S)
        _check_host("url", self.url)
        check_range("port", self.port, 1, 65535)
        _check_mqtt_topics(self.subscribe, self.publish)
        check_choice("qos", self.qos, (0, 1))
        if self.password and not self.username:
            raise ConfigError("password needs a username (MQTT 3.1.1 [MQTT-3.1.2-22])")
        check_id("serialID", self.serial_id, "UART id")

    @property
    def effective_keep_alive_s(self) -> int:
        """The keep-alive, the default applied."""
        return MQTT_KEEPALIVE_DEFAULT_S if self.keep_alive_s is None else self.keep_alive_s


@dataclass(frozen=True, slots=True, kw_only=True)
class _IotChannel(_Channel):
    """The fields of ``aliyun`` and ``txyun`` channels (docs/spec/quec.md#8.6, #8.7)."""

    auth_type: AuthType = field(metadata=json_meta("type", enum_reader(AuthType)))
    """``mos`` (needs ``DeviceSecret``) or ``tas`` (needs ``ProductSecret``)."""
    keep_alive_s: int | None = field(
        default=None, metadata=json_meta("keepAlive", read_optional_int, write_optional_int)
    )
    """60..1200 s; ``None`` (``""`` or ``" "``): ``CLOUD_KEEPALIVE_DEFAULT_S``."""
    client_id: str = field(default="", metadata=json_meta("clientID", read_token))
    """At most 64 characters; ``""``: the unit's IMEI."""
    device_name: str = field(metadata=json_meta("Devicename", read_token))
    product_key: str = field(metadata=json_meta("ProductKey", read_token))
    device_secret: str = field(
        default="", repr=False, metadata=json_meta("DeviceSecret", read_secret_token)
    )
    """Used with ``mos``."""
    product_secret: str = field(
        default="", repr=False, metadata=json_meta("ProductSecret", read_secret_token)
    )
    """Used with ``tas``."""
    clean_session: bool = field(default=True, metadata=json_meta("cleanSession", read_flag))
    qos: int = field(default=0, metadata=json_meta("qos", read_int, str))
    """0 or 1."""
    subscribe: Mapping[str, str] = field(
        default_factory=dict, metadata=json_meta("subscribe", _read_topics, write_mapping)
    )
    publish: Mapping[str, str] = field(metadata=json_meta("publish", _read_topics, write_mapping))
    """At least one topic."""
    serial_id: str = field(metadata=json_meta("serialID", read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "subscribe", frozen(self.subscribe))
        object.__setattr__(self, "publish", frozen(self.publish))
        _check_keep_alive("keepAlive", self.keep_alive_s, 60, 1200, CLOUD_KEEPALIVE_DEFAULT_S)
        check_token("clientID", self.client_id, required=False)
        if len(self.client_id) > 64:
            raise ConfigError(f"clientID must be at most 64 characters, not {show(self.client_id)}")
        check_token("Devicename", self.device_name)
        check_token("ProductKey", self.product_key)
        check_token("DeviceSecret", self.device_secret, secret=True, required=False)
        check_token("ProductSecret", self.product_secret, secret=True, required=False)
        if self.auth_type is AuthType.MOS and not self.device_secret:
            raise ConfigError(
                "DeviceSecret must not be empty when type is 'mos' (one device, one secret)"
            )
        if self.auth_type is AuthType.TAS and not self.product_secret:
            raise ConfigError(
                "ProductSecret must not be empty when type is 'tas' (one type, one secret)"
            )
        check_choice("qos", self.qos, (0, 1))
        _check_mqtt_topics(self.subscribe, self.publish)
        check_id("serialID", self.serial_id, "UART id")

    @property
    def effective_keep_alive_s(self) -> int:
        """The keep-alive, the default applied."""
        return CLOUD_KEEPALIVE_DEFAULT_S if self.keep_alive_s is None else self.keep_alive_s


@dataclass(frozen=True, slots=True, kw_only=True)
class AliyunChannel(_IotChannel):
    """An ``aliyun`` channel: Alibaba Cloud IoT (docs/spec/quec.md#8.6)."""

    protocol: ClassVar[ChannelType] = ChannelType.ALIYUN


@dataclass(frozen=True, slots=True, kw_only=True)
class TxyunChannel(_IotChannel):
    """A ``txyun`` channel: Tencent Cloud IoT (docs/spec/quec.md#8.7); its secret is base64."""

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
    """A ``quecthing`` channel: Quectel's IoT platform (docs/spec/quec.md#8.8)."""

    protocol: ClassVar[ChannelType] = ChannelType.QUECTHING
    keep_alive_s: int | None = field(
        default=None, metadata=json_meta("keepAlive", read_optional_int, write_optional_int)
    )
    """Lifetime, 60..1200 s; ``None`` (``""``): ``QUECTHING_KEEPALIVE_DEFAULT_S``."""
    product_key: str = field(metadata=json_meta("ProductKey", read_token))
    product_secret: str = field(
        default="", repr=False, metadata=json_meta("ProductSecret", read_secret_token)
    )
    """The product secret; ``""`` is allowed (the seed's own example leaves it empty:
    docs/spec/quec.md#8.8)."""
    device_name: str = field(
        default="", metadata=json_meta("Devicename", read_token, omit_default=True)
    )
    """Device key (DK) when preset; v2 reads it, the seed lacks it (docs/spec/quec.md#8.8)."""
    device_secret: str = field(
        default="",
        repr=False,
        metadata=json_meta("DeviceSecret", read_secret_token, omit_default=True),
    )
    """Device secret (DS) when preset; as ``device_name``."""
    qos: int = field(default=0, metadata=json_meta("qos", read_int, str))
    """0 or 1."""
    session_flag: bool = field(default=False, metadata=json_meta("SessionFlag", read_flag_or_empty))
    """Encrypt the session; ``""`` in the file means False."""
    send_mode: SendMode = field(
        default=SendMode.PASS, metadata=json_meta("sendMode", enum_reader(SendMode))
    )
    serial_id: str = field(metadata=json_meta("serialID", read_id, str))
    """The ``uconf`` key of the UART the channel is bound to."""

    def __post_init__(self) -> None:
        _check_keep_alive("keepAlive", self.keep_alive_s, 60, 1200, QUECTHING_KEEPALIVE_DEFAULT_S)
        check_token("ProductKey", self.product_key)
        check_token("ProductSecret", self.product_secret, secret=True, required=False)
        check_token("Devicename", self.device_name, required=False)
        check_token("DeviceSecret", self.device_secret, secret=True, required=False)
        check_choice("qos", self.qos, (0, 1))
        check_id("serialID", self.serial_id, "UART id")

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
    data = read_object(path, raw)
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
        raise ConfigError(f"{path}.protocol must be one of {_PROTOCOLS}, not {show(name)}")
    return build(
        kind, path, data, extra_keys=("protocol",), context=f" for protocol {kind.protocol.value!r}"
    )


def read_conf(path: str, raw: object) -> dict[str, Channel]:
    """The ``conf`` object: channel id -> channel, in file order."""
    data = read_object(path, raw)
    return {key: _read_channel(join_path(path, key), value) for key, value in data.items()}
