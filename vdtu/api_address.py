"""Where a running vdtu's control API is: given outright (``--url`` and ``--token``) or read
from the ``control`` entry of the discovery file (``up.json``) that a ``vdtu up`` or ``vdtu
fleet`` writes into its ``--pty-dir``. Pure (one file read): ``vdtu ctl`` and the dashboard
both find a run this way.
"""

from __future__ import annotations

import json
from pathlib import Path

from vdtu.errors import ConfigError

DISCOVERY_FILE = "up.json"
"""The discovery document's name in ``vdtu up``'s ``--pty-dir``."""


def api_address(pty_dir: Path | None, url: str | None, token: str | None) -> tuple[str, str]:
    """The API's URL and token, from ``url`` and ``token`` or ``pty_dir``'s discovery file.

    Raises:
        ConfigError: one of ``url`` and ``token`` without the other, neither nor a directory,
            no discovery file there, one that cannot be read, or one that names no API.
    """
    if (url is None) != (token is None):
        raise ConfigError("--url and --token go together")
    if url is not None and token is not None:
        return url.rstrip("/"), token
    if pty_dir is None:
        raise ConfigError("give --pty-dir, or --url and --token")
    path = pty_dir / DISCOVERY_FILE
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no running vdtu up or vdtu fleet in {pty_dir} (no {DISCOVERY_FILE}); start one, "
            "or give its --pty-dir, or --url and --token"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    control = document.get("control") if isinstance(document, dict) else None
    if not isinstance(control, dict) or "url" not in control or "token" not in control:
        raise ConfigError(f"{path} names no control API (a vdtu older than vdtu ctl?)")
    return str(control["url"]), str(control["token"])
