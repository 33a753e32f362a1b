"""``vdtu cloud``: the cloud console — send to a unit, push config or OTA, watch what units say.

It connects to the broker as a client of its own (one ``MqttLink`` on the loop).
Without ``--broker`` it reads the discovery file that ``vdtu up`` writes
(``<pty-dir>/up.json``: the embedded broker's address, a console login and the
project); with ``--broker URL`` it works against any broker, and ``--project``
names the project when there is no discovery file.

Commands (XGC topics as in ``vdtu.cloud.xgc_api``; a QuecPython unit's are its default
config's ``quec/<IMEI>/down`` and ``quec/<IMEI>/up``, or ``--down``/``--up``):

    send IMEI JSON                    cloud -> unit data (XGC: DATA_PACK; quec: a downlink)
    config IMEI key=value ...         an XGC configuration push (NOTIFY_CONFIG)
    ota IMEI --url U --version V      an XGC OTA push (NOTIFY_OTA)
    cmd IMEI CODE [--data JSON] [--password P]
                                      a QuecPython command; prints the unit's reply
    watch [IMEI] [--count N] [--timeout S]
                                      print uplinks, states and properties as they arrive

Which units are QuecPython ones the discovery file says (``units``); without it,
``send`` takes ``--quec``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from vdtu.cloud.broker_url import BrokerUrl, parse_broker_url
from vdtu.cloud.xgc_api import (
    TOPIC_ROOT,
    Channel,
    device_topic,
    encode_json,
    parse_topic,
    uplink_json,
)
from vdtu.errors import ConfigError
from vdtu.firmware.quec.commands import CommandCode
from vdtu.firmware.quec.config import PUBLISH_TOPIC, SUBSCRIBE_TOPIC
from vdtu.links.discovery import DISCOVERY_FILE, url_from_discovery
from vdtu.net.mqtt import MqttHub, MqttLink, connect_and_wait

CONNECT_TIMEOUT_S = 10.0
RESTART_CODE = CommandCode.RESTART


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Which broker the console talks to, as whom, and the default project."""

    broker: BrokerUrl
    project: str | None
    units: dict[str, str] | None = None
    """IMEI -> profile (``xgc``, ``quec``) of a running ``vdtu up``; None: not known (a
    broker of the user's own)."""

    def is_quec(self, imei: str) -> bool:
        return self.units is not None and self.units.get(imei) == "quec"

    def check_unit(self, command: str, imei: str | None, *, quec: bool = False) -> str | None:
        """Refuse what cannot reach the unit, before anything is sent.

        Args:
            command: the ``vdtu cloud`` subcommand.
            imei: the unit it addresses (None: every unit, ``watch``).
            quec: ``send --quec`` (the user says the unit is a QuecPython one).

        Returns:
            A note for the user when the units are not known (no discovery file), else None.

        Raises:
            ConfigError: the running fleet has no such unit, or the unit's kind does not
                take ``command`` (``cmd`` is QuecPython-only, ``config`` and ``ota`` XGC-only).
        """
        if imei is None:
            return None
        if self.units is None:
            return (
                f"the units of {self.broker} are not known (no 'vdtu up' discovery file for "
                f"it): IMEI {imei} and its kind (XGC or QuecPython) are not checked"
            )
        profile = self.units.get(imei)
        if profile is None:
            raise ConfigError(
                f"IMEI {imei!r} is not a unit of the running vdtu up; it has "
                f"{_listed_units(self.units)}"
            )
        if profile == "xgc" and (command in QUEC_ONLY or quec):
            wanted = "'--quec'" if command == "send" else f"{command!r}"
            raise _kind_error(imei, XGC_KIND, wanted, QUEC_KIND)
        if profile == "quec" and command in XGC_ONLY:
            raise _kind_error(imei, QUEC_KIND, f"{command!r}", XGC_KIND)
        return None


XGC_ONLY = ("config", "ota")
"""Pushes only an XGC unit takes (on its ``config`` and ``ota`` topics)."""
QUEC_ONLY = ("cmd",)
"""Command codes: only a QuecPython unit takes them."""
XGC_COMMANDS = ("send", *XGC_ONLY)
QUEC_COMMANDS = ("send", *QUEC_ONLY)
XGC_KIND, QUEC_KIND = "an XGC", "a QuecPython"
SHOWN_UNITS = 3
"""How many IMEIs a refusal lists."""


def _listed_units(units: dict[str, str]) -> str:
    shown = [f"{imei} ({profile})" for imei, profile in list(units.items())[:SHOWN_UNITS]]
    more = len(units) - len(shown)
    count = f"{len(units)} unit{'s' if len(units) != 1 else ''}"
    return f"{count}: {', '.join(shown)}" + (f" and {more} more" if more else "")


def _kind_error(imei: str, kind: str, command: str, needed: str) -> ConfigError:
    """``imei`` is ``kind`` (XGC or QuecPython), and ``command`` needs the other kind."""
    takes = QUEC_COMMANDS if kind == QUEC_KIND else XGC_COMMANDS
    names = [f"'{name}'" for name in takes]
    options = ", ".join(names[:-1]) + f" and {names[-1]}"
    hint = ": settings are codes 51..63" if kind == QUEC_KIND else ""
    return ConfigError(
        f"{imei} is {kind} unit; {command} needs {needed} unit ({kind} unit takes {options}{hint})"
    )


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

    async def connect(self) -> None:
        """Connect, or raise ConfigError saying why not."""
        reason = await connect_and_wait(self.link, CONNECT_TIMEOUT_S + 1)
        if reason is not None:
            raise ConfigError(f"cannot connect to {self.target.broker}: {reason}")

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement."""
        acked: asyncio.Future[None] = self.loop.create_future()
        mid = self.link.publish(topic, payload, qos=1)
        if mid is None:
            raise ConfigError(f"not connected to {self.target.broker}")

        def published(done: int) -> None:
            if done == mid and not acked.done():
                acked.set_result(None)

        self.link.on_published = published
        await asyncio.wait_for(acked, 10)

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


def config_payload(pairs: list[str], version: int | None) -> dict[str, Any]:
    """``key=value`` arguments as a config push, values typed like DATA_PACK."""
    settings: dict[str, Any] = {
        "configVersion": version if version is not None else int(time.time() * 1000)
    }
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"config settings are key=value, not {pair!r}")
        typed = uplink_json(f"{key}:{value}")
        settings[key] = typed[key] if isinstance(typed, dict) else value
    return settings


def parse_json_argument(text: str) -> bytes:
    """The JSON the user gave, checked; a plain string must be quoted."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not JSON ({exc.msg}); to send a plain string, quote it: '\"{text}\"'"
        ) from None
    return text.encode()


def _payload_value(payload: bytes) -> Any:
    text = payload.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def describe_message(topic: str, payload: bytes) -> dict[str, Any] | None:
    """A watched message as a record: imei, channel, and the payload (JSON if it is)."""
    quec = _quec_imei(topic)
    if quec is not None:
        return {
            "project": None,
            "imei": quec,
            "channel": "quec-up",
            "payload": _payload_value(payload),
        }
    parsed = parse_topic(topic)
    if parsed is None:
        return None
    project, imei, channel = parsed
    return {
        "project": project,
        "imei": imei,
        "channel": channel.value,
        "payload": _payload_value(payload),
    }


def _quec_imei(topic: str) -> str | None:
    """The IMEI of a QuecPython unit's default publish topic ``quec/<IMEI>/up``."""
    parts = topic.split("/")
    if len(parts) == 3 and PUBLISH_TOPIC.split("/")[::2] == [parts[0], parts[2]]:
        return parts[1]
    return None


def command_message(
    code: int, *, msg_id: int, password: str, data: Any, topic_id: str | None
) -> dict[str, Any]:
    """A QuecPython command as the cloud sends it (docs/spec/quec.md#2.1)."""
    message: dict[str, Any] = {"msg_id": msg_id, "cmd_code": code, "password": password}
    if data is not None:
        message["data"] = data
    if topic_id is not None:
        message["topic_id"] = topic_id
    return message


async def command(console: Console, args: Any, out: TextIO) -> int:
    """``cmd``: send a command to a QuecPython unit and print its reply.

    Returns:
        0 for a reply with status 1, 1 for status 0 or no reply within the timeout.
    """
    imei = args.imei
    down = args.down or SUBSCRIBE_TOPIC.format(imei=imei)
    up = args.up or PUBLISH_TOPIC.format(imei=imei)
    data = None if args.data is None else json.loads(parse_json_argument(args.data))
    msg_id = int(time.time() * 1000)
    message = command_message(
        args.code,
        msg_id=msg_id,
        password=args.password if args.password is not None else imei[-6:],
        data=data,
        topic_id=args.topic_id,
    )
    reply: asyncio.Future[dict[str, Any]] = console.loop.create_future()

    def received(_topic: str, payload: bytes) -> None:
        value = _payload_value(payload)
        if isinstance(value, dict) and value.get("msg_id") == msg_id and not reply.done():
            reply.set_result(value)

    console.link.on_message = received
    await console.subscribe(up)
    await console.publish(down, json.dumps(message).encode())
    if args.code == RESTART_CODE:
        print(f"sent to {down}: code 255 restarts the unit and never answers", file=out)
        return 0
    try:
        answer = await asyncio.wait_for(reply, args.timeout)
    except TimeoutError:
        print(f"no reply on {up} within {args.timeout} s", file=out)
        return 1
    print(json.dumps(answer, ensure_ascii=False), file=out, flush=True)
    return 0 if answer.get("status") == 1 else 1


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
        record = describe_message(topic, payload)
        if record is None or record["channel"] in (
            c.value for c in (Channel.DOWN, Channel.CONFIG, Channel.OTA)
        ):
            return
        seen += 1
        if as_json:
            print(json.dumps(record, ensure_ascii=False), file=out, flush=True)
        else:
            stamp = time.strftime("%H:%M:%S")
            body = json.dumps(record["payload"], ensure_ascii=False)
            print(f"{stamp} {record['imei']} {record['channel']:<13} {body}", file=out, flush=True)
        if count is not None and seen >= count and not finished.done():
            finished.set_result(None)

    console.link.on_message = received
    console.link.subscribe(f"{TOPIC_ROOT}/+/{imei or '+'}/#", qos=1)
    console.link.subscribe(PUBLISH_TOPIC.format(imei=imei or "+"), qos=1)
    try:
        await asyncio.wait_for(finished, timeout_s)
    except TimeoutError:
        return 0 if count is None else 1
    return 0


async def run_cloud_command(args: Any) -> int:
    """Run one ``vdtu cloud`` subcommand; returns the exit code."""
    target = find_target(
        broker=args.broker, ca_file=args.ca_file, project=args.project, pty_dir=args.pty_dir
    )
    note = target.check_unit(
        args.cloud_command, args.imei, quec=args.cloud_command == "send" and args.quec
    )
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
        if args.cloud_command == "cmd":
            return await command(console, args, sys.stdout)
        if args.cloud_command == "send" and (args.quec or target.is_quec(args.imei)):
            payload = parse_json_argument(args.json_payload)
            topic = SUBSCRIBE_TOPIC.format(imei=args.imei)
            await console.publish(topic, payload)
            print(f"sent to {topic}: {payload.decode()}")
            return 0
        project = console.project()
        if args.cloud_command == "send":
            payload = parse_json_argument(args.json_payload)
            topic = device_topic(project, args.imei, Channel.DOWN)
        elif args.cloud_command == "config":
            payload = encode_json(config_payload(args.settings, args.config_version))
            topic = device_topic(project, args.imei, Channel.CONFIG)
        else:
            ota = {
                "fwVersion": args.fw_version,
                "filename": args.filename or Path(args.url.split("?")[0]).name,
                "md5": args.md5,
                "url": args.url,
            }
            payload = encode_json(ota)
            topic = device_topic(project, args.imei, Channel.OTA)
        await console.publish(topic, payload)
        print(f"sent to {topic}: {payload.decode()}")
        return 0
    finally:
        console.close()
