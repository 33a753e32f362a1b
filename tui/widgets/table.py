"""A DataTable whose cell updates cost the rows that changed, not the whole table.

DataTable's ``update_cell`` bumps one update counter that is part of the key of every
cache the table has: after any update, the next frame rebuilds the list of all rows in
order and their line offsets (O(rows): 10 000 rows at every frame of a busy fleet) and
renders every visible cell again through Rich. A cell update changes neither the order
nor the height of any row (the fleet table's rows are one line), so ``update_rows``
writes the new values and drops only the cached renders of the rows that changed (their
cells, their rows' segments, their renderables) and the composed lines; the counter,
and with it the row order and offsets, stays. Everything else (adding, removing, sorting,
clearing rows, a resize, a style change) goes through DataTable as before and bumps it.

This reaches into DataTable's caches (``_data``, ``_row_locations`` and four render
caches, as Textual 8 has them); the dashboard's tests check that an updated cell is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey


class KeyedTable(DataTable[Any]):
    """``DataTable`` with ``update_rows``: many rows' cells at once, by key."""

    def update_rows(self, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """Put the new values into the cells (row key -> column key -> value) and repaint;
        only the changed rows are rendered again."""
        if not changes:
            return
        rows: set[RowKey] = set()
        indexes: set[int] = set()
        for key, values in changes.items():
            row_key = RowKey(key)
            data = self._data[row_key]
            for column, value in values.items():
                data[ColumnKey(column)] = value
            rows.add(row_key)
            indexes.add(self.get_row_index(row_key))
        # an LRUCache is no dict: it is iterated through keys()
        cells = self._cell_render_cache
        for cell_key in [k for k in cells.keys() if k[0] in rows]:  # noqa: SIM118
            cells.discard(cell_key)
        segments = self._row_render_cache
        for segment_key in [k for k in segments.keys() if k[0] in rows]:  # noqa: SIM118
            segments.discard(segment_key)
        renderables = self._row_renderable_cache
        for index_key in [k for k in renderables.keys() if k[1] in indexes]:  # noqa: SIM118
            renderables.discard(index_key)
        self._line_cache.clear()
        self.refresh()
