"""The hw2 policy-gradient agent (rlkit/pg_agent.py), its run commands, and the CartPole integration problem."""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys

import gymnasium as gym
import pytest
import torch

from autograder import render
from autograder.compare import Mismatch
from autograder.problems.hw2_training import policy_from_parameters
from rlkit.experiments import hw2_sets
from rlkit.pg_agent import AdvantageFunctions, PGAgent, PGConfig, _checked, train
from rlkit.policies import CategoricalMLPPolicy
from tests.conftest import ROOT, SOLUTIONS, STARTER, grade_problem, make_submission
from tests.test_sampling import constant_action_policy as _constant_action_policy
from tests.test_sampling import one_episode as sample_trajectory


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REF = AdvantageFunctions.from_module(_load(SOLUTIONS / "hw2" / "returns.py", "_ref_hw2_returns"))


# --------------------------------------------------------------------------- advantages
class Recorder:
    """AdvantageFunctions that record which student function the agent calls."""

    def __init__(self):
        self.calls = []

    def functions(self) -> AdvantageFunctions:
        def wrap(name):
            def fn(*args):
                self.calls.append((name, args[3] if name == "generalized_advantages" else None))
                return getattr(REF, name)(*args)
            return fn
        return AdvantageFunctions(wrap("discounted_return"), wrap("discounted_reward_to_go"),
                                  wrap("generalized_advantages"))


@pytest.mark.parametrize("options, expected", [
    ({}, {("discounted_return", None)}),
    ({"rtg": True}, {("discounted_reward_to_go", None)}),
    ({"baseline": True}, {("discounted_reward_to_go", None), ("generalized_advantages", 1.0)}),
    ({"gae_lambda": 0.9}, {("discounted_reward_to_go", None), ("generalized_advantages", 0.9)}),
])
def test_each_estimator_calls_the_students_function(options, expected):
    cfg = PGConfig(**options)
    env = gym.make("CartPole-v1", max_episode_steps=20)
    recorder = Recorder()
    agent = PGAgent(cfg, env, recorder.functions())
    batch = [sample_trajectory(env, agent.policy, seed=s) for s in range(3)]
    adv, targets = agent.advantages(batch)
    assert set(recorder.calls) == expected and len(recorder.calls) == 3 * len(expected)
    assert adv.shape == (sum(len(t) for t in batch),)
    assert (targets is not None) == cfg.baseline


def test_critic_targets_bootstrap_only_after_a_truncation():
    gamma, c = 0.9, 2.0
    cfg = PGConfig(baseline=True, gamma=gamma)
    env = gym.make("CartPole-v1", max_episode_steps=4)
    agent = PGAgent(cfg, env, REF)
    with torch.no_grad():  # V ≡ c
        for p in agent.critic.parameters():
            p.zero_()
        agent.critic.net[-1].bias.fill_(c)
    truncated = sample_trajectory(env, agent.policy, seed=0)
    terminated = sample_trajectory(gym.make("CartPole-v1"), _constant_action_policy(1), seed=0, greedy=True)
    assert not truncated.terminated and terminated.terminated
    adv, targets = agent.advantages([truncated, terminated])
    for traj, a, y in ((truncated, adv[:4], targets[:4]), (terminated, adv[4:], targets[4:])):
        T = len(traj)
        q = REF.discounted_reward_to_go(traj.rewards, gamma).double()
        bootstrap = 0.0 if traj.terminated else c
        tail = torch.tensor([gamma ** (T - t) * bootstrap for t in range(T)], dtype=torch.float64)
        assert torch.allclose(y.double(), q + tail, atol=1e-5)
        assert torch.allclose(a.double(), q + tail - c, atol=1e-5)  # λ = 1: Q̂ − V + γ^{T−t} V(s_T)


def test_normalized_advantages_have_mean_zero_std_one():
    cfg = PGConfig(rtg=True, normalize_advantages=True)
    env = gym.make("CartPole-v1")
    agent = PGAgent(cfg, env, REF)
    adv, _ = agent.advantages([sample_trajectory(env, agent.policy, seed=s) for s in range(4)])
    assert abs(float(adv.mean())) < 1e-5 and abs(float(adv.std(unbiased=False)) - 1) < 1e-4


def test_gae_lambda_implies_baseline_and_rtg():
    cfg = PGConfig(gae_lambda=0.95)
    assert cfg.baseline and cfg.rtg and cfg.slug == "gae0.95"


@pytest.mark.parametrize("value, message", [
    (torch.zeros(2), "shape"),
    ([0.0, 0.0, 0.0], "torch.Tensor"),
    (torch.tensor([0.0, math.nan, 0.0]), "non-finite"),
])
def test_bad_student_outputs_are_named(value, message):
    with pytest.raises((TypeError, ValueError), match=message):
        _checked(value, "discounted_reward_to_go", 3)


def test_a_stub_fails_before_any_environment_step():
    starter = AdvantageFunctions.from_module(_load(STARTER / "hw2" / "returns.py", "_starter_hw2_returns"))
    with pytest.raises(NotImplementedError):
        starter.probe(PGConfig(gae_lambda=0.97))


def test_training_is_deterministic_and_logs_env_steps():
    cfg = PGConfig(rtg=True, steps=1500, batch_size=500, eval_episodes=2)
    first, second = train(cfg, REF), train(cfg, REF)
    assert [r["return_mean"] for r in first.log] == [r["return_mean"] for r in second.log]
    steps = [r["env_steps"] for r in first.log]
    assert steps == sorted(steps) and steps[-1] >= 1500 and len(first.eval_returns) == 2


# --------------------------------------------------------------------------- commands
def _python(*args, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_train_command_writes_log_plot_and_last_line(tmp_path):
    out = _python("-m", "rlkit.train", "--hw", "hw2", "--submission", str(SOLUTIONS), "--env", "CartPole-v1",
                  "--rtg", "--baseline", "--steps", "1200", "--eval-episodes", "3", "--runs-dir", str(tmp_path),
                  "--name", "smoke", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"average return over 3 evaluation episodes: -?\d+\.\d", out.stdout.strip().splitlines()[-1])
    for name in ("log.csv", "curve.png", "config.json", "summary.json"):
        assert (tmp_path / "smoke" / name).is_file()
    header = (tmp_path / "smoke" / "log.csv").read_text().splitlines()[0]
    assert header.startswith("iteration,env_steps,")


def test_train_command_on_the_starter_says_not_implemented(tmp_path):
    out = _python("-m", "rlkit.train", "--hw", "hw2", "--submission", str(STARTER), "--rtg", "--runs-dir",
                  str(tmp_path), "--no-progress")
    assert out.returncode == 1
    assert "discounted_reward_to_go" in out.stderr and "not implemented yet" in out.stderr


def test_a_default_run_ends_saying_the_vanilla_estimator_stays_low_and_which_flags_reach_500():
    from rlkit.experiments.hw2 import build_parser, closing_note, config_from_args

    note = closing_note(config_from_args(build_parser().parse_args(["--env", "CartPole-v1"])))
    assert note and "vanilla estimator" in note and "expected to keep the return low" in note
    assert "--rtg --baseline --gae-lambda 0.97" in note and "500" in note
    assert closing_note(config_from_args(build_parser().parse_args(["--env", "CartPole-v1", "--rtg",
                                                                   "--baseline"]))) is None


def test_an_experiment_set_says_which_run_of_how_many(tmp_path, capsys):
    args = hw2_sets.build_parser().parse_args(["--runs-dir", str(tmp_path), "--plot-only"])
    hw2_sets.run_set("cartpole", args, functions=None)
    runs = hw2_sets.SETS["cartpole"]().runs
    printed = capsys.readouterr().out
    for k, r in enumerate(runs, 1):
        assert f"cartpole: run {k} of {len(runs)}: {r.env}, {r.name}" in printed


def test_experiment_sets_are_well_formed():
    for name, build in hw2_sets.SETS.items():
        spec = build()
        names = {r.name for r in spec.runs}
        assert len(names) == len(spec.runs), name
        for title, plotted, _ in spec.plots.values():
            assert set(plotted) <= names, (name, title)
        for r in spec.runs:
            cfg = hw2_sets.config_for(r, seed=0, steps=1000)
            assert cfg.steps <= 1000 and gym.spec(cfg.env) is not None


# --------------------------------------------------------------------------- the integration problem
def test_grader_rebuilds_the_policy_and_rejects_nan_parameters():
    params = CategoricalMLPPolicy(4, 2).state_dict()
    assert isinstance(policy_from_parameters(dict(params)), CategoricalMLPPolicy)
    bad = dict(params)
    bad["net.0.weight"] = torch.full_like(bad["net.0.weight"], math.nan)
    with pytest.raises(Mismatch, match="finite"):
        policy_from_parameters(bad)
    with pytest.raises(Mismatch, match="malformed"):
        policy_from_parameters({"net.0.weight": params["net.0.weight"]})


def test_starter_fails_fast_with_not_implemented():
    result = grade_problem(STARTER, "cartpole_training", with_reference=False)
    assert result.status == "failed" and result.reason.startswith("not implemented yet")
    assert result.seconds < 30


def test_wrong_shape_fails_with_the_functions_name(tmp_path):
    sub = make_submission(tmp_path, {"hw2/returns.py": """
        def generalized_advantages(rewards, values, gamma, lam, terminated):
            return values.clone()  # [T+1], not [T]
    """})
    result = grade_problem(sub, "cartpole_training", with_reference=False)
    assert result.status == "failed"
    assert "generalized_advantages returned shape" in render.details(result)


@pytest.mark.slow
def test_reference_passes_cartpole_training():
    result = grade_problem(SOLUTIONS, "cartpole_training", with_reference=False)
    assert result.passed, render.details(result)


def test_a_policy_that_does_not_learn_fails_with_its_curve(tmp_path, monkeypatch):
    import autograder.problems.hw2_training as training

    monkeypatch.setattr(training, "STEP_BUDGET", 3000)  # the budget is sent to the child with each call
    sub = make_submission(tmp_path, {"hw2/returns.py": """
        _reference_gae = generalized_advantages

        def generalized_advantages(rewards, values, gamma, lam, terminated):
            return -_reference_gae(rewards, values, gamma, lam, terminated)  # ascends −J
    """})
    result = grade_problem(sub, "cartpole_training", with_reference=False)
    assert result.status == "failed"
    assert "did not reach 475" in render.details(result)
    assert "training seed 0" in render.details(result) and "training seed 1" in render.details(result)


def test_the_plotted_moving_average_is_the_mean_of_the_last_window():
    from rlkit.experiments.hw2 import moving_average

    assert moving_average([1.0, 3.0, 5.0, 7.0], window=2) == [1.0, 2.0, 4.0, 6.0]
    assert moving_average([4.0], window=10) == [4.0]
