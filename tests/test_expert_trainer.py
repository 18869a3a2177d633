"""The instructor's expert trainer (instructor/experts): the batched critics, the SAC log-likelihood,
the export to rlkit's ExpertPolicy, the float16 replay buffer, and checkpoint → kill → resume.
Tiny networks and a few hundred steps: nothing here trains for real."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from instructor.experts.agent import Agent, AgentConfig, TwinCritic
from instructor.experts.buffer import ReplayBuffer
from instructor.experts.export import actor_to_expert, make_env
from instructor.experts.train import CKPT_NAME, Trainer, TrainConfig
from rlkit.experts import ExpertPolicy

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(env="Hopper-v5", hidden=[32, 32], batch_size=32, learning_starts=200, buffer_size=5000,
            eval_every=250, eval_episodes=1, ckpt_every=150, log_every=10_000, stop_at=None)
TINY_FLAGS = ["--env", "Hopper-v5", "--hidden", "32", "32", "--batch-size", "32", "--learning-starts", "200",
              "--buffer-size", "5000", "--eval-every", "250", "--eval-episodes", "1", "--ckpt-every", "150",
              "--log-every", "10000", "--stop-at", "none"]


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


def test_twin_critic_is_two_independent_mlps():
    torch.manual_seed(0)
    critic = TwinCritic(5, 2, [16, 8])
    obs, act = torch.randn(7, 5), torch.randn(7, 2)
    q = critic(obs, act)
    assert q.shape == (2, 7, 1)
    x = torch.cat([obs, act], -1)
    for k in range(2):
        h = x
        for i, (w, b) in enumerate(zip(critic.weights, critic.biases)):
            h = h @ w[k] + b[k]
            if i < len(critic.weights) - 1:
                h = h.relu()
        torch.testing.assert_close(q[k], h)
    torch.testing.assert_close(critic(obs, act, first_only=True)[0], q[0])
    # detach: same values; the gradient reaches the actions (the actor's loss), not the weights
    act.requires_grad_(True)
    q_detached = critic(obs, act, detach=True)
    torch.testing.assert_close(q_detached, q)
    q_detached.sum().backward()
    assert act.grad is not None and all(p.grad is None for p in critic.parameters())


def test_sac_log_likelihood_matches_torch_distributions():
    torch.manual_seed(1)
    agent = Agent(4, 3, AgentConfig(algo="sac", hidden=[16]))
    obs = torch.randn(64, 4)
    torch.manual_seed(2)
    act, logp = agent.actor.sample(obs)
    mu, log_std = agent.actor.net(obs).chunk(2, -1)
    u = torch.atanh(act.clamp(-1 + 1e-6, 1 - 1e-6))
    expected = (torch.distributions.Normal(mu, log_std.clamp(-20, 2).exp()).log_prob(u)
                - torch.log1p(-torch.tanh(u) ** 2)).sum(-1, keepdim=True)
    mask = act.abs().amax(-1) < 0.999  # away from the bounds, where atanh is exact enough
    assert mask.sum() > 32
    torch.testing.assert_close(logp[mask], expected[mask], atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_update_learns_a_fixed_batch(algo):
    torch.manual_seed(0)
    agent = Agent(3, 2, AgentConfig(algo=algo, hidden=[32, 32], lr=1e-3))
    batch = (torch.randn(64, 3), torch.rand(64, 2) * 2 - 1, torch.randn(64, 1), torch.randn(64, 3),
             torch.zeros(64, 1))
    first = float(agent.update(*batch)["critic_loss"])
    for _ in range(200):
        last = float(agent.update(*batch)["critic_loss"])
    assert math.isfinite(last) and last < first
    # the target networks moved towards the critics, but are not equal to them
    for p, t in zip(agent.critic.parameters(), agent.critic_target.parameters()):
        assert not torch.equal(p, t)


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_export_is_the_deterministic_actor(algo):
    env = make_env("Hopper-v5")
    agent = Agent(11, 3, AgentConfig(algo=algo, hidden=[32, 16]))
    policy = actor_to_expert(agent.actor.net, env, "Hopper-v5", {"steps": 5, "seed": 0})
    obs = torch.randn(20, 11)
    low, high = torch.tensor(env.action_space.low), torch.tensor(env.action_space.high)
    expected = low + 0.5 * (agent.act(obs, explore=False) + 1) * (high - low)
    torch.testing.assert_close(policy(obs), expected)
    assert policy.meta["hidden_sizes"] == [32, 16]


def test_float16_buffer_round_trip_and_ring():
    buf = ReplayBuffer(3, 2, capacity=5)
    rng = np.random.default_rng(0)
    rows = [(rng.normal(size=3) * 10, rng.uniform(-1, 1, 2), float(i), rng.normal(size=3), i % 2 == 0)
            for i in range(7)]
    for r in rows:
        buf.add(*r)
    assert buf.size == 5 and buf.ptr == 2
    assert buf.obs.dtype == torch.float16
    # rows 5 and 6 overwrote slots 0 and 1
    np.testing.assert_allclose(buf.obs[0].float().numpy(), rows[5][0], rtol=2 ** -11, atol=1e-6)
    assert buf.rew[1, 0] == 6.0 and buf.done[1, 0] == 1.0
    other = ReplayBuffer(3, 2, capacity=5)
    other.load_state_dict(buf.state_dict())
    for name in ("obs", "next_obs", "act", "rew", "done"):
        assert torch.equal(getattr(other, name), getattr(buf, name))
    assert (other.ptr, other.size) == (buf.ptr, buf.size)
    obs, act, rew, next_obs, done = other.sample(4)
    assert obs.dtype == torch.float32 and obs.shape == (4, 3) and done.shape == (4, 1)


def test_run_exports_loadable_expert_and_checkpoint(tmp_path):
    out = tmp_path / "out"
    trainer = Trainer(tiny(steps=300), tmp_path / "ckpt", out)
    trainer.run()
    state = torch.load(tmp_path / "ckpt" / CKPT_NAME, weights_only=False)
    assert state["step"] == 300 and state["buffer"]["size"] == 300
    assert state["buffer"]["obs"].dtype == torch.float16
    assert {"agent", "torch_rng", "evals", "wall_time_s", "episode", "config"} <= set(state)
    assert {"actor_opt", "critic_opt", "model"} <= set(state["agent"])
    assert any(k.startswith("critic_target.") for k in state["agent"]["model"])
    info = json.loads((out / "experts.json").read_text())["Hopper-v5"]
    assert {"mean", "std", "steps", "wall_time_s", "steps_per_s", "returns", "demo_returns",
            "holdout_mean"} <= set(info)
    policy = ExpertPolicy.from_file(out / "weights" / "Hopper-v5.pt")
    assert policy.meta["return_mean"] == info["mean"] and policy.meta["steps"] == info["steps"] == 250
    with np.load(out / "demos" / "Hopper-v5.npz") as demos:
        np.testing.assert_allclose(policy(torch.as_tensor(demos["observations"][:20])).numpy(),
                                   demos["actions"][:20], atol=1e-5)
    assert (tmp_path / "ckpt" / "evals.csv").read_text().count("\n") == 2  # header + the eval at 250
    # started again with a budget already met: nothing is done, nothing changes
    Trainer(tiny(steps=300), tmp_path / "ckpt", out).run()
    assert torch.load(tmp_path / "ckpt" / CKPT_NAME, weights_only=False)["step"] == 300


def test_training_curves_are_drawn_from_the_trainers_evaluations(tmp_path, capsys):
    from instructor.experts import curves

    root = tmp_path / "root"
    Trainer(tiny(steps=300, eval_every=100), root / "Hopper-v5", tmp_path / "out").run()
    rows = curves.read_evals(root / "Hopper-v5" / "evals.csv")
    assert [r["steps"] for r in rows] == [200, 300] and rows[0]["exported"]  # none before learning starts
    png = tmp_path / "curves.png"
    assert curves.main(["--ckpt-root", f"tiny run={root}", str(tmp_path / "nothing"), "--out", str(png)]) == 0
    assert png.stat().st_size > 10_000
    best = max(rows, key=lambda r: r["mean"])
    assert f"Hopper-v5 (tiny run): 2 evaluations up to 300 steps; best {best['mean']:.0f}" in capsys.readouterr().out
    assert curves.main(["--ckpt-root", str(tmp_path / "nothing"), "--out", str(tmp_path / "none.png")]) == 1
    assert "no evals.csv under" in capsys.readouterr().err and not (tmp_path / "none.png").exists()


def test_never_replaces_a_better_recorded_expert(tmp_path):
    out = tmp_path / "out"
    Trainer(tiny(steps=260), tmp_path / "a", out).run()
    weights = out / "weights" / "Hopper-v5.pt"
    info_file = out / "experts.json"
    info = json.loads(info_file.read_text())
    info["Hopper-v5"]["mean"] = 1e9  # pretend the shipped expert is unbeatable
    info_file.write_text(json.dumps(info))
    before = weights.read_bytes()
    trainer = Trainer(tiny(steps=260, seed=1), tmp_path / "b", out)
    trainer.run()
    assert weights.read_bytes() == before
    assert json.loads(info_file.read_text())["Hopper-v5"]["mean"] == 1e9
    assert (tmp_path / "b" / "best_actor.pt").exists()  # the run's own best is kept beside its checkpoint
    assert not trainer.evals[-1]["exported"]


def test_resume_refuses_other_settings_unless_restarted(tmp_path):
    Trainer(tiny(steps=220), tmp_path / "ckpt", tmp_path / "out").run()
    with pytest.raises(SystemExit, match="hidden"):
        Trainer(tiny(steps=400, hidden=[16, 16]), tmp_path / "ckpt", tmp_path / "out")
    # --restart discards the checkpoint and the old evaluations
    trainer = Trainer(tiny(steps=400, hidden=[16, 16]), tmp_path / "ckpt", tmp_path / "out", restart=True)
    assert trainer.step == 0 and trainer.evals == []
    assert (tmp_path / "ckpt" / "evals.csv").read_text().count("\n") == 1


def _cli(ckpt_root: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "instructor.experts.train", *TINY_FLAGS, "--steps", str(steps),
            "--ckpt-root", str(ckpt_root), "--out-dir", str(out)]


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    """Uninterrupted to 450 steps == killed (SIGKILL) after a checkpoint, then the same command again."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # reference: in-process, uninterrupted
    Trainer(tiny(steps=450), tmp_path / "ref" / "Hopper-v5", tmp_path / "ref_out", quiet=True).run()
    # the command line, killed once a checkpoint past step 250 (after updates began) exists
    ckpt = tmp_path / "run" / "Hopper-v5" / CKPT_NAME
    proc = subprocess.Popen(_cli(tmp_path / "run", tmp_path / "out", 100_000), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if ckpt.exists() and torch.load(ckpt, weights_only=False)["step"] >= 250:
                break
            time.sleep(0.1)
        else:
            pytest.fail("no checkpoint past step 250 within 60 s")
    finally:
        proc.kill()
        proc.wait()
    killed_at = torch.load(ckpt, weights_only=False)["step"]
    assert 250 <= killed_at < 450
    subprocess.run(_cli(tmp_path / "run", tmp_path / "out", 450), cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    log = (tmp_path / "run" / "Hopper-v5" / "train.log").read_text()
    assert f"resumed at step {killed_at}" in log
    ref = torch.load(tmp_path / "ref" / "Hopper-v5" / CKPT_NAME, weights_only=False)
    got = torch.load(ckpt, weights_only=False)
    assert (got["step"], got["episode"]) == (ref["step"], ref["episode"]) == (450, ref["episode"])
    for key, value in ref["agent"]["model"].items():
        assert torch.equal(got["agent"]["model"][key], value), key
    assert torch.equal(got["torch_rng"], ref["torch_rng"])
    assert [e["mean"] for e in got["evals"]] == [e["mean"] for e in ref["evals"]]
