"""Are recorded actions draws of the policy? Sampling checks whose false-failure probability is bounded exactly.

A rollout records a_t ~ π(·|o_t): fresh draws of π itself, independent across steps and episodes. Three mistakes
keep every recorded value plausible one by one and show only in what the draws do together:
  * the policy's mean (or most likely action) recorded instead of a draw: the draws sit exactly on the mean;
  * the action clipped to the action space's bounds before it is recorded: a clipped action is not a draw of
    π (its log-probability is not π's), and the draws never leave the bounds, where π puts its mass outside;
  * torch's RNG reseeded before every action (or every episode): the same noise again and again.

Each check is an event fixed before the draws (from the episode's length and the policy's distributions at
the recorded observations, which depend on the env only), with its probability under correct sampling computed
for that very call: exactly (products of π's probabilities, Gaussian masses from the normal CDF), or bounded from
above where draws "coincide" within ``SAME`` standard deviations (a standard normal falls in an interval of width
2·SAME with probability at most 2·SAME·φ(0) = ``NEAR``, wherever the interval lies). A call splits
``PER_CALL`` = 1e-8 evenly over the events it considers and fails only on an event whose probability fits its
share. A problem makes at most 100 such calls, so a correct sampler loses a problem with probability below 1e-6.
The child seeds torch, numpy and random before every call and Hypothesis is derandomised: the verdict is the same
on every run.

For DAgger's data, where only the states an action led to are recorded, ``moves_loglik`` gives the likelihood of
the observed moves; a likelihood-ratio test then bounds its false failures by Markov's inequality.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, Independent, Normal

PER_CALL = 1e-8
SAME = 1e-3  # two standardised draws (a − μ)/σ closer than this in every dimension count as the same draw
NEAR = 2 * SAME / math.sqrt(2 * math.pi)  # 7.98e-4: P(|Z − c| < SAME) for Z ~ N(0, 1), at most, for any c


@dataclass(frozen=True)
class Event:
    """Something independent draws of π almost never do, and whether these draws did it."""

    diagnosis: str
    what: str  # the words, should it have happened
    bound: float  # its probability when the actions are independent draws of π (at most)
    happened: bool


def first_unlikely(events: Sequence[Event]) -> Event | None:
    """The first event that happened among those whose bound fits its share of the call's budget."""
    share = PER_CALL / max(1, len(events))
    return next((e for e in events if e.bound <= share and e.happened), None)


def normal_parts(dist: Distribution) -> tuple[Tensor, Tensor] | None:
    """(μ, σ) in float64, [T, act_dim], of a (possibly Independent) Normal; None for another distribution."""
    base = dist.base_dist if isinstance(dist, Independent) else dist
    if not isinstance(base, Normal):
        return None
    return base.loc.detach().double(), base.scale.detach().double().expand_as(base.loc)


def trajectory_events(dist: Distribution, actions: Tensor, low: Tensor | None = None,
                      high: Tensor | None = None) -> list[Event]:
    """The events of one episode's draws, ``dist`` = π(·|o_t) at its observations (batch [T]); ``low``/``high``
    the action space's bounds, when it has them."""
    if isinstance(dist, Categorical):
        return _categorical_events(dist.probs.detach().double(), actions.long())
    mu, sigma = normal_parts(dist)
    return _gaussian_events(mu, sigma, actions.detach().double().reshape(mu.shape), low, high)


def _gaussian_events(mu: Tensor, sigma: Tensor, actions: Tensor, low, high) -> list[Event]:
    T, d = mu.shape
    z = (actions - mu) / sigma
    events = [Event("actions-not-sampled",
                    f"all {T} actions are the policy's mean μ(o_t), within {SAME:g} standard deviations; "
                    f"independent draws of π are, with probability at most NEAR^(T·d) = {NEAR ** (T * d):.1e}",
                    NEAR ** (T * d), bool((z.abs() < SAME).all()))]
    if low is not None and high is not None:
        low, high = low.double(), high.double()
        inside = torch.special.ndtr((high - mu) / sigma) - torch.special.ndtr((low - mu) / sigma)
        bound = float(inside.clamp_min(0).log().sum().exp())
        events.append(Event("actions-clipped",
                            f"all {T} actions lie within the action space's bounds [{_row(low)}, {_row(high)}], "
                            f"where π puts much of its mass outside them (π's mean μ(o_0) = {_row(mu[0])}, "
                            f"σ = {_row(sigma[0])}): {T} draws of π all fall inside with probability "
                            f"{bound:.1e}. The recorded actions were clipped",
                            bound, bool(((actions >= low) & (actions <= high)).all())))
    if T >= 3:
        same = ((z[1:] - z[:-1]).abs() < SAME).all(-1)
        runs = (same[1:] & same[:-1]).nonzero()
        where = ""
        if len(runs):
            t = int(runs[0, 0])
            where = f" (first at steps {t}, {t + 1}, {t + 2}: (a − μ)/σ = {_row(z[t])})"
        bound = (T - 2) * NEAR ** (2 * d)
        events.append(Event("draws-not-independent",
                            f"three consecutive steps drew the same noise (a_t − μ(o_t))/σ, within {SAME:g}{where}; "
                            f"independent draws do so somewhere in {T} steps with probability at most "
                            f"(T − 2)·NEAR^(2·d) = {bound:.1e}. Was torch's RNG reseeded before each action?",
                            bound, bool(len(runs))))
    return events


def _categorical_events(probs: Tensor, actions: Tensor) -> list[Event]:
    T = probs.shape[0]
    mode = probs.argmax(-1)
    bound = float(probs.gather(1, mode[:, None]).log().sum().exp())
    events = [Event("actions-not-sampled",
                    f"all {T} actions are the policy's most likely action; independent draws of π are with "
                    f"probability {bound:.1e}", bound, bool(torch.equal(actions, mode)))]
    # Steps whose π(·|o_t) is the same distribution form a group; reseeding before each action draws the same
    # action at every step of a group. All n draws of a group agree with probability Σ_i p_i^n.
    rows, group = torch.unique(probs, dim=0, return_inverse=True)
    sizes = torch.bincount(group, minlength=len(rows))
    bound = float((rows ** sizes[:, None].double()).sum(-1).log().sum().exp())
    constant = all(bool((actions[group == g] == actions[group == g][0]).all()) for g in range(len(rows))
                   if sizes[g] > 1)
    events.append(Event("draws-not-independent",
                         f"at the steps where π(·|o_t) is the same distribution, the same action every time "
                         f"({len(rows)} distributions over {T} steps); independent draws do so with probability "
                         f"{bound:.1e}. Was torch's RNG reseeded before each action?", bound, constant))
    return events


def repeated_episode_events(dists: Sequence[Distribution], actions: Sequence[Tensor]) -> list[Event]:
    """One event per pair of consecutive episodes: the later one repeats the earlier one's draws at every step
    they share (their first m = min(T_k−1, T_k) steps), as when torch's RNG is reseeded at every reset."""
    events = []
    for k in range(1, len(dists)):
        m = min(len(actions[k - 1]), len(actions[k]))
        if m == 0:
            continue
        a, b = dists[k - 1], dists[k]
        if isinstance(a, Categorical):
            p, q = a.probs.detach().double()[:m], b.probs.detach().double()[:m]
            bound = float((p * q).sum(-1).log().sum().exp())  # P(two independent draws agree) = Σ_i p_i q_i
            happened = bool(torch.equal(actions[k - 1][:m].long(), actions[k][:m].long()))
            unit = "actions"
        else:
            za, zb = (_standardised(d, x) for d, x in ((a, actions[k - 1]), (b, actions[k])))
            bound = NEAR ** (m * za.shape[1])
            happened = bool(((za[:m] - zb[:m]).abs() < SAME).all())
            unit = f"noise (a_t − μ(o_t))/σ, within {SAME:g}"
        events.append(Event("draws-not-independent",
                            f"trajectory {k} repeats trajectory {k - 1}'s draws: the same {unit} at each of their "
                            f"first {m} steps; independent draws do so with probability at most {bound:.1e}. Was "
                            "torch's RNG reseeded at the start of every episode?", bound, happened))
    return events


def _standardised(dist: Distribution, actions: Tensor) -> Tensor:
    mu, sigma = normal_parts(dist)
    return (actions.detach().double().reshape(mu.shape) - mu) / sigma


def moves_loglik(actions: Tensor, at_bound: Tensor, mu: Tensor, sigma: Tensor, edge: float) -> Tensor:
    """The log-likelihood, per move, of actions seen through a clip: where ``at_bound`` is 0 the action itself
    (the Normal's log-density), where it is ±1 only that the action reached ±edge (log Φ of the tail beyond it).
    Every tensor is [n], float64."""
    density = Normal(mu, sigma).log_prob(actions)
    upper = torch.special.log_ndtr((mu - edge) / sigma)
    lower = torch.special.log_ndtr((-edge - mu) / sigma)
    return torch.where(at_bound > 0, upper, torch.where(at_bound < 0, lower, density))


def _row(t: Tensor) -> str:
    return ", ".join(f"{float(v):.3g}" for v in t.reshape(-1))
