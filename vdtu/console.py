"""``vdtu cloud``: the cloud console — send to a unit, push to it, watch what units say.

It connects to the broker as a client of its own (one ``MqttLink`` on the loop).
Without ``--broker`` it reads the discovery file that ``vdtu up`` writes
(``<pty-dir>/up.json``: the embedded broker's address, a console login and the
project); with ``--broker URL`` it works against any broker, and ``--project``
names the project when there is no discovery file.

What it does for the units of one personality is its fleet side's ``console``
(``vdtu.links.console_side``), and it loops over the sides. Its own subcommands
are the two every kind of unit takes:

    send IMEI JSON                    cloud -> unit data, on the downlink topic of the
                                      unit's kind
    watch [IMEI] [--count N] [--timeout S] [--json]
                                      print uplinks, states and properties as they arrive,
                                      from every side's topic filter

and the others are the sides' (``OWN_COMMANDS``: each taken by the units of one kind).
Which kind each unit is the discovery file says (``units``: IMEI -> personality); a
subcommand of another kind, or a ``send`` flag naming another kind (``SEND_FLAGS``),
is refused before anything is sent. Without it (a broker of the user's own) ``send``
goes to the kind its flag names, else to the default personality's topic.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

from vdtu.cloud.broker_url import BrokerUrl, parse_broker_url
from vdtu.errors import ConfigError
from vdtu.firmware.registry import DEFAULT
from vdtu.links.console_side import (
    ConsoleCommand,
    ConsoleSide,
    MessageHandler,
    SendFlag,
    WatchedMessage,
    parse_json_argument,
    push,
)
from vdtu.links.discovery import DISCOVERY_FILE, url_from_discovery
from vdtu.links.sides import SIDES
from vdtu.net.mqtt import MqttHub, MqttLink, connect_and_wait

CONNECT_TIMEOUT_S = 10.0
OWN_COMMANDS: Mapping[str, tuple[ConsoleSide, ConsoleCommand]] = MappingProxyType(
    {
        command.name: (entry.console, command)
        for entry in SIDES.values()
        for command in entry.console.commands
    }
)
"""The sides' subcommands, by name, in the registry's order: the side whose units take it,
and the command."""
SEND_FLAGS: Mapping[str, tuple[ConsoleSide, SendFlag]] = MappingProxyType(
    {
        entry.console.send_flag.option: (entry.console, entry.console.send_flag)
        for entry in SIDES.values()
        if entry.console.send_flag is not None
    }
)
"""The ``send`` flags by option (``--quec``): the side whose units the flag names, and it."""
SHOWN_UNITS = 3
"""How many IMEIs a refusal lists."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Which broker the console talks to, as whom, and the default project."""

    broker: BrokerUrl
    project: str | None
    units: dict[str, str] | None = None
    """IMEI -> profile (``vdtu up --profile``'s names) of a running ``vdtu up``; None: not
    known (a broker of the user's own)."""

    def side_of(self, imei: str, flag: str | None) -> ConsoleSide:
        """The console side of unit ``imei``: the one ``send``'s ``flag`` names, else the one
        of its kind, else (its kind is not known) the default personality's."""
        if flag is not None:
            return SEND_FLAGS[flag][0]
        return SIDES.get((self.units or {}).get(imei, DEFAULT), SIDES[DEFAULT]).console

    def check_unit(self, command: str, imei: str | None, *, flag: str | None = None) -> str | None:
        """Refuse what cannot reach the unit, before anything is sent.

        Args:
            command: the ``vdtu cloud`` subcommand.
            imei: the unit it addresses (None: every unit, ``watch``).
            flag: the ``send`` flag given (``--quec``: the user names the unit's kind), or None.

        Returns:
            A note for the user when the units are not known (no discovery file), else None.

        Raises:
            ConfigError: the running fleet has no such unit, or the unit's kind does not
                take ``command`` (another kind's own subcommand) or ``flag``.
        """
        if imei is None:
            return None
        if self.units is None:
            kinds = " or ".join(entry.console.kind for entry in SIDES.values())
            return (
                f"the units of {self.broker} are not known (no 'vdtu up' discovery file for "
                f"it): IMEI {imei} and its kind ({kinds}) are not checked"
            )
        profile = self.units.get(imei)
        if profile is None:
            raise ConfigError(
                f"IMEI {imei!r} is not a unit of the running vdtu up; it has "
                f"{_listed_units(self.units)}"
            )
        if profile not in SIDES:
            return None
        side = SIDES[profile].console
        if command in OWN_COMMANDS and OWN_COMMANDS[command][0] is not side:
            raise _kind_error(imei, side, f"{command!r}", OWN_COMMANDS[command][0])
        if flag is not None and SEND_FLAGS[flag][0] is not side:
            raise _kind_error(imei, side, f"{flag!r}", SEND_FLAGS[flag][0])
        return None


def _listed_units(units: dict[str, str]) -> str:
    shown = [f"{imei} ({profile})" for imei, profile in list(units.items())[:SHOWN_UNITS]]
    more = len(units) - len(shown)
    count = f"{len(units)} unit{'s' if len(units) != 1 else ''}"
    return f"{count}: {', '.join(shown)}" + (f" and {more} more" if more else "")


def _kind_error(imei: str, side: ConsoleSide, wanted: str, needed: ConsoleSide) -> ConfigError:
    """``imei`` is a unit of ``side``, and ``wanted`` (a subcommand or a flag) needs one of
    ``needed``."""
    names = [f"'{name}'" for name in ("send", *(command.name for command in side.commands))]
    takes = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
    kind = _a(side)
    return ConfigError(
        f"{imei} is {kind} unit; {wanted} needs {_a(needed)} unit "
        f"({kind} unit takes {takes}{side.refusal_hint})"
    )


def _a(side: ConsoleSide) -> str:
    return f"{side.article} {side.kind}"


def find_target(
    *, broker: str | None, ca_file: Path | None, project: str | None, pty_dir: Path
) -> Target:
    """The broker from ``--broker``, else from the discovery file of a running ``vdtu up``.

    With ``--broker`` naming the broker of the running ``vdtu up`` (same host and port),
    the discovery file still says which units there are and the project.
    """
    path = pty_dir / DISCOVERY_FILE
    if broker is not None:
        url = parse_broker_url(broker, ca_file=ca_file)
        try:
            document = json.loads(path.read_text())
            same = url_from_discovery(document)
        except (OSError, ValueError, KeyError, TypeError):
            return Target(broker=url, project=project)
        if (same.host, same.port) != (url.host, url.port):
            return Target(broker=url, project=project)
        return Target(
            broker=url, project=project or document.get("project"), units=_units(document)
        )
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no running 'vdtu up' found ({path} does not exist); start one, or give --broker URL"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})") from exc
    return Target(
        broker=url_from_discovery(document),
        project=project or document.get("project"),
        units=_units(document),
    )


def _units(document: dict[str, Any]) -> dict[str, str] | None:
    units = document.get("units")
    return units if isinstance(units, dict) else None


class Console:
    """One console connection."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._acks: dict[int, asyncio.Future[None]] = {}
        self.loop = asyncio.get_running_loop()
        self.hub = MqttHub(self.loop)
        url = target.broker
        self.link = MqttLink(
            self.hub,
            client_id=f"vdtu-console-{os.getpid()}-{time.monotonic_ns() % 100000}",
            host=url.host,
            port=url.port,
            username=url.username,
            password=url.password,
            keepalive=30,
            tls_ca=url.ca_file,
        )

    def listen(self, handler: MessageHandler) -> None:
        """Give every message received from now on to ``handler``."""
        self.link.on_message = handler

    async def connect(self) -> None:
        """Connect, or raise ConfigError saying why not."""
        reason = await connect_and_wait(self.link, CONNECT_TIMEOUT_S + 1)
        if reason is not None:
            raise ConfigError(f"cannot connect to {self.target.broker}: {reason}")

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement (several publishes
        may wait at once: each waits for its own message id)."""
        acked: asyncio.Future[None] = self.loop.create_future()
        mid = self.link.publish(topic, payload, qos=1)
        if mid is None:
            raise ConfigError(f"not connected to {self.target.broker}")
        self._acks[mid] = acked
        self.link.on_published = self._published
        try:
            await asyncio.wait_for(acked, 10)
        except TimeoutError:
            raise ConfigError(f"{self.target.broker} did not acknowledge within 10 s") from None
        finally:
            self._acks.pop(mid, None)

    def _published(self, mid: int) -> None:
        acked = self._acks.get(mid)
        if acked is not None and not acked.done():
            acked.set_result(None)

    async def subscribe(self, topic: str) -> None:
        """Subscribe with QoS 1 and wait until the broker granted it."""
        granted: asyncio.Future[int | None] = self.loop.create_future()

        def subscribed(done: str, qos: int | None) -> None:
            if done == topic and not granted.done():
                granted.set_result(qos)

        self.link.on_subscribed = subscribed
        self.link.subscribe(topic, qos=1)
        if await asyncio.wait_for(granted, 10) is None:
            raise ConfigError(f"the broker refused the subscription to {topic}")

    def close(self) -> None:
        """Disconnect and stop."""
        self.link.close()
        self.hub.close()

    def project(self) -> str:
        """The project of the target device, or ConfigError."""
        if self.target.project is None:
            raise ConfigError(
                "which project? give --project (no 'vdtu up' discovery file names one)"
            )
        return self.target.project


async def watch(
    console: Console,
    imei: str | None,
    *,
    count: int | None,
    timeout_s: float | None,
    out: TextIO,
    as_json: bool,
) -> int:
    """Print messages until ``count`` have been printed or ``timeout_s`` has passed."""
    seen = 0
    finished: asyncio.Future[None] = console.loop.create_future()

    def received(topic: str, payload: bytes) -> None:
        nonlocal seen
        message = _watched(topic, payload)
        if message is None:
            return
        record = message.record()
        seen += 1
        if as_json:
            print(json.dumps(record, ensure_ascii=False), file=out, flush=True)
        else:
            stamp = time.strftime("%H:%M:%S")
            body = json.dumps(record["payload"], ensure_ascii=False)
            print(f"{stamp} {record['imei']} {record['channel']:<13} {body}", file=out, flush=True)
        if count is not None and seen >= count and not finished.done():
            finished.set_result(None)

    console.listen(received)
    for entry in SIDES.values():
        console.link.subscribe(entry.console.watch_filter(imei), qos=1)
    try:
        await asyncio.wait_for(finished, timeout_s)
    except TimeoutError:
        return 0 if count is None else 1
    return 0


def _watched(topic: str, payload: bytes) -> WatchedMessage | None:
    """What a unit of some side said on ``topic``; None: not a unit's message."""
    for entry in SIDES.values():
        message = entry.console.watched(topic, payload)
        if message is not None:
            return message
    return None


async def run_cloud_command(args: Any) -> int:
    """Run one ``vdtu cloud`` subcommand; returns the exit code."""
    target = find_target(
        broker=args.broker, ca_file=args.ca_file, project=args.project, pty_dir=args.pty_dir
    )
    note = target.check_unit(args.cloud_command, args.imei, flag=args.send_flag)
    if note is not None:
        print(f"vdtu cloud: {note}", file=sys.stderr, flush=True)
    console = Console(target)
    try:
        await console.connect()
        if args.cloud_command == "watch":
            return await watch(
                console,
                args.imei,
                count=args.count,
                timeout_s=args.timeout,
                out=sys.stdout,
                as_json=args.json,
            )
        if args.cloud_command == "send":
            topic = target.side_of(args.imei, args.send_flag).downlink_topic(console, args.imei)
            return await push(console, topic, parse_json_argument(args.json_payload), sys.stdout)
        return await OWN_COMMANDS[args.cloud_command][1].run(console, args, sys.stdout)
    finally:
        console.close()
