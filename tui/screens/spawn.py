"""The spawn screen: add units to the running fleet, and switch units off and on.

Adding is ``POST /v1/units`` (a count, tags and a profile: one of the fleet's
``profiles`` from ``GET /v1/fleet``, or "as the fleet gives them out", which alternates
kinds in a ``--profile mix`` fleet). Power is the ``power-off``, ``power-on`` and
``reboot`` pokes on a selector, which starts as the dashboard's selection. Every answer,
refusal and error goes into the log below.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Header, Input, Label, RichLog, Select, Static

from tui.client import ApiError
from tui.screens.base import DashScreen
from tui.widgets import forms
from tui.widgets.status import StatusLine

MAX_ADD = 10_000
"""Units one request may add (docs/control-api.md)."""
FLEETS_OWN = "the fleet's"
"""The profile choice that leaves it to the fleet."""


class SpawnScreen(DashScreen):
    """Add units; power units off, on, or cycle them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+o", "power('power-off')", "Power off"),
        Binding("ctrl+n", "power('power-on')", "Power on"),
        Binding("ctrl+b", "power('reboot')", "Reboot"),
    ]

    def __init__(self, *, target: str = "") -> None:
        super().__init__()
        self.target = target

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="spawn-body"):
            yield Static("Add units (Enter adds)", classes="section")
            with Horizontal(classes="form-row"):
                yield Label("how many")
                yield Input("1", id="count")
                yield Label("profile")
                profiles = self.dash.model.summary.get("profiles") or []
                yield Select(
                    [(FLEETS_OWN, FLEETS_OWN), *((name, name) for name in profiles)],
                    value=FLEETS_OWN,
                    allow_blank=False,
                    id="profile",
                )
                yield Label("tags")
                yield Input(placeholder="e.g. north lab (letters, digits, -_.:)", id="tags")
                yield Button("Add", id="add", variant="primary")
            yield Static("Power (the selected units, or any selector)", classes="section")
            with Horizontal(classes="form-row"):
                yield Label("units")
                yield Input(self.target, placeholder="e.g. 0-9 or all", id="power-target")
                yield Button("Power off", id="power-off", variant="error")
                yield Button("Power on", id="power-on", variant="success")
                yield Button("Reboot", id="reboot")
        yield RichLog(id="results", max_lines=500, wrap=True)
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#count", Input).focus()

    def _error(self, message: str) -> None:
        self.notify(message, severity="error")
        if not self.gone:
            self.query_one("#results", RichLog).write(f"✗ {message}")

    @on(Button.Pressed, "#add")
    @on(Input.Submitted, "#count, #tags")
    def _add(self) -> None:
        try:
            count = forms.count(
                self.query_one("#count", Input).value, low=1, high=MAX_ADD, what="how many"
            )
        except forms.FormError as exc:
            self._error(str(exc))
            return
        tags = self.query_one("#tags", Input).value.replace(",", " ").split()
        chosen = self.query_one("#profile", Select).value
        profile = None if chosen in (FLEETS_OWN, Select.BLANK) else str(chosen)
        self.act(self.add(count, tags, profile))

    async def add(self, count: int, tags: list[str], profile: str | None = None) -> None:
        """``POST /v1/units`` and its answer in the log."""
        try:
            answer = await self.dash.api.add_units(count, tags, profile)
        except ApiError as exc:
            self._error(str(exc))
            return
        if self.gone:
            return
        added = answer.get("added") or []
        span = f"{added[0]}-{added[-1]}" if len(added) > 1 else ", ".join(map(str, added))
        kind = "units" if profile is None else f"{profile} units"
        message = f"added {len(added)} {kind} ({span})"
        self.query_one("#results", RichLog).write(message)
        self.notify(message, timeout=3)

    @on(Button.Pressed, "#power-off, #power-on, #reboot")
    def _button(self, event: Button.Pressed) -> None:
        self.action_power(str(event.button.id))

    @on(Input.Submitted, "#power-target")
    def _target(self) -> None:
        self._error("choose Power off, Power on or Reboot (ctrl+o, ctrl+n, ctrl+b)")

    def action_power(self, action: str) -> None:
        try:
            target = forms.selector(self.query_one("#power-target", Input).value)
        except forms.FormError as exc:
            self._error(str(exc))
            return
        self.act(self.power(target, action))

    async def power(self, target: str, action: str) -> None:
        """One power poke on the target, its answer in the log."""
        try:
            answer = await self.dash.api.poke(target, action, {})
        except ApiError as exc:
            self._error(f"{action}: {exc}")
            return
        if self.gone:
            return
        log = self.query_one("#results", RichLog)
        summary = forms.report(log, answer, "done", f"{action} on {target}: done on")
        self.notify(summary, timeout=3)

    def action_back(self) -> None:
        self.dismiss()
