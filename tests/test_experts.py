"""The shipped hw1 experts: torch-only loading, action shapes/bounds, demo format, file sizes."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from rlkit.experts import EXPERT_ENVS, demos_path, expert_info, load_demonstrations, load_expert, weights_path

# obs_dim, act_dim of the gymnasium v5 tasks (default constructor arguments)
DIMS = {"Ant-v5": (105, 8), "HalfCheetah-v5": (17, 6), "Hopper-v5": (11, 3), "Walker2d-v5": (17, 6)}


def test_expert_envs():
    assert set(EXPERT_ENVS) == set(DIMS)


@pytest.mark.parametrize("env_id", EXPERT_ENVS)
def test_files_are_small(env_id):
    assert weights_path(env_id).stat().st_size < 2 * 1024 * 1024
    assert demos_path(env_id).stat().st_size < 2 * 1024 * 1024


@pytest.mark.parametrize("env_id", EXPERT_ENVS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_load_expert_actions(env_id, dtype):
    obs_dim, act_dim = DIMS[env_id]
    expert = load_expert(env_id)
    assert isinstance(expert, torch.nn.Module)
    assert expert.meta["env_id"] == env_id
    assert (expert.meta["obs_dim"], expert.meta["act_dim"]) == (obs_dim, act_dim)
    for key in ("hidden_sizes", "action_low", "action_high", "return_mean", "return_std", "steps", "seed"):
        assert key in expert.meta
    obs = torch.randn(64, obs_dim, generator=torch.Generator().manual_seed(0), dtype=dtype) * 5
    act = expert(obs)
    assert act.shape == (64, act_dim)
    assert act.dtype == torch.float32
    assert not act.requires_grad
    assert torch.isfinite(act).all()
    low = torch.tensor(expert.meta["action_low"])
    high = torch.tensor(expert.meta["action_high"])
    assert (act >= low).all() and (act <= high).all()
    # deterministic, and float32/float64 inputs agree
    assert torch.equal(act, expert(obs))
    assert torch.allclose(act, expert(obs.double() if dtype == torch.float32 else obs.float()), atol=1e-5)


@pytest.mark.parametrize("env_id", EXPERT_ENVS)
def test_demonstrations(env_id):
    obs_dim, act_dim = DIMS[env_id]
    paths = load_demonstrations(env_id)
    assert isinstance(paths, list) and len(paths) >= 1
    for path in paths:
        T = len(path["rewards"])
        assert 1 <= T <= 1000
        assert path["observations"].shape == (T, obs_dim) and path["observations"].dtype == np.float32
        assert path["actions"].shape == (T, act_dim) and path["actions"].dtype == np.float32
        assert path["rewards"].shape == (T,) and path["rewards"].dtype == np.float32
        assert isinstance(path["terminated"], bool)
        assert np.all(np.abs(path["actions"]) <= 1.0)
        # a truncated path is a full 1000-step episode
        assert path["terminated"] or T == 1000


@pytest.mark.parametrize("env_id", EXPERT_ENVS)
def test_demo_actions_are_the_experts(env_id):
    expert = load_expert(env_id)
    path = load_demonstrations(env_id)[0]
    act = expert(torch.as_tensor(path["observations"][:50])).numpy()
    np.testing.assert_allclose(act, path["actions"][:50], atol=1e-5)


@pytest.mark.parametrize("env_id", EXPERT_ENVS)
def test_recorded_returns(env_id):
    info = expert_info(env_id)
    assert {"mean", "std", "episodes", "steps", "wall_time_s"} <= set(info)
    assert info["mean"] == pytest.approx(load_expert(env_id).meta["return_mean"])


def test_loading_needs_only_torch(monkeypatch):
    """load_expert / load_demonstrations work without stable-baselines3 or gymnasium importable."""
    import rlkit.experts

    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # `import stable_baselines3` now fails
    monkeypatch.setitem(sys.modules, "gymnasium", None)
    spec = importlib.util.spec_from_file_location("_experts_torch_only", rlkit.experts.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for env_id in module.EXPERT_ENVS:
        module.load_expert(env_id)
        module.load_demonstrations(env_id)
