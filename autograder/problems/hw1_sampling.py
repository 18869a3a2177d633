"""hw1, sampling: ``sample_trajectory`` and ``sample_trajectories`` (hw1/imitation.py).

The two samplers run on small scripted environments (``rlkit.scripted_envs``)
whose termination and truncation times Hypothesis chooses; every field of each
recorded episode is checked against what the environment did, and the recorded
actions must also be independent draws of the policy (``autograder.draws``).
Each sampler has a hang probe (``autograder.hangs``): its first example.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from hypothesis import example
from hypothesis import strategies as st

from autograder.compare import Mismatch, assert_close, describe, expect_flag, expect_tensor, expect_trajectory, fmt
from autograder.hangs import probe
from autograder.problem import GRADER_SETTINGS, grader_settings, problem
from autograder.properties import given
from rlkit.trajectory import Trajectory

MODULE = "hw1.imitation"
# The mistakes only this module names (autograder.diagnoses holds the grader's own ids).
DIAGNOSES = {
    "next-observation-recorded": "the observation recorded at t is o_(t+1), returned by env.step, not o_t",
    "reward-off-by-one": "the reward recorded at t is the next step's",
    "wrong-reset-seed": "the env is reset with another seed than the given one (or seeded when none is given)",
    "ran-past-episode-end": "the rollout keeps stepping after the episode ended",
    "stopped-early": "the rollout stops before the episode ended or reached max_length",
    "termination-missed": "terminated is False although the episode terminated",
    "max-length-as-terminal": "terminated is True for a trajectory cut at max_length",
    "wrong-trajectory-count": "sample_trajectories does not stop as soon as min_timesteps steps are collected",
}

SAMPLE_HINT = ("record o_t (the observation the action was taken in) before calling env.step, a_t sampled from "
               "policy(o_t[None]), r_t from that step; stop after a step that returns terminated or truncated, or "
               "after max_length steps; terminated is the env's terminated flag only (a time limit is not a "
               "terminal state); reset with env.reset(seed=seed)")
TRAJS_HINT = ("call sample_trajectory (with no seed) until the total number of steps reaches min_timesteps, "
              "keeping every trajectory whole")


def schedules(max_episodes: int = 4, max_len: int = 30):
    return st.lists(st.tuples(st.integers(1, max_len), st.sampled_from(["terminated", "truncated", "both", "never"])),
                    min_size=1, max_size=max_episodes)


def make_scripted(schedule, discrete: bool, obs_dim: int):
    from rlkit.policies import LinearGaussianPolicy
    from rlkit.scripted_envs import ScriptedEnv, TablePolicy

    env = ScriptedEnv(schedule, discrete=discrete, obs_dim=obs_dim, n_actions=3, act_dim=2)
    if discrete:
        policy = TablePolicy(torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, -1.0], [-1.0, 1.0, 0.5]]))
    else:
        # Dimension 0 follows the step count (the reward shows it); dimension 1's mean, 3, lies 4σ beyond the
        # action bound 1, so a draw falls inside the bounds with probability Φ(−4) − Φ(−8) ≈ 3.2e-5: two draws
        # recorded inside the bounds (a rollout that records the clipped action) are already a 1e-9 event.
        weight = torch.cat([torch.full((1, obs_dim), 0.05), torch.zeros(1, obs_dim)])
        policy = LinearGaussianPolicy(weight, torch.tensor([0.1, 3.0]), torch.full((2,), math.log(0.5)))
    return env, policy


def check_rollout(traj, *, name: str, env, length: int, terminated: bool, u: float, episode: int,
                  max_length: int, how: str) -> None:
    """Every field of one recorded episode of a ScriptedEnv, with a diagnosis for the usual mistakes."""
    traj = expect_trajectory(traj, name)
    obs_dim = env.obs_dim
    obs = expect_tensor(traj.observations, name=f"{name}: observations")
    if obs.dim() != 2 or obs.shape[1] != obs_dim:
        raise Mismatch(f"{name}: observations have shape {list(obs.shape)}, expected [T, {obs_dim}] = "
                       f"[{length}, {obs_dim}]", diagnosis="wrong-shape")
    T = obs.shape[0]
    if T != length:
        if T > length:
            why = (f"the episode ended after {length} steps ({how})" if length < max_length
                   else f"max_length is {max_length}")
        else:
            why = ("the episode was not over: a step that returns terminated or truncated ends it, "
                   f"max_length is {max_length}, and the env's episode length is "
                   f"{'unlimited' if how == 'never' else length if length < max_length else 'longer'}")
        raise Mismatch(f"{name} recorded {T} steps, expected {length}: {why}",
                       diagnosis="ran-past-episode-end" if T > length else "stopped-early")
    steps = torch.arange(T, dtype=torch.float64)
    o = obs.to(torch.float64)
    if T and torch.equal(o[:, 0], steps + 1):
        raise Mismatch(f"{name}: observations[t] is o_(t+1), the observation returned by env.step, not o_t, the "
                       f"observation a_t was taken in (column 0 of the scripted observation counts steps: expected "
                       f"{fmt(steps)}, got {fmt(o[:, 0])})", diagnosis="next-observation-recorded")
    assert_close(o[:, 0], steps, name=f"{name}: observations[:, 0] (the step counter t of o_t)", atol=1e-6,
                 label="step")
    if not torch.allclose(o[:, 1], torch.full((T,), u, dtype=torch.float64), atol=1e-6):
        raise Mismatch(f"{name}: the episode does not start from the expected reset: the scripted observation's "
                       f"column 1 is drawn from the env's RNG at reset; expected {u:.6g}, got {fmt(o[:, 1])}",
                       "reset with env.reset(seed=seed): the given seed when there is one, and no seed (None) "
                       "otherwise, so that later episodes continue the env's random stream", "wrong-reset-seed")
    assert_close(o[:, 2], torch.full((T,), float(episode), dtype=torch.float64),
                 name=f"{name}: observations[:, 2] (the episode index)", atol=1e-6, label="step")

    actions = traj.actions
    if env.discrete:
        actions = expect_tensor(actions, name=f"{name}: actions", shape=[T])
        if actions.is_floating_point() or actions.dtype == torch.bool:
            raise Mismatch(f"{name}: discrete actions should be an integer (long) tensor, got {actions.dtype}",
                           diagnosis="wrong-dtype")
        codes = actions.to(torch.float64)
    else:
        actions = expect_tensor(actions, name=f"{name}: actions", shape=[T, env.action_space.shape[0]])
        codes = 4.0 * actions.to(torch.float64)[:, 0].clamp(-1.0, 1.0)
    rewards = expect_tensor(traj.rewards, name=f"{name}: rewards", shape=[T])
    received = rewards.to(torch.float64) - 10.0 * steps
    if T > 1 and torch.allclose(rewards.to(torch.float64), 10.0 * (steps + 1) + codes, atol=1e-2):
        raise Mismatch(f"{name}: rewards[t] is the reward of step t+1, not the reward of the step that took a_t",
                       diagnosis="reward-off-by-one")
    assert_close(received, codes, atol=1e-2, label="step",
                 name=(f"{name}: rewards[t] − 10 t (the scripted reward encodes the action env.step received, "
                       f"which must be actions[t])"))
    got_terminated = expect_flag(traj.terminated, name)
    if got_terminated != terminated:
        if terminated:
            why = f"the last step returned terminated=True ({how} after {length} steps)"
            diagnosis = "termination-missed"
        elif how in ("truncated",) and length <= max_length:
            why, diagnosis = ("the last step returned truncated=True and terminated=False: a time limit is not a "
                              "terminal state (the future still has value)", "truncation-as-terminal")
        else:
            why, diagnosis = (f"the trajectory was cut at max_length={max_length} steps: the episode did not "
                              "terminate", "max-length-as-terminal")
        raise Mismatch(f"{name}: terminated is {got_terminated}, expected {terminated}: {why}", diagnosis=diagnosis)
    final = traj.final_observation
    if final is not None:
        final = expect_tensor(final, name=f"{name}: final_observation")
        want = torch.zeros(obs_dim, dtype=torch.float64)
        want[:3] = torch.tensor([float(T), u, float(episode)])
        assert_close(final.reshape(-1).to(torch.float64) if final.numel() == obs_dim else final, want,
                     name=f"{name}: final_observation (o_T, the observation after the last step)", atol=1e-6)


SAMPLING_HINTS = {
    "actions-not-sampled": "sample each action, a_t ~ π(·|o_t): policy(o_t[None]).sample(), never the policy's mean "
                           "or its most likely action",
    "actions-clipped": "record a_t exactly as drawn from π(·|o_t); clip, if at all, only the copy passed to env.step: "
                       "a clipped action is not a draw of π, and its log-probability under π (what BC, DAgger and the "
                       "policy gradient use) is not the clipped action's",
    "draws-not-independent": "draw every a_t fresh from torch's RNG as it stands: never reseed it (torch.manual_seed) "
                             "inside a rollout, before an action or at a reset; reseeding draws the same noise again, "
                             "and the samples are no longer independent",
}


def check_draws(trajs: list, policy, action_space, name: str) -> None:
    """The recorded actions of one call's episodes are independent draws of π: not its mean or mode, not clipped
    to the action bounds, not the same noise again within an episode or from one episode to the next. Each
    check's false-failure probability is bounded in ``autograder.draws`` (below 1e-8 per call)."""
    from gymnasium import spaces

    from autograder.draws import first_unlikely, repeated_episode_events, trajectory_events

    bounds = ((torch.as_tensor(action_space.low), torch.as_tensor(action_space.high))
              if isinstance(action_space, spaces.Box) else ())
    events, dists = [], []
    for k, traj in enumerate(trajs):
        with torch.no_grad():
            dists.append(policy(traj.observations.to(torch.float32)))
        where = f"trajectory {k}: " if len(trajs) > 1 else ""
        events += [dataclasses.replace(e, what=where + e.what)
                   for e in trajectory_events(dists[-1], traj.actions, *bounds)]
    events += repeated_episode_events(dists, [traj.actions for traj in trajs])
    found = first_unlikely(events)
    if found is not None:
        raise Mismatch(f"{name}: the recorded actions are not independent draws of the policy: {found.what}",
                       SAMPLING_HINTS[found.diagnosis], found.diagnosis)


@probe(MODULE, "sample_trajectory")
def probe_sample_trajectory():
    """The first example below: one 5-step episode of a scripted env."""
    env, policy = make_scripted([(5, "truncated")], True, 3)
    return (env, policy, 10), {"seed": 3}


@problem("hw1", "sample_trajectory", points=4, stubs=[(MODULE, "sample_trajectory")], hint=SAMPLE_HINT)
def check_sample_trajectory(ctx):
    """sample_trajectory on scripted envs: length, alignment of o_t/a_t/r_t, terminated vs truncated, max_length, seed."""
    from rlkit.scripted_envs import ScriptedEnv

    @GRADER_SETTINGS
    @given(schedule=schedules(max_episodes=1), max_length=st.integers(1, 40), discrete=st.booleans(),
           seed=st.one_of(st.none(), st.integers(0, 10_000)), obs_dim=st.integers(3, 5))
    @example(schedule=[(5, "truncated")], max_length=10, discrete=True, seed=3, obs_dim=3)
    @example(schedule=[(5, "terminated")], max_length=10, discrete=False, seed=None, obs_dim=3)
    @example(schedule=[(5, "both")], max_length=5, discrete=True, seed=7, obs_dim=4)
    @example(schedule=[(8, "terminated")], max_length=4, discrete=True, seed=1, obs_dim=3)
    @example(schedule=[(8, "never")], max_length=6, discrete=False, seed=2, obs_dim=3)
    @example(schedule=[(1, "terminated")], max_length=1, discrete=True, seed=0, obs_dim=3)
    @example(schedule=[(40, "never")], max_length=40, discrete=True, seed=4, obs_dim=3)
    @example(schedule=[(30, "truncated")], max_length=40, discrete=False, seed=5, obs_dim=3)
    def prop(schedule, max_length, discrete, seed, obs_dim):
        env, policy = make_scripted(schedule, discrete, obs_dim)
        kwargs = {} if seed is None else {"seed": seed}
        reply = ctx.student(MODULE, "sample_trajectory").call(env, policy, max_length, **kwargs)
        judge_env = ScriptedEnv(schedule, discrete=discrete, obs_dim=obs_dim)
        u = float(judge_env.reset(seed=seed)[0][1])
        length, terminated = judge_env.expected_episode(0, max_length)
        check_rollout(reply["value"], name="sample_trajectory", env=judge_env, length=length, terminated=terminated,
                      u=u, episode=0, max_length=max_length, how=schedule[0][1])
        check_draws([reply["value"]], policy, judge_env.action_space, "sample_trajectory")

    prop()


@probe(MODULE, "sample_trajectories")
def probe_sample_trajectories():
    """The first example below: two short episodes of a scripted env."""
    env, policy = make_scripted([(4, "terminated"), (3, "truncated")], True, 3)
    return (env, policy, 8, 10), {}


@problem("hw1", "sample_trajectories", points=2, stubs=[(MODULE, "sample_trajectories")], hint=TRAJS_HINT)
def check_sample_trajectories(ctx):
    """sample_trajectories: whole episodes, unseeded resets, until at least min_timesteps steps in total."""
    from rlkit.scripted_envs import ScriptedEnv

    @grader_settings(max_examples=25)
    @given(schedule=schedules(max_episodes=4, max_len=20), min_timesteps=st.integers(0, 60),
           max_length=st.integers(1, 25), discrete=st.booleans())
    @example(schedule=[(4, "terminated"), (3, "truncated")], min_timesteps=8, max_length=10, discrete=True)
    @example(schedule=[(4, "terminated")], min_timesteps=0, max_length=10, discrete=True)  # N = 0 trajectories
    @example(schedule=[(10, "never")], min_timesteps=10, max_length=5, discrete=False)
    def prop(schedule, min_timesteps, max_length, discrete):
        env, policy = make_scripted(schedule, discrete, 3)
        reply = ctx.student(MODULE, "sample_trajectories").call(env, policy, min_timesteps, max_length)
        value = reply["value"]
        if not isinstance(value, (list, tuple)):
            raise Mismatch(f"sample_trajectories should return a list of Trajectory, got {describe(value)}",
                           diagnosis="wrong-type")
        judge_env = ScriptedEnv(schedule, discrete=discrete, obs_dim=3)
        expected, total = [], 0
        while total < min_timesteps:
            k = len(expected)
            u = float(judge_env.reset()[0][1])
            length, terminated = judge_env.expected_episode(k, max_length)
            expected.append((length, terminated, u))
            total += length
        lengths = [len(t) if isinstance(t, Trajectory) else None for t in value]
        if len(value) != len(expected):
            raise Mismatch(f"sample_trajectories returned {len(value)} trajectories of lengths {lengths}, expected "
                           f"{len(expected)} of lengths {[e[0] for e in expected]}: keep sampling whole episodes "
                           f"while the total is below min_timesteps={min_timesteps}, and stop as soon as it is not",
                           diagnosis="wrong-trajectory-count")
        for k, (traj, (length, terminated, u)) in enumerate(zip(value, expected)):
            _, how = schedule[k % len(schedule)]
            check_rollout(traj, name=f"sample_trajectories: trajectory {k}", env=judge_env, length=length,
                          terminated=terminated, u=u, episode=k, max_length=max_length, how=how)
        check_draws(list(value), policy, judge_env.action_space, "sample_trajectories")

    prop()
