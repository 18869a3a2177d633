"""autograder.dagger_moves: the moves DAgger's task records show the actions taken, and the tests on them pass the
current learner's own draws and fail the mean action, the expert and an earlier learner."""

from __future__ import annotations

import numpy as np
import torch

from autograder.child_tasks import DriftEnv
from autograder.dagger_moves import Moves, check_moves

SIGMA = 0.01


def _gaussian(gain: float):
    """A learner whose mean action is gain·x, with the grader's std."""
    def gaussian(observations: torch.Tensor):
        x = observations[:, 0].to(torch.float64)
        return gain * x, torch.full_like(x, SIGMA)
    return gaussian


def _expert(observations: torch.Tensor) -> torch.Tensor:
    return -observations[:, :1]


def _rollouts(act, seed: int, episodes: int = 3, steps: int = 5) -> torch.Tensor:
    """Observations of whole DriftEnv episodes, each action act(x, generator)."""
    env, generator = DriftEnv(seed), torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(episodes):
        obs, _ = env.reset()
        for _ in range(steps):
            rows.append(torch.as_tensor(obs))
            obs, *_ = env.step(np.array([act(float(obs[0]), generator)], dtype=np.float32))
    return torch.stack(rows)


def test_moves_read_back_the_actions_taken():
    taken = iter([0.3, -0.7, 2.0, -5.0, 0.999])
    obs = _rollouts(lambda x, g: next(taken), seed=0, episodes=1, steps=5)
    moves = Moves.of(obs)
    assert torch.allclose(moves.actions[:2], torch.tensor([0.3, -0.7], dtype=torch.float64), atol=1e-6)
    assert moves.at_bound.tolist() == [0, 0, 1, -1] and len(moves.observations) == 4


def test_the_learners_own_draws_pass_and_every_other_source_is_named():
    current, initial = _gaussian(-0.5), _gaussian(-0.2)

    def draws(gain):
        return lambda x, g: gain * x + SIGMA * float(torch.randn((), generator=g))

    def check(act, seed):
        return check_moves([(Moves.of(_rollouts(act, seed)), current, initial, initial)], _expert)

    for seed in range(100):
        assert check(draws(-0.5), seed) is None, seed
    for act, diagnosis in ((lambda x, g: -0.5 * x, "mean-action-rollouts"), (lambda x, g: -x, "expert-rollouts"),
                           (draws(-0.2), "stale-learner")):
        found = check(act, 0)
        assert found is not None and found.diagnosis == diagnosis, (diagnosis, found)
