"""The tensors of a request live in memory the judge owns, and the judge reads them back itself.

The judge writes every plain tensor of a request into one anonymous file (a
``memfd``, sealed so that nobody can shrink or grow it), and sends its
descriptor with the request. The child maps the file shared and builds the
argument tensors on it, so a student function that writes into an argument
writes into the judge's file. After the call the judge reads its own file:
"the input was modified in place" is a fact it observes, not one the child
reports, and no forged or swallowed reply can hide it. (An argument the call
replaced rather than wrote into, a reassigned ``Trajectory`` field or a policy
converted to another dtype, is outside the file: the child reports those
tensors' values, as before.)

Where there is no ``memfd`` (macOS) an unlinked temporary file does the same
without the seals; the judge reads it with ``pread``, never ``mmap``, so a
file shortened by the child reads short and counts as modified, never as a
crash of the judge.
"""

from __future__ import annotations

import mmap
import os
import tempfile

import torch

ALIGN = 64  # every tensor starts on a cache line: any dtype's alignment holds in the child's mapping
DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16, torch.int32,
    torch.int64, torch.bool)}


def tensor_bytes(t: torch.Tensor) -> bytes:
    """A tensor's elements in row-major order, whatever its strides (an expanded tensor has 0s)."""
    x = t.detach().to("cpu")
    if not x.numel():
        return b""
    flat = torch.empty(x.numel(), dtype=x.dtype)
    flat.copy_(x.reshape(-1))
    return flat.view(torch.uint8).numpy().tobytes()


def _itemsize(dtype: torch.dtype) -> int:
    return dtype.itemsize  # read for every tensor of every reply: no tensor built to ask


def nbytes(dtype: torch.dtype, shape) -> int:
    count = 1
    for n in shape:
        count *= n
    return count * _itemsize(dtype)


def tensor_from(buffer, dtype: torch.dtype, shape, offset: int = 0) -> torch.Tensor:
    """A tensor of ``shape`` over ``buffer`` from ``offset`` (shared, not copied; the buffer must be writable)."""
    count = nbytes(dtype, shape) // _itemsize(dtype)
    if not count:
        return torch.empty(tuple(shape), dtype=dtype)
    if dtype is torch.bool:  # any byte may arrive: only 0 and 1 are booleans
        return torch.frombuffer(buffer, dtype=torch.uint8, count=count, offset=offset).reshape(tuple(shape)) != 0
    return torch.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(tuple(shape))


class Arena:
    """The judge's side: a request's tensors laid out in one file, and read back after the call."""

    def __init__(self):
        self._data = bytearray()
        self.slots: list[tuple[int, torch.dtype, tuple[int, ...]]] = []  # (offset, dtype, shape)
        self._fd: int | None = None
        self._untouched: dict[int, bool] = {}

    def add(self, t: torch.Tensor) -> int:
        """Lay ``t`` out in the arena; returns its slot."""
        self._data += bytes(-len(self._data) % ALIGN)
        self.slots.append((len(self._data), t.dtype, tuple(t.shape)))
        self._data += tensor_bytes(t)
        return len(self.slots) - 1

    def descriptor(self) -> int | None:
        """The file holding the arena (written and sealed on the first call), or None when it holds nothing."""
        if self._fd is None and self._data:
            self._fd = _anonymous_file(bytes(self._data))
        return self._fd

    def untouched(self, slot: int) -> bool:
        """Does the file hold the slot's bytes as they were written? (Once per slot: a batch's calls share
        slots, and comparing bytes costs far less than building the tensor.)"""
        if slot not in self._untouched:
            offset, dtype, shape = self.slots[slot]
            size = nbytes(dtype, shape)
            self._untouched[slot] = not size or os.pread(self._fd, size, offset) == self._data[offset:offset + size]
        return self._untouched[slot]

    def read_back(self, slot: int) -> torch.Tensor:
        """The slot's tensor as the file holds it now (after the child's call)."""
        offset, dtype, shape = self.slots[slot]
        size = nbytes(dtype, shape)
        data = bytearray(os.pread(self._fd, size, offset)) if size else bytearray()
        if len(data) != size:  # shortened under the judge's feet (no seals here): not what was sent
            return torch.full(shape, float("nan")) if dtype.is_floating_point else torch.full(shape, -1, dtype=dtype)
        return tensor_from(data, dtype, shape)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _anonymous_file(data: bytes) -> int:
    if hasattr(os, "memfd_create"):
        import fcntl

        fd = os.memfd_create("grader-request", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        _write_all(fd, data)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        return fd
    with tempfile.TemporaryFile() as f:
        fd = os.dup(f.fileno())
    _write_all(fd, data)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view, done = memoryview(data), 0
    while done < len(data):
        done += os.pwrite(fd, view[done:], done)


class ChildArena:
    """The child's side: the judge's file, mapped shared; tensors built on it write into it."""

    def __init__(self, fd: int):
        try:
            self._map = mmap.mmap(fd, os.fstat(fd).st_size) if os.fstat(fd).st_size else None
        finally:
            os.close(fd)
        self.addresses: dict[int, tuple] = {}  # slot -> (data_ptr, dtype, shape, stride) of the tensor built on it

    def tensor(self, slot: int, offset: int, dtype: torch.dtype, shape) -> torch.Tensor:
        shape = tuple(shape)
        if not nbytes(dtype, shape):
            return torch.empty(shape, dtype=dtype)
        # The judge wrote these bytes (booleans are 0 or 1): a view of the mapping itself, bool included.
        t = torch.frombuffer(self._map, dtype=dtype, count=nbytes(dtype, shape) // _itemsize(dtype),
                             offset=offset).reshape(shape)
        self.addresses[slot] = identity(t)
        return t

    def span(self) -> list[int] | None:
        """[start, end) of the mapping in the child's memory: a returned tensor whose storage lies inside it
        is a view of one of the judge's request tensors."""
        if self._map is None:
            return None
        start = torch.frombuffer(self._map, dtype=torch.uint8, count=1).data_ptr()
        return [start, start + len(self._map)]

    def slot_of(self, t: torch.Tensor) -> int | None:
        """The slot ``t`` is still the arena's tensor of (same memory, dtype, shape and strides), or None."""
        key = identity(t)
        for slot, known in self.addresses.items():
            if known == key:
                return slot
        return None


def identity(t: torch.Tensor) -> tuple:
    """What makes two tensor objects the same view of the same memory."""
    return (t.data_ptr(), t.dtype, tuple(t.shape), tuple(t.stride()), t.device.type)
