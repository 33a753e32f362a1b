"""The fleet model: only changed units become dirty, filters, order, selectors, charts."""

from __future__ import annotations

import pytest

from tests.tui.fake_api import WALL, unit_row
from tui.model import HISTORY, FleetModel, compact


def model_of(units: int) -> FleetModel:
    model = FleetModel()
    model.apply_rows(unit_row(u) for u in range(units))
    return model


def test_only_units_whose_cells_change_become_dirty() -> None:
    model = model_of(5)
    assert model.take_dirty() == {0, 1, 2, 3, 4}
    model.apply_rows(unit_row(u) for u in range(5))
    assert model.take_dirty() == set()
    changed = unit_row(3) | {"csq": 2}
    model.apply_rows([unit_row(2), changed])
    assert model.take_dirty() == {3}
    assert model.units[3].cells[5] == "2"


def test_events_count_uplinks_and_note_when_a_unit_was_last_seen() -> None:
    model = model_of(2)
    model.take_dirty()
    model.apply_events(
        [
            {"seq": 1, "wall": WALL, "unit": 1, "kind": "uplink", "data": {}},
            {"seq": 2, "wall": WALL + 5, "unit": 1, "kind": "uplink", "data": {}},
            {"seq": 3, "wall": WALL + 6, "unit": None, "kind": "metrics",
             "data": {"units": 2, "connected": 1, "faulted": 0,
                      "ack_ms_recent": {"count": 3, "p50": 2.5, "p95": 9.0, "p99": 9.0,
                                        "max": 9.0}}},
            {"seq": 4, "wall": WALL + 7, "unit": 0, "kind": "state",
             "data": {"phase": "off", "state": "off", "was": "connected"}},
            {"seq": 5, "wall": WALL + 8, "unit": None, "kind": "missed", "data": {"count": 42}},
        ]
    )  # fmt: skip
    assert model.take_dirty() == {0, 1}
    assert model.units[1].uplinks == 2
    assert model.units[1].cells[-1] == "12:00:05"
    assert model.units[0].cells[4] == "off off"
    assert model.missed == 42
    assert model.summary["connected"] == 1
    model.sample()
    model.apply_events(
        [
            {
                "seq": 6,
                "wall": WALL + 9,
                "unit": None,
                "kind": "metrics",
                "data": {
                    "ack_ms_recent": {
                        "count": 0,
                        "p50": None,
                        "p95": None,
                        "p99": None,
                        "max": None,
                    }
                },
            }
        ]
    )
    model.sample()
    assert list(model.history["messages/s"]) == [2.0, 0.0]
    assert list(model.history["connected"]) == [1.0, 1.0]
    assert list(model.history["ack p50 ms"]) == [2.5, 0.0]  # no acknowledgement: 0
    assert list(model.history["ack p99 ms"]) == [9.0, 0.0]
    assert model.unmeasured == {"ack p50 ms", "ack p99 ms"}  # labelled -, not 0 ms
    for _ in range(HISTORY + 5):
        model.sample()
    assert len(model.history["connected"]) == HISTORY


def test_filters_and_order() -> None:
    model = model_of(12)
    assert model.ordered("", "connected", "unit", False) == [0, 1, 6, 7]
    assert model.ordered("sim-pull", None, "unit", False) == [2]
    assert model.ordered("quec", None, "unit", True) == [11, 7, 3]
    by_csq = model.ordered("", None, "csq", False)
    assert by_csq[:2] == [4, 10]  # the units whose modem is off (no CSQ) first
    model.toggle(5)
    assert model.ordered("", None, "sel", False)[0] == 5
    assert model.units[5].cells[0] == "●"


def test_a_selection_becomes_the_shortest_selector() -> None:
    assert compact([3, 1, 2, 7, 9, 8, 12]) == "1-3,7-9,12"
    assert compact(range(10_000)) == "0-9999"
    with pytest.raises(ValueError, match="no units selected"):
        compact([])
    with pytest.raises(ValueError, match="select ranges, or type a selector"):
        compact(range(0, 2000, 2))
