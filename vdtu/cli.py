"""The ``vdtu`` command.

``vdtu up`` starts units in real time and runs until SIGINT, SIGTERM or SIGHUP;
``vdtu term`` is a host console for one port; ``vdtu tui`` the dashboard (the ``tui``
package, imported only when it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vdtu.cloud.broker import EmbeddedBroker
from vdtu.cloud.broker_auth import credentials_authenticator
from vdtu.cloud.broker_url import BrokerUrl, parse_broker_url
from vdtu.console import OWN_COMMANDS, SEND_FLAGS, run_cloud_command
from vdtu.control.attach import serve
from vdtu.control.ctl import add_ctl, run_ctl
from vdtu.errors import ConfigError
from vdtu.firmware.registry import DEFAULT
from vdtu.fleet import (
    PORTS,
    PROFILES,
    STOP_SIGNALS,
    Fleet,
    FleetConfig,
    default_pty_dir,
    default_state_dir,
    login_url,
)
from vdtu.identity import Identity
from vdtu.io.modbus_config import DEMO_SLAVE, load_slaves
from vdtu.links.sides import SIDES
from vdtu.load.command import run_load
from vdtu.load.options import LoadOptions, build_options, load_options
from vdtu.load.runs import add_collect, run_collect
from vdtu.log import LogLevel, LogRecord
from vdtu.scenario.command import add_scenario, run_scenario_command
from vdtu.term import run_console
from vdtu.uart.pty import BaudMismatch
from vdtu.unit import UnitConfig


def _port_map(
    values: Sequence[str], *, option: str, kind: type[int] | type[str]
) -> dict[str, object]:
    mapping: dict[str, object] = {}
    for value in values:
        port, sep, target = value.partition("=")
        if not sep or port not in PORTS:
            raise ConfigError(
                f"{option} takes PORT=VALUE with PORT one of {', '.join(PORTS)}, not {value!r}"
            )
        try:
            mapping[port] = kind(target)
        except ValueError:
            raise ConfigError(f"{option} {port}: expected a number, not {target!r}") from None
    return mapping


class SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser: an option it does not know is refused with its own usage
    (``usage: vdtu fleet ...``), not the top-level one argparse would print. Its own
    subcommands (``vdtu cloud watch``) are of this class too."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="vdtu", description="Virtual DTU simulator fleet.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=SubcommandParser)

    _add_up(commands)
    _add_fleet(commands)
    _add_cloud(commands)
    _add_broker(commands)
    _add_term(commands)
    add_ctl(commands, default_pty_dir())
    add_scenario(commands)
    _add_tui(commands)
    return parser


def _add_tui(commands: Any) -> None:
    """vdtu tui: the Textual dashboard (the ``tui`` package, imported only when it runs)."""
    tui = commands.add_parser("tui", help="the dashboard: a fleet it starts, or --attach to one")
    tui.add_argument("--attach", action="store_true",
                     help="join a running vdtu up, vdtu fleet or vdtu scenario run "
                          "--realtime through its API")  # fmt: skip
    tui.add_argument("--pty-dir", type=Path, default=default_pty_dir(),
                     help="with --attach: where the run is (its up.json)")  # fmt: skip
    tui.add_argument("--url", default=None, help="with --attach: the API's address (with --token)")
    tui.add_argument("--token", default=None, help="with --attach: the API's token")
    tui.add_argument("--units", type=int, default=1, help="without --attach: units to start")
    tui.add_argument("--profile", choices=PROFILES, default=DEFAULT,
                     help="without --attach: their firmware (xgc, quec or mix)")  # fmt: skip


def _add_up(commands: Any) -> None:
    """vdtu up: units on PTYs in real time."""
    up = commands.add_parser("up", help="start DTU units on PTYs, in real time, until Ctrl-C")
    up.add_argument("--units", type=int, default=1, help="how many units (default 1)")
    up.add_argument(
        "--profile",
        choices=PROFILES,
        default=DEFAULT,
        help=(
            "firmware: xgc (docs/spec/xgc.md), quec (QuecPython DTU, docs/spec/quec.md), "
            "or mix (default xgc)"
        ),
    )
    up.add_argument(
        "--seed", type=int, default=0, help="fleet seed: identities and randomness (default 0)"
    )
    up.add_argument(
        "--pty-dir",
        type=Path,
        default=None,
        help=f"where port links go (default {default_pty_dir()})",
    )
    up.add_argument(
        "--control-port",
        type=int,
        default=0,
        help="the control API's TCP port on 127.0.0.1 (default 0: any free one; up.json names it)",
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"where each unit's flash lives (default {default_state_dir()})",
    )
    up.add_argument("--no-state", action="store_true", help="keep the flash in memory only")
    up.add_argument(
        "--broker",
        default=None,
        metavar="URL",
        help="MQTT broker, mqtt://[user:pass@]host:port or mqtts://...; default: an embedded one",
    )
    up.add_argument("--ca-file", type=Path, default=None, help="CA file (PEM) for an mqtts broker")
    up.add_argument(
        "--unprovisioned",
        action="store_true",
        help="leave units without project info (no-project-info), to test SET_PRJINFO",
    )
    up.add_argument(
        "--json", action="store_true", help="print one JSON object per unit instead of a table"
    )
    up.add_argument(
        "--ports",
        default=",".join(PORTS),
        help="ports that get a PTY, comma-separated (default all three)",
    )
    up.add_argument(
        "--serial-tcp",
        action="append",
        default=[],
        metavar="PORT=TCP",
        help="offer PORT on TCP through socat (unit N on TCP+N), e.g. uart=7000",
    )
    up.add_argument(
        "--serial-device",
        action="append",
        default=[],
        metavar="PORT=DEVICE",
        help="bind unit 0's PORT to a real serial device, e.g. uart=/dev/ttyUSB0",
    )
    up.add_argument(
        "--no-pacing", action="store_true", help="deliver bytes at once instead of at wire speed"
    )
    up.add_argument(
        "--baud-mismatch",
        choices=[m.value for m in BaudMismatch],
        default=BaudMismatch.WARN.value,
        help="what a host at the wrong baud gets (default warn)",
    )
    up.add_argument(
        "--slaves",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON list of Modbus slaves on each unit's RS-485 bus (default: a demo slave at 1)",
    )
    up.add_argument(
        "--outputs", type=int, default=8, help="relay outputs per unit, 0..8 (default 8)"
    )
    up.add_argument("--inputs", type=int, default=8, help="opto inputs per unit, 0..8 (default 8)")
    up.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="label every unit (repeatable): vdtu ctl picks units by it (tag=TAG)",
    )
    up.add_argument(
        "-v", "--verbose", action="store_true", help="print every log record, not only warnings"
    )
    for side in SIDES.values():
        side.add_options(up)


_FLEET_FLAGS: tuple[tuple[str, Any, str], ...] = (
    ("--units", int, "how many units in the whole fleet (default 100)"),
    ("--profile", str, "xgc, quec or mix (default xgc)"),
    ("--broker", str, "mqtt://[user:pass@]host:port (default: the embedded broker)"),
    ("--ca-file", Path, "CA file (PEM) for an mqtts broker"),
    ("--verify-login", str, "user:password of vdtu's verifying subscriber (default: the broker's)"),
    (
        "--ramp",
        str,
        "units powered on per second (default 100), or stages DURATION:TARGET,... such as "
        "30s:1000,1m:1000,10s:5000,30s:0 (ramp, hold, spike, drop)",
    ),
    ("--duration", float, "seconds of sending after the ramp or its last stage (default 60)"),
    ("--interval", float, "mean seconds between two uplinks of one unit, +/-20 %% (default 10)"),
    ("--payload", int, "characters in each uplink (default 64)"),
    ("--seed", int, "fleet seed: identities and randomness (default 0)"),
    ("--report", Path, "write the JSON report here"),
    ("--procs", int, "processes, each a shard of the fleet; reports merged (default 1)"),
    (
        "--shard",
        str,
        "i/n: run only shard i of n of the fleet (other machines run the rest); env:VAR/n "
        "reads i from the environment (env:JOB_COMPLETION_INDEX/n in a Kubernetes Indexed Job)",
    ),
    ("--metrics-port", int, "serve GET /metrics (Prometheus text) on 127.0.0.1:PORT"),
    ("--metrics-host", str, "the address /metrics listens on (default 127.0.0.1; a pod: 0.0.0.0)"),
    (
        "--run-id",
        str,
        "publish the final report to the broker for vdtu fleet collect (needs --broker)",
    ),
    ("--probe-rate", float, "command probes per second (default 1; 0: none)"),
    ("--probe-units", int, "how many units the probe addresses (default 20)"),
    ("--grace", float, "seconds to wait for uplinks in flight after sending stops (default 10)"),
    (
        "--platform-login",
        str,
        "direct (default): XGC units get their MQTT login from the run's own platform in "
        "this process; http: over its HTTP endpoint, one request per unit, as vdtu up does",
    ),
    (
        "--control-dir",
        Path,
        "where the run names its control API (up.json; default: <pty dir>/fleet)",
    ),
    ("--control-port", int, "the control API's port on 127.0.0.1 (default 0: any free one)"),
)


def _add_fleet(commands: Any) -> None:
    """vdtu fleet: a load test."""
    fleet = commands.add_parser(
        "fleet", help="load-test a broker or backend with headless units; prints a JSON report"
    )
    fleet.add_argument("--config", type=Path, default=None, help="options from a YAML file")
    for flag, kind, text in _FLEET_FLAGS:
        fleet.add_argument(flag, type=kind, default=None, help=text)
    fleet.add_argument(
        "--pty", action="store_true", default=None, help="give each unit's uart a PTY"
    )
    fleet.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress line on stderr",
    )
    add_collect(fleet, SubcommandParser)


def _load_options(args: argparse.Namespace) -> LoadOptions:
    names = [flag[2:].replace("-", "_") for flag, _kind, _text in _FLEET_FLAGS]
    given = {name: getattr(args, name) for name in (*names, "pty", "progress")}
    overrides = {name: value for name, value in given.items() if value is not None}
    if args.config is not None:
        return load_options(args.config, overrides)
    return build_options(overrides)


def _add_cloud(commands: Any) -> None:
    """vdtu cloud: the cloud console (``send`` and ``watch``, and each side's own)."""
    cloud = commands.add_parser(
        "cloud", help=f"the cloud console: send, {', '.join(OWN_COMMANDS)}, watch"
    )
    _console_options(cloud, defaults=True)
    cloud.set_defaults(send_flag=None)  # the send flag given (--quec); every subcommand has it
    after = argparse.ArgumentParser(add_help=False)  # the same options after the subcommand
    _console_options(after, defaults=False)
    actions = cloud.add_subparsers(dest="cloud_command", required=True)

    def action(name: str, *, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help, parents=[after])
        return parser

    send = action("send", help="send JSON to a unit (the host gets DATA_PACK)")
    send.add_argument("imei")
    send.add_argument("json_payload", metavar="JSON")
    for option, (_side, flag) in SEND_FLAGS.items():
        send.add_argument(
            option, dest="send_flag", action="store_const", const=option, help=flag.help
        )
    for name, (_side, command) in OWN_COMMANDS.items():
        command.add_arguments(action(name, help=command.help))
    watch = action("watch", help="print uplinks, states and properties")
    watch.add_argument("imei", nargs="?", default=None)
    watch.add_argument("--count", type=int, default=None, help="stop after this many messages")
    watch.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    watch.add_argument("--json", action="store_true", help="one JSON object per message")


def _console_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The console's own options. ``vdtu cloud`` takes them with their defaults; each of its
    subcommands takes them too (``vdtu cloud send IMEI JSON --broker URL``), without
    defaults, so one given before the subcommand is not overwritten."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--broker",
        default=default(None),
        metavar="URL",
        help="broker URL (default: the running vdtu up's)",
    )
    parser.add_argument(
        "--ca-file", type=Path, default=default(None), help="CA file (PEM) for an mqtts broker"
    )
    parser.add_argument(
        "--project", default=default(None), help="ProjectId (default: the running vdtu up's)"
    )
    parser.add_argument(
        "--pty-dir",
        type=Path,
        default=default(default_pty_dir()),
        help="where vdtu up runs (its up.json)",
    )


def _add_broker(commands: Any) -> None:
    """vdtu broker: the embedded broker alone."""
    broker = commands.add_parser("broker", help="run the embedded MQTT broker alone")
    broker.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    broker.add_argument(
        "--port", type=int, default=1883, help="TCP port (default 1883; 0: any free)"
    )
    broker.add_argument("--user", default=None, help="accept only this user name (with --password)")
    broker.add_argument("--password", default=None, help="the password that goes with --user")


def _add_term(commands: Any) -> None:
    """vdtu term: a host console."""
    term = commands.add_parser("term", help="an interactive host console on a unit's port")
    term.add_argument("device", help="the port: a PTY link, a serial device, or socket://host:port")
    term.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    term.add_argument("--sn", default="0", help="the SN field of sent frames (XGC; default 0)")
    term.add_argument("--raw", action="store_true", help="also show the raw bytes")
    term.add_argument(
        "--linger", type=float, default=1.0, help="seconds to wait for replies after stdin ends"
    )
    term.add_argument(
        "--profile",
        choices=list(SIDES),
        default=DEFAULT,
        help=f"the unit's firmware personality (default {DEFAULT})",
    )


def _fleet_config(args: argparse.Namespace) -> FleetConfig:
    """The fleet ``vdtu up`` asked for; a bad option value is a ConfigError naming it."""
    try:
        return _build_fleet_config(args)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _build_fleet_config(args: argparse.Namespace) -> FleetConfig:
    options = {name: side.options(args) for name, side in SIDES.items()}
    slaves = load_slaves(args.slaves) if args.slaves is not None else (DEMO_SLAVE,)
    template = UnitConfig(
        identity=Identity.for_unit(args.seed, 0),
        slaves=slaves,
        pacing=not args.no_pacing,
        outputs=args.outputs,
        inputs=args.inputs,
        tags=tuple(args.tag),
    )
    ports = tuple(p.strip() for p in args.ports.split(",") if p.strip())
    return FleetConfig(
        units=args.units,
        seed=args.seed,
        pty_dir=args.pty_dir or default_pty_dir(),
        state_dir=None if args.no_state else (args.state_dir or default_state_dir()),
        ports=ports,
        serial_tcp={
            k: int(str(v))
            for k, v in _port_map(args.serial_tcp, option="--serial-tcp", kind=int).items()
        },
        serial_devices={
            k: str(v)
            for k, v in _port_map(args.serial_device, option="--serial-device", kind=str).items()
        },
        baud_mismatch=BaudMismatch(args.baud_mismatch),
        broker=None if args.broker is None else parse_broker_url(args.broker, ca_file=args.ca_file),
        provision=not args.unprovisioned,
        template=template,
        options={name: given for name, given in options.items() if given is not None},
        profile=args.profile,
    )


def _print_table(fleet: Fleet, control_url: str) -> None:
    ports = fleet.config.ports
    tcp = tuple(fleet.config.serial_tcp)
    print(
        f"{'unit':<6} {'profile':<7} {'imei':<16} {'iccid':<21} "
        + " ".join(f"{p:<28}" for p in ports)
        + "".join(f" {'tcp ' + p:<22}" for p in tcp)
    )
    for unit_id in range(len(fleet.units)):
        row = fleet.describe(unit_id)
        print(
            f"{row['name']:<6} {row['profile']:<7} {row['imei']:<16} {row['iccid']:<21} "
            + " ".join(f"{row['ports'].get(p, ''):<28}" for p in ports)
            + "".join(f" {row['tcp'][p]:<22}" for p in tcp)
        )
    print(f"broker {fleet.broker_url}  project {fleet.project_id}  Ctrl-C stops.")
    console = fleet.console_login()
    print(f"console {login_url(console)}  (vdtu cloud's login; see every unit's traffic with:)")
    print(f"  {mosquitto_sub_line(console, fleet.watch_topics())}")
    where = (
        "" if fleet.config.pty_dir == default_pty_dir() else f" --pty-dir {fleet.config.pty_dir}"
    )
    print(f"control {control_url}  (faults and pokes: vdtu ctl{where} units)", flush=True)


def mosquitto_sub_line(url: BrokerUrl, topics: Sequence[str]) -> str:
    """A ``mosquitto_sub`` command line that logs in to ``url`` and prints ``topics`` verbosely."""
    words = ["mosquitto_sub", "-h", url.host, "-p", str(url.port)]
    if url.username is not None:
        words += ["-u", url.username]
    if url.password is not None:
        words += ["-P", url.password]
    if url.tls:
        words += ["--cafile", str(url.ca_file)] if url.ca_file else ["--capath", "/etc/ssl/certs"]
    for topic in topics:
        words += ["-t", topic]
    return shlex.join([*words, "-v"])


async def _up(args: argparse.Namespace) -> int:
    config = _fleet_config(args)
    threshold = LogLevel.TRACE if args.verbose else LogLevel.WARN

    def sink(unit: str, record: LogRecord) -> None:
        if record.level >= threshold:
            print(f"{unit} {record.format()}", file=sys.stderr, flush=True)

    loop = asyncio.get_running_loop()
    fleet = Fleet(loop, config, sink=sink)
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)

    def crashed(exc: Exception) -> None:
        trace = "".join(traceback.format_exception(exc))
        print(
            f"vdtu: the simulation crashed and was stopped:\n{trace}", file=sys.stderr, flush=True
        )
        stop.set()

    fleet.clock.on_crash.append(crashed)
    await fleet.start()
    try:
        server, handle = await serve(fleet, port=args.control_port)
    except BaseException:
        await fleet.close()
        raise
    if fleet.took_over is not None:
        print(
            f"vdtu: INFO taking over --pty-dir {config.pty_dir}: removed the {fleet.took_over}",
            file=sys.stderr,
            flush=True,
        )
    try:
        if args.json:
            for unit_id in range(len(fleet.units)):
                print(json.dumps(fleet.describe(unit_id)))
            sys.stdout.flush()
        else:
            _print_table(fleet, server.url)
        await stop.wait()
    finally:
        handle.close()
        await server.stop()
        await fleet.close()
    return 1 if fleet.clock.crashed is not None else 0


async def _broker(args: argparse.Namespace) -> int:
    if (args.user is None) != (args.password is None):
        raise ConfigError("--user and --password go together")
    authenticator = (
        credentials_authenticator(args.user, args.password) if args.user is not None else None
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    async with EmbeddedBroker(
        host=args.host, port=args.port, authenticator=authenticator
    ) as broker:
        print(f"embedded broker on {broker.url}; Ctrl-C stops.", flush=True)
        await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vdtu`` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            return asyncio.run(_up(args))
        if args.command == "cloud":
            return asyncio.run(run_cloud_command(args))
        if args.command == "broker":
            return asyncio.run(_broker(args))
        if args.command == "fleet":
            if args.fleet_command == "collect":
                return asyncio.run(run_collect(args))
            return asyncio.run(run_load(_load_options(args)))
        if args.command == "ctl":
            return asyncio.run(run_ctl(args))
        if args.command == "scenario":
            return run_scenario_command(args)
        if args.command == "tui":
            from tui.command import run_tui  # noqa: PLC0415 (Textual only when the dashboard runs)

            return run_tui(args)
        return asyncio.run(
            run_console(
                args.device,
                baud=args.baud,
                sn=args.sn,
                raw=args.raw,
                linger_s=args.linger,
                profile=args.profile,
            )
        )
    except ConfigError as exc:
        print(f"vdtu: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
