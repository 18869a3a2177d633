"""The side-effect contract: what every graded call must do besides returning the right value.

A value can be right and the function still break its caller's later work. So
every student call the grader makes (``StudentFunction.call``, and every call of
``StudentFunction.map``) is held to the contract below before any problem looks
at its value; each breach is a failure of its own, with its own diagnosis id:

  converts-input               an argument's tensors changed dtype or device (policy.double(), .to(...))
  modifies-input               an argument's values were written (in place, or a field reassigned)
  input-requires-grad-changed  an argument's requires_grad flag was switched (requires_grad_(), freezing)
  returns-grad-buffer          a returned tensor is a parameter's .grad (the next backward() writes into it)
  output-aliases-input         a returned tensor shares memory with an argument (itself, or a view of it)
  output-shared-across-calls   two calls returned tensors that share memory (a buffer kept between calls)
  constant-requires-grad       a constant or a label (returns, advantages, the expert's labels) requires grad
  gradient-wrong-dtype         a returned gradient has another dtype than its parameter
  reseeds-global-rng           a function given a seed or a generator reseeded torch's, numpy's or Python's global RNG

The facts come from two places. What the call wrote into its arguments the
judge reads from its own memory (``sandbox.arena``); whether a returned tensor
lies inside that memory the judge decides itself, from the child's addresses of
the outputs and of the arena's mapping. The rest only the child can observe
(``sandbox.effects``): it reports data, and the judge draws every conclusion
here. What each function's outputs are (constants, gradients, fields it may
share with its input) is declared once, in CONTRACTS, from its docstring.
"""

from __future__ import annotations

import ast
import bisect
import functools
import weakref
from dataclasses import dataclass

import torch

from autograder.compare import Mismatch
from autograder.paths import STARTER
from autograder.sandbox import Sandbox, SandboxFatal
from autograder.sandbox.effects import GRAD, tensors_with_paths
from autograder.sandbox.wire import tensors_in


@dataclass(frozen=True)
class Contract:
    """What a function's docstring promises about its outputs, besides their values."""

    constant: str = ""  # returned tensors that must not require grad: "*" every one, or a Trajectory field's name
    constant_is: str = ""  # what they are, in the lecture's words
    constant_hint: str = ""
    shares: tuple[str, ...] = ()  # Trajectory fields a returned trajectory may share with the input it relabels
    gradient_of: str = ""  # the argument whose parameters the returned list holds one gradient of each
    seeded_by: tuple[str, ...] = ()  # arguments that, when given, are the call's only randomness


CONSTANT_HINT = ("returns, reward-to-go, advantages and baselines are constants of the surrogate: only log π_θ is "
                 "differentiated. Build them from the inputs' values (no requires_grad=True, no torch.tensor(..., "
                 "requires_grad=True)), or .detach() them")
CONTRACTS = {
    "discounted_return": Contract(constant="*", constant_is="the return", constant_hint=CONSTANT_HINT),
    "discounted_reward_to_go": Contract(constant="*", constant_is="the reward-to-go", constant_hint=CONSTANT_HINT),
    "generalized_advantages": Contract(constant="*", constant_is="the advantages", constant_hint=CONSTANT_HINT),
    "optimal_baseline": Contract(constant="*", constant_is="the baseline b*", constant_hint=CONSTANT_HINT),
    "policy_gradient": Contract(gradient_of="policy"),
    "off_policy_policy_gradient": Contract(gradient_of="policy"),
    # "new trajectories ... with the same observations, rewards and terminated flag": dataclasses.replace shares them
    "dagger_relabel": Contract(constant="actions", constant_is="the expert's labels a*_t",
                               constant_hint="the expert's labels are constants, BC's targets: compute them without "
                                             "building a graph (keep the @torch.no_grad() decorator, or .detach() "
                                             "them). An expert that is an ordinary nn.Module gives labels that "
                                             "require grad: BC then backpropagates into the expert, and its second "
                                             "training step fails",
                               shares=("observations", "rewards", "final_observation")),
    "sample_trajectory": Contract(seeded_by=("seed",)),
    "train_policy": Contract(seeded_by=("generator",)),
}
NO_CONTRACT = Contract()

CONVERTS_HINT = ("the policy and the tensors you are given belong to the caller: never call .double(), .float(), "
                 ".to(...) or .cpu() on them. Compute in another precision on values of your own "
                 "(a float64 copy made with .double() or .to(torch.float64)) and return results in the caller's dtype")
MODIFIES_HINT = "never write into an argument; work on a copy (x.clone()) or build a new tensor"
REQUIRES_GRAD_HINT = ("never switch requires_grad on a tensor or a parameter you are given (requires_grad_(), "
                      "freezing the policy): x.detach() or x.clone() gives a tensor of your own")
GRAD_BUFFER_HINT = ("return copies (p.grad.clone()) or the result of torch.autograd.grad, never the .grad tensors "
                    "themselves: the caller's next backward() or zero_grad() writes into what you returned")
ALIAS_HINT = ("return a tensor of your own (x.clone(), torch.zeros_like(x), a new computation): a caller that "
              "writes into your result, as an optimizer or a buffer does, would overwrite its own input")
SHARED_HINT = ("every call must return tensors of its own: a buffer or cache kept between calls is overwritten by "
               "the next call, and every result handed out earlier changes with it")
GRADIENT_DTYPE_HINT = ("a gradient has its parameter's dtype: the optimizer adds it to the parameter. Compute the "
                       "surrogate in any precision, but differentiate with respect to the policy's own parameters")
RESEED_HINT = ("a function given a seed (or a generator) draws its randomness from it, never by reseeding the "
               "global RNGs: env.reset(seed=seed), torch.Generator().manual_seed(seed), buffer.sample(n, generator). "
               "torch.manual_seed / np.random.seed / random.seed inside it make every later draw of the caller "
               "repeat the same numbers")


# --------------------------------------------------------------------------- checking replies
def check_call(sandbox: Sandbox, module: str, function: str, args: tuple, kwargs: dict, reply: dict,
               grad_wrt: tuple[int, ...] = ()) -> None:
    """Raise a Mismatch (or SandboxFatal for a malformed reply) at the first breach of the contract by one call."""
    if reply.get("contract") is None or reply.get("mutated") is None:
        raise SandboxFatal(f"malformed reply to {function}: the account of the call's side effects is missing",
                           "malformed-reply")
    call = _Call(module, function, args, kwargs, sandbox.device, grad_wrt)
    call.check(reply["value"], reply["mutated"], reply["after"], reply["contract"])
    _returned_before(sandbox).check_and_add(function, "", reply["contract"]["outputs"], call.contract.shares)


def check_batch(sandbox: Sandbox, module: str, function: str, calls: list[tuple[tuple, dict]], reply: dict) -> None:
    """``check_call`` for every call of a batch."""
    n = len(calls)
    fields = [reply.get(f) for f in ("value", "mutated", "after", "contract")]
    if not all(isinstance(f, list) and len(f) == n for f in fields) or any(c is None for c in fields[3]) \
            or any(m is None for m in fields[1]):
        raise SandboxFatal(f"malformed reply to a batch of {n} calls of {function}", "malformed-reply")
    for index, ((args, kwargs), value, mutated, after, report) in enumerate(zip(calls, *fields)):
        where = f" (call {index + 1} of a batch of {n})"
        call = _Call(module, function, args, kwargs, sandbox.device, (), where)
        call.check(value, mutated, after, report)
        _returned_before(sandbox).check_and_add(function, where, report["outputs"], call.contract.shares)


def check_task(reply: dict) -> None:
    """A task's reply: the student functions it ran with a seed or a generator reseeded no global RNG."""
    report = reply.get("contract")
    if report is None:
        raise SandboxFatal("malformed reply to a task: the account of its side effects is missing", "malformed-reply")
    if report["reseeded"]:
        function, rng = report["reseeded"][0]
        raise _reseeded(function, rng, CONTRACTS.get(function, NO_CONTRACT).seeded_by[:1] or ("seed",))


class _Call:
    """One call's arguments, named as the starter names them, and the checks of its reply."""

    def __init__(self, module, function, args, kwargs, device, grad_wrt, where=""):
        self.function, self.device, self.grad_wrt, self.where = function, device, grad_wrt, where
        self.contract = CONTRACTS.get(function, NO_CONTRACT)
        positional = parameter_names(module, function)
        self.names = [positional[i] if i < len(positional) else f"argument {i + 1}" for i in range(len(args))]
        self.names += list(kwargs)
        self.values = [*args, *kwargs.values()]
        self.tensors = [tensors_in(v) for v in self.values]

    def name(self, label) -> str:
        """An argument's name, from its position (positional then keyword) or its keyword."""
        if isinstance(label, str):
            return label
        return self.names[label] if 0 <= label < len(self.names) else f"argument {label + 1}"

    def check(self, value, mutated, after, report) -> None:
        self._inputs_kept(mutated, after, self._per_argument(report["requires_grad"]))
        self._outputs_own(report)
        self._constants(value)
        self._gradient_dtypes(value)
        self._not_reseeded(report["reseeded"])

    def _per_argument(self, flags: list[bool]) -> list[list[bool]] | None:
        """The child's flat list of flags, one per tensor of every argument, cut argument by argument."""
        counts = [len(tensors) for tensors in self.tensors]
        if len(flags) != sum(counts):
            return None
        ends = [sum(counts[:i + 1]) for i in range(len(counts))]
        return [flags[end - n:end] for n, end in zip(counts, ends)]

    # -- inputs
    def _inputs_kept(self, mutated, after, flags) -> None:
        if not isinstance(after, list) or len(after) != len(self.values) or flags is None:
            raise SandboxFatal(f"malformed reply to {self.function}: the arguments as the call left them are "
                               "missing", "malformed-reply")
        for index, (tensors, back) in enumerate(zip(self.tensors, after)):
            for t, entry in zip(tensors, back if isinstance(back, list) else []):
                if isinstance(entry, torch.Tensor) and (entry.dtype != t.dtype
                                                        or _device_type(entry) != _device_type(self.device)):
                    raise Mismatch(f"{self.function}{self.where} converted its input {self.name(index)}: a tensor "
                                   f"it was given as {_short(t.dtype)} on {_device_type(self.device)} is now "
                                   f"{_short(entry.dtype)} on {_device_type(entry)}", CONVERTS_HINT, "converts-input")
        if mutated:
            which = ", ".join(self.name(i) for i in mutated)
            raise Mismatch(f"{self.function}{self.where} modified its input in place: {which}", MODIFIES_HINT,
                           "modifies-input")
        for index, (arg, tensors, now) in enumerate(zip(self.values, self.tensors, flags)):
            sent = [bool(t.requires_grad) for t in tensors]
            if index not in self.grad_wrt and now != sent:
                k = next(k for k, (a, b) in enumerate(zip(sent, now)) if a != b)
                what = f"parameter {k} of {self.name(index)}" if isinstance(arg, torch.nn.Module) else \
                    self.name(index)
                raise Mismatch(f"{self.function}{self.where} switched requires_grad of its input {what} from "
                               f"{sent[k]} to {now[k]}", REQUIRES_GRAD_HINT, "input-requires-grad-changed")

    # -- outputs
    def _outputs_own(self, report) -> None:
        shared_ok = self.contract.shares
        for path, device, start, end in report["outputs"]:
            if _allowed(path, shared_ok):
                continue
            for label, kind, in_device, in_start, in_end in report["inputs"]:
                if device == in_device and start < in_end and in_start < end:
                    if kind == GRAD:
                        raise Mismatch(f"{self.function}{self.where} returned{_at(path)} the .grad of a parameter "
                                       f"of {self.name(label)} itself, not a copy", GRAD_BUFFER_HINT,
                                       "returns-grad-buffer")
                    raise Mismatch(f"{self.function}{self.where} returned{_at(path)} a tensor that shares memory with "
                                   f"its input {self.name(label)} (the input itself, or a view of it)",
                                   ALIAS_HINT, "output-aliases-input")
            arena = report["arena"]
            if arena is not None and device == "cpu" and start < arena[1] and arena[0] < end:
                raise Mismatch(f"{self.function}{self.where} returned{_at(path)} a tensor that shares memory with "
                               "one of its inputs (an input itself, or a view of it)", ALIAS_HINT,
                               "output-aliases-input")

    def _constants(self, value) -> None:
        which = self.contract.constant
        if not which:
            return
        for path, t in tensors_with_paths(value):
            if getattr(t, "sandbox_requires_grad", False) and (which == "*" or path.endswith(f".{which}")):
                raise Mismatch(f"{self.function}{self.where} returned{_at(path)} {self.contract.constant_is} as a "
                               "tensor that requires grad: it is a constant, not part of the graph",
                               self.contract.constant_hint, "constant-requires-grad")

    def _gradient_dtypes(self, value) -> None:
        of = self.contract.gradient_of
        module = next((v for name, v in zip(self.names, self.values) if name == of), None)
        if not isinstance(module, torch.nn.Module) or not isinstance(value, (list, tuple)):
            return
        params = list(module.parameters())
        if len(value) != len(params):
            return  # the problem says how many it expects
        for i, (g, p) in enumerate(zip(value, params)):
            if isinstance(g, torch.Tensor) and g.dtype != p.dtype:
                raise Mismatch(f"{self.function}{self.where} returned a gradient of dtype {_short(g.dtype)} (at "
                               f"[{i}]) for a parameter of dtype {_short(p.dtype)}", GRADIENT_DTYPE_HINT,
                               "gradient-wrong-dtype")

    def _not_reseeded(self, reseeded) -> None:
        given = [name for name, v in zip(self.names, self.values) if name in self.contract.seeded_by and v is not None]
        if given and reseeded:
            raise _reseeded(self.function, reseeded[0][1], given)


class _Returned:
    """The memory every earlier call in one sandbox returned: the child keeps those values alive until it exits,
    so memory shared with one of them is shared memory, never a freed address reused."""

    def __init__(self):
        self.starts: dict[str, list[int]] = {}  # per device, sorted
        self.items: dict[str, list[tuple[int, int, str]]] = {}  # (start, end, which call returned it), same order
        self.longest = 0

    def check_and_add(self, function: str, where: str, outputs: list, shares: tuple[str, ...]) -> None:
        mine = [(path, device, start, end) for path, device, start, end in outputs if not _allowed(path, shares)]
        for path, device, start, end in mine:
            earlier = self._overlapping(device, start, end)
            if earlier is not None:
                raise Mismatch(f"{function}{where} returned{_at(path)} the same memory as an earlier call "
                               f"({earlier}): a tensor kept between calls", SHARED_HINT, "output-shared-across-calls")
        for path, device, start, end in mine:
            starts, items = self.starts.setdefault(device, []), self.items.setdefault(device, [])
            k = bisect.bisect_left(starts, start)
            starts.insert(k, start)
            items.insert(k, (start, end, f"{function}{_at(path)}{where}"))
            self.longest = max(self.longest, end - start)

    def _overlapping(self, device: str, start: int, end: int) -> str | None:
        starts, items = self.starts.get(device, []), self.items.get(device, [])
        k = bisect.bisect_left(starts, end)  # every range that starts before ``end``...
        while k > 0 and starts[k - 1] > start - self.longest:  # ...and may still reach past ``start``
            k -= 1
            if items[k][1] > start:
                return items[k][2]
        return None


_returned: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Sandbox -> _Returned


def _returned_before(sandbox: Sandbox) -> _Returned:
    return _returned.setdefault(sandbox, _Returned())


def _reseeded(function: str, rng: str, given) -> Mismatch:
    calls = {"torch": "torch.manual_seed, torch.seed or torch.set_rng_state", "torch.cuda": "torch.cuda.manual_seed",
             "numpy": "np.random.seed", "random": "random.seed"}.get(rng, rng)
    return Mismatch(f"{function} reseeded {rng}'s global RNG ({calls}) although it was given "
                    f"{' and '.join(f'`{g}`' for g in given)}: its randomness comes from what it is given, and the "
                    "caller's global RNGs are left alone", RESEED_HINT, "reseeds-global-rng")


def _allowed(path: str, shares: tuple[str, ...]) -> bool:
    return any(path.endswith(f".{field}") for field in shares)


def _at(path: str) -> str:
    return f" (at {path.lstrip('.')})" if path else ""


def _short(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _device_type(x) -> str:
    device = getattr(x, "sandbox_device", x)
    return str(device).split(":")[0]


@functools.cache
def parameter_names(module: str, function: str) -> tuple[str, ...]:
    """The positional parameters of ``module.function`` as the starter declares them (read, never imported)."""
    try:
        tree = ast.parse((STARTER / (module.replace(".", "/") + ".py")).read_text())
    except (OSError, SyntaxError):
        return ()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return tuple(a.arg for a in [*node.args.posonlyargs, *node.args.args])
    return ()
