"""Flash storage written atomically, and identities with valid check digits, unique per fleet."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from vdtu.errors import ConfigError
from vdtu.identity import Identity, luhn_check_digit, luhn_valid
from vdtu.storage import FileStorage, FlashError, MemoryStorage, MemoryTextFile


def test_file_storage_round_trip_and_erase(tmp_path: Path) -> None:
    """What is saved is loaded back; erase forgets it; a missing file reads as empty."""
    storage = FileStorage(tmp_path / "u" / "flash.json")
    assert storage.load() == {}
    storage.save({"keys": {"a": "1"}})
    assert FileStorage(tmp_path / "u" / "flash.json").load() == {"keys": {"a": "1"}}
    storage.erase()
    assert storage.load() == {}


def test_a_failed_write_leaves_the_old_document(tmp_path: Path) -> None:
    """If serialising fails half-way, the old file is intact and no temporary file remains."""
    path = tmp_path / "flash.json"
    storage = FileStorage(path)
    storage.save({"keys": {"a": "1"}})
    with pytest.raises(TypeError):
        storage.save({"keys": {"a": object()}})
    assert json.loads(path.read_text()) == {"keys": {"a": "1"}}
    assert [p.name for p in tmp_path.iterdir()] == ["flash.json"]


def test_a_corrupt_flash_file_is_named_in_the_error(tmp_path: Path) -> None:
    """A flash file that is not JSON gives a ConfigError naming the file."""
    path = tmp_path / "flash.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=str(path)):
        FileStorage(path).load()


def test_luhn_on_known_numbers() -> None:
    """The IMEI of docs/spec/xgc.md#5.1 is Luhn-valid; changing its last digit breaks it."""
    assert luhn_valid("867435053362828")
    assert not luhn_valid("867435053362829")
    assert luhn_check_digit("7992739871") == "3"


def test_fleet_identities_are_valid_and_unique() -> None:
    """1000 units of a fleet: IMEIs and ICCIDs Luhn-valid and all distinct; same seed, same ids."""
    identities = [Identity.for_unit(42, unit) for unit in range(1000)]
    assert all(luhn_valid(i.imei) and len(i.imei) == 15 for i in identities)
    assert all(luhn_valid(i.iccid) and len(i.iccid) == 20 for i in identities)
    assert len({i.imei for i in identities}) == 1000
    assert len({i.iccid for i in identities}) == 1000
    assert Identity.for_unit(42, 7) == identities[7]
    assert Identity.for_unit(43, 7) != identities[7]


def test_identity_rejects_a_bad_imei() -> None:
    """An IMEI with a wrong check digit is refused, naming it."""
    with pytest.raises(ValueError, match="867435053362829"):
        Identity(
            imei="867435053362829", iccid="89860012345678901234", imsi="460001234567890", phone="1"
        )


def test_a_full_disk_is_a_flash_error_with_the_old_document_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileStorage(tmp_path / "flash.json")
    storage.save({"a": 1})

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("vdtu.storage.os.fsync", full)
    with pytest.raises(FlashError) as caught:
        storage.save({"a": 2})
    assert caught.value.reason == "flash-full"
    assert str(tmp_path / "flash.json") in str(caught.value)
    monkeypatch.undo()
    assert storage.load() == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["flash.json"]  # no temporary file left


def test_memory_flash_fails_on_demand_and_keeps_its_content() -> None:
    storage = MemoryStorage()
    storage.save({"k": "v"})
    storage.fail_writes = errno.EROFS
    with pytest.raises(FlashError) as caught:
        storage.save({"k": "w"})
    assert caught.value.reason == "flash-read-only"
    assert storage.load() == {"k": "v"}
    text = MemoryTextFile("old")
    text.fail_writes = errno.EIO
    with pytest.raises(FlashError, match="flash-io"):
        text.write("new")
    assert text.read() == "old"
