"""The faults screen: any kind of the catalogue, its parameters, a duration, a target.

The catalogue comes from ``GET /v1/faults/kinds`` (read once per app). Highlighting a
kind builds its form: one input per parameter, labelled with its type, what is allowed
and its default. Enter in any field (or the Apply button) checks the fields
(``tui/widgets/forms.py``) and sends ``POST /v1/faults``; the answer (units that took it,
each refusal with its reason) goes into the log below, as does any error. Clear sends
``POST /v1/faults/clear`` for the highlighted kind or for every fault of the target.
The target starts as the dashboard's selection (or the unit it was opened from).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Header, Input, Label, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from tui.client import ApiError, Json
from tui.screens.base import DashScreen
from tui.widgets import forms
from tui.widgets.status import StatusLine


class FaultsScreen(DashScreen):
    """Apply and clear faults."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+t", "target", "Target"),
        Binding("ctrl+k", "clear_kind", "Clear kind"),
        Binding("ctrl+l", "clear_all", "Clear all"),
    ]

    def __init__(self, *, target: str = "") -> None:
        super().__init__()
        self.target = target
        self.kinds: list[Json] = []
        self.kind: Json | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="faults-body"):
            yield OptionList(id="kinds")
            with VerticalScroll(id="fault-form"):
                yield Static("loading the catalogue...", id="kind-help")
                yield Vertical(id="params")
                yield Label("for (seconds of sim time; empty: until cleared)")
                yield Input(placeholder="e.g. 60", id="for", compact=True)
                yield Label("units (a selector: 3, 0-9, all, state=connected, tag=north)")
                yield Input(self.target, placeholder="e.g. 0-9", id="target", compact=True)
                with Horizontal(classes="buttons"):
                    yield Button("Apply", id="apply", variant="error")
                    yield Button("Clear this kind", id="clear-kind")
                    yield Button("Clear all faults", id="clear-all")
        yield RichLog(id="results", max_lines=500, wrap=True)
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.load_kinds()

    @work(exclusive=True, group="kinds")
    async def load_kinds(self) -> None:
        """Fill the list of kinds from the catalogue."""
        try:
            self.kinds = await self.dash.fault_kinds()
        except ApiError as exc:
            if not self.gone:
                self.query_one("#kind-help", Static).update(f"cannot read the catalogue: {exc}")
            return
        if self.gone:
            return
        options = self.query_one("#kinds", OptionList)
        options.clear_options()
        options.add_options(
            Option(f"{kind['kind']:<22} {kind['layer']}", id=kind["kind"]) for kind in self.kinds
        )
        options.highlighted = 0
        options.focus()

    @on(OptionList.OptionHighlighted, "#kinds")
    async def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        await self.show_kind(str(event.option.id))

    @on(OptionList.OptionSelected, "#kinds")
    def _selected(self) -> None:
        fields = self.query("#params Input")
        self.set_focus(fields.first() if fields else self.query_one("#for", Input))

    async def show_kind(self, name: str) -> None:
        """Build the form of one kind."""
        self.kind = next(kind for kind in self.kinds if kind["kind"] == name)
        shot = "  (one-shot: no duration)" if self.kind["one_shot"] else ""
        scope = "  (fleet-wide: target all)" if self.kind["scope"] == "fleet" else ""
        text = Text(name, style="bold")
        text.append(f"  {self.kind['layer']}{shot}{scope}\n{self.kind['help']}")
        self.query_one("#kind-help", Static).update(text)
        box = self.query_one("#params", Vertical)
        await box.remove_children()
        widgets: list[Label | Input] = []
        for spec in self.kind["params"]:
            default = "" if spec["required"] else f"; default {spec['default']}"
            need = "required" if spec["required"] else "optional"
            widgets.append(
                Label(f"{spec['name']} ({spec['type']}, {spec['allowed']}{default}, {need})")
            )
            widgets.append(
                Input(
                    placeholder=str(spec.get("help", "")), id=f"param-{spec['name']}", compact=True
                )
            )
        await box.mount_all(widgets)
        self.query_one("#for", Input).disabled = bool(self.kind["one_shot"])

    def fields(self) -> tuple[str, dict[str, str], float | None]:
        """The target, parameters and duration the form holds.

        Raises:
            forms.FormError: a field that is wrong.
        """
        if self.kind is None:
            raise forms.FormError("pick a kind first")
        params: dict[str, str] = {}
        for spec in self.kind["params"]:
            value = forms.param(spec, self.query_one(f"#param-{spec['name']}", Input).value)
            if value is not None:
                params[spec["name"]] = value
        for_s = None
        if not self.kind["one_shot"]:
            for_s = forms.seconds(self.query_one("#for", Input).value, what="the duration")
        target = forms.selector(self.query_one("#target", Input).value)
        return target, params, for_s

    def _error(self, message: str) -> None:
        self.notify(message, severity="error")
        if not self.gone:
            self.query_one("#results", RichLog).write(f"✗ {message}")

    @on(Button.Pressed, "#apply")
    @on(Input.Submitted)
    def action_apply(self) -> None:
        try:
            target, params, for_s = self.fields()
        except forms.FormError as exc:
            self._error(str(exc))
            return
        assert self.kind is not None
        self.act(self.apply(target, str(self.kind["kind"]), params, for_s))

    async def apply(
        self, target: str, kind: str, params: dict[str, str], for_s: float | None
    ) -> None:
        """``POST /v1/faults`` and its answer in the log."""
        try:
            answer = await self.dash.api.apply_fault(target, kind, params, for_s)
        except ApiError as exc:
            self._error(f"{kind}: {exc}")
            return
        if self.gone:
            return
        lasting = "" if for_s is None else f" for {for_s:g} s"
        summary = forms.report(self.query_one("#results", RichLog), answer, "applied",
                               f"{kind}{lasting} on {target}: applied to")  # fmt: skip
        self.notify(summary, timeout=3)

    @on(Button.Pressed, "#clear-kind")
    def action_clear_kind(self) -> None:
        if self.kind is None:
            self._error("pick a kind first")
            return
        self._clear(str(self.kind["kind"]))

    @on(Button.Pressed, "#clear-all")
    def action_clear_all(self) -> None:
        self._clear(None)

    def _clear(self, kind: str | None) -> None:
        try:
            target = forms.selector(self.query_one("#target", Input).value)
        except forms.FormError as exc:
            self._error(str(exc))
            return
        self.act(self.clear(target, kind))

    async def clear(self, target: str, kind: str | None) -> None:
        """``POST /v1/faults/clear`` and its answer in the log."""
        try:
            answer = await self.dash.api.clear_faults(target, kind)
        except ApiError as exc:
            self._error(str(exc))
            return
        if self.gone:
            return
        cleared: dict[str, Any] = answer.get("cleared") or {}
        log = self.query_one("#results", RichLog)
        if not cleared:
            log.write(f"nothing to clear on {target}")
        for unit, keys in cleared.items():
            log.write(f"{unit}: cleared {', '.join(keys)}")
        for unit, reason in (answer.get("refused") or {}).items():
            log.write(f"  unit {unit} refused: {reason}")
        self.notify(f"cleared on {len(cleared)}", timeout=3)

    def action_target(self) -> None:
        self.set_focus(self.query_one("#target", Input))

    def action_back(self) -> None:
        self.dismiss()
