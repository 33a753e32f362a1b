"""Where a run's control API is: given outright, or read from the discovery file, with one
clear line for each way that can go wrong (vdtu ctl and the dashboard share it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdtu.api_address import DISCOVERY_FILE, api_address
from vdtu.errors import ConfigError


def test_an_address_given_outright_is_taken_as_it_is() -> None:
    assert api_address(None, "http://127.0.0.1:8123/", "t0k") == ("http://127.0.0.1:8123", "t0k")


def test_the_discovery_file_names_the_api(tmp_path: Path) -> None:
    (tmp_path / DISCOVERY_FILE).write_text(
        json.dumps({"broker": {}, "control": {"url": "http://127.0.0.1:9", "token": "abc"}})
    )
    assert api_address(tmp_path, None, None) == ("http://127.0.0.1:9", "abc")


@pytest.mark.parametrize(
    ("content", "url", "token", "message"),
    [
        (None, "http://x", None, "--url and --token go together"),
        (None, None, "t", "--url and --token go together"),
        (None, None, None, "no running vdtu up or vdtu fleet in {dir} (no up.json)"),
        ("{not json", None, None, "cannot read {dir}/up.json"),
        ('{"broker": {}}', None, None, "{dir}/up.json names no control API"),
        ('{"control": {"url": "http://x"}}', None, None, "{dir}/up.json names no control API"),
    ],
)
def test_each_way_to_miss_the_api_is_one_clear_line(
    tmp_path: Path, content: str | None, url: str | None, token: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / DISCOVERY_FILE).write_text(content)
    with pytest.raises(ConfigError) as raised:
        api_address(tmp_path, url, token)
    assert message.format(dir=tmp_path) in str(raised.value)


def test_without_a_directory_it_says_what_to_give() -> None:
    with pytest.raises(ConfigError, match=r"give --pty-dir, or --url and --token"):
        api_address(None, None, None)
