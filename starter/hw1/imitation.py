"""Homework 1: imitation learning — behavioral cloning (BC) and DAgger.

Notation (lecture 2):
  o_t          the observation at step t;  a_t the action taken in o_t
  π_θ(a|o)     the learner's policy: ``policy(observations)`` returns a
               torch Distribution whose ``log_prob(actions)`` has shape [B]
  π*(o)        the expert: a callable from a batch of observations [B, obs_dim]
               to a batch of actions [B, act_dim] (deterministic)
  D            the aggregated data set of (o, a*) pairs

Behavioral cloning maximises the likelihood of the expert's actions on the
expert's own observations:  θ ← argmin_θ  E_{(o,a)~D} [ −log π_θ(a|o) ].
It then meets observations the expert never visited (distribution shift) and
its errors compound. DAgger fixes the data rather than the model: run the
LEARNER, ask the expert what it would have done in the observations the learner
actually visited, add those pairs to D, and train again.

    iteration 0:  D = expert demonstrations;            train π_θ on D
    iteration i:  τ_1…τ_N ~ π_θ   (sample_trajectories)
                  a*_t = π*(o_t)  (dagger_relabel)
                  D ← D ∪ {(o_t, a*_t)};                 train π_θ on D

Rules for every function in this file:
  * tensors in, tensors out (torch, not numpy); inputs are never modified;
  * a trajectory is an ``rlkit.trajectory.Trajectory``: observations [T, obs_dim],
    actions [T] (discrete, long) or [T, act_dim] (continuous), rewards [T],
    terminated (bool).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from rlkit.imitation import ImitationConfig, ReplayBuffer
from rlkit.trajectory import Trajectory


# ============================================================================ the loss
def bc_loss(policy: nn.Module, observations: Tensor, actions: Tensor) -> Tensor:
    """The behavioral-cloning loss: the mean negative log-likelihood of the expert's actions.

        L(θ) = −(1/B) Σ_{i=1}^{B} log π_θ(a_i | o_i)

    observations: [B, obs_dim]  o_i
    actions:      [B] (discrete) or [B, act_dim] (continuous)  a_i, the expert's labels
    returns:      a 0-dim tensor L(θ), differentiable with respect to the
                  policy's parameters (do not detach it, do not call .item()).

    For a Gaussian policy with fixed std this is, up to constants, the mean
    squared error between the policy's mean and the expert's action.
    Pitfalls: the MEAN over the batch (not the sum: the learning rate would
    then depend on the batch size); the NEGATIVE log-likelihood (we minimise);
    the LOG of the probability (a product of probabilities is a sum of logs).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# ============================================================================ collecting data
def _as_env_action(env: gym.Env, action: Tensor):
    """The action in the form ``env.step`` expects: an int, or a numpy array of the space's dtype."""
    if isinstance(env.action_space, gym.spaces.Discrete):
        return int(action.reshape(()))
    return action.detach().cpu().numpy().astype(env.action_space.dtype).reshape(env.action_space.shape)


@torch.no_grad()
def sample_trajectory(env: gym.Env, policy: nn.Module, max_length: int, seed: int | None = None) -> Trajectory:
    """Run one episode with actions sampled from the policy.

        o_0 = env.reset(seed=seed)           (reset without a seed when seed is None)
        a_t ~ π_θ(·|o_t)                     sample from policy(o_t[None])
        o_{t+1}, r_t, terminated, truncated, info = env.step(a_t)

    Stop after the first step that is ``terminated`` or ``truncated``, or after
    ``max_length`` steps, whichever comes first.

    returns: Trajectory with
      observations [T, obs_dim] float32   o_0 … o_{T-1}: the observation each action was TAKEN IN
                                           (not the one the step returned)
      actions      [T] long (discrete) or [T, act_dim] float32 (continuous)   a_0 … a_{T-1}
      rewards      [T] float32            r_0 … r_{T-1}, r_t returned by the step that took a_t
      terminated   bool                   the env's ``terminated`` flag of the last step: True only
                                           when the episode reached a terminal state. A time-limit
                                           truncation, or stopping at ``max_length``, is NOT termination.
      final_observation [obs_dim]          o_T, the observation after the last step.

    ``env.step`` wants a plain action: an int for a Discrete space, a numpy
    array of the space's shape and dtype for a Box (``_as_env_action`` does it).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def sample_trajectories(env: gym.Env, policy: nn.Module, min_timesteps: int, max_length: int) -> list[Trajectory]:
    """Whole trajectories (``sample_trajectory`` with no seed) until at least ``min_timesteps`` steps in total.

    returns: [τ_1, …, τ_N] with Σ_i len(τ_i) ≥ min_timesteps, and N as small as
             that allows: stop as soon as the total reaches min_timesteps (the
             last trajectory is kept whole, never cut).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# ============================================================================ DAgger
@torch.no_grad()
def dagger_relabel(expert: Callable[[Tensor], Tensor], trajectories: Sequence[Trajectory]) -> list[Trajectory]:
    """DAgger's labels: the expert's action in every observation the LEARNER visited.

    expert:       π*, maps observations [T, obs_dim] to actions [T, act_dim].
    trajectories: collected by the learner.
    returns:      new trajectories, one per input, with the same observations,
                  rewards and terminated flag, and actions a*_t = π*(o_t):
                  the expert's action in o_t, the observation of the SAME step.

    The learner's own actions are discarded: they are what we want to correct.
    Do not modify the input trajectories; build new ones (``dataclasses.replace``
    or ``Trajectory(...)``).
    """
    # YOUR CODE HERE
    raise NotImplementedError()


# ============================================================================ the training loop
def train_policy(policy: nn.Module, optimizer: torch.optim.Optimizer, buffer: ReplayBuffer,
                 cfg: ImitationConfig, generator: torch.Generator) -> list[float]:
    """``cfg.train_steps_per_iter`` gradient steps of behavioral cloning on the buffer.

    Each step: draw a minibatch of ``cfg.train_batch_size`` (o, a) pairs
    uniformly at random from the buffer (``buffer.sample(n, generator)``),
    compute ``bc_loss``, and take one optimizer step.
    returns: the loss of every step, as floats (for the log).
    """
    losses = []
    for _ in range(cfg.train_steps_per_iter):
        # minibatch → bc_loss → zero_grad / backward / step; append the loss (a float) to losses
        # YOUR CODE HERE
        raise NotImplementedError()
    return losses


def run_training_loop(env: gym.Env, policy: nn.Module, expert: Callable[[Tensor], Tensor],
                      demonstrations: Sequence[Trajectory], cfg: ImitationConfig,
                      on_iteration: Callable[[dict], None] | None = None) -> list[dict]:
    """BC (``cfg.method == "bc"``, one iteration) or DAgger (``cfg.n_iter`` iterations), as in CS285's run_hw1.py.

    iteration 0:   the data are the expert demonstrations.
    iteration ≥ 1: (DAgger only) roll out the CURRENT policy for at least
                   ``cfg.batch_size`` env steps (``sample_trajectories`` with
                   ``cfg.ep_len``), relabel them with the expert
                   (``dagger_relabel``), and use those.
    every iteration: add the data to the replay buffer (aggregation: D grows,
                   nothing is thrown away), train (``train_policy``), evaluate.

    Returns one log row per iteration (the given code fills it in).
    """
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
    buffer = ReplayBuffer(cfg.max_replay_buffer_size)
    n_iter = 1 if cfg.method == "bc" else cfg.n_iter
    log, env_steps = [], 0
    for itr in range(n_iter):
        if itr == 0:
            paths = list(demonstrations)
        else:
            # DAgger: paths = the current policy's rollouts, with the expert's actions as labels
            # YOUR CODE HERE
            raise NotImplementedError()
            env_steps += sum(len(p) for p in paths)
        buffer.add(paths)
        losses = train_policy(policy, optimizer, buffer, cfg, generator)

        # ---- given: evaluation and logging (sampled actions, as CS285 does)
        eval_paths = sample_trajectories(env, policy, cfg.eval_batch_size, cfg.ep_len) if cfg.eval_batch_size else []
        returns = [float(p.rewards.sum()) for p in eval_paths]
        row = {"iteration": itr, "env_steps": env_steps, "buffer_size": len(buffer),
               "loss": losses[-1] if losses else float("nan"),
               "eval_return_mean": float(np.mean(returns)) if returns else float("nan"),
               "eval_return_std": float(np.std(returns)) if returns else float("nan"),
               "eval_episodes": len(returns)}
        log.append(row)
        if on_iteration is not None:
            on_iteration(row)
    return log
