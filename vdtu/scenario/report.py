"""A scenario run's report as people and CI read it: a summary, JSON, and JUnit XML.

The report itself is the dict ``ScenarioRun.run`` returns (the JSON file is that
dict). The summary gives each checked thing a PASS or FAIL line with its evidence;
the JUnit file has one test case per checked thing, a failure carrying the evidence,
so a CI server shows which expectation failed and why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from vdtu.storage import write_atomically


def summary(report: dict[str, Any]) -> str:
    """The readable summary: the verdict, then a line per expectation and wait."""
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [
        f"{report['scenario']}: {verdict}  ({report['units']} units, "
        f"{sim_clock(report['sim_s'])} of sim time in {report['wall_s']:g} s, "
        f"seed {report['seed']})"
    ]
    for outcome in report["expectations"]:
        mark = "PASS" if outcome["passed"] else "FAIL"
        lines.append(f"  {mark}  {outcome['name']}: {outcome['evidence']}")
    lines.extend(f"  note  refused: {refusal}" for refusal in report["refused"][:10])
    if len(report["refused"]) > 10:
        lines.append(f"  note  ... and {len(report['refused']) - 10} more refusals")
    lines.append(f"transcript sha256 {report['transcript_sha256']} ({report['events']} events)")
    return "\n".join(lines)


def write_json(path: Path, report: dict[str, Any]) -> None:
    """The report as a JSON file, written atomically."""
    write_atomically(path, json.dumps(report, indent=1) + "\n")


def write_junit(path: Path, report: dict[str, Any]) -> None:
    """The report as JUnit XML: a test suite named after the scenario, a case per check."""
    outcomes = report["expectations"]
    suite = ElementTree.Element(
        "testsuite",
        name=report["scenario"],
        tests=str(len(outcomes)),
        failures=str(sum(not outcome["passed"] for outcome in outcomes)),
        time=f"{report['wall_s']:.3f}",
    )
    properties = ElementTree.SubElement(suite, "properties")
    for key in ("seed", "units", "sim_s", "transcript_sha256"):
        ElementTree.SubElement(properties, "property", name=key, value=str(report[key]))
    for outcome in outcomes:
        case = ElementTree.SubElement(
            suite, "testcase", classname=report["scenario"], name=outcome["name"], time="0"
        )
        if outcome["passed"]:
            ElementTree.SubElement(case, "system-out").text = outcome["evidence"]
        else:
            failure = ElementTree.SubElement(case, "failure", message=outcome["evidence"])
            failure.text = outcome["evidence"]
    ElementTree.indent(suite)
    text = ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)
    write_atomically(path, text + "\n")


def sim_clock(seconds: float) -> str:
    """``H:MM:SS``."""
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
