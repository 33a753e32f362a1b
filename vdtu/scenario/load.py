"""Reading a scenario file: YAML, then the schema, with errors that name the file, line and field.

The text is parsed twice by PyYAML: into values (``safe_load``) for the schema, and into
nodes (``compose``), which keep each key's and item's line, to turn the path of each
schema error (``('steps', 3, 'fault')``) into ``FILE:LINE: steps[3].fault: message``.
Every error of the file is reported at once, in file order.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from vdtu.errors import ConfigError
from vdtu.scenario.schema import Scenario

MAX_FILE_BYTES = 1 << 20
"""The largest scenario file read (1 MiB)."""


class ScenarioError(ConfigError):
    """A scenario file that cannot be run; the message has a line per problem."""


def load_scenario(path: Path) -> Scenario:
    """The scenario in ``path``.

    Raises:
        ScenarioError: the file cannot be read, is not YAML, or breaks the format (one
            line per problem: ``FILE:LINE: field: what is wrong``).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: {len(raw)} bytes; a scenario file is at most 1 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_scenario(text, str(path))


def parse_scenario(text: str, name: str) -> Scenario:
    """The scenario in ``text`` (from a file called ``name``, for the messages)."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{name}:1: a scenario is a mapping (name:, duration:, units:, ...)")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = sorted(
            (_line(root, error["loc"]), _field(error["loc"]), _message(error["msg"]))
            for error in exc.errors()
        )
        lines = [f"{name}:{line}: {field}: {message}" for line, field, message in problems]
        raise ScenarioError("\n".join(dict.fromkeys(lines))) from None


def _message(text: str) -> str:
    return text.removeprefix("Value error, ")


def _field(loc: tuple[int | str, ...]) -> str:
    """``steps[3].fault`` (pydantic's internal union tags left out)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_tag(part):
            out += f".{part}" if out else part
    return out or "(the file)"


def _is_tag(part: str) -> bool:
    return "[" in part or part[:1].isupper() or part.startswith("function-")


def _line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The line of the deepest node on ``loc`` that the file has."""
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = next((pair for pair in node.value if pair[0].value == part), None)
            if found is None:
                if _is_tag(part):
                    continue
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        elif isinstance(part, str) and _is_tag(part):
            continue
        else:
            break
    return line
