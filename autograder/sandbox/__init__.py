"""Run student functions in a confined child process; judge the data it sends back.

    judge.py      the judge's side: Sandbox (start, call, kill), prepare, self_check
    forkserver.py the preloaded process children are forked from (started first, imports nothing heavy;
                  reached only through the judge's socket pair)
    child.py      the child's side: confine, import the submission, answer requests
    channel.py    frames on the judge-child socket pair; every read the judge makes has a deadline and a budget
    wire.py       what travels between them, and how the judge checks a reply
    arena.py      a request's tensors in memory the judge owns, read back after the call
    tamper.py     what the submission did to the grader's code in the child: integrity check, audit hook, evidence
    effects.py    what a call did besides returning (memory it shares, flags, reseeded RNGs), seen in the child
    isolation.py  what the child may touch (Landlock, a uid of its own), decided in the judge
    landlock.py   Linux's unprivileged file-system sandbox, through its system calls
    seccomp.py    the system calls the child may not make (IPC, other sockets, ptrace, signals to the grader)
    limits.py     time and memory limits (memory capped by the machine's cgroup)
    processes.py  killing what a child left running; removing work folders (its own, dead judges')
    errors.py     what can go wrong, as the judge sees it
"""

from autograder.sandbox.errors import (GraderError, KnownHang, NotImplementedYet, SandboxFatal,
                                       StudentException, SubmissionError)
from autograder.sandbox.limits import DEFAULT_MEMORY_MB, Limits, memory_limit_mb

# The judge's side imports torch: loaded on first use, so that ``autograder.sandbox.forkserver`` can start the
# fork server before the judge spends its own seconds importing torch.
_LAZY = {"Sandbox", "prepare", "self_check"}


def __getattr__(name: str):
    if name in _LAZY:
        from autograder.sandbox import judge

        return getattr(judge, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_MEMORY_MB", "GraderError", "KnownHang", "Limits", "NotImplementedYet", "Sandbox",
           "SandboxFatal", "StudentException", "SubmissionError", "memory_limit_mb", "prepare", "self_check"]
