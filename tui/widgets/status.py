"""The status line under every screen: units, events read, missed events, API failures."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    """One line the app rewrites a few times a second (``DashboardApp.status_text``)."""

    def show(self, text: str) -> None:
        """Show ``text``; a line saying events were missed gets the warning style."""
        self.set_class("missed" in text, "-warning")
        self.update(text)
