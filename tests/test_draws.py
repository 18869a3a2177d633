"""autograder.draws: each sampling check's bound is the probability it claims, independent draws raise no event,
and each mistake raises its own."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, Normal

from autograder.draws import NEAR, first_unlikely, repeated_episode_events, trajectory_events
from autograder.problems.hw1_sampling import make_scripted

LOW, HIGH = torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0])


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _event(events, diagnosis):
    return next(e for e in events if e.diagnosis == diagnosis)


def test_the_clip_bound_is_the_gaussian_mass_inside_the_bounds():
    mu = torch.tensor([[0.1, 3.0], [0.4, 3.0]], dtype=torch.float64)
    dist = Independent(Normal(mu, torch.full_like(mu, 0.5)), 1)
    clipped = _event(trajectory_events(dist, mu.clamp(-1, 1), LOW, HIGH), "actions-clipped")
    want = math.prod(_phi((1 - m) / 0.5) - _phi((-1 - m) / 0.5) for m in mu.reshape(-1).tolist())
    assert clipped.happened and math.isclose(clipped.bound, want, rel_tol=1e-9)
    assert 1e-10 < want < 1e-9  # two steps of the scripted policy already make a 1e-9 event


def test_the_discrete_bounds_are_the_probabilities_of_their_events_by_enumeration():
    rows = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]], dtype=torch.float64)
    probs = rows[[0, 1, 0, 0, 1]]
    events = trajectory_events(Categorical(probs=probs), torch.zeros(5, dtype=torch.long))
    mode, repeat = _event(events, "actions-not-sampled"), _event(events, "draws-not-independent")
    modes = probs.argmax(-1).tolist()
    p_mode = p_repeat = 0.0
    for seq in itertools.product(range(3), repeat=5):
        p = math.prod(float(probs[t, a]) for t, a in enumerate(seq))
        p_mode += p if list(seq) == modes else 0.0
        p_repeat += p if len({seq[0], seq[2], seq[3]}) == 1 and seq[1] == seq[4] else 0.0
    assert math.isclose(mode.bound, p_mode, rel_tol=1e-12) and math.isclose(repeat.bound, p_repeat, rel_tol=1e-12)


def test_the_continuous_bounds_are_powers_of_the_largest_chance_of_a_coincidence():
    mu = torch.zeros(5, 2, dtype=torch.float64)
    events = trajectory_events(Independent(Normal(mu, torch.ones_like(mu)), 1), mu)
    assert _event(events, "actions-not-sampled").bound == NEAR ** 10
    assert _event(events, "draws-not-independent").bound == 3 * NEAR ** 4
    assert math.isclose(NEAR, 2 * 1e-3 * math.exp(0) / math.sqrt(2 * math.pi))


def _scripted_draws(discrete: bool, seed: int, episodes: int, steps: int):
    """Independent draws of the scripted policy on observations [t, u, k] (its own draws: what a correct
    sampler records)."""
    _, policy = make_scripted([(steps, "never")], discrete, 3)
    dists, actions = [], []
    generator = torch.Generator().manual_seed(seed)
    for k in range(episodes):
        obs = torch.tensor([[t, 0.25, k] for t in range(steps)], dtype=torch.float32)
        with torch.no_grad():
            dist = policy(obs)
        if discrete:
            draw = torch.multinomial(dist.probs, 1, generator=generator)[:, 0]
        else:
            draw = (dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=generator)).float()
        dists.append(dist)
        actions.append(draw)
    return dists, actions


def _events(dists, actions, discrete: bool):
    bounds = () if discrete else (LOW, HIGH)
    found = [e for d, a in zip(dists, actions) for e in trajectory_events(d, a, *bounds)]
    return found + repeated_episode_events(dists, actions)


@pytest.mark.parametrize("discrete", [False, True])
def test_independent_draws_raise_no_event(discrete):
    for seed in range(200):
        dists, actions = _scripted_draws(discrete, seed, episodes=3, steps=40)
        assert first_unlikely(_events(dists, actions, discrete)) is None, seed


def test_each_mistake_raises_its_event():
    dists, actions = _scripted_draws(False, 0, episodes=2, steps=6)
    means = [d.mean for d in dists]
    clipped = [a.clamp(-1, 1) for a in actions]
    noise = torch.randn(2, generator=torch.Generator().manual_seed(1))
    reseeded = [d.mean + d.stddev * noise for d in dists]  # the same noise at every step
    replayed = [actions[0], dists[1].mean + (actions[0] - dists[0].mean)]  # episode 1 replays episode 0's noise
    for recorded, diagnosis in ((means, "actions-not-sampled"), (clipped, "actions-clipped"),
                                (reseeded, "draws-not-independent"), (replayed, "draws-not-independent")):
        found = first_unlikely(_events(dists, recorded, False))
        assert found is not None and found.diagnosis == diagnosis, (diagnosis, found)
