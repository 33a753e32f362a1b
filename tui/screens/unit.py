"""One unit: its snapshot in panels, its serial and cloud traffic, and what to poke.

The snapshot (``GET /v1/units/{unit}``) is read once a second by a worker and drawn into
the panels (``tui/widgets/panels.py`` renders each part); the signal's history is the
CSQ of each read. Traffic comes from the event stream: on opening, the events the
server's ring still holds for this unit (one non-following request), then what the app
routes here from its own stream (``take_events``), the two joined by sequence number.
The GPIO switches poke an input; a switch the user just flipped is left alone by the
next reads for a moment (the poke is still on its way). The prompt under the serial view
sends a command to the unit as its host would, framed as ``vdtu term`` frames it (the
``host-send`` poke; the unit's reading of it and its answer come back as serial events),
or, with the direction switched, writes a raw line toward the host (the ``host-write``
poke, CR LF added); the one under the cloud view publishes a downlink.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Footer,
    Header,
    Input,
    Label,
    RichLog,
    Select,
    Sparkline,
    Static,
    Switch,
    TabbedContent,
    TabPane,
)

from tui.client import ApiError, Json
from tui.screens.base import DashScreen
from tui.widgets import panels
from tui.widgets.status import StatusLine

INPUTS = 8
PORTS = ("uart", "rs232", "rs485")
TRAFFIC = 2000
"""Traffic lines kept per view."""
PROMPTS = {
    "send": "a command the host sends, framed as vdtu term frames it (e.g. GET_IMEI)",
    "write": "a raw line the unit writes toward its host (\\r \\n \\xNN escapes; CR LF added)",
}
"""The prompt's placeholder for each direction (``host-send`` and ``host-write`` pokes)."""
HOLD_S = 2.0
"""How long a switch the user flipped is not overwritten by a read."""
SERIAL_KINDS = ("to-host", "from-host")
CLOUD_KINDS = ("uplink", "downlink")
TABS = ("overview", "gpio", "serial", "cloud", "bus")


class UnitScreen(DashScreen):
    """A unit's whole state and its traffic."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('overview')", "Overview", show=False),
        Binding("2", "tab('gpio')", "GPIO", show=False),
        Binding("3", "tab('serial')", "Serial", show=False),
        Binding("4", "tab('cloud')", "Cloud", show=False),
        Binding("5", "tab('bus')", "Bus/flash", show=False),
        Binding("p", "power", "Power off/on"),
        Binding("b", "reboot", "Reboot"),
        Binding("c", "clear", "Clear faults"),
        Binding("i", "prompt", "Prompt"),
    ]

    def __init__(self, unit: int, *, live: bool = True) -> None:
        super().__init__()
        self.unit = unit
        self.live = live
        self.snapshot: Json | None = None
        self.signal: deque[float] = deque(maxlen=120)
        self.serial: deque[Json] = deque(maxlen=TRAFFIC)
        self.cloud: deque[Json] = deque(maxlen=TRAFFIC)
        self.last_seq = -1
        self._held: dict[int, float] = {}
        self.ready = False
        """Mounted: the app may route events here."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"unit {self.unit}", id="unit-title")
        with TabbedContent(initial="overview", id="tabs"):
            with TabPane("1 Overview", id="overview"), VerticalScroll():
                with Horizontal(classes="panel-row"):
                    yield Static(id="identity", classes="panel")
                    yield Static(id="sim", classes="panel")
                with Horizontal(classes="panel-row"):
                    with Vertical(classes="panel"):
                        yield Static(id="modem")
                        yield Label("signal (CSQ, one read a second)")
                        yield Sparkline([], id="signal")
                    yield Static(id="power", classes="panel")
                yield Static(id="faults", classes="panel")
            with TabPane("2 GPIO", id="gpio"), VerticalScroll():
                yield Static(id="outputs", classes="panel")
                with Grid(id="inputs"):
                    for index in range(1, INPUTS + 1):
                        yield Label(f"in{index}")
                        yield Switch(id=f"in-{index}", animate=False)
                yield Static(id="analog", classes="panel")
            with TabPane("3 Serial", id="serial"):
                yield RichLog(id="serial-log", max_lines=TRAFFIC, wrap=True, markup=False)
                with Horizontal(classes="prompt-row"):
                    yield Select(
                        [(port, port) for port in PORTS],
                        value="uart",
                        allow_blank=False,
                        id="port",
                        compact=True,
                    )
                    yield Select(
                        [("host → unit", "send"), ("unit → host", "write")],
                        value="send",
                        allow_blank=False,
                        id="direction",
                        compact=True,
                    )
                    yield Input(placeholder=PROMPTS["send"], id="prompt")
            with TabPane("4 Cloud", id="cloud"):
                yield RichLog(id="cloud-log", max_lines=TRAFFIC, wrap=True, markup=False)
                yield Input(
                    placeholder="a downlink payload to publish (JSON or text)", id="downlink"
                )
            with TabPane("5 Bus & flash", id="bus"), VerticalScroll():
                yield Static(id="slaves", classes="panel")
                yield Static(id="lines", classes="panel")
                yield Static(id="flash", classes="panel")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.ready = True
        self.read_history()
        if self.live:
            self.poll_snapshot()
        else:
            self.read_snapshot()

    @work(exclusive=True, group="snapshot")
    async def read_snapshot(self) -> None:
        """Read the unit's snapshot once (a dashboard that is not live)."""
        await self.read_once()

    # -- reading -----------------------------------------------------------------------

    @work(exclusive=True, group="snapshot")
    async def poll_snapshot(self) -> None:
        """Read the unit's snapshot once a second while the screen is open."""
        while True:
            await self.read_once()
            await asyncio.sleep(1.0)

    async def read_once(self) -> None:
        """One read of the snapshot (a failure goes on the title line)."""
        try:
            snapshot = await self.dash.api.unit(str(self.unit))
        except ApiError as exc:
            if self.gone:
                return
            self.query_one("#unit-title", Static).update(
                Text(f"unit {self.unit}: {exc}", style="bold red")
            )
            return
        if not self.gone:
            self.show_snapshot(snapshot)

    @work(exclusive=True, group="history")
    async def read_history(self) -> None:
        """The unit's events still in the server's ring, before the live ones."""
        try:
            history = [e async for e in self.dash.api.events(str(self.unit), follow=False)]
        except ApiError as exc:
            self.notify(f"no history: {exc}", severity="warning")
            return
        if not self.gone:
            self.take_events(history)

    def take_events(self, events: list[Json]) -> None:
        """Add this unit's events (each once, in order) to the traffic views."""
        serial_log = self.query_one("#serial-log", RichLog)
        cloud_log = self.query_one("#cloud-log", RichLog)
        port = self.query_one("#port", Select).value
        for event in sorted(events, key=lambda e: int(e.get("seq", 0))):
            seq = int(event.get("seq", 0))
            if seq <= self.last_seq:
                continue
            self.last_seq = seq
            if event["kind"] in SERIAL_KINDS:
                self.serial.append(event)
                if port in (event["data"].get("port"), Select.NULL):
                    serial_log.write(panels.serial_line(event))
            elif event["kind"] in CLOUD_KINDS:
                self.cloud.append(event)
                cloud_log.write(panels.cloud_line(event))

    def show_snapshot(self, snapshot: Json) -> None:
        """Draw every panel from a snapshot."""
        self.snapshot = snapshot
        csq = (snapshot.get("modem") or {}).get("rssi")
        self.signal.append(float(csq) if isinstance(csq, int | float) else 0.0)
        title = Text(f"unit {self.unit}  {snapshot.get('name', '')}  ", style="bold")
        title.append(panels.phase_text(snapshot))
        self.query_one("#unit-title", Static).update(title)
        ports = None if self.dash.pty_dir is None else self.dash.pty_dir / f"dtu{self.unit}"
        self.query_one("#identity", Static).update(panels.identity(snapshot, ports))
        self.query_one("#sim", Static).update(panels.sim(snapshot))
        self.query_one("#modem", Static).update(panels.modem(snapshot))
        self.query_one("#signal", Sparkline).data = list(self.signal)
        self.query_one("#power", Static).update(panels.power(snapshot))
        self.query_one("#faults", Static).update(panels.active_faults(snapshot))
        self.query_one("#outputs", Static).update(panels.outputs(snapshot))
        self.query_one("#analog", Static).update(panels.analog(snapshot))
        self.query_one("#slaves", Static).update(panels.slaves(snapshot))
        self.query_one("#lines", Static).update(panels.lines(snapshot))
        self.query_one("#flash", Static).update(panels.flash(snapshot))
        inputs = (snapshot.get("gpio") or {}).get("inputs") or {}
        now = time.monotonic()
        for index in range(1, INPUTS + 1):
            if self._held.get(index, 0.0) > now:
                continue
            switch = self.query_one(f"#in-{index}", Switch)
            with switch.prevent(Switch.Changed):
                switch.value = bool(inputs.get(f"in{index}", 0))

    # -- the user ----------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_prompt(self) -> None:
        self.action_tab("serial")
        self.set_focus(self.query_one("#prompt", Input))

    def action_power(self) -> None:
        powered = True if self.snapshot is None else bool(self.snapshot.get("powered"))
        self.poke_worker("power-off" if powered else "power-on", {})

    def action_reboot(self) -> None:
        self.poke_worker("reboot", {})

    def action_clear(self) -> None:
        self.act(self.clear_faults())

    async def clear_faults(self) -> None:
        """Clear every fault of this unit."""
        try:
            answer = await self.dash.api.clear_faults(str(self.unit), None)
        except ApiError as exc:
            self.notify(str(exc), severity="error")
            return
        cleared = answer["cleared"].get(str(self.unit), [])
        self.notify(f"cleared {', '.join(cleared)}" if cleared else "no fault to clear")
        await self.read_once()

    @on(Switch.Changed)
    def _input(self, event: Switch.Changed) -> None:
        if event.switch.id is None or not event.switch.id.startswith("in-"):
            return
        index = int(event.switch.id.removeprefix("in-"))
        self._held[index] = time.monotonic() + HOLD_S
        self.poke_worker("input", {"index": index, "level": int(event.value)})

    @on(TabbedContent.TabActivated, "#tabs")
    def _shown_tab(self) -> None:
        """A log written while its tab was hidden holds its lines until it has a size; draw
        them as soon as it has one."""
        for log in self.query(RichLog):
            self.call_after_refresh(log.refresh)

    @on(Select.Changed, "#port")
    def _port(self) -> None:
        port = self.query_one("#port", Select).value
        log = self.query_one("#serial-log", RichLog)
        log.clear()
        for event in self.serial:
            if event["data"].get("port") == port:
                log.write(panels.serial_line(event))

    @on(Select.Changed, "#direction")
    def _direction(self) -> None:
        direction = str(self.query_one("#direction", Select).value)
        self.query_one("#prompt", Input).placeholder = PROMPTS[direction]

    @on(Input.Submitted, "#prompt")
    def _prompt(self, event: Input.Submitted) -> None:
        if not event.value:
            return
        port = str(self.query_one("#port", Select).value)
        if self.query_one("#direction", Select).value == "send":
            self.act(self.send_poke_done("host-send", {"port": port, "line": event.value}))
        else:
            self.act(self.write_to_host(port, event.value))
        event.input.clear()

    async def write_to_host(self, port: str, line: str) -> None:
        """The ``host-write`` poke; the line goes into the serial view once written (the
        event stream carries what the firmware writes, not what a poke writes)."""
        done = await self.send_poke("host-write", {"port": port, "text": line + "\\r\\n"})
        if done and not self.gone:
            self.query_one("#serial-log", RichLog).write(panels.poked_line(port, line))

    @on(Input.Submitted, "#downlink")
    def _downlink(self, event: Input.Submitted) -> None:
        if not event.value:
            return
        self.poke_worker("downlink", {"payload": event.value})
        event.input.clear()

    def poke_worker(self, action: str, params: dict[str, Any]) -> None:
        """``send_poke`` as a request run to its end (keys and switches)."""
        self.act(self.send_poke_done(action, params))

    async def send_poke_done(self, action: str, params: dict[str, Any]) -> None:
        await self.send_poke(action, params)

    async def send_poke(self, action: str, params: dict[str, Any]) -> bool:
        """One poke of this unit; its refusal or failure is shown as it came. Returns
        whether the unit did it."""
        try:
            answer = await self.dash.api.poke(str(self.unit), action, params)
        except ApiError as exc:
            self.notify(f"{action}: {exc}", severity="error")
            return False
        refused = answer.get("refused", {})
        if refused:
            self.notify(f"{action} refused: {refused.get(str(self.unit))}", severity="warning")
        else:
            self.notify(f"{action} done", timeout=2)
        await self.read_once()
        return not refused
