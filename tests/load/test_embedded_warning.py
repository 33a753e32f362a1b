"""Before a run, a fleet larger than the embedded broker serves is warned about, naming the
limit and ``--broker`` (``vdtu.load.command.EMBEDDED_UNITS``)."""

from __future__ import annotations

from vdtu.load.command import EMBEDDED_UNITS, warnings
from vdtu.load.options import build_options


def _embedded(values: dict[str, object]) -> list[str]:
    found = warnings(build_options({"duration": 60, **values}))
    return [text for text in found if "embedded broker" in text]


def test_a_fleet_the_embedded_broker_serves_is_not_warned_about() -> None:
    assert _embedded({"units": EMBEDDED_UNITS}) == []


def test_a_larger_fleet_is_warned_about_naming_the_limit_and_broker() -> None:
    found = _embedded({"units": EMBEDDED_UNITS + 1})
    assert len(found) == 1, found
    assert found[0].startswith(f"{EMBEDDED_UNITS + 1} units on the embedded broker")
    assert f"up to about {EMBEDDED_UNITS}" in found[0]
    assert "--broker URL" in found[0]


def test_the_children_of_procs_count_together_on_the_parents_embedded_broker() -> None:
    assert len(_embedded({"units": 1200, "procs": 2})) == 1


def test_a_fleet_on_a_named_broker_is_not_warned_about() -> None:
    assert _embedded({"units": 5000, "broker": "mqtt://127.0.0.1:1883"}) == []
