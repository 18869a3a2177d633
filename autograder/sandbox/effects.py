"""What a student call did besides returning its value, observed in the child and sent as data.

The judge sees a call's arguments through its own memory (``arena``) and the
values the child sends back. Some side effects only the child can see; it
records them here, right after the call returns, and sends them as data in the
reply's ``contract`` field, {"ranges": ..., "notes": ...} (a list of those for a
batch). The judge decides what each one means (``autograder.contract``).

  ranges   an int64 tensor [n, 5] of memory ranges, rows (kind, index, device, start, end):
           OUTPUT  the storage of the index-th tensor the call returned
           TENSOR  the storage of one of the index-th argument's tensors after the call
                   (arguments counted positional, then keyword)
           GRAD    the .grad of a parameter of the index-th argument (a module)
           ARENA   the mapping that holds the judge's request tensors: on the CPU every
                   argument's tensors were built there, so an output inside it shares memory
                   with an argument as it was sent, even one the call replaced
           device is a code of DEVICES
  notes    a JSON object: "paths", the place of each returned tensor in the value ("[0]",
           ".actions", "[2].rewards"; "" for the value itself); "requires_grad", a string of
           0s and 1s, the flag of every argument's tensors after the call, argument by
           argument in ``wire.tensors_in``'s order; "reseeded", [[function, rng], ...], the
           global RNGs the call reseeded

One tensor and one string per call: a batch of 128 calls reports thousands of
ranges, and the judge's reader pays for every value it reads.

A storage range is compared with others only while every tensor involved is
alive: the child keeps every value a student function returned until it exits
(one problem's calls, small values), so that two calls whose results share
memory are seen as such, and never a freed address reused by a later call.

Reseeding: before every call the child seeds torch, numpy and ``random`` with 0
(``child._seed_everything``). torch's generator then gets SENTINEL written into
its initial-seed field: the same stream, with a mark that ``torch.manual_seed(k)``
for any k, ``torch.seed()`` and ``torch.set_rng_state`` of another seed's state
all overwrite, and that ``torch.random.fork_rng`` restores. numpy's and Python's
generators keep no seed: when a call changed one (read in place, a fraction of
a microsecond), its key is compared with the streams of the likely seeds (the
call's own integer arguments and a few usual constants other than 0), up to
RESEED_TWISTS × 624 draws after the reseed. A reseed with 0 itself (the child's
own start) or with another constant goes unseen for those two; torch's is seen
whatever the seed. The CUDA generator is watched by its initial seed, which
torch.manual_seed also sets (then the CPU mark shows it too).
"""

from __future__ import annotations

import ctypes
import json
import random
from array import array
from contextlib import contextmanager

import numpy as np
import torch

from autograder.sandbox.wire import MAX_DEPTH, TRAJECTORY_FIELDS, tensors_in
from rlkit.trajectory import Trajectory

SENTINEL = 0x5EEDC0DE5EEDC0DE
USUAL_SEEDS = (1, 42, 123, 1234, 2024, 12345)
RESEED_TWISTS = 16


# --------------------------------------------------------------------------- the global RNGs
_SENTINEL_BYTES = torch.tensor(list(SENTINEL.to_bytes(8, "little")), dtype=torch.uint8)


def _marked(state: torch.Tensor) -> torch.Tensor:
    """``state`` (a generator's, as get_state() returns it: a copy) with SENTINEL as its initial seed."""
    state[:8] = _SENTINEL_BYTES
    return state


def _marks_torch() -> bool:
    """Does this torch keep the initial seed in the first 8 bytes of its generator's state, so that a marked
    state draws the same numbers? (If not, torch's reseeding is not watched.)"""
    generator = torch.default_generator
    saved = generator.get_state()
    try:
        generator.manual_seed(0)
        generator.set_state(_marked(generator.get_state()))
        marked = generator.initial_seed() == SENTINEL and bool(torch.equal(torch.rand(8), torch.rand(
            8, generator=torch.Generator().manual_seed(0))))
        return marked
    finally:
        generator.set_state(saved)


_TORCH_MARKED = _marks_torch()
SEED_ZERO_MARKED = _marked(torch.Generator().manual_seed(0).get_state())  # what the child seeds before a call


class _Stream:
    """One of the global Mersenne-Twister generators (numpy's legacy one, Python's), read in place: 624 key words
    and the position in them, as a fingerprint that costs a fraction of a microsecond where getting the state
    costs 13 µs (Python) to 70 µs (numpy). ``seeded_with(seed)``: is it that seed's stream, drawn from or not?"""

    def __init__(self, words, key_of_seed):
        self.words = words  # ctypes view: [position, key...] (Python) or [key..., position] (numpy), or None
        self.key_of_seed = key_of_seed  # seed -> the first 8 key words of its stream after 0, 1, … twists
        self._known: dict[int, dict[bytes, int]] = {}

    def fingerprint(self) -> bytes:
        return bytes(self.words)

    def seeded_with(self, seed: int) -> bool:
        """Is the generator ``seed``'s stream, drawn from for at most RESEED_TWISTS × 624 words?"""
        key, position = self._key_and_position()
        twists = self._twists_of(seed).get(key)
        return twists is not None and (twists > 0 or position == 624)

    def _twists_of(self, seed: int) -> dict[bytes, int]:
        """The first key words of ``seed``'s stream after 0, 1, … RESEED_TWISTS twists (computed once per seed)."""
        if seed not in self._known:
            self._known[seed] = {}
            for twists, key in enumerate(self.key_of_seed(seed)):
                self._known[seed].setdefault(key, twists)
        return self._known[seed]


def _numpy_keys(seed: int):
    stream = np.random.RandomState(seed)
    for _ in range(RESEED_TWISTS + 1):
        yield stream.get_state()[1][:8].tobytes()
        stream.bytes(624 * 4)  # exactly 624 words: one twist


def _random_keys(seed: int):
    stream = random.Random(seed)
    for _ in range(RESEED_TWISTS + 1):
        yield array("I", stream.getstate()[1][:8]).tobytes()
        stream.getrandbits(624 * 32)  # exactly 624 words: one twist


class _NumpyStream(_Stream):
    def _key_and_position(self) -> tuple[bytes, int]:  # the first 8 key words, the position
        return bytes(self.words)[:32], self.words[624]


class _RandomStream(_Stream):
    def _key_and_position(self) -> tuple[bytes, int]:
        return bytes(self.words)[4:36], self.words[0]


def _in_place(address_of, size: int, check):
    """A ctypes view of ``size`` 32-bit words at the address ``address_of()`` gives, if ``check(view)`` says it
    reads the generator's state; None otherwise (then that generator is not watched)."""
    try:
        view = (ctypes.c_uint32 * size).from_address(address_of())
        return view if check(view) else None
    except (AttributeError, TypeError, ValueError):
        return None


def _numpy_view_reads_state(view) -> bool:
    _, key, position, *_ = np.random.get_state()
    return list(view[:624]) == key.tolist() and view[624] == position


def _random_view_reads_state(view) -> bool:
    words = random.getstate()[1]
    return list(view[1:]) == list(words[:624]) and view[0] == words[624]


# numpy's legacy global generator: its MT19937 state struct is key[624] then the position. Python's: the
# RandomObject's fields after the object header (16 bytes) are the position (an int) then key[624].
_NUMPY = _NumpyStream(_in_place(lambda: np.random.mtrand._rand._bit_generator.ctypes.state_address, 625,
                                _numpy_view_reads_state), _numpy_keys)
_RANDOM = _RandomStream(_in_place(lambda: id(random._inst) + 16, 625, _random_view_reads_state), _random_keys)
for _seed in USUAL_SEEDS:  # once, in the fork server: every child starts with these known
    for _stream in (_NUMPY, _RANDOM):
        if _stream.words is not None:
            _stream._twists_of(_seed)


def _candidate_seeds(values) -> list[int]:
    """The seeds a function would reseed with: its integer arguments, a generator's seed, the usual constants."""
    found = []
    for v in values:
        if isinstance(v, torch.Generator):
            v = v.initial_seed()
        if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**32:
            found.append(v)
    return [*dict.fromkeys([*found, *USUAL_SEEDS])]


class RngWatch:
    """Before a call: mark torch's generator (``torch_state``: the marked state to set, when the caller knows
    the generator's state, saving a copy of it), note numpy's and Python's states. ``reseeded()`` after it: the
    global RNGs the call reseeded."""

    def __init__(self, seeds=(), torch_state: torch.Tensor | None = None):
        if _TORCH_MARKED:
            generator = torch.default_generator
            generator.set_state(_marked(generator.get_state()) if torch_state is None else torch_state)
        self.cuda_seed = torch.cuda.initial_seed() if torch.cuda.is_initialized() else None
        self.before = {stream: stream.fingerprint() for stream in (_NUMPY, _RANDOM) if stream.words is not None}
        self.seeds = seeds

    def reseeded(self) -> list[str]:
        found = []
        if _TORCH_MARKED and torch.default_generator.initial_seed() != SENTINEL:
            found.append("torch")
        if self.cuda_seed is not None and torch.cuda.initial_seed() != self.cuda_seed:
            found.append("torch.cuda")
        for name, stream in (("numpy", _NUMPY), ("random", _RANDOM)):
            if stream in self.before and stream.fingerprint() != self.before[stream] and any(
                    stream.seeded_with(seed) for seed in _candidate_seeds(self.seeds)):
                found.append(name)
        return found


_task_findings: list[list[str]] = []


@contextmanager
def given_a_seed(function: str, seeds=()):
    """Around a student function that grader code in the child (``autograder.child_tasks``) calls with a seed
    or a generator: what it reseeded is reported with the task's reply."""
    watch = RngWatch(seeds)
    try:
        yield
    finally:
        _task_findings.extend([function, rng] for rng in watch.reseeded())


# --------------------------------------------------------------------------- storage
def tensors_with_paths(value, path: str = "", depth: int = 0):
    """(path, tensor) for every tensor in a returned value: itself, a Trajectory's fields, list, tuple and dict
    items, as ``wire.pack`` walks it. The judge walks its decoded copy the same way."""
    if isinstance(value, torch.Tensor):
        yield path, value
    elif depth > MAX_DEPTH:
        return
    elif isinstance(value, Trajectory):
        for name in TRAJECTORY_FIELDS:
            yield from tensors_with_paths(getattr(value, name, None), f"{path}.{name}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from tensors_with_paths(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from tensors_with_paths(item, f"{path}[{key!r}]", depth + 1)


DEVICES = ("cpu", "cuda", "mps", "other")
OUTPUT, TENSOR, GRAD, ARENA = range(4)  # the kinds of range


def _span(t: torch.Tensor) -> tuple[int, int, int] | None:
    """(device code, start, end) of the memory ``t``'s storage holds; None for an empty or storage-less tensor."""
    try:
        storage = t.untyped_storage()
        size = storage.nbytes()
        start = storage.data_ptr()
    except (RuntimeError, NotImplementedError, TypeError):
        return None
    device = t.device.type
    return (DEVICES.index(device) if device in DEVICES else len(DEVICES) - 1, start, start + size) \
        if size and start else None


def _argument_tensors(args, kwargs) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Per argument (positional, then keyword): its tensors (``wire.tensors_in``) and, for a module, its
    parameters' .grad."""
    found = []
    for arg in [*args, *kwargs.values()]:
        tensors = tensors_in(arg)
        grads = [p.grad for p in tensors if p.grad is not None] if isinstance(arg, torch.nn.Module) else []
        found.append((tensors, grads))
    return found


def _account(rows: list, notes: dict) -> dict:
    """A call's account as it travels: its ranges as one int64 tensor, the rest as one JSON string."""
    flat = array("q", [x for row in rows for x in row])
    ranges = torch.frombuffer(flat, dtype=torch.int64).reshape(-1, 5) if flat else torch.zeros(0, 5, dtype=torch.int64)
    return {"ranges": ranges, "notes": json.dumps(notes)}


# --------------------------------------------------------------------------- one call
_returned: list = []  # every value a watched call returned, alive until the child exits


class CallWatch:
    """Set up right before a student call (after the child seeded the global RNGs); ``report(value)`` right
    after it returns."""

    def __init__(self, request: dict, args: list, kwargs: dict, arena):
        self.function = request.get("function", "")
        self.arena = arena
        self.rng = RngWatch([*args, *kwargs.values()], SEED_ZERO_MARKED)  # the child has just seeded torch with 0
        self.after: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def report(self, value, args: list, kwargs: dict) -> dict:
        """The account of the call; ``self.after`` then holds each argument's tensors as the call left them."""
        reseeded = self.rng.reseeded()
        _returned.append(value)
        self.after = after = _argument_tensors(args, kwargs)
        rows = {}
        for index, (tensors, grads) in enumerate(after):
            for kind, group in ((TENSOR, tensors), (GRAD, grads)):
                for t in group:
                    span = _span(t)
                    if span is not None:
                        rows[(kind, index, *span)] = None
        paths = []
        for path, t in tensors_with_paths(value):
            span = _span(t)
            if span is not None:
                rows[(OUTPUT, len(paths), *span)] = None
                paths.append(path)
        if self.arena is not None and self.arena.span() is not None:
            rows[(ARENA, 0, 0, *self.arena.span())] = None
        return _account(list(rows), {
            "paths": paths, "reseeded": [[self.function, rng] for rng in reseeded],
            "requires_grad": "".join("1" if t.requires_grad else "0" for tensors, _ in after for t in tensors)})


class TaskWatch:
    """Around grader code run in the child (a task): it reports what the student functions it guarded with
    ``given_a_seed`` reseeded, and nothing else (the task's own arguments are the grader's)."""

    def __init__(self):
        _task_findings.clear()
        self.after: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def report(self, value, args: list, kwargs: dict) -> dict:
        self.after = _argument_tensors(args, kwargs)
        found = [list(f) for f in _task_findings]
        _task_findings.clear()
        return _account([], {"paths": [], "reseeded": found, "requires_grad": ""})


def watch(request: dict, args: list, kwargs: dict, arena) -> CallWatch | TaskWatch:
    """What to watch around the call ``request`` asks for: a student function's, or a task's."""
    return TaskWatch() if request.get("op") == "task" else CallWatch(request, args, kwargs, arena)


# --------------------------------------------------------------------------- the judge's reading
def validated(raw) -> dict | None:
    """A reply's ``contract`` field as the judge may use it, or None when it is malformed (a forged reply):
    ``outputs`` [(path, device, start, end)], ``inputs`` [(index, kind, device, start, end)], ``arena``
    [start, end] or None, ``requires_grad`` [bool], ``reseeded`` [[function, rng]]."""
    if not (isinstance(raw, dict) and isinstance(raw.get("notes"), str)):
        return None
    ranges, text = raw.get("ranges"), raw["notes"]
    if not (isinstance(ranges, torch.Tensor) and ranges.dtype == torch.int64 and ranges.dim() == 2
            and ranges.shape[1] == 5):
        return None
    try:
        notes = json.loads(text)
    except ValueError:
        return None
    rows = ranges.tolist()
    paths, flags, reseeded = (notes.get(k) if isinstance(notes, dict) else None
                              for k in ("paths", "requires_grad", "reseeded"))
    outputs = [r for r in rows if r[0] == OUTPUT]
    arena = [r for r in rows if r[0] == ARENA]
    ok = (all(r[0] in (OUTPUT, TENSOR, GRAD, ARENA) and 0 <= r[1] and 0 <= r[2] < len(DEVICES) and 0 <= r[3] <= r[4]
              for r in rows)
          and isinstance(paths, list) and all(isinstance(p, str) for p in paths)
          and sorted(r[1] for r in outputs) == list(range(len(paths))) and len(arena) <= 1
          and isinstance(flags, str) and set(flags) <= {"0", "1"}
          and isinstance(reseeded, list)
          and all(isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) for x in r) for r in reseeded))
    if not ok:
        return None
    return {"outputs": [(paths[i], DEVICES[d], start, end) for _, i, d, start, end in outputs],
            "inputs": [(i, kind, DEVICES[d], start, end) for kind, i, d, start, end in rows if kind in (TENSOR, GRAD)],
            "arena": [arena[0][3], arena[0][4]] if arena else None,
            "requires_grad": [flag == "1" for flag in flags], "reseeded": reseeded}
