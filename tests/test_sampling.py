"""The given sampler (rlkit/sampling.py): a pool of environments stepped together."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.pg_agent import make_policy
from rlkit.policies import CategoricalMLPPolicy, GaussianMLPPolicy
from rlkit.sampling import EnvPool, episode_returns, policy_actor, seed_stream


def constant_action_policy(action: int) -> CategoricalMLPPolicy:
    policy = CategoricalMLPPolicy(4, 2)
    with torch.no_grad():
        policy.net[-1].weight.zero_()
        policy.net[-1].bias.copy_(torch.tensor([10.0, -10.0] if action == 0 else [-10.0, 10.0]))
    return policy


def cartpole_pool(n: int, **kwargs) -> EnvPool:
    return EnvPool.make(lambda: gym.make("CartPole-v1", **kwargs), n)


def one_episode(env: gym.Env, policy, seed: int, greedy: bool = False):
    actor = policy_actor(policy, greedy=greedy, rng=np.random.default_rng(seed))
    return EnvPool([env]).episodes(actor, [seed])[0]


def test_time_limit_is_a_truncation_not_a_termination():
    traj = one_episode(gym.make("CartPole-v1", max_episode_steps=3), CategoricalMLPPolicy(4, 2), seed=0)
    assert len(traj) == 3 and traj.terminated is False
    assert traj.final_observation is not None and not torch.equal(traj.final_observation, traj.observations[-1])


def test_falling_pole_is_a_termination():
    traj = one_episode(gym.make("CartPole-v1"), constant_action_policy(0), seed=0, greedy=True)
    assert traj.terminated is True and len(traj) < 50
    assert traj.actions.dtype == torch.long and (traj.actions == 0).all()


def test_max_length_cuts_without_terminating():
    with cartpole_pool(2) as pool:
        trajs = pool.episodes(policy_actor(CategoricalMLPPolicy(4, 2), rng=np.random.default_rng(0)), [1, 2],
                              max_length=4)
    assert [len(t) for t in trajs] == [4, 4] and not any(t.terminated for t in trajs)


def test_continuous_actions_are_gaussian_and_clipped_only_for_the_env():
    env = gym.make("InvertedPendulum-v5", max_episode_steps=5)
    policy = make_policy(env)
    with torch.no_grad():
        policy.log_std.fill_(3.0)  # samples far outside the box [-3, 3]
    assert isinstance(policy, GaussianMLPPolicy)
    traj = one_episode(env, policy, seed=0)
    assert traj.actions.shape == (len(traj), 1) and traj.observations.shape == (len(traj), 4)
    assert traj.actions.abs().max() > 3.0, "the recorded action is the sample, not the clipped one"
    assert torch.isfinite(policy(traj.observations).log_prob(traj.actions)).all()


@pytest.mark.parametrize("n", [1, 3])
def test_recorded_steps_replay_exactly_in_a_fresh_env(n):
    """o_t is the observation a_t was taken in, r_t the reward of that step, o_T the one after the last."""
    with cartpole_pool(n) as pool:
        trajs = pool.episodes(policy_actor(CategoricalMLPPolicy(4, 2), rng=np.random.default_rng(1)), [5, 6, 7, 8])
    for seed, traj in zip([5, 6, 7, 8], trajs):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=seed)
        for t in range(len(traj)):
            assert torch.equal(traj.observations[t], torch.as_tensor(obs, dtype=torch.float32))
            obs, reward, terminated, truncated, _ = env.step(int(traj.actions[t]))
            assert traj.rewards[t] == reward
            assert (terminated or truncated) == (t == len(traj) - 1)
        assert traj.terminated == terminated
        assert torch.equal(traj.final_observation, torch.as_tensor(obs, dtype=torch.float32))


def test_a_deterministic_actor_gives_the_same_episodes_whatever_the_pool_size():
    policy = CategoricalMLPPolicy(4, 2)
    actor = policy_actor(policy, greedy=True)
    with cartpole_pool(1) as one, cartpole_pool(4) as four:
        a, b = one.episodes(actor, range(20, 26)), four.episodes(actor, range(20, 26))
    assert [len(t) for t in a] == [len(t) for t in b]
    assert all(torch.equal(x.observations, y.observations) for x, y in zip(a, b))
    assert episode_returns(cartpole_pool(3), actor, 6, seed=20) == [float(len(t)) for t in a]


@pytest.mark.parametrize("n", [1, 4])
def test_min_steps_takes_whole_episodes_and_starts_none_after_reaching_it(n):
    with cartpole_pool(n) as pool:
        trajs = pool.episodes(policy_actor(CategoricalMLPPolicy(4, 2), rng=np.random.default_rng(2)),
                              seed_stream(np.random.default_rng(3)), min_steps=300)
    lengths = [len(t) for t in trajs]
    assert sum(lengths) >= 300
    assert all(t.terminated or len(t) == 500 for t in trajs), "every episode is played to its end"
    if n == 1:  # one at a time: the last episode is the one that crossed min_steps
        assert sum(lengths[:-1]) < 300


def test_sampling_is_reproducible_from_the_seeds():
    def run():
        with cartpole_pool(3) as pool:
            actor = policy_actor(CategoricalMLPPolicy(4, 2), rng=np.random.default_rng(7))
            return pool.episodes(actor, seed_stream(np.random.default_rng(8)), min_steps=200)

    torch.manual_seed(0)
    a = run()
    torch.manual_seed(0)
    b = run()
    assert len(a) == len(b) and all(torch.equal(x.actions, y.actions) for x, y in zip(a, b))


def test_an_empty_pool_is_an_error():
    with pytest.raises(ValueError):
        EnvPool([])


def test_a_pool_of_equal_length_episodes_takes_exactly_one_round():
    """5 episodes of 2 steps each with min_steps=10: the count is met when the pool's second step ends,
    so no slot starts another episode (none may look at a count its neighbours have not stepped yet)."""
    with cartpole_pool(5) as pool:
        trajs = pool.episodes(policy_actor(CategoricalMLPPolicy(4, 2), greedy=True), range(100), min_steps=10,
                              max_length=2)
    assert [len(t) for t in trajs] == [2] * 5


def _step_by_step(env: gym.Env, policy, seed: int, greedy: bool):
    """The pool's episode recomputed the slow, obvious way: one module call and one tensor per step."""
    rng, obs, rows = np.random.default_rng(seed), env.reset(seed=seed)[0], []
    while True:
        o = torch.as_tensor(np.asarray(obs), dtype=torch.float32).reshape(1, -1)
        with torch.no_grad():
            dist = policy(o)
            if isinstance(policy, GaussianMLPPolicy):
                mean = dist.mean
                a = mean if greedy else mean + policy.log_std.exp() * torch.from_numpy(
                    rng.standard_normal(tuple(mean.shape)).astype(np.float32))
                a = a[0]
                step = np.clip(a.numpy().astype(env.action_space.dtype), env.action_space.low, env.action_space.high)
            else:
                logits = dist.logits.double()
                cdf = torch.softmax(logits, -1).numpy().cumsum(-1)
                u = rng.random(cdf.shape[0]) * cdf[:, -1]
                a = logits.argmax(-1)[0] if greedy else torch.tensor(min(int((cdf <= u[:, None]).sum()), 1))
                step = int(a)
        rows.append((o[0], a))
        obs, reward, terminated, truncated, _ = env.step(step)
        if terminated or truncated or len(rows) == 40:
            return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]), bool(terminated)


@pytest.mark.parametrize("task", ["CartPole-v1", "Pendulum-v1"])
@pytest.mark.parametrize("greedy", [False, True])
def test_the_pools_fast_path_is_the_same_arithmetic_as_calling_the_policy(task, greedy):
    """The actor skips the module-call machinery and keeps numpy rows until an episode ends: every
    observation and action is still bit for bit what calling the policy module step by step gives."""
    torch.manual_seed(3)
    env = gym.make(task)
    policy = make_policy(env, (16, 16))
    want_obs, want_actions, terminated = _step_by_step(env, policy, seed=7, greedy=greedy)
    actor = policy_actor(policy, greedy=greedy, rng=np.random.default_rng(7))
    traj = EnvPool([env]).episodes(actor, [7], max_length=40)[0]
    assert torch.equal(traj.observations, want_obs) and traj.observations.dtype == torch.float32
    assert torch.equal(traj.actions, want_actions) and traj.actions.dtype == want_actions.dtype
    assert traj.terminated == terminated
