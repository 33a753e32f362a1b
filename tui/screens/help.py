"""The help screen: every key of every screen, over the screen it was opened from."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

KEYS = """\
# vdtu tui: keys

**Everywhere**: `?` this help · `ctrl+p` command palette · `x` faults · `n` spawn and
power · `r` the scenario run · `escape` back · `q` quit (an attached fleet keeps running;
one the dashboard started is stopped).

**Fleet**: `↑ ↓ PgUp PgDn` move · `enter` open the unit · `space` select the unit ·
`a` select every unit shown · `A` select none · `/` filter by text (id, IMEI, state,
SIM, fault) · `t` next state filter · `s` next sort column · `S` reverse · click a
heading to sort by it. Faults and power act on the selection (or the unit under the
cursor).

**Unit**: `1`-`5` tabs (overview, GPIO, serial, cloud, bus and flash) · `p` power
off/on · `b` reboot · `c` clear the unit's faults · `i` the serial prompt, on the chosen port:
`host → unit` sends a command as the host would, framed as `vdtu term` frames it (the answer
shows decoded), `unit → host` writes a raw line toward the host (`\\r \\n \\xNN` escapes,
CR LF added) · the GPIO
switches drive the inputs · the cloud tab's field publishes a downlink.

**Faults**: `↑ ↓` pick a kind · `enter` fill in its parameters · `enter` in a field
applies · `ctrl+t` the target · `ctrl+k` clear this kind · `ctrl+l` clear every fault
of the target.

**Spawn**: `enter` in *how many* adds units (of the chosen profile) · `ctrl+o` power off ·
`ctrl+n` power on · `ctrl+b` reboot (the units field's selector).

**Scenario** (attached to `vdtu scenario run --realtime`): the timeline, its current
step marked `▶`, each expectation (pass, fail, or pending and how it stands so far) ·
`↑ ↓` move; the highlighted row's whole text is shown below · `tab` the other table.

The status line counts the events read and says how many the dashboard **missed**
(the server's event ring moved on while it was behind). *Uplinks* and *last seen*
count from when the dashboard attached. The charts: connected units, messages (uplinks
and downlinks) a second, faulted units, and the p50 and p99 of the units' uplinks'
publish-to-PUBACK times over each second (a second without one: 0 on the chart, `-`
on the label).
"""


class HelpScreen(ModalScreen[None]):
    """The keys, until escape, ``q`` or ``?``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(KEYS)
