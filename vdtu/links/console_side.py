"""What the cloud console (``vdtu cloud``) does for the units of one personality.

Every ``SideEntry`` has a ``ConsoleSide`` (its ``console``). The console
(``vdtu/console.py``) owns the broker connection, the discovery file and the two
subcommands every personality takes, ``send`` and ``watch``; for the rest it loops
over the sides. A console side names its kind of unit (for the refusals), adds its
own subcommands (``ConsoleCommand``: XGC ``config`` and ``ota``, QuecPython ``cmd``)
and, when it has one, the ``send`` flag that says a unit is one of its (for a broker
whose units are not known), says where ``send`` puts a downlink to one of its units,
which topic filter ``watch`` subscribes to, and which of the messages on it are its
units' uplinks, replies and states (a ``WatchedMessage``). It reaches the broker
only through a ``ConsoleCloud``, the console's connection as the sides see it.

The helpers below are the ones the console and the sides share: a JSON argument
checked, a payload as JSON where it is, and "sent to ..." after a push.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from vdtu.errors import ConfigError

MessageHandler = Callable[[str, bytes], None]
"""Called with the topic and payload of each message the console receives."""


class ConsoleCloud(Protocol):
    """The console's broker connection, as a console side uses it."""

    def listen(self, handler: MessageHandler) -> None:
        """Give every message received from now on to ``handler``."""

    async def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1 and wait until the broker granted it (else ConfigError)."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement."""

    def project(self) -> str:
        """The project the console addresses (``--project`` or ``up.json``'s), or ConfigError."""


class ConsoleCommand(Protocol):
    """A ``vdtu cloud`` subcommand only the units of one personality take."""

    @property
    def name(self) -> str:
        """The subcommand (``vdtu cloud <name>``)."""

    @property
    def help(self) -> str:
        """Its line in ``vdtu cloud --help``."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add its arguments (the first is the unit's IMEI, ``imei``)."""

    async def run(self, cloud: ConsoleCloud, args: argparse.Namespace, out: TextIO) -> int:
        """Run it (the connection is up); returns the exit code.

        Raises:
            ConfigError: an argument is not valid, or there is no project to address.
        """


@dataclass(frozen=True, slots=True, kw_only=True)
class SendFlag:
    """A ``vdtu cloud send`` flag saying the unit is one of a personality's."""

    option: str
    """The flag (``--quec``)."""
    help: str


@dataclass(frozen=True, slots=True)
class WatchedMessage:
    """A message ``vdtu cloud watch`` prints: whose it is, on which channel, and what."""

    project: str | None
    imei: str
    channel: str
    payload: bytes

    def record(self) -> dict[str, Any]:
        """As ``watch --json`` prints it: the payload as JSON where it is, else as text."""
        return {
            "project": self.project,
            "imei": self.imei,
            "channel": self.channel,
            "payload": payload_value(self.payload),
        }


class ConsoleSide(Protocol):
    """What the console does for the units of one personality."""

    @property
    def kind(self) -> str:
        """What its units are called in messages (``XGC``)."""

    @property
    def article(self) -> str:
        """The article before ``kind`` (``an``)."""

    @property
    def commands(self) -> Sequence[ConsoleCommand]:
        """Its own subcommands, which only its units take."""

    @property
    def send_flag(self) -> SendFlag | None:
        """The ``send`` flag naming its units; None: it has none (its units are the default)."""

    @property
    def refusal_hint(self) -> str:
        """Added to the list of what its units take when one is refused a command ('' or
        ``: ...``)."""

    def downlink_topic(self, cloud: ConsoleCloud, imei: str) -> str:
        """Where ``send`` puts data for unit ``imei``.

        Raises:
            ConfigError: there is no project to address.
        """

    def job(
        self, project: str | None, imei: str, kind: str, fields: Mapping[str, Any], now_ms: int
    ) -> tuple[str, bytes]:
        """The topic and payload of a job the cloud gives unit ``imei``: ``config`` (the
        settings in ``fields``) or ``ota`` (``version``, and ``filename``, ``url``, ``md5`` or
        their defaults); ``now_ms`` is the platform's clock (a config's version).

        Raises:
            ValueError: this kind of unit takes no such job from the cloud (saying how it
                takes it instead).
        """

    def watch_filter(self, imei: str | None) -> str:
        """The topic filter ``watch`` subscribes to for unit ``imei`` (None: every unit)."""

    def watched(self, topic: str, payload: bytes) -> WatchedMessage | None:
        """A message one of its units sent (uplink, reply, state), else None (not its
        units' topic, or the cloud's own message to a unit)."""


def parse_json_argument(text: str) -> bytes:
    """The JSON the user gave, checked; a plain string must be quoted."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not JSON ({exc.msg}); to send a plain string, quote it: '\"{text}\"'"
        ) from None
    return text.encode()


def payload_value(payload: bytes) -> Any:
    """A received payload: its JSON value, or its text when it is not JSON."""
    text = payload.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


async def push(cloud: ConsoleCloud, topic: str, payload: bytes, out: TextIO) -> int:
    """Publish ``payload`` on ``topic`` and say so; returns the exit code (0)."""
    await cloud.publish(topic, payload)
    print(f"sent to {topic}: {payload.decode()}", file=out)
    return 0
