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

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from autograder.sandbox import effects


def _parameters(policy: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}


def bc_loss_gradients(student, policy: nn.Module, observations: Tensor, actions: Tensor):
    """∂ bc_loss / ∂θ for every parameter of ``policy``, with the student's ``bc_loss``.

    Returns a list with a tensor per parameter (None for a parameter the loss does not depend on), or a string
    saying why there is no gradient at all."""
    loss = student.bc_loss(policy, observations, actions)
    if not isinstance(loss, Tensor):
        return f"bc_loss returned a {type(loss).__name__}, not a tensor"
    if not loss.requires_grad:
        return "the returned loss does not require grad (was it detached, or computed under torch.no_grad / .item()?)"
    if loss.numel() != 1:
        return f"the returned loss has shape {list(loss.shape)}, not a single number"
    grads = torch.autograd.grad(loss.reshape(()), tuple(policy.parameters()), allow_unused=True)
    return list(grads)


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


# --------------------------------------------------------------------------- hw1: train_policy and DAgger, step by step
def build_policy(spec: dict) -> nn.Module:
    """The policy a spec describes, with exactly its parameters (the judge builds the same one to replay a call).

    spec: ``kind`` ("gaussian_mlp" or "categorical_mlp"), ``obs_dim``, ``act_dim`` or ``n_actions``, ``hidden``,
    ``parameters`` (a state dict)."""
    from rlkit.policies import CategoricalMLPPolicy, GaussianMLPPolicy

    if spec["kind"] == "categorical_mlp":
        policy = CategoricalMLPPolicy(int(spec["obs_dim"]), int(spec["n_actions"]), tuple(spec["hidden"]))
    else:
        policy = GaussianMLPPolicy(int(spec["obs_dim"]), int(spec["act_dim"]), tuple(spec["hidden"]))
    policy.load_state_dict({k: torch.as_tensor(v).detach().cpu().clone() for k, v in spec["parameters"].items()})
    return policy


def build_buffer(observations: Tensor, actions: Tensor, buffer_class=None):
    """A ReplayBuffer (or ``buffer_class``) holding exactly these (o, a) pairs, in this order."""
    from rlkit.imitation import ReplayBuffer

    buffer = (buffer_class or ReplayBuffer)(max(1, int(observations.shape[0])))
    buffer.observations = observations.detach().cpu().clone()
    buffer.actions = actions.detach().cpu().clone()
    return buffer


# The optimizer handed to train_policy runs at half of cfg.learning_rate: a train_policy that ignores it and builds
# its own (in a real run a new Adam at every call restarts its moment estimates at every DAgger iteration) then
# takes other steps than the reference, which steps the optimizer it is given.
GIVEN_OPTIMIZER_LR_SCALE = 0.5


def train_policy_call(student, policy_spec: dict, observations: Tensor, actions: Tensor, config: dict,
                      generator_seed: int, global_seed: int) -> dict:
    """One call of the student's ``train_policy(policy, optimizer, buffer, cfg, generator)`` on objects built
    from the judge's data: the policy, Adam at ``GIVEN_OPTIMIZER_LR_SCALE × cfg.learning_rate``, a buffer of exactly
    these pairs, a generator seeded with ``generator_seed``. torch's global RNG is seeded with ``global_seed``
    (another seed), so a draw that ignores the generator shows. Returns the final parameters, the returned losses
    as they are, and what the buffer, the optimizer and the policy saw (``seen``): the size, generator and pairs of
    every ``buffer.sample`` call; the order of the sample calls and optimizer steps; at every optimizer step the
    parameters it started from, their gradients and each group's learning rate; the number of zero_grad calls;
    and the optimizer's settings before and after the call. The judge checks each step from these records.
    Given a generator, train_policy must leave the global RNGs alone: a reseed is reported with the reply
    (``effects.given_a_seed``)."""
    from rlkit.imitation import ImitationConfig, ReplayBuffer

    given = torch.Generator().manual_seed(int(generator_seed))
    seen = {"sample_sizes": [], "sample_generators": [], "optimizer_steps": 0, "zero_grads": 0,
            "minibatches": [], "order": [], "steps": []}

    class WatchedBuffer(ReplayBuffer):
        def sample(self, n, generator=None):
            seen["sample_sizes"].append(int(n) if isinstance(n, int) else -1)
            seen["sample_generators"].append("given" if generator is given else "none" if generator is None
                                             else "other")
            drawn = super().sample(n, generator)
            seen["minibatches"].append([t.detach().clone() for t in drawn])
            seen["order"].append("sample")
            return drawn

    class WatchedAdam(torch.optim.Adam):
        def step(self, closure=None):
            seen["optimizer_steps"] += 1
            seen["order"].append("step")
            seen["steps"].append({
                "parameters": {name: p.detach().clone() for name, p in policy.named_parameters()},
                "grads": {name: None if p.grad is None else p.grad.detach().clone()
                          for name, p in policy.named_parameters()},
                "lr": [group.get("lr") for group in self.param_groups]})
            return super().step(closure)

        def zero_grad(self, set_to_none: bool = True):
            seen["zero_grads"] += 1
            return super().zero_grad(set_to_none)

    class WatchedPolicy:
        def zero_grad(self, set_to_none: bool = True):
            seen["zero_grads"] += 1
            return type(policy).zero_grad(policy, set_to_none)

    policy = build_policy(policy_spec)
    policy.zero_grad = WatchedPolicy().zero_grad
    buffer = build_buffer(observations, actions, WatchedBuffer)
    cfg = ImitationConfig(**config)
    optimizer = WatchedAdam(policy.parameters(), lr=GIVEN_OPTIMIZER_LR_SCALE * cfg.learning_rate)
    seen["settings_before"] = _settings(optimizer)
    torch.manual_seed(int(global_seed))
    with effects.given_a_seed("train_policy", [given]):
        losses = student.train_policy(policy, optimizer, buffer, cfg, given)
    seen["settings_after"] = _settings(optimizer)
    return {"policy": _parameters(policy), "losses": losses, "seen": seen}


def _settings(optimizer: torch.optim.Optimizer) -> list[dict]:
    """Each parameter group's settings (learning rate, betas, …), without its parameters."""
    return [{key: value for key, value in group.items() if key != "params"} for group in optimizer.param_groups]


class DriftEnv(gym.Env):
    """A deterministic 1-D task whose states depend on the actions taken, for grading DAgger's data.

    o_t = [x_t, t]; reset draws x_0 uniformly in [−1, 1] from the env's RNG (a seeded reset starts a new
    stream, an unseeded one continues it); step: x ← x + 0.5 · clip(a[0], −1, 1), reward −x². Episodes never
    end by themselves: the caller's max_length ends them. ``steps`` counts every env.step call."""

    metadata = {"render_modes": []}

    def __init__(self, stream_seed: int = 0):
        from gymnasium.utils import seeding

        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._np_random, _ = seeding.np_random(int(stream_seed))
        self.x, self.t, self.steps = 0.0, 0, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.t], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(np.float32(self.np_random.uniform(-1.0, 1.0))), 0
        return self._obs(), {}

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.size != 1 or not np.isfinite(a[0]):
            raise ValueError(f"DriftEnv.step: expected one finite number, got {action!r}")
        self.x = float(np.float32(self.x + 0.5 * float(np.clip(a[0], -1.0, 1.0))))
        self.t += 1
        self.steps += 1
        return self._obs(), -self.x * self.x, False, False, {}


def dagger_loop(student, policy_spec: dict, expert_weight: Tensor, expert_bias: Tensor, demonstrations: list,
                config: dict, seed: int, stream_seed: int) -> dict:
    """The student's ``run_training_loop`` on a DriftEnv with a linear expert, every object built from the
    judge's data (on the CPU, whatever the grading device) and seeded as ``rlkit.imitation.run`` seeds them.
    Returns, per iteration (at each on_iteration call): the policy's parameters, the log row's env_steps and
    buffer_size, the env's own step count, and the buffer's contents when the loop used the given ReplayBuffer;
    and the returned log's length."""
    from rlkit import imitation
    from rlkit.imitation import ImitationConfig
    from rlkit.scripted_envs import LinearExpert

    buffers: list = []

    class RecordingBuffer(imitation.ReplayBuffer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            buffers.append(self)

    env = DriftEnv(stream_seed)
    policy = build_policy(policy_spec)
    expert = LinearExpert(expert_weight.cpu(), expert_bias.cpu())
    cfg = ImitationConfig(**config, seed=int(seed))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    iterations: list[dict] = []

    def record(row):
        buffer = buffers[-1] if buffers else None
        iterations.append({
            "policy": _parameters(policy),
            "env_steps": row.get("env_steps") if isinstance(row, dict) else None,
            "buffer_size": row.get("buffer_size") if isinstance(row, dict) else None,
            "env_calls": env.steps,
            "buffer_observations": None if buffer is None or buffer.observations is None
            else buffer.observations.detach().cpu().clone(),
            "buffer_actions": None if buffer is None or buffer.actions is None
            else buffer.actions.detach().cpu().clone()})

    given = getattr(student, "ReplayBuffer", None)
    if given is imitation.ReplayBuffer:
        student.ReplayBuffer = RecordingBuffer
    try:
        log = student.run_training_loop(env, policy, expert, [d.to("cpu") for d in demonstrations], cfg, record)
    finally:
        if given is imitation.ReplayBuffer:
            student.ReplayBuffer = given
    return {"iterations": iterations, "log_rows": len(log) if isinstance(log, list) else -1,
            "policy": _parameters(policy)}


TASKS = {f.__name__: f for f in (bc_loss_gradients, train_imitation, train_policy_gradient, train_policy_call,
                                 dagger_loop)}
