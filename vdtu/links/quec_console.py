"""The QuecPython units' side of the cloud console: their default topics and ``cmd``.

A QuecPython unit's topics are its default config's ``quec/<IMEI>/down`` (the cloud
sends) and ``quec/<IMEI>/up`` (the unit publishes); they need no project. ``send``
publishes the JSON on ``down``; ``send --quec`` says the unit is a QuecPython one when
the console cannot know (no discovery file). ``cmd IMEI CODE`` sends a command
(docs/spec/quec.md#2.1: ``msg_id`` now in ms, ``cmd_code``, the password, by default
the IMEI's last 6 digits, and ``data``/``topic_id`` when given) on ``down`` (or
``--down``), waits on ``up`` (or ``--up``) for the reply with that ``msg_id`` and
prints it; code 255 restarts the unit, which never answers. ``watch`` takes
``quec/<IMEI>/up`` as the channel ``quec-up``. A QuecPython unit's settings are
command codes 51..63: its refusals say so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any, TextIO

from vdtu.firmware.quec.commands import CommandCode
from vdtu.firmware.quec.config import PUBLISH_TOPIC, SUBSCRIBE_TOPIC
from vdtu.links.console_side import (
    ConsoleCloud,
    ConsoleCommand,
    SendFlag,
    WatchedMessage,
    parse_json_argument,
    payload_value,
)

RESTART_CODE = CommandCode.RESTART
WATCH_CHANNEL = "quec-up"
"""The channel ``watch`` shows a unit's publish topic as."""


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


class Command:
    """``vdtu cloud cmd IMEI CODE``: send a command code and print the unit's reply."""

    __slots__ = ()
    name = "cmd"
    help = "run a command code on a QuecPython unit, print its reply"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("imei")
        parser.add_argument("code", type=int, help="the cmd_code (0..13, 50..63, 255)")
        parser.add_argument("--data", default=None, metavar="JSON", help='the "data" object')
        parser.add_argument(
            "--password",
            default=None,
            help="the unit's password (default: the IMEI's last 6 digits)",
        )
        parser.add_argument("--topic-id", default=None, help="the publish topic id for the reply")
        parser.add_argument(
            "--down", default=None, help="the unit's subscribe topic (default quec/IMEI/down)"
        )
        parser.add_argument(
            "--up", default=None, help="the unit's publish topic (default quec/IMEI/up)"
        )
        parser.add_argument(
            "--timeout", type=float, default=10.0, help="seconds to wait for the reply"
        )

    async def run(self, cloud: ConsoleCloud, args: argparse.Namespace, out: TextIO) -> int:
        """Returns 0 for a reply with status 1 (or code 255, which none follows), 1 for
        status 0 or no reply within the timeout."""
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
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def received(_topic: str, payload: bytes) -> None:
            value = payload_value(payload)
            if isinstance(value, dict) and value.get("msg_id") == msg_id and not reply.done():
                reply.set_result(value)

        cloud.listen(received)
        await cloud.subscribe(up)
        await cloud.publish(down, json.dumps(message).encode())
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


class QuecConsole:
    """The console's side of QuecPython units."""

    __slots__ = ()
    kind = "QuecPython"
    article = "a"
    commands: tuple[ConsoleCommand, ...] = (Command(),)
    send_flag = SendFlag(option="--quec", help="the unit is a QuecPython one (quec/<IMEI>/down)")
    refusal_hint = ": settings are codes 51..63"

    def downlink_topic(self, cloud: ConsoleCloud, imei: str) -> str:
        return SUBSCRIBE_TOPIC.format(imei=imei)

    def job(
        self, project: str | None, imei: str, kind: str, fields: Mapping[str, Any], now_ms: int
    ) -> tuple[str, bytes]:
        if kind == "config":
            raise ValueError(
                "a QuecPython unit takes its settings as command codes 51..63 in a downlink "
                "(docs/spec/quec.md), not as a configuration push"
            )
        raise ValueError(
            "a QuecPython unit's firmware job is command code 62 in a downlink; the OTA offer "
            "is for XGC units"
        )

    def watch_filter(self, imei: str | None) -> str:
        return PUBLISH_TOPIC.format(imei=imei or "+")

    def watched(self, topic: str, payload: bytes) -> WatchedMessage | None:
        parts = topic.split("/")
        if len(parts) == 3 and PUBLISH_TOPIC.split("/")[::2] == [parts[0], parts[2]]:
            return WatchedMessage(None, parts[1], WATCH_CHANNEL, payload)
        return None


QUEC_CONSOLE = QuecConsole()
