"""``up.json``: where a running ``vdtu up`` says how to reach its broker.

``vdtu up`` writes the document into its ``--pty-dir`` (``DISCOVERY_FILE``): the
broker and the console's login (from the side that hosts the broker), the units'
personalities, and each personality side's own part. ``vdtu cloud`` and the load
test's verifier read the broker and login back with ``url_from_discovery``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vdtu.api_address import DISCOVERY_FILE
from vdtu.cloud.broker_url import BrokerUrl, Scheme

__all__ = ["DISCOVERY_FILE", "url_from_discovery"]


def url_from_discovery(data: dict[str, Any]) -> BrokerUrl:
    """The broker URL (with the console's login) from a discovery document."""
    broker = data["broker"]
    return BrokerUrl(
        scheme=Scheme(broker["scheme"]),
        host=broker["host"],
        port=int(broker["port"]),
        username=data.get("username"),
        password=data.get("password"),
        ca_file=Path(broker["ca_file"]) if broker.get("ca_file") else None,
    )
