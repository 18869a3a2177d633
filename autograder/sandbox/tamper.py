"""Tampering: what a submission did to the grader inside the child, shown to the instructor.

Student code runs in the child next to grader code (child.py's request loop, ``autograder.child_tasks``,
wire's packing, the given ``rlkit``). Code in one process can patch all of it, so what only the child
observes (autograd's gradients, what a child task records) can be forged; and a submission can tell it is
being graded (a uid in 200000-299999, a home named grader-sandbox-*). No sandbox hides all of that. As
PrairieLearn restricts imports and builtins, but without forbidding ordinary code, this module SHOWS the
instructor the evidence.

Child side, ``install_child(evidence_fd, code_dir)``, before any student module is imported:

- an integrity snapshot: the very objects (``is``) bound to each name of the grader's modules and classes,
  of torch's autograd entry points, of pickle (which carries requests and replies), of the builtins the
  grader's code calls, and the grader's ``sys.modules`` entries. It returns the check, which lists what was
  rebound; the child runs it after every request and puts the list in the reply. A change scores 0.
- an audit hook (PEP 578; it cannot be removed) that records probes made FROM THE SUBMISSION'S OWN FRAMES
  (libraries call ``sys._getframe``, gc and ctypes all the time): frame walking, gc, ctypes, signals to
  other processes, sockets, /proc and /dev, the grader's files, imports of the grader's modules, changes
  to the grader's functions and classes, tracing. There is no audit event for reading the uid, the login or
  the environment: wrappers of those raise one of ours ("grader.probe"), which the hook records the same way.

Each record is one JSON line, written at once to a pipe the judge reads: student code can add noise, never
take back what was written. The check and the hook hold everything they call in their closures: a module
attribute can be replaced without any audit event, a closure's cell only by reaching the function through
frames or the gc, which the hook records first.

Judge side: ``EvidenceReader(fd).tampering(child_alive)`` reads the pipe, bounded and defensively (it is the
child's word), into a ``Tampering``: what was changed (the problem scores 0), the kinds of probes (flagged
only, the score stands) and the first few records.
"""

from __future__ import annotations

import builtins
import json
import operator
import os
import re
import sys
import sysconfig
import threading
import types
from dataclasses import dataclass
from pathlib import PurePath

from autograder.paths import ROOT

# What each kind of record means, in the words the student and the instructor read.
KINDS = {
    "grader-code": "changed the grader's code (its functions, classes or modules)",
    "autograd": "changed torch's autograd, which the grader uses to compute gradients",
    "builtins": "replaced Python built-ins the grader's code relies on",
    "reply-channel": "reached the channels the grader's replies and evidence travel on",
    "grader-import": "imported the grader's own modules",
    "grader-files": "tried to read the grader's files",
    "frames": "walked the call stack (sys._getframe, inspect, tracebacks' frames)",
    "gc": "searched the garbage collector's objects",
    "ctypes": "used ctypes (raw memory, C calls)",
    "signals": "sent signals to other processes",
    "sockets": "opened sockets",
    "proc": "read other processes' or its own process's files under /proc",
    "devices": "opened devices under /dev",
    "tracing": "installed a trace or profile function",
    "sandbox-probe": "looked for signs of being graded (uid, login, home folder)",
}
CHANGED = "changed"  # the event of a record that says the grader's code was changed: the problem scores 0

# --------------------------------------------------------------------------- what is watched
GRADER_PACKAGES = ("autograder", "rlkit")
GRADER_IMPORTS = frozenset({"autograder", "solutions", "reference"})  # the given rlkit is the students' to import
AUTOGRAD_MODULES = ("torch.autograd", "torch.autograd.graph", "torch.autograd.functional", "torch.func")
AUTOGRAD_CLASSES = (("torch", "Tensor"), ("torch.autograd.variable", "Variable"),
                    ("torch.autograd.function", "Function"))
REPLY_MODULES = ("pickle",)
REPLY_CLASSES = (("socket", "socket"),)  # the class of the child's channel to the judge
# The builtins the grader's child code calls to check and pack values. open, __import__ and print are the
# students' (and libraries') to wrap.
BUILTINS = ("isinstance", "issubclass", "getattr", "hasattr", "callable", "len", "type", "list", "tuple",
            "dict", "str", "int", "float", "bool", "bytes", "all", "any", "zip", "enumerate", "range", "sorted",
            "min", "max", "repr", "iter", "next", "map", "super", "object", "BaseException", "Exception")
ENVIRONMENT_MARKERS = frozenset({"HOME", "USER", "LOGNAME", "PWD"})
GRADER_TREES = tuple(str(ROOT / name) for name in ("autograder", "solutions", "tests", "instructor", ".git"))
ALLOWED_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/dev/random"})
FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
FRAME_EVENTS = frozenset({"sys._getframe", "sys._current_frames", "sys._current_exceptions", "object.__getattr__"})
EVENTS = FRAME_EVENTS | {"object.__setattr__", "object.__delattr__", "gc.get_objects", "gc.get_referrers",
                         "gc.get_referents", "os.kill", "os.killpg", "signal.pthread_kill", "open", "os.listdir",
                         "os.scandir", "os.symlink", "sys.settrace", "sys.setprofile", "grader.probe"}
EVENT_PREFIXES = ("ctypes.", "socket.")
WALK_DEPTH = 12  # frames looked at to find the submission's own
MAX_RECORDS, MAX_RECORD_BYTES = 100, 32 * 1024  # the child's own bound: it never fills the pipe

_HERE = __file__
# Read where the fork server imports this module: sysconfig imports a module of Python's prefix, which a child that
# has dropped to its own uid may be unable to read (Python under a 0700 folder, without Landlock).
_PATHS = sysconfig.get_paths()


def _watchable(value) -> bool:
    """A binding whose replacement changes what the grader's code does (functions, classes, modules)."""
    return callable(value) or isinstance(value, (types.ModuleType, property, classmethod, staticmethod))


# --------------------------------------------------------------------------- child: installing
def install_child(evidence_fd: int, code_dir: str, channel_fds=()):
    """Install the watch in the child, before any student module is imported; return the integrity check.

    ``evidence_fd``: the write end of the evidence pipe; ``code_dir``: the submission's folder (only frames of
    files under it count); ``channel_fds``: the child's other channels to the judge (opening them from the
    submission is recorded). The caller keeps the returned check in a local: ``check()`` lists the grader's
    names rebound since now ("grader-code: autograder.sandbox.child._call"), writing each new one to the
    evidence pipe too."""
    os.set_inheritable(evidence_fd, False)  # programs the submission starts do not get it
    write = _evidence_writer(evidence_fd)
    check = _integrity_check(_snapshot(), code_dir.rstrip(os.sep) + os.sep, write)
    sys.addaudithook(_audit_hook(code_dir.rstrip(os.sep) + os.sep, write, frozenset({evidence_fd, *channel_fds})))
    _watch_markers(sys.audit)
    _watch_imports(sys.audit, builtins.__import__)
    return check


def _evidence_writer(fd: int):
    """write(kind, event, detail, where): one JSON line on the evidence pipe, once per distinct record, at most
    MAX_RECORDS and MAX_RECORD_BYTES in all; nothing once the fd no longer is the pipe (closed, replaced)."""
    os_write, fstat, dumps, len_ = os.write, os.fstat, json.dumps, len
    pipe = fstat(fd)
    identity = (pipe.st_dev, pipe.st_ino)
    seen: set = set()
    state = {"bytes": 0, "open": True}

    def write(kind: str, event: str, detail: str, where: str = "") -> None:
        key = (kind, event, detail, where)
        if not state["open"] or key in seen:
            return
        seen.add(key)
        if len_(seen) > MAX_RECORDS or state["bytes"] > MAX_RECORD_BYTES:
            event, detail, where = "more", f"(records past the first {MAX_RECORDS} are not written)", ""
            state["open"] = False
        line = (dumps({"kind": kind, "event": event, "detail": detail[:200], "where": where[:200]}) + "\n").encode()
        try:
            now = fstat(fd)
            if (now.st_dev, now.st_ino) != identity:
                state["open"] = False  # the submission closed or replaced it: the judge sees the pipe closed
                return
            os_write(fd, line)  # under PIPE_BUF: one atomic write, never interleaved with the submission's
            state["bytes"] += len_(line)
        except OSError:
            state["open"] = False

    return write


# --------------------------------------------------------------------------- child: the integrity snapshot
def _space(label: str, kind: str, mapping, names=None, track_new: bool = False) -> tuple | None:
    """One watched namespace (a module's dict, a class's live mappingproxy, a registry dict such as
    child_tasks.TASKS): (label, kind, mapping, names, values, get, names as a set, size or None). ``names``:
    those watched (default: every watchable binding); ``get(mapping)`` reads them all at once, in C. ``size`` is
    kept for classes, where a method added (a ``__getattribute__``) changes what the grader's objects do."""
    if names is None:
        names = tuple(k for k, v in list(mapping.items()) if isinstance(k, str) and _watchable(v))
    if not names:
        return None
    get = operator.itemgetter(*names) if len(names) > 1 else (lambda m, name=names[0]: (m[name],))
    return (label, kind, mapping, names, get(mapping), get, frozenset(names), len(mapping) if track_new else None)


def _snapshot() -> list[tuple]:
    """Every watched namespace, as ``_space`` describes it, before any student code runs."""
    modules = sys.modules
    seen: set[int] = set()
    spaces = []

    def add(label, kind, mapping, names=None, track_new=False):
        if id(mapping) not in seen or names is not None:
            seen.add(id(mapping))
            spaces.append(_space(label, kind, mapping, names, track_new))

    def add_module(name, kind, grader):
        module = modules.get(name)
        if module is None:
            return
        add(name, kind, vars(module))
        for attr, value in list(vars(module).items()) if grader else ():
            if isinstance(value, type) and _is_grader(getattr(value, "__module__", "")):
                add(f"{value.__module__}.{value.__qualname__}", kind, value.__dict__, track_new=True)
            elif isinstance(value, dict) and not attr.startswith("__") and any(callable(v) for v in value.values()):
                add(f"{name}.{attr}", kind, value)

    grader_modules = tuple(sorted(n for n in list(modules) if _is_grader(n)))
    for name in grader_modules:
        add_module(name, "grader-code", grader=True)
    for name in AUTOGRAD_MODULES + REPLY_MODULES:
        add_module(name, "autograd" if name in AUTOGRAD_MODULES else "reply-channel", grader=False)
    for module_name, class_name in AUTOGRAD_CLASSES + REPLY_CLASSES:
        cls = getattr(modules.get(module_name), class_name, None)
        if isinstance(cls, type):
            kind = "autograd" if (module_name, class_name) in AUTOGRAD_CLASSES else "reply-channel"
            add(f"{module_name}.{class_name}", kind, cls.__dict__)
    variable = getattr(modules.get("torch.autograd.variable"), "Variable", None)
    if variable is not None and "_execution_engine" in variable.__dict__:
        # torch.autograd.grad runs Variable._execution_engine: an engine object, not a callable
        add("torch.autograd.variable.Variable", "autograd", variable.__dict__, ("_execution_engine",))
    add("builtins", "builtins", vars(builtins), BUILTINS)
    add("sys", "grader-code", vars(sys), ("modules",))
    add("sys.modules", "grader-code", modules, grader_modules)
    return [space for space in spaces if space is not None]


def _is_grader(module_name: str) -> bool:
    return module_name.split(".", 1)[0] in GRADER_PACKAGES


def _integrity_check(spaces: list[tuple], code_prefix: str, write):
    """The check: every watched name still bound to the same object; grader modules imported later (the
    submission's own imports of given code) are watched from the check that first sees them, and a function
    or class of theirs defined in the submission's files is a change already."""
    tuple_, map_, all_, zip_, len_, list_, is_ = tuple, map, all, zip, len, list, operator.is_
    isinstance_, getattr_, type_, function = isinstance, getattr, type, types.FunctionType
    watchable, is_grader, space, modules = _watchable, _is_grader, _space, sys.modules
    known = set(next(names for label, _, _, names, *_ in spaces if label == "sys.modules"))
    state = {"modules": len(modules)}
    reported: set[str] = set()

    def defined_in_submission(value) -> bool:
        if isinstance_(value, function):
            return value.__code__.co_filename.startswith(code_prefix)
        if isinstance_(value, type_):
            return getattr_(modules.get(value.__module__), "__file__", "").startswith(code_prefix)
        return False

    def later_modules(changed: list) -> None:
        for name in list_(modules):
            if name in known or not is_grader(name):
                continue
            known.add(name)
            mapping = vars(modules[name])
            changed += [f"grader-code: {name}.{k}" for k, v in list_(mapping.items())
                        if isinstance_(k, str) and watchable(v) and defined_in_submission(v)]
            spaces.append(space(name, "grader-code", mapping))
            if spaces[-1] is None:
                spaces.pop()

    def check() -> list[str]:
        changed: list[str] = []
        try:
            for label, kind, mapping, names, values, get, name_set, size in spaces:
                try:
                    now = get(mapping)
                except KeyError:  # a name deleted
                    now = tuple_(map_(mapping.get, names))
                if not all_(map_(is_, now, values)):
                    changed += [f"{kind}: {label}.{n}" for n, a, b in zip_(names, now, values) if a is not b]
                if size is not None and len_(mapping) != size:
                    changed += [f"{kind}: {label}.{k} (added)" for k, v in list_(mapping.items())
                                if k not in name_set and watchable(v)]
            if len_(modules) != state["modules"]:
                state["modules"] = len_(modules)
                later_modules(changed)
        except Exception as err:  # noqa: BLE001 - a namespace made unreadable is a change too
            changed.append(f"grader-code: the integrity check itself ({type_(err).__name__})")
        for name in changed:
            if name not in reported:
                reported.add(name)
                kind, _, detail = name.partition(": ")
                write(kind, CHANGED, detail)
        return changed[:20]

    return check


# --------------------------------------------------------------------------- child: the audit hook
def _audit_hook(code_prefix: str, write, channel_fds: frozenset):
    """The hook: cheap for every event it does not watch (one set lookup, one prefix test); for a watched one,
    what it touched, then whether the submission's own code did it (a walk of a few frames)."""
    getframe, get_ident, getpid, getpgrp, getcwd = sys._getframe, threading.get_ident, os.getpid, os.getpgrp, os.getcwd
    normpath, fsdecode, isinstance_, str_, type_, range_ = os.path.normpath, os.fsdecode, isinstance, str, type, range
    events, prefixes, frame_events, frame_attributes = EVENTS, EVENT_PREFIXES, FRAME_EVENTS, FRAME_ATTRIBUTES
    allowed_devices, grader_trees, root = ALLOWED_DEVICES, GRADER_TREES, str(ROOT)
    stdlib = tuple({_PATHS["stdlib"], _PATHS["platstdlib"]})
    inspect_file = os.path.join(_PATHS["stdlib"], "inspect.py")
    is_grader, module_type, function_type, pure_path, basename = (_is_grader, types.ModuleType, types.FunctionType,
                                                                  PurePath, os.path.basename)
    here, changed, depth = _HERE, CHANGED, WALK_DEPTH
    watched = _watched_objects()
    busy: set[int] = set()

    def short(value) -> str:
        if isinstance_(value, (str_, int, float, bytes)) or value is None:
            return repr(value)[:80]
        if isinstance_(value, tuple):
            return "(" + ", ".join(short(v) for v in value[:4]) + ")"
        return type_(value).__name__

    def path_kind(path):
        if isinstance_(path, int):
            return "reply-channel" if path in channel_fds else None
        if isinstance_(path, bytes):
            path = fsdecode(path)
        elif isinstance_(path, pure_path):
            path = str_(path)
        if not isinstance_(path, str_):
            return None
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        if "/." in path or "//" in path:
            path = normpath(path)
        if path == "/proc" or path.startswith("/proc/"):
            top = path[6:].split("/", 1)[0]
            return "proc" if top in ("", "self", "thread-self") or top.isdigit() else None
        if path == "/dev" or path.startswith("/dev/"):
            return None if path in allowed_devices else "devices"
        if path in ("/etc/passwd", "/etc/group"):
            return "sandbox-probe"
        if path == root or path.startswith(grader_trees):
            return "grader-files"
        return None

    def grader_object(obj):
        """(kind, label) of a function, class or module of the grader's or of autograd's, else None."""
        if id(obj) in watched:
            return watched[id(obj)]
        if isinstance_(obj, module_type):
            name = obj.__name__
        elif isinstance_(obj, (type_, function_type)):
            name = f"{obj.__module__}.{obj.__qualname__}"
        else:
            return None
        return ("grader-code", name) if isinstance_(name, str_) and is_grader(name) else None

    def classify(event: str, args: tuple):
        """(kind, event, detail) of a watched event, or None when it touches nothing of interest."""
        if event == "object.__getattr__":
            return ("frames", event, f"{type_(args[0]).__name__}.{args[1]}") if args[1] in frame_attributes else None
        if event.startswith("sys._"):
            frame = args[0] if args else None
            return "frames", event, (f"{basename(frame.f_code.co_filename)}:{frame.f_code.co_name}"
                                     if frame is not None else "")
        if event in ("object.__setattr__", "object.__delattr__"):
            owner = grader_object(args[0])
            return (owner[0], changed, f"{owner[1]}.{args[1]}") if owner else None
        if event in ("open", "os.listdir", "os.scandir", "os.symlink"):
            kind = path_kind(args[0] if args else ".")
            return (kind, event, short(args[0] if args else ".")) if kind else None
        if event in ("os.kill", "os.killpg"):
            own = getpid() if event == "os.kill" else getpgrp()
            return ("signals", event, short(tuple(args))) if args[0] != own else None
        if event == "grader.probe":
            return (args[0], event, args[1]) if len(args) == 2 and isinstance_(args[0], str_) else None
        kind = {"gc": "gc", "ctypes": "ctypes", "socket": "sockets", "signal": "signals",
                "sys": "tracing"}.get(event.split(".", 1)[0])
        return (kind, event, short(tuple(args))) if kind else None

    def submission_line(frame, stdlib_too: bool) -> str:
        """'hw2/returns.py:12' when the submission's own code made the call: the first frame outside this module
        and inspect (and, unless the event is about frames, outside the standard library, frozen modules such as
        posixpath included) is the submission's. An import stops the walk: what a module does while the
        submission imports it is that module's doing."""
        for _ in range_(depth):
            if frame is None:
                return ""
            name = frame.f_code.co_filename
            if name.startswith(code_prefix):
                return f"{name[len(code_prefix):]}:{frame.f_lineno}"
            passing = name == here or name == inspect_file or (stdlib_too and (
                (name.startswith(stdlib) and "-packages" not in name)
                or (name.startswith("<") and not name.startswith("<frozen importlib"))))
            if not passing:
                return ""
            frame = frame.f_back
        return ""

    def hook(event: str, args: tuple) -> None:
        if event not in events and not event.startswith(prefixes):
            return
        thread = get_ident()
        if thread in busy:  # what the hook itself does (reading frames) raises events too
            return
        busy.add(thread)
        try:
            found = classify(event, args)
            if found and found[0]:
                where = submission_line(getframe(1), event not in frame_events)
                if where:
                    write(found[0], found[1], found[2], where)
        except Exception:  # noqa: BLE001,S110 - the hook must never change what the audited call does
            pass
        finally:
            busy.discard(thread)

    return hook


def _watched_objects() -> dict[int, tuple[str, str]]:
    """id → (kind, label) of the autograd and reply objects whose own attributes (``__code__``, ``__bases__``)
    the hook watches; the grader's own are recognised by their module's name."""
    found = {}
    for module_name, class_name in AUTOGRAD_CLASSES + REPLY_CLASSES:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if cls is None:
            continue
        kind = "autograd" if (module_name, class_name) in AUTOGRAD_CLASSES else "reply-channel"
        found[id(cls)] = (kind, f"{module_name}.{class_name}")
        for attr, value in vars(cls).items():
            if isinstance(value, types.FunctionType):
                found.setdefault(id(value), (kind, f"{module_name}.{class_name}.{attr}"))
    for name in AUTOGRAD_MODULES + REPLY_MODULES:
        module = sys.modules.get(name)
        kind = "autograd" if name in AUTOGRAD_MODULES else "reply-channel"
        for attr, value in (vars(module).items() if module else ()):
            if isinstance(value, types.FunctionType):
                found.setdefault(id(value), (kind, f"{name}.{attr}"))
        if module is not None:
            found[id(module)] = (kind, name)
    return found


# --------------------------------------------------------------------------- child: probes with no audit event
def _watch_markers(audit) -> None:
    """Reading the uid, the login or the environment's HOME/USER raises no audit event: wrap those to raise ours."""
    def probe(fn, label):
        def watched(*args):
            audit("grader.probe", "sandbox-probe", label)
            return fn(*args)

        watched.__name__, watched.__qualname__, watched.__doc__ = fn.__name__, fn.__name__, fn.__doc__
        return watched

    for name in ("getuid", "geteuid", "getresuid", "getlogin"):
        if hasattr(os, name):
            setattr(os, name, probe(getattr(os, name), f"os.{name}()"))
    import pwd  # POSIX, as the sandbox is

    pwd.getpwuid = probe(pwd.getpwuid, "pwd.getpwuid()")

    class WatchedEnviron(type(os.environ)):
        def __getitem__(self, key, _markers=ENVIRONMENT_MARKERS, _audit=audit):
            if key in _markers:
                _audit("grader.probe", "sandbox-probe", f"os.environ[{key!r}]")
            return super().__getitem__(key)

    os.environ.__class__ = WatchedEnviron


def _watch_imports(audit, original) -> None:
    """``import autograder…`` of a module already loaded raises no audit event: wrap ``__import__`` to raise ours.
    (``importlib.import_module`` and ``sys.modules`` go around it; the integrity check still sees a change.)"""
    roots = GRADER_IMPORTS

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A001,A002 - builtins' signature
        if level == 0 and isinstance(name, str) and name.partition(".")[0] in roots:
            audit("grader.probe", "grader-import", f"import {name}" + (f" ({', '.join(map(str, fromlist))})"
                                                                       if fromlist else ""))
        return original(name, globals, locals, fromlist, level)

    builtins.__import__ = __import__


# --------------------------------------------------------------------------- judge: reading the evidence
@dataclass(frozen=True)
class Record:
    """One line of evidence, as the child wrote it (cleaned: it is the child's word)."""

    kind: str
    event: str
    detail: str
    where: str = ""

    def text(self) -> str:
        at = f" at {self.where}" if self.where else ""
        return f"{self.event} {self.detail}{at}".strip() if self.event != CHANGED else f"changed {self.detail}{at}"

    def to_json(self) -> dict:
        return {"kind": self.kind, "event": self.event, "detail": self.detail, "where": self.where}


@dataclass(frozen=True)
class Tampering:
    """What a submission touched of the grader's internals in one problem's child.

    ``changed``: the grader's names it rebound ("grader-code: autograder.sandbox.child._call"): the problem
    scores 0. ``kinds``: every kind of record (see KINDS). ``records``: the first few, for the instructor."""

    changed: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    records: tuple[Record, ...] = ()
    more: int = 0  # records beyond those kept

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def reason(self) -> str:
        """The failure's one line when the grader's code was changed."""
        names = [c.partition(": ")[2] or c for c in self.changed]
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        return f"your code changed the grader's {', '.join(names[:3])}{more}: the problem scores 0"

    def line(self) -> str:
        """One line for the student's output and the instructor: the kinds touched, each with its first record."""
        parts = []
        for kind in self.kinds:
            first = next((r for r in self.records if r.kind == kind), None)
            parts.append(f"{kind} ({first.text()})" if first else kind)
        return "your code touched the grader's internals: " + "; ".join(parts)

    def to_json(self) -> dict:
        return {"changed": list(self.changed), "kinds": list(self.kinds),
                "records": [r.to_json() for r in self.records], "more": self.more}

    @classmethod
    def from_json(cls, data) -> "Tampering":
        """Read back ``to_json``'s dict, defensively (a results.json is plain data): what is malformed is left out."""
        if not isinstance(data, dict):
            return cls()
        strings = lambda key: tuple(x for x in data.get(key) or () if isinstance(x, str))  # noqa: E731
        records = tuple(Record(**{k: str(r.get(k, "")) for k in ("kind", "event", "detail", "where")})
                        for r in data.get("records") or () if isinstance(r, dict))
        more = data.get("more")
        return cls(strings("changed"), strings("kinds"), records, more if isinstance(more, int) else 0)


KEPT_RECORDS = 12
MAX_EVIDENCE_BYTES, MAX_LINE_BYTES = 256 * 1024, 4096  # the child's lines are each one write under PIPE_BUF
F_SETPIPE_SZ = 1031  # Linux: room for the child's MAX_RECORD_BYTES and noise, so that its writes never block
_KIND = re.compile(r"[a-z][a-z-]{0,29}")


class EvidenceReader:
    """The judge's end of the evidence pipe: read without blocking when asked, at most MAX_EVIDENCE_BYTES.

    Every record was written before the reply that followed it, so reading once the checks are over sees
    them all. Untrusted: lines that are not records count as noise on the grader's channel; a pipe closed
    while the child still runs was closed by the submission (nothing of the grader's closes it)."""

    def __init__(self, read_fd: int):
        self._fd = read_fd
        os.set_blocking(read_fd, False)
        try:
            import fcntl

            fcntl.fcntl(read_fd, F_SETPIPE_SZ, 1 << 20)
        except (ImportError, OSError):
            pass
        self._data = bytearray()
        self._eof = False
        self._reported: list[str] = []

    def reported(self, changed) -> None:
        """Changes a reply named (``wire.decode`` checked they are short strings): kept even if the submission
        closes the pipe afterwards."""
        self._reported += [c for c in changed if c not in self._reported][: 20 - len(self._reported)]

    def _drain(self) -> None:
        while not self._eof and len(self._data) < MAX_EVIDENCE_BYTES:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
            self._data += chunk

    def tampering(self, child_alive: bool) -> Tampering:
        self._drain()
        records, noise = parse(bytes(self._data))
        if self._eof and child_alive:
            records.append(Record("reply-channel", CHANGED, "evidence pipe (closed by your code)"))
        if noise:
            records.append(Record("reply-channel", "noise", f"({noise} lines that are not the grader's records)"))
        return summarise(records, self._reported)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def parse(data: bytes) -> tuple[list[Record], int]:
    """The records in ``data`` and the number of lines that are not records."""
    from autograder.sandbox.wire import clean_text

    *lines, unfinished = data.split(b"\n")  # the child's lines are whole (one write each): a cut one is not its
    records, noise = [], int(bool(unfinished.strip()))
    for raw in lines:
        try:
            item = json.loads(raw) if len(raw) <= MAX_LINE_BYTES else None
        except ValueError:
            item = None
        if not (isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("kind", "event", "detail", "where"))
                and _KIND.fullmatch(item["kind"])):
            noise += bool(raw.strip())
            continue
        records.append(Record(item["kind"], clean_text(item["event"], 40), clean_text(item["detail"], 200),
                              clean_text(item["where"], 200)))
    return records, noise


def summarise(records: list[Record], reported=()) -> Tampering:
    """Records (and the changes the replies named) as one problem's Tampering."""
    changed = list(dict.fromkeys([*(f"{r.kind}: {r.detail}" for r in records if r.event == CHANGED), *reported]))
    named = (c.partition(": ")[0] for c in changed)  # a reply's names are the child's word: known shapes only
    kinds = sorted({r.kind for r in records} | {k if _KIND.fullmatch(k) else "grader-code" for k in named})
    kept = tuple(records[:KEPT_RECORDS])
    return Tampering(tuple(changed[:20]), tuple(kinds), kept, max(0, len(records) - KEPT_RECORDS))


__all__ = ["CHANGED", "KINDS", "EvidenceReader", "Record", "Tampering", "install_child", "parse", "summarise"]
