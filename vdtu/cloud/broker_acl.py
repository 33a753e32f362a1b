"""Who may use which topics and client ids: the broker's access rule, derived from the login.

Pure (standard library and vdtu's own wire-contract modules): the embedded broker asks
it once per CONNECT and keeps the answer, a ``Grant``, on the session; the private
mosquitto gets the same rule as ``pattern`` lines (``mosquitto_acl``). Nothing here
grows with the fleet: a grant is built from the login alone (the user name is the
IMEI, the project is the one whose secret made the password), and each check is a set
lookup and a prefix test on the topic string.

The rule (``docs/brokers.md`` says it in words for other brokers):

* **Full access**: the admin logins (the cloud console ``vdtu-console``, a fleet's own
  login): any topic, any client id.
* **A device of project P** (user name = its IMEI ``D``, password = the platform's HMAC):
  client id ``xgc-D`` (an XGC unit) or ``D`` (a QuecPython unit's default); publishes
  ``xgc/P/D/up``, ``props``, ``config/status``, ``ota/status``, ``state`` (its will
  too) and the QuecPython uplinks ``quec/D/up`` (and below it); subscribes to
  ``xgc/P/D/down``, ``config``, ``ota`` and ``quec/D/down`` (and below it).
* **A signed IoT-cloud login** for product ``K``, device ``N`` (Aliyun, Tencent,
  quecthing; see ``iot_sign``): its client id is fixed by the login's shape and
  signature; it publishes and subscribes within its own trees: ``/K/N/...`` and
  ``/sys/K/N/...`` (Aliyun's custom and system topics), ``K/N/...`` (Tencent's) and
  for quecthing ``quecthing/K/N/up`` (publish) and ``.../down`` (subscribe). The real
  clouds give each topic a direction per product; vdtu does not model those, so within
  its own tree a device may do both.

Subscriptions are checked as filters: an exact own topic, or a filter that starts with
one of the login's own prefixes (``+`` and ``#`` occupy whole levels, so such a filter
cannot match outside the prefix). ``#`` alone, or ``xgc/P/+/down``, is refused.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from vdtu.cloud.iot_sign import Vendor, identify_vendor, parse_login, quecthing_topics
from vdtu.cloud.xgc_api import DOWNLINK_CHANNELS, Channel, device_password, device_topic

XGC_CLIENT_PREFIX = "xgc-"
"""An XGC unit's client id is this and its IMEI (what the platform hands out)."""

UPLINK_CHANNELS = (
    Channel.UP,
    Channel.PROPS,
    Channel.CONFIG_STATUS,
    Channel.OTA_STATUS,
    Channel.STATE,
)
"""What an XGC device publishes (``xgc_api`` lists the direction of each)."""


class Action(StrEnum):
    """What a client asks to do with a topic."""

    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """What one login may do; built at CONNECT, asked for every publish and subscribe.

    A topic is allowed when it is one of the exact topics or starts with one of the
    prefixes (each ending in ``/``) of that action.
    """

    label: str
    """Who this is, for log lines: ``device 8674... of project 1000...``."""
    everything: bool = False
    """Full access: every topic, any client id."""
    client_ids: frozenset[str] = frozenset()
    """The client ids this login may connect with (ignored with ``everything``)."""
    publish: frozenset[str] = frozenset()
    publish_prefixes: tuple[str, ...] = ()
    subscribe: frozenset[str] = frozenset()
    subscribe_prefixes: tuple[str, ...] = ()

    def may_connect_as(self, client_id: str) -> bool:
        """Whether this login may use ``client_id``."""
        return self.everything or client_id in self.client_ids

    def may_publish(self, topic: str) -> bool:
        """Whether this login may publish to ``topic`` (a topic name, no wildcards)."""
        return self.everything or topic in self.publish or topic.startswith(self.publish_prefixes)

    def may_subscribe(self, topic_filter: str) -> bool:
        """Whether this login may subscribe to ``topic_filter`` (or read a topic)."""
        return (
            self.everything
            or topic_filter in self.subscribe
            or topic_filter.startswith(self.subscribe_prefixes)
        )

    def allows(self, action: Action, topic: str) -> bool:
        """``may_publish`` or ``may_subscribe``."""
        if action is Action.PUBLISH:
            return self.may_publish(topic)
        return self.may_subscribe(topic)


FULL_ACCESS = Grant(label="full access", everything=True)
"""The grant of an admin login, and of every login on a broker without an access rule."""


@dataclass(frozen=True, slots=True)
class QuecTopics:
    """The QuecPython default MQTT channel's topics, as templates with ``{imei}``.

    The templates live with the firmware's default config
    (``vdtu.firmware.quec.config.PUBLISH_TOPIC`` / ``SUBSCRIBE_TOPIC``), which this
    layer may not import; whoever builds the broker passes them in.
    """

    uplink: str
    """Published by the unit: ``quec/{imei}/up``."""
    downlink: str
    """Subscribed to by the unit: ``quec/{imei}/down``."""


def device_grant(project_id: str, imei: str, quec: QuecTopics | None) -> Grant:
    """The grant of device ``imei`` of project ``project_id`` (see the module comment)."""
    publish = {device_topic(project_id, imei, channel) for channel in UPLINK_CHANNELS}
    subscribe = {device_topic(project_id, imei, channel) for channel in DOWNLINK_CHANNELS}
    publish_prefixes: tuple[str, ...] = ()
    subscribe_prefixes: tuple[str, ...] = ()
    if quec is not None:
        up, down = quec.uplink.format(imei=imei), quec.downlink.format(imei=imei)
        publish.add(up)
        subscribe.add(down)
        publish_prefixes, subscribe_prefixes = (f"{up}/",), (f"{down}/",)
    return Grant(
        label=f"device {imei} of project {project_id}",
        client_ids=frozenset({f"{XGC_CLIENT_PREFIX}{imei}", imei}),
        publish=frozenset(publish),
        publish_prefixes=publish_prefixes,
        subscribe=frozenset(subscribe),
        subscribe_prefixes=subscribe_prefixes,
    )


def cloud_grant(vendor: Vendor, product_key: str, device_name: str, client_id: str) -> Grant:
    """The grant of a signed IoT-cloud login (its client id is the one it signed)."""
    label = f"{vendor} device {device_name!r} of product {product_key!r}"
    own = f"{product_key}/{device_name}"
    if vendor is Vendor.QUECTHING:
        down, up = quecthing_topics(product_key, device_name)
        return Grant(
            label=label,
            client_ids=frozenset({client_id}),
            publish=frozenset({up}),
            subscribe=frozenset({down}),
        )
    trees = (f"/{own}/", f"/sys/{own}/") if vendor is Vendor.ALIYUN else (f"{own}/",)
    return Grant(
        label=label,
        client_ids=frozenset({client_id}),
        publish_prefixes=trees,
        subscribe_prefixes=trees,
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A login the rule refuses, and why (for the broker's log)."""

    reason: str


@dataclass(slots=True)
class FleetAccess:
    """The access rule of a fleet's broker: ``(username, password, client_id) -> Grant | Refusal``.

    Asked only for logins the broker's authenticator accepted; it classifies them and
    checks the client id. Per CONNECT it costs one HMAC per project (to find the
    device's project), as the password check does.

    Args:
        projects: ProjectId -> ProjectSecret (the platform's).
        admins: user names with full access.
        quec: the QuecPython default channel's topics, or None for none.
    """

    projects: Mapping[str, str]
    admins: Collection[str]
    quec: QuecTopics | None = None
    _admins: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._admins = frozenset(self.admins)

    def __call__(
        self, username: str | None, password: str | None, client_id: str
    ) -> Grant | Refusal:
        """The login's grant, or why it may not connect as it asked."""
        if username is not None and username in self._admins:
            return FULL_ACCESS
        vendor = identify_vendor(username, client_id)
        if vendor is not None:
            try:
                claim = parse_login(vendor, username, password, client_id)
            except ValueError as exc:
                return Refusal(f"{vendor} login {client_id!r}: {exc}")
            return cloud_grant(vendor, claim.product_key, claim.device_name, client_id)
        project = self._project_of(username, password)
        if project is None or username is None:
            return Refusal(f"user {username!r} is neither an admin nor a device of a project")
        grant = device_grant(project, username, self.quec)
        if not grant.may_connect_as(client_id):
            return Refusal(
                f"{grant.label} must connect as {XGC_CLIENT_PREFIX}{username} or {username}, "
                f"not {client_id!r}"
            )
        return grant

    def _project_of(self, username: str | None, password: str | None) -> str | None:
        if username is None or password is None:
            return None
        for project_id, secret in self.projects.items():
            if hmac.compare_digest(password, device_password(secret, username)):
                return project_id
        return None


def mosquitto_acl(
    *, projects: Iterable[str], admins: Iterable[str], quec: QuecTopics | None = None
) -> str:
    """The device rule as a mosquitto ``acl_file``: ``user`` blocks for admins, ``pattern`` lines.

    mosquitto substitutes ``%u`` (the user name) in ``pattern`` lines; a device's user
    name is its IMEI. mosquitto cannot tell a device's project from its password, so
    every listed project's lines apply to every device (one project per broker makes
    them exact), and it cannot tie a client id to a user (see ``docs/brokers.md``).

    Args:
        projects: the ProjectIds whose device topics are served.
        admins: user names with full access.
        quec: the QuecPython default channel's topics, or None.

    Returns:
        The file's text.
    """
    lines = ["# written by vdtu.cloud.broker_acl: see docs/brokers.md"]
    for admin in admins:
        lines += [f"user {admin}", "topic readwrite #"]
    lines.append("# every other login is a device: user name = its IMEI")
    for project in projects:
        lines += [
            f"pattern write {device_topic(project, '%u', channel)}" for channel in UPLINK_CHANNELS
        ]
        lines += [
            f"pattern read {device_topic(project, '%u', channel)}" for channel in DOWNLINK_CHANNELS
        ]
    if quec is not None:
        lines += [
            f"pattern write {quec.uplink.format(imei='%u')}/#",
            f"pattern read {quec.downlink.format(imei='%u')}/#",
        ]
    return "\n".join(lines) + "\n"
