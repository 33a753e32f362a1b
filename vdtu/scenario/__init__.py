"""Scripted fault scenarios: the YAML format (``schema``, ``load``), a scenario's world in
virtual time (``world``), its timeline, waits and expectations (``run``), the reports
(``report``) and ``vdtu scenario`` (``command``). docs/scenarios.md describes the format."""
