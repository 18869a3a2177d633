"""Frames between the judge and one child, over a socket pair: an 8-byte length, then that many bytes.

The child's side is trusted by nobody: every read the judge makes is bounded in
time and size. ``read_frame`` reads against the problem's deadline with
non-blocking reads, so a frame that announces more bytes than it sends, or
sends them one a second, ends at the deadline; a frame larger than the budget
is refused from its header, before anything is allocated. The judge's requests
may carry file descriptors (the arena of the request's tensors, see ``wire``).
"""

from __future__ import annotations

import select
import socket
import struct
import time

HEADER = struct.Struct("<Q")
MAX_FDS = 4


class FrameTimeout(Exception):
    """The deadline passed before a whole frame arrived; ``received`` bytes of ``expected`` had come."""

    def __init__(self, received: int, expected: int | None):
        super().__init__(received, expected)
        self.received, self.expected = received, expected


class FrameTooLarge(Exception):
    """A frame's header announced more than the reader's budget."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


def send_frame(sock: socket.socket, payload: bytes, fds=()) -> None:
    """Write one frame (blocking), handing ``fds`` over with its header."""
    header = HEADER.pack(len(payload))
    if fds:
        socket.send_fds(sock, [header], list(fds))
        sock.sendall(payload)
    else:
        sock.sendall(header + payload if len(payload) < 65536 else header)
        if len(payload) >= 65536:
            sock.sendall(payload)


def read_frame(sock: socket.socket, deadline: float, max_bytes: int) -> bytearray:
    """One frame from a child, by ``deadline`` (time.monotonic) and no larger than ``max_bytes``.

    Raises FrameTimeout, FrameTooLarge, or EOFError when the child closed its end."""
    header = bytearray(HEADER.size)
    _read_into(sock, memoryview(header), deadline, None)
    (size,) = HEADER.unpack(header)
    if size > max_bytes:
        raise FrameTooLarge(size)
    payload = bytearray(size)
    _read_into(sock, memoryview(payload), deadline, size)
    return payload


def _read_into(sock: socket.socket, view: memoryview, deadline: float, expected: int | None) -> None:
    got = 0
    while got < len(view):
        try:
            count = sock.recv_into(view[got:], 0, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FrameTimeout(got, expected) from None
            select.select([sock], [], [], remaining)
            continue
        except ConnectionResetError:
            raise EOFError from None
        if not count:
            raise EOFError
        got += count


def recv_frame(sock: socket.socket) -> tuple[bytes, list[int]]:
    """The child's side: the judge's next frame (blocking; the judge is trusted) and the descriptors sent with it.
    Raises EOFError when the judge closed its end."""
    header, fds, _, _ = socket.recv_fds(sock, HEADER.size, MAX_FDS)
    if not header:
        raise EOFError
    while len(header) < HEADER.size:
        more = sock.recv(HEADER.size - len(header))
        if not more:
            raise EOFError
        header += more
    (size,) = HEADER.unpack(header)
    payload = bytearray(size)
    view, got = memoryview(payload), 0
    while got < size:
        count = sock.recv_into(view[got:])
        if not count:
            raise EOFError
        got += count
    return bytes(payload), fds
