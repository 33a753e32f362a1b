"""A connected socket seen through a unit's link conditions, for paho, on the asyncio loop.

``ShapedSocket`` stands between paho and the socket of one ``MqttLink`` connection while
the unit's link has conditions (``vdtu.net.conditions``); a healthy link never has one.
paho reads and writes it exactly as a non-blocking socket (``recv``/``send`` raising
``BlockingIOError`` when there is nothing to do), and the loop watches the real fd:

* **up** (``send``): bytes paho writes are accepted at once. Under latency or a cap each
  burst is written to the real socket when the ``Pacer`` says it arrives (a loop timer),
  in order; under a blackhole it vanishes.
* **down** (``recv``): every call first drains the real socket. Under latency or a cap
  each chunk becomes readable at its ``Pacer`` time, when a loop timer calls ``wake``
  (the link's reader, which has paho read); under a blackhole chunks vanish, and so does
  the peer's FIN or RST: the socket then stops watching the fd (an fd at EOF is always
  readable). When the blackhole clears, paho's next read meets a reset, as a device's
  next packet meets the RST of a NAT that forgot the connection (what vanished is sent
  again on the next connection: nothing is silently lost).
* once the conditions are cleared the wrapper passes bytes straight through after what it
  still holds has gone (nothing is reordered); it lasts as long as its connection.

No thread, no task: two ``Pacer`` objects, a buffer each way and one timer handle at a time
per direction. The real socket stays the caller's to set options on (``raw``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
from collections import deque
from collections.abc import Callable

from vdtu.net.conditions import Impairment, Pacer

RECV_CHUNK = 65536
SEND_RETRY_S = 0.01
"""How soon a write the kernel refused (its buffer full) is tried again."""

Delivery = bytes | OSError
"""What arrives: bytes, ``b""`` for the peer's FIN, or the error a read met."""


class ShapedSocket:
    """A non-blocking socket whose bytes cross a unit's impaired link (see the module).

    Args:
        sock: the connected, non-blocking socket (TCP or TLS).
        loop: the loop that runs the link.
        impairment: the link's conditions and random source.
        wake: called when delayed bytes become readable (the link's reader).
    """

    __slots__ = (
        "_closed",
        "_down",
        "_inbox",
        "_loop",
        "_outbox",
        "_peer_gone",
        "_ready",
        "_send_timer",
        "_unsent",
        "_up",
        "_wake",
        "_wake_timer",
        "impairment",
        "raw",
    )

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        impairment: Impairment | None,
        wake: Callable[[], None],
    ) -> None:
        self.raw = sock
        """The real socket."""
        self.impairment = impairment
        """The conditions in force (None: pass through once the buffers are empty)."""
        self._loop = loop
        self._wake = wake
        self._up = Pacer()
        self._down = Pacer()
        self._inbox: deque[tuple[float, Delivery]] = deque()
        """Chunks from the peer and when each becomes readable."""
        self._ready = bytearray()
        """Bytes due and not yet read by paho."""
        self._outbox: deque[tuple[float, bytes]] = deque()
        """Bursts from paho and when each reaches the real socket."""
        self._unsent = bytearray()
        """Due bytes the kernel has not taken yet."""
        self._send_timer: asyncio.TimerHandle | None = None
        self._wake_timer: asyncio.TimerHandle | None = None
        self._peer_gone = False
        self._closed = False

    def impair(self, impairment: Impairment | None) -> None:
        """Change the conditions from now on."""
        was_blackholed = self._blackholed
        self.impairment = impairment
        if was_blackholed and not self._blackholed:
            # The NAT forgot the connection while its packets vanished (and the peer may
            # have closed it meanwhile): the device's next packet meets a reset.
            self._inbox.append(
                (self._loop.time(), ConnectionResetError(errno.ECONNRESET, "connection reset"))
            )
            self._schedule_wake()

    @property
    def _blackholed(self) -> bool:
        return self.impairment is not None and self.impairment.conditions.blackhole

    # -- what paho calls ---------------------------------------------------------------------

    def fileno(self) -> int:
        return self.raw.fileno()

    def setblocking(self, flag: bool) -> None:
        self.raw.setblocking(flag)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Accept ``data`` for the link; it reaches the peer when the conditions allow."""
        size = len(data)
        impairment = self.impairment
        if impairment is not None and impairment.conditions.blackhole:
            return size
        if impairment is None or not impairment.conditions.shaping:
            if not self._outbox and not self._unsent:
                return self.raw.send(data)
            due = self._loop.time()
        else:
            conditions = impairment.conditions
            due = self._up.arrival_at(self._loop.time(), size, conditions, impairment.rng)
        self._outbox.append((due, bytes(data)))
        self._schedule_send()
        return size

    def recv(self, bufsize: int) -> bytes:
        """Bytes that have arrived, ``b""`` at the peer's FIN; ``BlockingIOError`` if none."""
        self._drain()
        now = self._loop.time()
        inbox, ready = self._inbox, self._ready
        while inbox and inbox[0][0] <= now:
            head = inbox[0][1]
            if isinstance(head, OSError) or not head:
                break  # the FIN or the error: met once the bytes before it are read
            ready += head
            inbox.popleft()
        if ready:
            data = bytes(ready[:bufsize])
            del ready[:bufsize]
            if ready or (inbox and inbox[0][0] <= now):
                self._loop.call_soon(self._on_due)  # paho reads one packet per call
            return data
        if inbox and inbox[0][0] <= now:
            _due, delivery = inbox.popleft()
            if isinstance(delivery, OSError):
                raise delivery
            return b""
        self._schedule_wake()
        raise BlockingIOError(errno.EAGAIN, "nothing has arrived yet")

    def close(self) -> None:
        self._closed = True
        for timer in (self._send_timer, self._wake_timer):
            if timer is not None:
                timer.cancel()
        self._send_timer = self._wake_timer = None
        self.raw.close()

    # -- the loop's side ---------------------------------------------------------------------

    def _drain(self) -> None:
        """Take everything the real socket holds into the inbox (or drop it)."""
        if self._peer_gone or self._closed:
            return
        impairment = self.impairment
        while True:
            delivery: Delivery
            try:
                delivery = self.raw.recv(RECV_CHUNK)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError as exc:
                delivery = exc
            gone = not delivery or isinstance(delivery, OSError)
            if gone:
                self._peer_gone = True
            now = self._loop.time()
            if impairment is not None and impairment.conditions.blackhole:
                if gone:
                    # Stop watching an fd that stays readable; the FIN or RST vanished.
                    with contextlib.suppress(ValueError, OSError):
                        self._loop.remove_reader(self.raw.fileno())
                    return
                continue
            if impairment is None or not impairment.conditions.shaping:
                due = max(now, self._inbox[-1][0]) if self._inbox else now
            else:
                size = len(delivery) if isinstance(delivery, bytes) else 0
                conditions = impairment.conditions
                due = self._down.arrival_at(now, size, conditions, impairment.rng)
            self._inbox.append((due, delivery))
            if gone:
                return

    def _schedule_wake(self) -> None:
        if self._closed or not self._inbox or self._wake_timer is not None:
            return
        self._wake_timer = self._loop.call_at(self._inbox[0][0], self._on_due)

    def _on_due(self) -> None:
        self._wake_timer = None
        if not self._closed:
            self._wake()

    def _schedule_send(self) -> None:
        if self._closed or self._send_timer is not None:
            return
        if self._unsent:
            self._send_timer = self._loop.call_later(SEND_RETRY_S, self._transmit)
        elif self._outbox:
            self._send_timer = self._loop.call_at(self._outbox[0][0], self._transmit)

    def _transmit(self) -> None:
        self._send_timer = None
        if self._closed:
            return
        now = self._loop.time()
        while self._outbox and self._outbox[0][0] <= now:
            self._unsent += self._outbox.popleft()[1]
        if self._blackholed:
            self._unsent.clear()
        while self._unsent:
            try:
                sent = self.raw.send(self._unsent)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError:
                self._unsent.clear()  # paho learns of it at its next read
                self._outbox.clear()
                return
            del self._unsent[:sent]
        self._schedule_send()
