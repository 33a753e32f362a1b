"""What every dashboard screen shares: the app as ``DashboardApp``, and whether it is gone.

A screen's workers wait for the API; by the time an answer comes the user may have left
the screen (escape) or quit, and its widgets may already be removed. ``gone`` says so,
and a worker that resumes checks it before it draws: the answer is dropped with the
screen it was for. What the user asked for (a fault, a poke, new units) runs as the
app's worker (``act``), not the screen's, so leaving the screen does not cancel it; a
screen's reads (a snapshot, the catalogue) are its own and end with it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from tui.app import DashboardApp


class DashScreen(Screen[None]):
    """A screen of the dashboard."""

    @property
    def dash(self) -> DashboardApp:
        return cast("DashboardApp", self.app)

    @property
    def gone(self) -> bool:
        """Left (popped) or being taken down with the app: nothing to draw into."""
        app = self.app
        return app._exit or self not in app.screen_stack or not self.is_attached

    def act(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a request the user made to its end, whichever screen is shown by then."""
        self.dash.run_worker(work, group="actions")
