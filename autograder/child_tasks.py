"""Grader code that must run in the child, beside the student's code.

Some checks need the student's functions inside a loop the grader owns: a whole
training run, or the gradient of the student's loss. Each task here receives the
student's module as its first argument (the child passes the module the judge
named; nothing here imports ``hw1`` or ``hw2``) and everything else as data sent
by the judge: configurations and budgets included, so that nothing in the
student's process decides them. Tasks return data only; the judge evaluates
trained policies itself, with its own code.

The fork server imports this module before any student code exists; the child
runs a task by name (``Sandbox.task``), and only the names in ``TASKS``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _parameters(policy: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}


def bc_loss_gradients(student, policy: nn.Module, observations: Tensor, actions: Tensor):
    """∂ bc_loss / ∂θ for every parameter of ``policy``, with the student's ``bc_loss``.

    Returns a list of tensors, or a string saying why there is no gradient."""
    loss = student.bc_loss(policy, observations, actions)
    if not isinstance(loss, Tensor):
        return f"bc_loss returned a {type(loss).__name__}, not a tensor"
    if not loss.requires_grad:
        return "the returned loss does not require grad (was it detached, or computed under torch.no_grad / .item()?)"
    if loss.numel() != 1:
        return f"the returned loss has shape {list(loss.shape)}, not a single number"
    grads = torch.autograd.grad(loss.reshape(()), tuple(policy.parameters()), allow_unused=True)
    return ["no gradient reaches this parameter" if g is None else g for g in grads]


def train_imitation(student, config: dict, seed: int) -> dict:
    """BC or DAgger with the student's ``run_training_loop`` on ``ImitationConfig(**config, seed=seed)``.

    Returns the trained policy's parameters (after iteration 0 and at the end) and
    the number of log rows and their env-step counts."""
    from rlkit.imitation import ImitationConfig, run

    cfg = ImitationConfig(**config, seed=seed)
    snapshots: list[dict] = []

    def loop(env, policy, expert, demos, cfg, on_iteration):
        def record(row):
            if not snapshots:
                snapshots.append(_parameters(policy))
            if on_iteration is not None:
                on_iteration(row)

        return student.run_training_loop(env, policy, expert, demos, cfg, record)

    result = run(cfg, loop)
    rows = [r for r in result.log if isinstance(r, dict)]
    return {"policy": _parameters(result.policy), "first_policy": snapshots[0] if snapshots else None,
            "iterations": len(rows),
            "env_steps": torch.tensor([float(r.get("env_steps", float("nan"))) for r in rows], dtype=torch.float64)}


def train_policy_gradient(student, config: dict, seed: int, steps: int, target_return: float) -> dict:
    """The given policy-gradient agent with the student's ``hw2.returns`` functions, for at most ``steps``
    env steps or until the batch average reaches ``target_return``. Returns the policy's parameters and the
    learning curve."""
    from rlkit.pg_agent import AdvantageFunctions, PGConfig, train

    cfg = PGConfig(**config, steps=steps, seed=seed, target_return=target_return)
    result = train(cfg, AdvantageFunctions.from_module(student), evaluate_at_end=False)
    return {"policy": _parameters(result.policy),
            "env_steps": torch.tensor([row["env_steps"] for row in result.log], dtype=torch.int64),
            "return_mean": torch.tensor([row["return_mean"] for row in result.log], dtype=torch.float64)}


TASKS = {f.__name__: f for f in (bc_loss_gradients, train_imitation, train_policy_gradient)}
