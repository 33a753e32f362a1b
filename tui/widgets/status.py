"""The status line under every screen: units, events read, missed events, API failures."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    """One line the app rewrites a few times a second (``DashboardApp.status_text``)."""

    _shown = ""

    def show(self, text: str) -> None:
        """Show ``text`` (if it is new); a line saying events were missed gets the warning
        style."""
        if text == self._shown:
            return
        self._shown = text
        self.set_class("missed" in text, "-warning")
        self.update(text, layout=False)
