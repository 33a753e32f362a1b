"""What the XGC firmware needs from the network and the platform, as interfaces.

The firmware runs in sim time and never touches a socket. It asks an ``XgcCloud``
for MQTT credentials and for a connection; the implementation does the real work
(HTTP and paho on the asyncio loop in real time, or a simulated platform and
broker in virtual time) and reports back through the ``CloudHandler`` callbacks,
always *in sim time* (a real-time implementation goes through ``Clock.inject``).

The unit's link conditions (``vdtu.net.conditions``) travel with each request and
connection as an ``Impairment`` (None on a healthy link), and ``impair`` changes them
on a connection that exists; the platform's conditions are the platform's, set per
IMEI with ``set_platform_conditions``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vdtu.cloud.xgc_api import MqttInfo
from vdtu.net.conditions import Impairment, PlatformConditions

RESET_REASON = "connection reset by peer"
"""What a connection reset by the network (``reset``) reports."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InfoRefused:
    """The platform refused the project id or secret (retrying will not help)."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InfoUnreachable:
    """The platform could not be asked (network, timeout, bad answer); worth retrying."""

    reason: str


InfoResult = MqttInfo | InfoRefused | InfoUnreachable


@dataclass(frozen=True, slots=True, kw_only=True)
class Will:
    """The message the broker publishes when the device vanishes."""

    topic: str
    payload: bytes
    retain: bool = True


class CloudHandler(Protocol):
    """Where a connection reports; every call happens in sim time."""

    def cloud_connected(self) -> None:
        """The broker accepted the connection and the subscriptions are made."""

    def cloud_connect_failed(self, reason: str, *, refused: bool) -> None:
        """The connection attempt failed; ``refused``: the broker refused the credentials."""

    def cloud_lost(self, reason: str) -> None:
        """An established connection was lost."""

    def cloud_message(self, topic: str, payload: bytes) -> None:
        """A message arrived on a subscribed topic."""

    def cloud_published(self, token: int) -> None:
        """The broker acknowledged the QoS 1 publish that returned ``token``."""


class CloudConnection(Protocol):
    """One connection attempt and, if it succeeds, the connection."""

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> int | None:
        """Send now; returns a token for QoS 1 acknowledgement, None if it could not be sent."""

    def close(self) -> None:
        """End the connection at once, without a DISCONNECT (the will is published)."""

    def impair(self, impairment: Impairment | None) -> None:
        """Put this connection under the unit's link conditions from now on (None: none)."""

    def reset(self) -> None:
        """The network resets the connection (RST both ways): the broker drops it and
        publishes the will; the handler hears ``cloud_lost(RESET_REASON)`` (or
        ``cloud_connect_failed`` while connecting), in sim time, never synchronously."""


@runtime_checkable
class XgcCloud(Protocol):
    """The platform and the broker, as the firmware reaches them."""

    def fetch_mqtt_info(
        self,
        *,
        imei: str,
        project_id: str,
        project_secret: str,
        done: Callable[[InfoResult], None],
        impairment: Impairment | None = None,
    ) -> None:
        """Ask the platform for credentials; ``done`` is called once, in sim time."""

    def connect(
        self,
        info: MqttInfo,
        *,
        will: Will,
        subscriptions: Sequence[str],
        keepalive_s: int,
        handler: CloudHandler,
        impairment: Impairment | None = None,
    ) -> CloudConnection:
        """Start connecting; the outcome arrives through ``handler``."""

    def set_platform_conditions(self, imei: str, conditions: PlatformConditions | None) -> None:
        """What the platform does with the credential requests of unit ``imei`` (None:
        it answers them normally)."""
