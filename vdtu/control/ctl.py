"""``vdtu ctl``: the control API from the command line.

It finds the running ``vdtu up`` the way ``vdtu cloud`` does, through the ``up.json``
in ``--pty-dir`` (its ``control`` entry: the API's address and token), or takes
``--url`` and ``--token``. Each subcommand is one request (``events --follow`` reads a
stream until Ctrl-C). Anything wrong (no running fleet, a wrong token, a bad
selector, an unknown fault kind or parameter) is one line on stderr and exit 2; a
fault or poke some units refused prints a line for each of them and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from vdtu.api_address import api_address
from vdtu.control.selector import SelectorError, parse_selector
from vdtu.errors import ConfigError
from vdtu.faults.catalogue import FaultError, fault_kind, parse_assignments, parse_request

TIMEOUT_S = 30.0
"""How long one request may take (``events --follow`` has no limit)."""


def add_ctl(commands: Any, default_pty_dir: Path) -> None:
    """Add ``vdtu ctl`` and its subcommands to the CLI."""
    ctl = commands.add_parser("ctl", help="steer a running vdtu up: units, faults, pokes, events")
    _where(ctl, default_pty_dir, defaults=True)
    after = argparse.ArgumentParser(add_help=False)
    _where(after, default_pty_dir, defaults=False)
    actions = ctl.add_subparsers(dest="ctl_command", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help, parents=[after])
        return parser

    units = action("units", "one line per unit (id, profile, IMEI, state, CSQ, SIM, faults)")
    units.add_argument("selector", nargs="?", default="all")
    units.add_argument("--json", action="store_true", help="one JSON object per unit")
    show = action("show", "a unit's whole snapshot, as JSON")
    show.add_argument("unit", help="its id or IMEI")
    fault = action("fault", "apply a fault (vdtu ctl kinds lists them) to the selected units")
    fault.add_argument("selector")
    fault.add_argument("kind")
    fault.add_argument("params", nargs="*", metavar="NAME=VALUE")
    fault.add_argument("--for", dest="for_s", type=float, default=None, metavar="SECONDS",
                       help="clear it after this many seconds of sim time")  # fmt: skip
    clear = action("clear", "clear the selected units' faults (of KIND, or all)")
    clear.add_argument("selector")
    clear.add_argument("kind", nargs="?", default=None)
    poke = action(
        "poke", "input, sms, host-send, host-write, downlink, power-off, power-on, reboot"
    )
    poke.add_argument("selector")
    poke.add_argument("action")
    poke.add_argument("params", nargs="*", metavar="NAME=VALUE")
    events = action("events", "the event stream (state, notifications, uplinks, faults)")
    events.add_argument("selector", nargs="?", default="all")
    events.add_argument("--follow", "-f", action="store_true", help="keep reading new events")
    events.add_argument("--json", action="store_true", help="the events as JSON lines")
    add = action("add", "add units to the running fleet")
    add.add_argument("count", type=int, nargs="?", default=1)
    add.add_argument("--tag", action="append", default=[], help="label the new units (repeatable)")
    action("kinds", "the fault catalogue: every kind and its parameters")
    action("fleet", "the fleet in numbers, and its own faults (broker-stop)")


def _where(parser: argparse.ArgumentParser, pty_dir: Path, *, defaults: bool) -> None:
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--pty-dir", type=Path, default=default(pty_dir),
                        help="where the vdtu up runs (its up.json)")  # fmt: skip
    parser.add_argument("--url", default=default(None), help="the API's address (with --token)")
    parser.add_argument("--token", default=default(None), help="the API's token")


def find_api(args: argparse.Namespace) -> tuple[str, str]:
    """The API's URL and token, from ``--url``/``--token`` or the running fleet's up.json."""
    return api_address(Path(args.pty_dir), args.url, args.token)


def _check_locally(args: argparse.Namespace) -> None:
    """Refuse what is wrong before any request (the server checks it again)."""
    try:
        if getattr(args, "selector", None) is not None:
            parse_selector(args.selector)
        if args.ctl_command == "fault":
            parse_request(args.kind, parse_assignments(args.params), args.for_s)
        if args.ctl_command == "clear" and args.kind is not None:
            fault_kind(args.kind)
        if args.ctl_command == "poke":
            parse_assignments(args.params)
    except (SelectorError, FaultError) as exc:
        raise ConfigError(str(exc)) from None


async def run_ctl(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run one ``vdtu ctl`` subcommand; returns the exit code (ConfigError: exit 2)."""
    _check_locally(args)
    url, token = find_api(args)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=None if args.ctl_command == "events" else TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(url, headers=headers, timeout=timeout) as http:
            return await _COMMANDS[args.ctl_command](http, args, out)
    except aiohttp.ClientConnectionError as exc:
        raise ConfigError(f"cannot reach the control API at {url}: {exc}") from None
    except TimeoutError:
        raise ConfigError(f"the control API at {url} did not answer in {TIMEOUT_S:g} s") from None


async def _call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, **query: str
) -> Any:
    async with http.request(method, f"/v1/{path}", json=body, params=query or None) as reply:
        try:
            document = await reply.json(content_type=None)
        except ValueError:
            raise ConfigError(f"the control API answered {reply.status} without JSON") from None
        if reply.status != 200:
            message = document.get("error") if isinstance(document, dict) else None
            raise ConfigError(str(message or f"the control API answered {reply.status}"))
        return document


def _refusals(answer: dict[str, Any], out: TextIO) -> int:
    refused = answer.get("refused", {})
    for unit, reason in refused.items():
        print(f"vdtu ctl: unit {unit} refused: {reason}", file=sys.stderr)
    return 1 if refused else 0


def _ids(ids: list[Any]) -> str:
    return ", ".join(str(i) for i in ids[:20]) + (
        f" and {len(ids) - 20} more" if len(ids) > 20 else ""
    )


async def _units(http: aiohttp.ClientSession, args: argparse.Namespace, out: TextIO) -> int:
    answer = await _call(http, "GET", "units", select=args.selector)
    for row in answer["units"]:
        if args.json:
            print(json.dumps(row), file=out)
            continue
        csq = "-" if row["csq"] is None else row["csq"]
        faults = ",".join(row["faults"]) or "-"
        print(
            f"{row['unit']:>5} {row['profile']:<5} {row['imei']} {row['phase']:<10} "
            f"{row['state']:<22} csq={csq:<3} sim={row['sim']:<11} faults={faults}",
            file=out,
        )
    return 0


async def _show(http: aiohttp.ClientSession, args: argparse.Namespace, out: TextIO) -> int:
    print(json.dumps(await _call(http, "GET", f"units/{args.unit}"), indent=1), file=out)
    return 0


async def _fault(http: aiohttp.ClientSession, args: argparse.Namespace, out: TextIO) -> int:
    body = {"select": args.selector, "kind": args.kind, "params": parse_assignments(args.params),
            "for_s": args.for_s}  # fmt: skip
    answer = await _call(http, "POST", "faults", body)
    applied = answer["applied"]
    if applied:
        lasting = "" if args.for_s is None else f" for {args.for_s:g} s"
        print(f"{args.kind}{lasting} applied to {len(applied)} ({_ids(applied)})", file=out)
    return _refusals(answer, out)


async def _clear(http: aiohttp.ClientSession, args: argparse.Namespace, out: TextIO) -> int:
    answer = await _call(http, "POST", "faults/clear", {"select": args.selector, "kind": args.kind})
    cleared = answer["cleared"]
    if not cleared:
        print("nothing to clear", file=out)
    for unit, keys in cleared.items():
        print(f"{unit}: cleared {', '.join(keys)}", file=out)
    return _refusals(answer, out)


async def _poke(http: aiohttp.ClientSession, args: argparse.Namespace, out: TextIO) -> int:
    body = {"select": args.selector, "action": args.action,
            "params": parse_assignments(args.params)}  # fmt: skip
    answer = await _call(http, "POST", "pokes", body)
    if answer["done"]:
        print(f"{args.action} done on {len(answer['done'])} ({_ids(answer['done'])})", file=out)
    return _refusals(answer, out)


async def _add(http: aiohttp.ClientSession, args: argparse.Namespace, out: TextIO) -> int:
    answer = await _call(http, "POST", "units", {"count": args.count, "tags": args.tag})
    print(f"added {len(answer['added'])} units ({_ids(answer['added'])})", file=out)
    return 0


async def _fleet(http: aiohttp.ClientSession, _args: argparse.Namespace, out: TextIO) -> int:
    summary = await _call(http, "GET", "fleet")
    print(
        " ".join(f"{key} {summary[key]}" for key in ("units", "powered", "connected", "faulted")),
        file=out,
    )
    for fault in summary["fleet_faults"]:
        until = "until cleared" if fault["until"] is None else f"until {fault['until']:.0f} s"
        print(f"fleet fault {fault['kind']} since {fault['since']:.0f} s, {until}", file=out)
    return 0


async def _kinds(http: aiohttp.ClientSession, _args: argparse.Namespace, out: TextIO) -> int:
    for kind in (await _call(http, "GET", "faults/kinds"))["kinds"]:
        params = " ".join(
            f"{p['name']}=" + ("" if p["required"] else f"[{p['default']}]") for p in kind["params"]
        )
        shot = " (one-shot)" if kind["one_shot"] else ""
        print(
            f"{kind['kind']:<21} {kind['layer']:<11} {params}{shot}\n{'':<21} {kind['help']}",
            file=out,
        )
    return 0


async def _events(http: aiohttp.ClientSession, args: argparse.Namespace, out: TextIO) -> int:
    query = {"select": args.selector, "follow": "1" if args.follow else "0"}
    async with http.get("/v1/events", params=query) as reply:
        if reply.status != 200:
            document = await reply.json(content_type=None)
            raise ConfigError(str(document.get("error", reply.status)))
        async for raw in reply.content:
            line = raw.decode().strip()
            if not line:
                continue
            if args.json:
                print(line, file=out, flush=True)
                continue
            print(format_event(json.loads(line)), file=out, flush=True)
    return 0


def format_event(event: dict[str, Any]) -> str:
    """``[   12.345] dtu3  fault  {"kind": "signal", ...}`` (a missed count says so)."""
    if event["kind"] == "missed":
        return f"... {event['data']['count']} events missed (the reader fell behind)"
    who = "fleet" if event["unit"] is None else f"dtu{event['unit']}"
    return f"[{event['at']:10.3f}] {who:<8} {event['kind']:<13} {json.dumps(event['data'])}"


_COMMANDS = {
    "units": _units,
    "show": _show,
    "fault": _fault,
    "clear": _clear,
    "poke": _poke,
    "events": _events,
    "add": _add,
    "kinds": _kinds,
    "fleet": _fleet,
}
