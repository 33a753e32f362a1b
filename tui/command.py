"""``vdtu tui``: start the dashboard, attached to a running fleet or over one it starts.

``vdtu.cli`` parses the arguments and imports this module only when the subcommand runs
(the vdtu package never imports Textual). Attaching finds the API as ``vdtu ctl`` does
(``--pty-dir``'s up.json, or ``--url`` and ``--token``) and checks it answers before the
screen opens, so a wrong directory or token is one line on stderr, not a blank screen.
Without ``--attach`` a ``vdtu up`` child is started (``tui/local.py``) and stopped when
the dashboard quits, also when the terminal closes (SIGHUP) or it is killed with SIGTERM:
those end the app as ``q`` does, so the child is stopped and its directory removed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from tui.app import DashboardApp
from tui.client import ApiError, HttpApi, locate
from tui.local import LocalFleet


async def _check(api: HttpApi) -> None:
    try:
        await api.fleet()
    finally:
        await api.close()


def run_tui(args: argparse.Namespace) -> int:
    """Run the dashboard to its end; returns the exit code (2: no fleet to show)."""
    if not args.attach and (args.url or args.token):
        print("vdtu tui: --url and --token go with --attach", file=sys.stderr)
        return 2
    local: LocalFleet | None = None
    try:
        if args.attach:
            url, token = locate(args.pty_dir, args.url, args.token)
            pty_dir: Path | None = None if args.url else Path(args.pty_dir)
        else:
            local = LocalFleet(units=args.units, profile=args.profile)
            print(f"vdtu tui: starting {args.units} unit(s) in {local.pty_dir}", file=sys.stderr)
            local.spawn()
            url, token = asyncio.run(local.ready())
            pty_dir = local.pty_dir
        asyncio.run(_check(HttpApi(url, token)))
        app = DashboardApp(HttpApi(url, token), pty_dir=pty_dir, owned=local is not None)
        for signum in (signal.SIGHUP, signal.SIGTERM):  # the terminal closed, or kill
            signal.signal(signum, lambda _signum, _frame: app.exit())
        app.run()
    except ApiError as exc:
        print(f"vdtu tui: {exc}", file=sys.stderr)
        return 2
    finally:
        if local is not None:
            local.stop()
    return 0
