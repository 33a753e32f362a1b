"""Where a scenario run is: each step's state, the waits' and expectations' verdicts.

``Progress`` is told by ``ScenarioRun`` when a step starts acting or waiting and when it
is done (or failed: a wait that timed out, units that refused it), when an expectation
got its verdict (a state expectation with ``at`` at that time, the rest at the end),
and when the run reaches its end and finishes. Each change goes to the listeners (the
control API's event stream, as ``scenario`` events) and ``view`` gives the whole
picture (``GET /v1/scenario``): the timeline with each step's state, the current steps,
and every expectation with ``pass``, ``fail`` or ``pending`` and its evidence; a pending
one also says how it stands now, checked when asked (``so_far``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vdtu.scenario.report import sim_clock
from vdtu.scenario.schema import Scenario, Step

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
"""A step's states."""

Listener = Callable[[dict[str, Any]], None]
Verdict = tuple[bool, str]


def when(step: Step) -> str:
    """When a step runs, as the file says it (``at 1:00``, ``after 5 s``, ``every 10 s``)."""
    if step.every is not None:
        return f"every {step.every:g} s from {sim_clock(step.start)}"
    if step.at is not None:
        return f"at {sim_clock(step.at)}"
    return f"after {step.after or 0:g} s"


def what(step: Step) -> str:
    """What a step does, in a few words (``fault link-reset for 30 s``, ``wait for state
    connected, at most 30 s``)."""
    wait = step.wait
    if wait is not None:
        if wait.state is not None:
            condition = f"state {wait.state}"
        else:
            kind = "serial" if wait.serial is not None else "uplink" if wait.uplink else "message"
            condition = f"a {kind} /{wait.serial or wait.uplink or wait.message}/"
        return f"wait for {condition}, at most {wait.timeout:g} s"
    value = getattr(step, step.action)
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    if step.fault is not None and step.lasting is not None:
        text += f" for {step.lasting:g} s"
    return f"{step.action} {text}"[:120]


@dataclass(slots=True)
class StepProgress:
    """One step of the timeline and how far it got."""

    index: int
    step: Step
    state: str = PENDING
    started: float | None = None
    ended: float | None = None
    runs: int = 0
    """Times it acted (an ``every`` step's repeats)."""
    detail: str = ""
    """A wait's evidence, or why the step failed."""

    def view(self) -> dict[str, Any]:
        step = self.step
        return {
            "index": self.index,
            "when": when(step),
            "action": step.action,
            "what": what(step),
            "select": step.select if step.wait is None else step.wait.select,
            "state": self.state,
            "started": self.started,
            "ended": self.ended,
            "runs": self.runs,
            "detail": self.detail,
        }


class Progress:
    """A run's progress (see the module comment).

    Args:
        scenario: the scenario run.
        seed: its seed.
        now: the run's sim time.
    """

    def __init__(self, scenario: Scenario, *, seed: int, now: Callable[[], float]) -> None:
        self.scenario = scenario
        self.seed = seed
        self.now = now
        self.steps = [StepProgress(index, step) for index, step in enumerate(scenario.steps)]
        self.verdicts: dict[int, Verdict] = {}
        """Expectations decided, by their index."""
        self.phase = RUNNING
        """``running``, ``grace`` (the end reached, what is in flight lands) or ``finished``."""
        self.passed: bool | None = None
        self.listeners: list[Listener] = []

    def _tell(self, what: str, data: dict[str, Any]) -> None:
        event = {"what": what, "sim_time": self.now()} | data
        for listener in self.listeners:
            listener(event)

    def started(self, index: int) -> None:
        """Step ``index`` starts acting or waiting (again, for an ``every`` step)."""
        entry = self.steps[index]
        entry.runs += 1
        if entry.state == RUNNING:
            return
        entry.state, entry.started = RUNNING, self.now()
        self._tell("step", {"step": index, "state": RUNNING})

    def ended(self, index: int, *, failed: str | None = None, detail: str = "") -> None:
        """Step ``index`` is done, or failed saying why."""
        entry = self.steps[index]
        entry.state, entry.ended = (DONE if failed is None else FAILED), self.now()
        entry.detail = failed or detail
        self._tell("step", {"step": index, "state": entry.state, "detail": entry.detail})

    def decided(self, index: int, verdict: Verdict) -> None:
        """Expectation ``index`` has its verdict."""
        if self.verdicts.get(index) == verdict:
            return  # a state expectation with ``at``, decided then, is checked again at the end
        self.verdicts[index] = verdict
        status = "pass" if verdict[0] else "fail"
        self._tell("expectation", {"expectation": index, "status": status})

    def winding_down(self) -> None:
        """The end is reached: the hosts stop, what is in flight lands."""
        self.phase = "grace"
        self._tell("phase", {"phase": self.phase})

    def finished(self, passed: bool) -> None:
        """Every expectation is decided; the run is over."""
        self.phase, self.passed = "finished", passed
        self._tell("phase", {"phase": self.phase, "passed": passed})

    def view(self, so_far: Callable[[int], Verdict]) -> dict[str, Any]:
        """The whole picture; ``so_far(index)`` checks a pending expectation now."""
        scenario = self.scenario
        expectations = []
        for index, expectation in enumerate(scenario.expect):
            verdict = self.verdicts.get(index)
            entry = {"index": index, "name": expectation.title, "kind": expectation.kind}
            if verdict is not None:
                status = "pass" if verdict[0] else "fail"
                entry |= {"status": status, "evidence": verdict[1]}
            else:
                holds, evidence = so_far(index)
                entry |= {"status": "pending", "evidence": "", "so_far": evidence,
                          "holds_so_far": holds}  # fmt: skip
            expectations.append(entry)
        running = [entry.index for entry in self.steps if entry.state == RUNNING]
        waiting = [entry.index for entry in self.steps if entry.state == PENDING]
        return {
            "name": scenario.name,
            "description": scenario.description,
            "seed": self.seed,
            "sim_time": self.now(),
            "duration": scenario.duration,
            "phase": self.phase,
            "passed": self.passed,
            "current": running or waiting[:1],
            "steps": [entry.view() for entry in self.steps],
            "expectations": expectations,
        }
