"""Checking what the user typed before a request goes out, with a message that says why.

The server checks everything again (its 400 names the problem too); checking here first
means the common slips (a selector term that is not one, a word where a number goes, a
required parameter left empty) are told at once, next to the field, without a round trip.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import RichLog

from vdtu.control.selector import SelectorError, parse_selector


class FormError(ValueError):
    """What is wrong with a field; ``str()`` is the message to show."""


def selector(text: str) -> str:
    """The selector, stripped, if it parses.

    Raises:
        FormError: empty, or the selector's own message for a bad term.
    """
    text = text.strip()
    if not text:
        raise FormError("say which units: a selector such as 3, 0-9, all, state=connected")
    try:
        parse_selector(text)
    except SelectorError as exc:
        raise FormError(str(exc)) from None
    return text


def param(spec: dict[str, Any], text: str) -> str | None:
    """A parameter's value as typed (the API parses strings), ``None`` if left empty.

    Raises:
        FormError: a required parameter left empty, or not a number where one goes.
    """
    name, kind, allowed = spec["name"], spec["type"], spec.get("allowed", "")
    text = text.strip()
    if not text:
        if spec.get("required"):
            raise FormError(f"{name} is required ({allowed})")
        return None
    try:
        if kind == "int":
            int(text)
        elif kind == "float":
            float(text)
    except ValueError:
        raise FormError(f"{name} must be {allowed}, not {text!r}") from None
    return text


def seconds(text: str, *, what: str) -> float | None:
    """A duration in seconds, ``None`` if left empty.

    Raises:
        FormError: not a number above 0.
    """
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise FormError(f"{what} is a number of seconds, not {text!r}") from None
    if not value > 0:
        raise FormError(f"{what} must be above 0 s, not {text}")
    return value


def count(text: str, *, low: int, high: int, what: str) -> int:
    """A whole number in ``low..high``.

    Raises:
        FormError: not one.
    """
    try:
        value = int(text.strip())
    except ValueError:
        raise FormError(f"{what} is a whole number in {low}..{high}, not {text!r}") from None
    if not low <= value <= high:
        raise FormError(f"{what} must be in {low}..{high}, not {value}")
    return value


def report(log: RichLog, answer: dict[str, Any], done_key: str, what: str) -> str:
    """Write an answer's units done and refused into ``log``; returns the summary line."""
    done = answer.get(done_key) or []
    if isinstance(done, dict):
        done = list(done)
    shown = ", ".join(str(u) for u in done[:20]) + (
        f" and {len(done) - 20} more" if len(done) > 20 else ""
    )
    summary = f"{what} {len(done)} ({shown})" if done else f"{what} no unit"
    log.write(summary)
    for unit, reason in (answer.get("refused") or {}).items():
        log.write(f"  unit {unit} refused: {reason}")
    return summary
