"""Persistent storage of one unit (its flash): a JSON document written atomically.

A DTU keeps what SAVE_KEYS saved, its project info and its settings across a
reboot and across a restart of the vdtu process; re-flashing the firmware erases
it (docs/spec/xgc.md#5.16). ``FileStorage`` writes to a temporary file in the
same directory, fsyncs it, renames it over the old file and fsyncs the directory,
so a crash leaves either the old or the new document, never a torn one.
``MemoryStorage`` keeps the document in memory (headless fleets, tests).

A firmware whose file format is public (the QuecPython DTU's ``dtu_config.json``)
keeps that file as a ``TextFile`` beside the document: ``HostTextFile`` on the host,
where a user may read and edit it, written atomically in the same way, or
``MemoryTextFile``.

A write that fails (a full disk, a read-only file system, an I/O error) raises
``FlashError`` and leaves the old content in place: for the firmware it is a device
condition (the command that wanted the write gets its error reply), never a crash.
The memory variants take ``fail_writes`` (an errno) so tests and faults can make
the flash fail the same way.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any, Protocol

from vdtu.errors import ConfigError, VdtuError


class FlashError(VdtuError):
    """Writing the flash failed; the old content is still in place.

    Args:
        errno_value: the OS error number (``errno.ENOSPC`` for a full disk).
        detail: what failed, for the log.
    """

    def __init__(self, errno_value: int, detail: str) -> None:
        super().__init__(errno_value, detail)
        self.errno = errno_value
        self.detail = detail

    @property
    def reason(self) -> str:
        """A short name for the condition: ``flash-full``, ``flash-read-only``, ``flash-io``."""
        return _REASONS.get(self.errno, "flash-io")

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


_REASONS = {errno.ENOSPC: "flash-full", errno.EDQUOT: "flash-full", errno.EROFS: "flash-read-only"}


def _fail(fail_writes: int | None, what: str) -> None:
    if fail_writes is not None:
        raise FlashError(fail_writes, f"{what}: {os.strerror(fail_writes)}")


class Storage(Protocol):
    """Where a unit's flash lives."""

    def load(self) -> dict[str, Any]:
        """The stored document ({} when nothing was ever saved)."""

    def save(self, document: dict[str, Any]) -> None:
        """Replace the stored document, atomically; ``FlashError`` if it cannot."""

    def erase(self) -> None:
        """Forget everything (re-flash)."""


class MemoryStorage:
    """Flash that lives as long as the process.

    It keeps the document as its compact JSON text, as a file would: a copy that nothing
    outside can change, and about half the memory of the parsed document (a fleet keeps
    one per unit, besides the firmware's own parsed copy).
    """

    __slots__ = ("_text", "fail_writes", "writes")

    def __init__(self) -> None:
        self._text = "{}"
        self.writes = 0
        self.fail_writes: int | None = None
        """An errno: every save raises ``FlashError`` with it (None: writes succeed)."""

    def load(self) -> dict[str, Any]:
        return json.loads(self._text)  # type: ignore[no-any-return]

    def save(self, document: dict[str, Any]) -> None:
        _fail(self.fail_writes, "flash")
        self._text = json.dumps(document, separators=(",", ":"))
        self.writes += 1

    def erase(self) -> None:
        self._text = "{}"


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8): a temporary file, fsync, rename, fsync the directory.

    A crash leaves either the old or the new content, never a torn file. An OS error
    (full disk, read-only, I/O) raises ``FlashError`` with the old content in place.
    """
    try:
        _replace(path, text)
    except OSError as exc:
        raise FlashError(exc.errno or errno.EIO, f"{path}: {exc.strerror or exc}") from exc


def _replace(path: Path, text: str) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileStorage:
    """Flash kept in a JSON file.

    Args:
        path: the file; its directory is created when first written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writes = 0

    def load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.path}: not valid JSON ({exc})") from exc
        if not isinstance(document, dict):
            raise ConfigError(f"{self.path}: expected a JSON object, not {type(document).__name__}")
        return document

    def save(self, document: dict[str, Any]) -> None:
        write_atomically(
            self.path, json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True)
        )
        self.writes += 1

    def erase(self) -> None:
        self.path.unlink(missing_ok=True)


class TextFile(Protocol):
    """One named file of a unit's flash, kept as text (``dtu_config.json``)."""

    @property
    def path(self) -> Path | None:
        """Where it lives on the host (None: in memory)."""

    def read(self) -> str | None:
        """The content (None when the file does not exist)."""

    def write(self, text: str) -> None:
        """Replace the content, atomically; ``FlashError`` if it cannot."""

    def erase(self) -> None:
        """Delete the file."""


class MemoryTextFile:
    """A flash file that lives as long as the process.

    It keeps its text zlib-compressed (a QuecPython unit's ``dtu_config.json``: 1012 bytes
    as a ``str``, 469 compressed; a fleet keeps one per unit and reads it at power-on).
    """

    __slots__ = ("_data", "fail_writes", "writes")

    def __init__(self, text: str | None = None) -> None:
        self._data = None if text is None else _compressed(text)
        self.writes = 0
        self.fail_writes: int | None = None
        """An errno: every write raises ``FlashError`` with it (None: writes succeed)."""

    @property
    def path(self) -> Path | None:
        return None

    def read(self) -> str | None:
        return (
            None
            if self._data is None
            else zlib.decompress(self._data).decode(errors="surrogatepass")
        )

    def write(self, text: str) -> None:
        _fail(self.fail_writes, "flash file")
        self._data = _compressed(text)
        self.writes += 1

    def erase(self) -> None:
        self._data = None


def _compressed(text: str) -> bytes:
    """``text`` as it is kept: any ``str`` comes back the same, a lone surrogate too."""
    return zlib.compress(text.encode(errors="surrogatepass"), zlib.Z_BEST_COMPRESSION)


class HostTextFile:
    """A flash file kept as a file on the host, which a user may also edit.

    Args:
        path: the file; its directory is created when first written.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self.writes = 0

    @property
    def path(self) -> Path | None:
        return self._path

    def read(self) -> str | None:
        try:
            return self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write(self, text: str) -> None:
        write_atomically(self._path, text)
        self.writes += 1

    def erase(self) -> None:
        self._path.unlink(missing_ok=True)
