"""Whose draws DAgger's rollouts are: the current learner's, or the mean action, the expert or an earlier learner.

DAgger's grading task (``autograder.child_tasks.DriftEnv``) moves x ← x + 0.5·clip(a[0], −1, 1) and records
o = [x, t]. The buffer keeps the observations, not the learner's actions; each move within an episode still shows
the action taken: â = 2(x' − x), exactly up to float32's rounding of x', or, where |â| reaches 1, only that the
action was clipped at that bound. The learner has a noticeable std, so a correct loop's moves are draws of
N(μ(o), σ²) of the learner as it was after the previous iteration, and three mistakes show:

  * mean actions (a hand-written rollout that never samples): the moves sit on μ(o). A move counts when the
    learner's σ is at least SIGMA_FLOOR and â lies within SAME standard deviations of μ: given the past, with
    probability at most q = 2·(SAME + ρ)·φ(0), ρ = ROUNDING/SIGMA_FLOOR the rounding of â in standard
    deviations. The count among N moves is then at most Binomial(N, q), so "at least n of N" has probability
    at most C(N, n)·q^n: the test fires at the smallest n, fixed by N before the draws, that brings this within
    its share of the run's budget.
  * the expert's actions, or an earlier learner's (the initial policy, the learner one iteration behind):
    the likelihood ratio Λ = Π_moves q(move)/p(move) of such an alternative q against the current learner p.
    When the moves are p's draws, E[Λ] ≤ 1 (each factor's expectation given the past is at most 1), so by
    Markov's inequality P(Λ ≥ 1/share) ≤ share. The expert's alternative is N(a*(o), σ²), the learner's std
    around the expert's action.

The four tests split ``autograder.draws.PER_CALL`` (1e-8) evenly, so a correct loop fails one grading run with
probability below 1e-8; a problem makes a handful of runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from autograder.draws import PER_CALL, SAME, moves_loglik

EDGE = 1.0 - 2e-5  # |â| beyond this reads as a clipped action (float32 rounds an unclipped â by < 1e-6)
ROUNDING = 4.8e-7  # |â − a| at most: |x| < 4 on this task (|x_0| ≤ 1, ≤ 5 moves of ≤ 0.5), two float32 ulps of x'
SIGMA_FLOOR = 1e-3  # the mean-action test counts the moves of learners at least this noisy (the grader's: 0.01)
NEAR_MEAN = 2 * (SAME + ROUNDING / SIGMA_FLOOR) / math.sqrt(2 * math.pi)  # q above: 1.2e-3
TESTS = 4
# Λ is computed from densities at â rather than from the probability of â's rounding cell: on this task that moves
# log Λ by less than 0.1, and the threshold is raised by this margin.
ROUNDING_MARGIN = 1.0


@dataclass(frozen=True)
class Moves:
    """The moves of one DAgger iteration's rollouts: observations [n, 2], actions â [n] (float64) and at_bound
    [n] (+1 / −1 where the action reached that bound, 0 where â is the action)."""

    observations: Tensor
    actions: Tensor
    at_bound: Tensor

    @classmethod
    def of(cls, observations: Tensor) -> "Moves":
        """The moves within episodes (consecutive rows whose step counter t goes up by one)."""
        o = observations.to(torch.float64)
        step = o[1:, 1] == o[:-1, 1] + 1
        actions = 2.0 * (o[1:, 0] - o[:-1, 0])[step]
        at_bound = (actions >= EDGE).to(torch.int64) - (actions <= -EDGE).to(torch.int64)
        return cls(observations[:-1][step].to(torch.float32), actions, at_bound)


@dataclass(frozen=True)
class Finding:
    diagnosis: str
    what: str


Gaussian = Callable[[Tensor], tuple[Tensor, Tensor]]  # observations [n, 2] → (μ [n], σ [n]), float64


def check_moves(iterations: list[tuple[Moves, Gaussian, Gaussian, Gaussian]], expert: Callable[[Tensor], Tensor]
                ) -> Finding | None:
    """The first mistake these rollouts show, or None. ``iterations``: for each DAgger iteration, its moves, the
    learner as it was after the previous iteration (the one to roll out), the initial learner, and the learner
    one iteration behind."""
    share = PER_CALL / TESTS
    loglik = {"current": 0.0, "initial": 0.0, "behind": 0.0, "expert": 0.0}
    near, total = 0, 0
    for moves, current, initial, behind in iterations:
        mu, sigma = current(moves.observations)
        ll = moves_loglik(moves.actions, moves.at_bound, mu, sigma, EDGE)
        loglik["current"] += float(ll.sum())
        for name, policy in (("initial", initial), ("behind", behind)):
            loglik[name] += float(moves_loglik(moves.actions, moves.at_bound, *policy(moves.observations), EDGE).sum())
        expert_mu = expert(moves.observations).to(torch.float64).reshape(-1)
        loglik["expert"] += float(moves_loglik(moves.actions, moves.at_bound, expert_mu, sigma, EDGE).sum())
        z = (moves.actions - mu) / sigma
        near += int(((moves.at_bound == 0) & (sigma >= SIGMA_FLOOR) & (z.abs() < SAME)).sum())
        total += len(moves.actions)
    needed = next((n for n in range(1, total + 1) if math.comb(total, n) * NEAR_MEAN ** n <= share), None)
    if needed is not None and near >= needed:
        return Finding("mean-action-rollouts",
                       f"{near} of the {total} moves took exactly the learner's mean action μ(o), within {SAME:g} "
                       f"standard deviations; sampled actions do so {needed} times or more with probability at most "
                       f"C({total}, {needed})·{NEAR_MEAN:.2g}^{needed} = "
                       f"{math.comb(total, needed) * NEAR_MEAN ** needed:.1e}")
    threshold = math.log(1 / share) + ROUNDING_MARGIN
    words = {"expert": ("expert-rollouts", "the EXPERT's actions (with the learner's std)"),
             "initial": ("stale-learner", "the INITIAL learner, before any training"),
             "behind": ("stale-learner", "the learner one iteration behind the current one")}
    ratios = {name: loglik[name] - loglik["current"] for name in words}
    name = max(ratios, key=ratios.get)
    if ratios[name] >= threshold:
        diagnosis, whose = words[name]
        return Finding(diagnosis,
                       f"these moves are e^{ratios[name]:.0f} times more likely to be draws of {whose} than of "
                       f"the current learner (the policy as trained by the previous iteration); for the current "
                       f"learner's own draws that ratio reaches e^{threshold:.1f} with probability below "
                       f"{share:.1e} (Markov's inequality)")
    return None
