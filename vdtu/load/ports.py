"""Local ports: each connection from this machine to the broker holds one ephemeral port.

Linux gives a connecting socket a free port from ``net.ipv4.ip_local_port_range``
(32768-60999 by default: 28 232 ports) for each destination address and port. A socket
closed first on this side then stays in TIME_WAIT for a minute, and its port with it, so
a run started within a minute of another one's close has fewer ports than the range says.
As connections open and in TIME_WAIT fill the range, the kernel's search for a free port
makes every ``connect()`` dearer (measured: 41 % of a process dialling 1000 a second once
17 000 were open, or with 40 000 sockets in TIME_WAIT); past it, ``connect()`` fails
(``EADDRNOTAVAIL``).

``port_warning`` says, before a run, when its connections do not fit this machine's range,
fit only once the TIME_WAIT sockets have gone, or take more than half of it (``CROWDED``);
``time_wait_sockets`` counts those sockets (the whole machine's, to any destination: an
upper bound of what this run competes with).
Both read ``/proc`` and answer None where it is not there (not Linux).
"""

from __future__ import annotations

import re
from pathlib import Path

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
SOCKSTAT = Path("/proc/net/sockstat")
CROWDED = 0.5
"""The share of the range past which connecting gets dearer (measured: 6000 and 12 000 bare
links dialled at 1000/s cost 0.24 and 0.26 ms a connect in 28 232 ports, 17 000 cost 0.41 to
0.48 with ``connect()`` 41 % of the process, and 0.19 once the range was 64 512 ports)."""


def local_port_range() -> tuple[int, int] | None:
    """The first and last ephemeral port (``PORT_RANGE``'s), or None if unknown."""
    try:
        first, last = (int(field) for field in PORT_RANGE.read_text().split())
    except (OSError, ValueError):
        return None
    return first, last


def time_wait_sockets() -> int | None:
    """The machine's TCP sockets in TIME_WAIT (``tw`` of ``SOCKSTAT``), or None if unknown."""
    try:
        text = SOCKSTAT.read_text()
    except OSError:
        return None
    match = re.search(r"^TCP:.* tw (\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def port_warning(connections: int) -> str | None:
    """What to tell a user whose ``connections`` to one broker address from this machine
    do not fit its ephemeral ports, or None when they fit (or the machine does not say)."""
    known = local_port_range()
    if known is None:
        return None
    first, last = known
    ports = last - first + 1
    widen = (
        'widen it (sysctl -w net.ipv4.ip_local_port_range="1024 65535") or spread the '
        "fleet over machines (--shard)"
    )
    where = f"this machine's ephemeral ports (net.ipv4.ip_local_port_range {first}-{last})"
    if connections > ports:
        return (
            f"{connections} connections to one broker address need as many local ports, but "
            f"{where} are {ports}: the connections past that fail (EADDRNOTAVAIL); {widen}"
        )
    waiting = time_wait_sockets() or 0
    if connections + waiting > ports:
        return (
            f"{connections} connections to one broker address need as many local ports; of "
            f"{where}, {ports} in all, {waiting} may still be held by sockets in TIME_WAIT "
            "(connections closed within the last minute): until they go, connecting is slower "
            "and may fail (EADDRNOTAVAIL); wait a minute, or " + widen
        )
    if connections + waiting > ports * CROWDED:
        # the sockets in TIME_WAIT are named when they are what takes it past half
        held = f", with {waiting} in TIME_WAIT" if connections <= ports * CROWDED else ""
        return (
            f"{connections} connections to one broker address take more than half of {where}, "
            f"{ports} in all{held}: the kernel's "
            "search for a free port makes each connect dearer as they fill (17 000 of 28 232 "
            "doubled a connect's CPU, and a 1000/s ramp fell behind); " + widen
        )
    return None
