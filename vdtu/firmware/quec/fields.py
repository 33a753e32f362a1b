"""The JSON <-> dataclass field mechanism behind ``dtu_config.json``.

How it works:

* Each dataclass field carries, in its metadata (``json_meta``), its JSON name, a
  *reader* and a *writer*. A reader only turns the seed's loose JSON (docs/spec/quec.md#7.1)
  into the field's type (``"8305"`` or ``8305`` -> ``8305``; ``true``, ``1`` or ``"1"`` ->
  ``True``; ``""`` -> ``None``, "the default"), so it fails only on a value of a kind
  the field never takes. The dataclass's ``__post_init__`` then checks ranges and
  cross-field rules with the ``check_*`` functions. So an invalid object cannot
  exist, whether it came from a file, a setting command or Python code.
* ``build`` reads a JSON object into a dataclass: unknown keys are refused with the
  list of allowed keys, missing required keys are named, and each value goes
  through its field's reader. ``dump`` writes the fields back under their JSON
  names, in field order, leaving out an ``omit_default`` field that holds its
  default; ``JsonObject`` gives a dataclass its ``to_json`` this way.
* Every error is a ``ConfigError`` whose message starts with the field's path in
  the file (``conf.1.port``). A reader gets the whole path; a ``check_*`` message
  starts with the field's JSON name, and ``build`` (through ``at_path``) puts the
  object's path in front. ``show`` quotes a bad value: cut to one line, and a list
  or object holding text by its size only, as it may hold a secret.

The dataclasses themselves are in ``serial_schema``, ``channel_schema``,
``modbus_schema`` and ``config`` (the whole file). Pure: the standard library and
vdtu's own pure modules only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import MISSING, Field, dataclass, fields
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from vdtu.errors import ConfigError
from vdtu.json_limits import holds_text

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

INT32_MAX: Final = 2**31 - 1
"""The largest value of the firmware's integer settings (``version``, ``convert``, ...)."""
WHITESPACE_RE: Final = re.compile(r"\s")
"""Any whitespace: names, keys, hosts and URLs must not contain it."""

_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")
_ID_RE = re.compile(r"0|[1-9][0-9]*")


# --- error messages --------------------------------------------------------------------


def show(value: object) -> str:
    """``repr(value)``, cut to 80 characters so a message stays one line; a list or an
    object holding text by its size only, as it may hold a password or a secret."""
    if isinstance(value, list | tuple | dict) and holds_text(value):
        what = "a JSON object with" if isinstance(value, dict) else "a list of"
        noun = "keys" if isinstance(value, dict) else "items"
        return f"{what} {len(value)} {noun} (not shown)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def join_path(path: str, key: object) -> str:
    """The path of ``key`` inside the value at ``path`` (``conf`` + ``1`` -> ``conf.1``)."""
    return f"{path}.{key}" if path else str(key)


def label(path: str) -> str:
    """``path`` as a message names it; the whole file is ``dtu_config``."""
    return path or "dtu_config"


@contextmanager
def at_path(path: str) -> Iterator[None]:
    """Put ``path`` in front of the messages of errors raised by a constructor."""
    try:
        yield
    except ConfigError as exc:
        if not path:
            raise
        raise ConfigError(f"{path}.{exc}") from exc


# --- readers: loose JSON -> typed values ----------------------------------------------

Reader = Callable[[str, object], Any]
"""Turns a raw JSON value at a path into a field's type, or raises ``ConfigError``."""
Writer = Callable[[Any], object]
"""Turns a field's value into its JSON form."""


def read_int(path: str, raw: object) -> int:
    """An integer: a JSON number or a string of digits."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()):
        return int(raw.strip())
    raise ConfigError(
        f"{path} must be an integer (a number or a string of digits), not {show(raw)}"
    )


def read_optional_int(path: str, raw: object) -> int | None:
    """An integer as ``read_int`` reads it, or ``None`` for ``""`` (the default)."""
    if isinstance(raw, str) and not raw.strip():
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()):
        return int(raw.strip())
    raise ConfigError(
        f'{path} must be an integer (a number or a string of digits), or "" for the default; '
        f"not {show(raw)}"
    )


def read_json_int(path: str, raw: object) -> int:
    """A JSON integer only (the fields vdtu adds, which have no loose seed form)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise ConfigError(f"{path} must be a JSON integer, not {show(raw)}")


def read_number(path: str, raw: object) -> float:
    """A JSON number of seconds."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    raise ConfigError(f"{path} must be a number of seconds, not {show(raw)}")


_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})


def read_flag(path: str, raw: object) -> bool:
    """A switch: ``true``/``false``, ``0``/``1``, ``"0"``/``"1"`` or ``"true"``/``"false"``."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ConfigError(f'{path} must be true/false, 0/1, "0"/"1" or "true"/"false"; not {show(raw)}')


def read_flag_or_empty(path: str, raw: object) -> bool:
    """A switch as ``read_flag`` reads it, ``""`` meaning False."""
    if isinstance(raw, str) and not raw.strip():
        return False
    return read_flag(path, raw)


def _unicode(path: str, text: str, *, secret: bool = False) -> str:
    """``text`` if it can be written as UTF-8 (a JSON ``\\ud800`` escape gives a lone
    surrogate, which no file, topic or packet can carry)."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        shown = "value not shown" if secret else f"character {exc.start}"
        raise ConfigError(
            f"{path} must be valid Unicode text: it holds a lone surrogate ({shown})"
        ) from None
    return text


def read_str(path: str, raw: object) -> str:
    """A string, kept as it is."""
    if isinstance(raw, str):
        return _unicode(path, raw)
    raise ConfigError(f"{path} must be a string, not {show(raw)}")


def read_token(path: str, raw: object) -> str:
    """A name, key or host: a string with surrounding whitespace dropped."""
    return read_str(path, raw).strip()


def read_secret(path: str, raw: object) -> str:
    """A string that no message quotes."""
    if isinstance(raw, str):
        return _unicode(path, raw, secret=True)
    raise ConfigError(f"{path} must be a string, not a {type(raw).__name__} (value not shown)")


def read_secret_token(path: str, raw: object) -> str:
    """A secret with surrounding whitespace dropped."""
    return read_secret(path, raw).strip()


def read_id(path: str, raw: object) -> str:
    """A channel, UART or topic id: ``"2"`` or ``2`` -> ``"2"`` (checked later by ``check_id``)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, str):
        return raw
    raise ConfigError(
        f"{path} must be a string of digits such as '1' (or a number), not {show(raw)}"
    )


def read_optional_id(path: str, raw: object) -> str | None:
    """An id as ``read_id`` reads it, or ``None`` for JSON ``null``."""
    return None if raw is None else read_id(path, raw)


def read_object(path: str, raw: object) -> Mapping[str, object]:
    """A JSON object with string keys."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{label(path)} must be a JSON object, not {show(raw)}")
    keys = [key for key in raw if not isinstance(key, str)]
    if keys:
        raise ConfigError(f"{label(path)}: keys must be strings, not {keys!r}")
    return cast("Mapping[str, object]", raw)


def read_list(path: str, raw: object) -> list[object]:
    """A JSON list."""
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"{path} must be a JSON list, not {show(raw)}")
    return list(raw)


_E = TypeVar("_E", bound=StrEnum)


def enum_reader(
    kind: type[_E], *, fold_case: bool = False, hints: Mapping[str, str] | None = None
) -> Reader:
    """Reads a value of ``kind`` (in any case if ``fold_case``); ``hints`` explain near misses."""
    allowed = [member.value for member in kind]

    def read(path: str, raw: object) -> _E:
        if isinstance(raw, str):
            text = raw.strip().lower() if fold_case else raw
            if text in allowed:
                return kind(text)
        hint = (hints or {}).get(raw) if isinstance(raw, str) else None
        extra = f" ({hint})" if hint else ""
        raise ConfigError(f"{path} must be one of {allowed}, not {show(raw)}{extra}")

    return read


# --- the JSON metadata of fields, and the generic reader and writer -------------------


@dataclass(frozen=True, slots=True)
class JsonField:
    """How one dataclass field appears in the file."""

    name: str
    read: Reader
    write: Writer
    omit_default: bool
    """Leave the key out of ``to_json`` when the value is the field's default."""


def same(value: object) -> object:
    """The writer of a field whose JSON form is its value."""
    return value


def json_meta(
    name: str, read: Reader, write: Writer = same, *, omit_default: bool = False
) -> dict[str, JsonField]:
    """A field's metadata: its JSON ``name``, ``read`` (loose -> typed) and ``write``."""
    return {"json": JsonField(name, read, write, omit_default)}


def json_fields(kind: type[DataclassInstance]) -> list[tuple[Field[Any], JsonField]]:
    """The fields of ``kind`` that have a JSON form, with that form, in field order."""
    return [
        (f, cast("JsonField", f.metadata["json"])) for f in fields(kind) if "json" in f.metadata
    ]


def _has_default(item: Field[Any]) -> bool:
    return item.default is not MISSING or item.default_factory is not MISSING


def _default_of(item: Field[Any]) -> object:
    if item.default_factory is not MISSING:
        return item.default_factory()
    return item.default


_D = TypeVar("_D", bound="DataclassInstance")


def build(
    kind: type[_D], path: str, raw: object, *, extra_keys: Collection[str] = (), context: str = ""
) -> _D:
    """Read the JSON object ``raw`` at ``path`` into a ``kind``, naming any bad field.

    Args:
        kind: a dataclass whose fields carry ``json_meta``.
        path: where ``raw`` is in the file (``""``: the whole file).
        raw: the JSON object.
        extra_keys: keys allowed in ``raw`` that are no field (a channel's ``protocol``).
        context: added to the messages about unknown or missing keys.

    Raises:
        ConfigError: the message starts with the path of the bad key or value.
    """
    data = read_object(path, raw)
    specs = json_fields(kind)
    allowed = {spec.name for _, spec in specs} | set(extra_keys)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{label(path)}: unknown keys {unknown}{context}; allowed: {sorted(allowed)}"
        )
    missing = [
        spec.name for item, spec in specs if not _has_default(item) and spec.name not in data
    ]
    if missing:
        raise ConfigError(f"{label(path)}: missing required keys {missing}{context}")
    kwargs = {
        item.name: spec.read(join_path(path, spec.name), data[spec.name])
        for item, spec in specs
        if spec.name in data
    }
    with at_path(path):
        return cast("Callable[..., _D]", kind)(**kwargs)


def dump(obj: DataclassInstance) -> dict[str, Any]:
    """``obj``'s JSON form: each field under its JSON name, in field order."""
    out: dict[str, Any] = {}
    for item, spec in json_fields(type(obj)):
        value = getattr(obj, item.name)
        if spec.omit_default and value == _default_of(item):
            continue
        out[spec.name] = spec.write(value)
    return out


class JsonObject:
    """Gives a config dataclass its ``to_json``."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """This object as ``dtu_config.json`` writes it (the seed's forms: ``"8305"``, ``""``)."""
        return dump(cast("DataclassInstance", self))


def table_reader(kind: type[_D]) -> Reader:
    """Reads a JSON object of ``kind`` objects (``uconf``: UART id -> ``UartConfig``)."""

    def read(path: str, raw: object) -> dict[str, _D]:
        data = read_object(path, raw)
        return {key: build(kind, join_path(path, key), value) for key, value in data.items()}

    return read


def tuple_reader(kind: type[_D]) -> Reader:
    """Reads a JSON list of ``kind`` objects into a tuple."""

    def read(path: str, raw: object) -> tuple[_D, ...]:
        entries = read_list(path, raw)
        return tuple(build(kind, join_path(path, i), entry) for i, entry in enumerate(entries))

    return read


def write_str(value: object) -> str:
    """A value as the seed's string form (``True`` -> ``"1"``, ``8305`` -> ``"8305"``)."""
    return str(int(value)) if isinstance(value, bool) else str(value)


def write_int(value: object) -> int:
    """A switch or an int enum as a JSON integer."""
    return int(cast("int", value))


def write_optional_int(value: int | None) -> int | str:
    """``None`` (the default) as ``""``."""
    return "" if value is None else value


def write_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    """A frozen mapping as a JSON object."""
    return dict(value)


def write_objects(value: Mapping[str, JsonObject]) -> dict[str, Any]:
    """A mapping of objects as a JSON object of their JSON forms."""
    return {key: item.to_json() for key, item in value.items()}


def write_list(value: tuple[JsonObject, ...]) -> list[dict[str, Any]]:
    """A tuple of objects as a JSON list of their JSON forms."""
    return [item.to_json() for item in value]


# --- checks on typed values (messages start with the field's JSON name) ---------------


def check_range(name: str, value: float, low: float, high: float, unit: str = "") -> None:
    """``low <= value <= high``."""
    if not low <= value <= high:
        raise ConfigError(f"{name} must be {low}..{high}{unit}, not {show(value)}")


def check_choice(name: str, value: object, allowed: Collection[object]) -> None:
    """``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {listed(allowed)}, not {show(value)}")


def listed(allowed: Collection[object]) -> list[object]:
    """``allowed`` as a list, ids in numeric order (``['1', '2', '10']``)."""
    if all(isinstance(item, str) and item.isdigit() for item in allowed):
        return sorted(allowed, key=lambda item: int(cast("str", item)))
    return list(allowed)


def check_id(name: str, value: str, what: str) -> None:
    """``value`` is an id: digits, no sign, no leading zeros."""
    if not _ID_RE.fullmatch(value):
        raise ConfigError(
            f"{name} must be a {what}: a string of digits such as '1', without sign, spaces "
            f"or leading zeros; not {show(value)}"
        )


def check_token(name: str, value: str, *, secret: bool = False, required: bool = True) -> None:
    """``value`` has no whitespace (and is not empty, if ``required``)."""
    shown = "(value not shown)" if secret else show(value)
    if required and not value:
        raise ConfigError(f"{name} must not be empty")
    if WHITESPACE_RE.search(value):
        raise ConfigError(f"{name} must not contain whitespace, not {shown}")


def check_text(name: str, value: str, *, max_chars: int, secret: bool = False) -> None:
    """``value`` is at most ``max_chars`` printable characters."""
    shown = "(value not shown)" if secret else show(value)
    if len(value) > max_chars or not value.isprintable():
        raise ConfigError(f"{name} must be at most {max_chars} printable characters, not {shown}")


def frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of ``value``, for a field of a frozen dataclass (an empty one is
    the same empty table for every field and every unit)."""
    return MappingProxyType(dict(value)) if value else _EMPTY


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
