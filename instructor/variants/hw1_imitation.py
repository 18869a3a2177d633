"""Variants of hw1/imitation.py: bc_loss, sample_trajectory, sample_trajectories, dagger_relabel, train_policy
(checked step by step, then against the reference) and run_training_loop's DAgger process (on a small scripted
task).

The integration variants (they need a LunarLander training run) are in tests/test_hw1_imitation.py, marked slow.
"""

from instructor.variants import Variant

M = "hw1/imitation.py"
BC = ("bc_loss",)
ROLL = ("sample_trajectory", "sample_trajectories")
ONE = ("sample_trajectory",)
RELABEL = ("dagger_relabel",)
TRAIN = ("train_policy_steps", "train_policy_matches_reference")
DAGGER = ("dagger_process", "dagger_matches_reference")
DAGGER_REF = ("dagger_matches_reference",)

# A correct sample_trajectory with one line changed is the usual student mistake: build it from a template.
# train_policy: the reference's loop with one piece changed.
TRAIN_TEMPLATE = """
import torch

def train_policy(policy, optimizer, buffer, cfg, generator):
    losses = []
    {before}
    for _ in range(cfg.train_steps_per_iter):
        {draw}
        loss = {loss}
        optimizer.{zero}
        loss.backward()
        {step}
        losses.append({record})
    return losses
"""
TRAIN_OK = dict(before="pass", draw="obs, act = buffer.sample(cfg.train_batch_size, generator)",
                loss="bc_loss(policy, obs, act)", zero="zero_grad()", step="optimizer.step()",
                record="float(loss.detach())")


def train_variant(**changes) -> str:
    return TRAIN_TEMPLATE.format(**{**TRAIN_OK, **changes})


# run_training_loop: the DAgger branch (iterations >= 1) as students get it wrong; the rest is the given code.
LOOP_TEMPLATE = """
import numpy as np
import torch
from torch import nn
from torch.distributions import Independent, Normal

class _ExpertAsPolicy(nn.Module):
    def __init__(self, expert):
        super().__init__()
        self.expert = expert

    def forward(self, observations):
        mean = self.expert(observations)
        return Independent(Normal(mean, torch.full_like(mean, 1e-6)), 1)

def run_training_loop(env, policy, expert, demonstrations, cfg, on_iteration=None):
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
    buffer = ReplayBuffer(cfg.max_replay_buffer_size)
    n_iter = 1 if cfg.method == "bc" else cfg.n_iter
    log, env_steps = [], 0
    for itr in range(n_iter):
        if itr == 0:
            paths = list(demonstrations)
        else:
            {dagger}
            env_steps += sum(len(p) for p in paths)
        {add}
        losses = train_policy(policy, optimizer, buffer, cfg, generator)
        row = {{"iteration": itr, "env_steps": env_steps, "buffer_size": len(buffer),
               "loss": losses[-1] if losses else float("nan"), "eval_return_mean": float("nan"),
               "eval_return_std": float("nan"), "eval_episodes": 0}}
        log.append(row)
        if on_iteration is not None:
            on_iteration(row)
    return log
"""
LOOP_OK = dict(dagger="paths = dagger_relabel(expert, sample_trajectories(env, policy, cfg.batch_size, cfg.ep_len))",
               add="buffer.add(paths)")


MEAN_ACTION_ROLLOUTS = """paths, steps = [], 0
            while steps < cfg.batch_size:  # whole episodes of cfg.ep_len steps, acting with the mean
                obs, _ = env.reset()
                observations, actions = [], []
                for _ in range(cfg.ep_len):
                    o = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
                    with torch.no_grad():
                        a = policy(o[None]).mean[0]
                    observations.append(o)
                    actions.append(a)
                    obs, _, _, _, _ = env.step(a.numpy())
                paths.append(Trajectory(observations=torch.stack(observations), actions=torch.stack(actions),
                                        rewards=torch.zeros(len(actions)), terminated=False))
                steps += len(actions)
            paths = dagger_relabel(expert, paths)"""


def loop_variant(**changes) -> str:
    return LOOP_TEMPLATE.format(**{**LOOP_OK, **changes})


SAMPLE_TEMPLATE = """
import numpy as np
import torch
from rlkit.trajectory import Trajectory

@torch.no_grad()
def sample_trajectory(env, policy, max_length, seed=None):
    obs, _ = {reset}
    observations, actions, rewards = [], [], []
    terminated = False
    for _ in range({limit}):
        o = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        {draw}
        next_obs, reward, terminated, truncated, _ = env.step(_as_env_action(env, {stepped}))
        observations.append({recorded})
        actions.append(a)
        rewards.append(float(reward))
        obs = next_obs
        {flags}
        if {stop}:
            break
    return Trajectory(observations=torch.stack(observations), actions=torch.stack(actions),
                      rewards=torch.tensor(rewards, dtype=torch.float32), terminated=bool(terminated))
"""
OK = dict(reset="env.reset(seed=seed)", limit="max_length", draw="a = policy(o[None]).sample()[0]", stepped="a",
          recorded="o", flags="pass", stop="terminated or truncated")


def sample_variant(**changes) -> str:
    return SAMPLE_TEMPLATE.format(**{**OK, **changes})


def with_gym(source: str) -> str:
    return source.replace("import numpy as np", "import gymnasium as gym\nimport numpy as np", 1)


BOX = "isinstance(env.action_space, gym.spaces.Box)"
CLIPPED = "a.clamp(torch.as_tensor(env.action_space.low), torch.as_tensor(env.action_space.high))"


RELABEL_TEMPLATE = """
import torch
from rlkit.trajectory import Trajectory

{decorator}
def dagger_relabel(expert, trajectories):
    out = []
    for traj in trajectories:
        obs = traj.observations
        labels = {labels}
        out.append(Trajectory(observations=obs, actions=labels, rewards=traj.rewards,
                              terminated=traj.terminated))
    return out
"""


def relabel_variant(labels: str, decorator: str = "@torch.no_grad()") -> str:
    return RELABEL_TEMPLATE.format(labels=labels, decorator=decorator)


BUGGY = [
    # ---------------------------------------------------------------- bc_loss
    Variant("bc_sum_not_mean", M, """
        def bc_loss(policy, observations, actions):
            return -policy(observations).log_prob(actions).sum()
        """, BC, reason="SUM", diagnosis="summed-not-averaged"),
    Variant("bc_sign_flipped", M, """
        def bc_loss(policy, observations, actions):
            return policy(observations).log_prob(actions).mean()
        """, BC, reason="sign", diagnosis="sign-flipped"),
    Variant("bc_probability_not_log", M, """
        def bc_loss(policy, observations, actions):
            return -policy(observations).log_prob(actions).exp().mean()
        """, BC, reason="probability", diagnosis="probability-not-log"),
    Variant("bc_mse_on_the_mean", M, """
        def bc_loss(policy, observations, actions):
            dist = policy(observations)
            if actions.dtype == torch.long:
                return -dist.log_prob(actions).mean()
            return ((dist.mean - actions) ** 2).sum(-1).mean()
        """, ("bc_loss_gradient",) + BC, diagnoses={"bc_loss_gradient": "parameter-not-in-loss"}),
    Variant("bc_first_sample_only", M, """
        def bc_loss(policy, observations, actions):
            return -policy(observations[:1]).log_prob(actions[:1]).mean()
        """, BC),
    Variant("bc_detached_item", M, """
        import torch
        def bc_loss(policy, observations, actions):
            return torch.tensor(-policy(observations).log_prob(actions).mean().item())
        """, ("bc_loss_gradient",), reason="does not require grad", diagnosis="no-gradient"),
    Variant("bc_mean_over_action_dimensions", M, """
        import torch
        def bc_loss(policy, observations, actions):
            dist = policy(observations)
            if actions.dtype == torch.long:
                return -dist.log_prob(actions).mean()
            # one Normal per action dimension, then the mean over dimensions too: the
            # log-likelihood of an action is the SUM of its dimensions' log-densities
            per_dimension = torch.distributions.Normal(dist.mean, dist.stddev).log_prob(actions)
            return -per_dimension.mean()
        """, BC, diagnosis="averaged-over-action-dimensions"),
    Variant("bc_keepdim_shape", M, """
        def bc_loss(policy, observations, actions):
            return -policy(observations).log_prob(actions).mean().reshape(1)
        """, BC, reason="shape"),
    Variant("bc_nan_for_a_batch_of_one", M, """
        def bc_loss(policy, observations, actions):
            logp = policy(observations).log_prob(actions)
            n = logp.shape[0]
            # the sum over n - 1 (as an unbiased estimate), rescaled: right for n > 1, 0 · inf = nan for n = 1
            return -logp.sum() / (n - 1) * (n - 1) / n
        """, BC, diagnosis="non-finite"),
    # ---------------------------------------------------------------- sample_trajectory
    Variant("truncation_treated_as_termination", M,
            sample_variant(flags="terminated = terminated or truncated"), ROLL, reason="time limit", diagnosis="truncation-as-terminal"),
    Variant("next_observation_recorded", M,
            sample_variant(recorded="torch.as_tensor(np.asarray(next_obs), dtype=torch.float32)"), ROLL,
            reason="o_(t+1)", diagnosis="next-observation-recorded"),
    Variant("max_length_ignored", M, sample_variant(limit="10_000"), ONE, reason="max_length", diagnosis="ran-past-episode-end"),
    Variant("max_length_off_by_one", M, sample_variant(limit="max_length + 1"), ONE, diagnosis="ran-past-episode-end"),
    Variant("stops_only_on_terminated", M, sample_variant(stop="terminated"), ONE, diagnosis="ran-past-episode-end"),
    Variant("seed_ignored", M, sample_variant(reset="env.reset()"), ("sample_trajectory",), reason="reset", diagnosis="wrong-reset-seed"),
    Variant("always_seed_zero", M, sample_variant(reset="env.reset(seed=seed or 0)"), ROLL, reason="reset", diagnosis="wrong-reset-seed"),
    Variant("greedy_mode_action", M, sample_variant().replace(".sample()[0]", ".probs.argmax(-1)[0]"
                                                             " if isinstance(env.action_space, gym.spaces.Discrete)"
                                                             " else policy(o[None]).mean[0]")
            .replace("import numpy as np", "import gymnasium as gym\nimport numpy as np"),
            ONE, reason="mean", diagnosis="actions-not-sampled"),
    Variant("greedy_action_shape_1", M, sample_variant(recorded="o[None]"), ONE, reason="shape"),
    Variant("terminated_of_first_step", M, """
        import numpy as np
        import torch
        from rlkit.trajectory import Trajectory

        @torch.no_grad()
        def sample_trajectory(env, policy, max_length, seed=None):
            obs, _ = env.reset(seed=seed)
            observations, actions, rewards, dones = [], [], [], []
            for _ in range(max_length):
                o = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
                a = policy(o[None]).sample()[0]
                obs, reward, terminated, truncated, _ = env.step(_as_env_action(env, a))
                observations.append(o); actions.append(a); rewards.append(float(reward))
                dones.append(terminated)
                if terminated or truncated:
                    break
            return Trajectory(observations=torch.stack(observations), actions=torch.stack(actions),
                              rewards=torch.tensor(rewards), terminated=bool(any(dones[:-1])))
        """, ("sample_trajectory",), reason="terminated", diagnosis="termination-missed"),
    # The fields of a returned Trajectory are checked for their types before anything reads them (len included).
    Variant("sample_rewards_left_a_list", M,
            sample_variant().replace("rewards=torch.tensor(rewards, dtype=torch.float32)", "rewards=rewards"), ONE,
            reason="rewards is list", diagnosis="wrong-type"),
    Variant("sample_actions_as_numpy", M,
            sample_variant().replace("actions=torch.stack(actions)", "actions=torch.stack(actions).numpy()"), ROLL,
            reason="actions is a numpy array", diagnosis="wrong-type"),
    # Recorded actions that are not independent draws of π (autograder.draws).
    Variant("sample_records_the_clipped_action", M, with_gym(sample_variant(
        draw=f"a = policy(o[None]).sample()[0]\n        if {BOX}:  # keep the action inside the bounds\n"
             f"            a = {CLIPPED}")), ROLL, reason="clipped", diagnosis="actions-clipped"),
    # Given a seed, the contract names the reseed (reseeds-global-rng); given none, only the repeated draws show.
    Variant("sample_reseeds_before_every_action", M, sample_variant(
        draw="torch.manual_seed(0 if seed is None else seed)  # reproducible rollouts\n"
             "        a = policy(o[None]).sample()[0]"), ROLL, reason="reseeded", diagnoses={"sample_trajectories": "draws-not-independent", "sample_trajectory": "reseeds-global-rng"}),
    Variant("sample_reseeds_at_every_reset", M, sample_variant(
        reset="env.reset(seed=seed)\n    torch.manual_seed(0 if seed is None else seed)  # reproducible episodes"),
            ("sample_trajectories",), reason="repeats trajectory", diagnosis="draws-not-independent"),
    # ---------------------------------------------------------------- sample_trajectories
    Variant("trajectories_stop_one_short", M, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs, steps = [], 0
            while True:
                traj = sample_trajectory(env, policy, max_length)
                steps += len(traj)
                if steps >= min_timesteps:
                    return trajs
                trajs.append(traj)
        """, ("sample_trajectories",), diagnosis="wrong-trajectory-count"),
    Variant("trajectories_counts_episodes_not_steps", M, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs = []
            while len(trajs) < min_timesteps:  # episodes counted where env steps are asked for
                trajs.append(sample_trajectory(env, policy, max_length))
            return trajs
        """, ("sample_trajectories",), diagnosis="wrong-trajectory-count"),
    Variant("trajectories_at_least_one", M, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs, steps = [], 0
            while True:  # do … while: one episode even when min_timesteps is 0
                traj = sample_trajectory(env, policy, max_length)
                trajs.append(traj)
                steps += len(traj)
                if steps >= min_timesteps:
                    return trajs
        """, ("sample_trajectories",), reason="min_timesteps=0", diagnosis="wrong-trajectory-count"),
    Variant("trajectories_one_too_many", M, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs, steps = [], 0
            while steps <= min_timesteps:
                traj = sample_trajectory(env, policy, max_length)
                trajs.append(traj)
                steps += len(traj)
            return trajs
        """, ("sample_trajectories",), diagnosis="wrong-trajectory-count"),
    Variant("trajectories_last_one_cut", M, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs, steps = [], 0
            while steps < min_timesteps:
                traj = sample_trajectory(env, policy, min(max_length, min_timesteps - steps))
                trajs.append(traj)
                steps += len(traj)
            return trajs
        """, ("sample_trajectories",), diagnosis="stopped-early"),
    Variant("trajectories_reseeded_each_time", M, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs, steps = [], 0
            while steps < min_timesteps:
                traj = sample_trajectory(env, policy, max_length, seed=len(trajs))
                trajs.append(traj)
                steps += len(traj)
            return trajs
        """, ("sample_trajectories",), reason="reset", diagnosis="wrong-reset-seed"),
    Variant("trajectories_rewards_as_lists", M, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs, steps = [], 0
            while steps < min_timesteps:
                traj = sample_trajectory(env, policy, max_length)
                steps += traj.observations.shape[0]
                trajs.append(Trajectory(observations=traj.observations, actions=traj.actions,
                                        rewards=traj.rewards.tolist(), terminated=traj.terminated))
            return trajs
        """, ("sample_trajectories",), reason="rewards is list", diagnosis="wrong-type"),
    Variant("trajectories_rewards_summed", M, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs, steps = [], 0
            while steps < min_timesteps:
                traj = sample_trajectory(env, policy, max_length)
                steps += traj.observations.shape[0]
                trajs.append(Trajectory(observations=traj.observations, actions=traj.actions,
                                        rewards=traj.rewards.sum(), terminated=traj.terminated))  # the return
            return trajs
        """, ("sample_trajectories",), reason="rewards is a tensor of shape []", diagnosis="wrong-shape"),
    Variant("trajectories_as_a_dict", M, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs, steps = {}, 0
            while steps < min_timesteps:
                trajs[len(trajs)] = sample_trajectory(env, policy, max_length)
                steps += len(trajs[len(trajs) - 1])
            return trajs
        """, ("sample_trajectories",), reason="got a dict", diagnosis="wrong-type"),
    # ---------------------------------------------------------------- dagger_relabel
    Variant("learner_actions_kept", M, """
        def dagger_relabel(expert, trajectories):
            return list(trajectories)  # the learner's own actions, in the input's own tensors
        """, RELABEL, reason="shares memory with its input trajectories", diagnosis="output-aliases-input"),
    Variant("expert_labels_next_step", M,
            relabel_variant("expert(torch.cat([obs[1:], obs[-1:]]))"), RELABEL, reason="o_(t+1)", diagnosis="expert-label-off-by-one"),
    Variant("expert_labels_previous_step", M,
            relabel_variant("expert(obs).roll(1, 0)"), RELABEL, reason="o_(t-1)", diagnosis="expert-label-off-by-one"),
    Variant("expert_labels_first_observation_only", M,
            relabel_variant("expert(obs[:1]).expand(obs.shape[0], -1)"), RELABEL),
    Variant("relabel_in_place", M, """
        def dagger_relabel(expert, trajectories):
            for traj in trajectories:
                traj.actions[:] = expert(traj.observations)
            return list(trajectories)
        """, RELABEL, reason="in place", diagnosis="modifies-input"),
    Variant("relabel_drops_rewards", M,
            relabel_variant("expert(obs)").replace("rewards=traj.rewards",
                                                                   "rewards=torch.zeros_like(traj.rewards)"),
            RELABEL, reason="rewards", diagnosis="rewards-changed"),
    Variant("relabel_learner_actions_in_float64", M,
            relabel_variant("traj.actions.double()"), RELABEL, reason="learner's actions", diagnosis="learner-actions-kept"),
    # No torch.no_grad(): with an expert whose parameters require grad, the labels carry its graph.
    Variant("relabel_labels_keep_the_graph", M, relabel_variant("expert(obs)", decorator=""), RELABEL,
            reason="require grad", diagnosis="constant-requires-grad"),
    # ---------------------------------------------------------------- train_policy
    Variant("train_minibatch_drawn_once", M,
            train_variant(before="obs, act = buffer.sample(cfg.train_batch_size, generator)", draw="pass"),
            TRAIN, reason="drawn once", diagnosis="minibatch-reused"),
    Variant("train_whole_buffer_as_batch", M,
            train_variant(draw="obs, act = buffer.observations, buffer.actions"), TRAIN, reason="whole buffer", diagnosis="whole-buffer-as-batch"),
    Variant("train_loss_appended_as_tensor", M, train_variant(record="loss"), ("train_policy_steps",),
            reason="not a Python float", diagnosis="loss-not-float"),
    Variant("train_global_rng", M, train_variant(draw="obs, act = buffer.sample(cfg.train_batch_size)"),
            TRAIN, reason="global RNG", diagnosis="wrong-generator"),
    Variant("train_wrong_batch_size_field", M,
            train_variant(draw="obs, act = buffer.sample(cfg.batch_size, generator)"), TRAIN,
            reason="cfg.batch_size", diagnosis="wrong-minibatch-size"),
    Variant("train_two_steps_per_minibatch", M,
            train_variant(step="optimizer.step()\n        optimizer.zero_grad()\n"
                               "        bc_loss(policy, obs, act).backward()\n        optimizer.step()"),
            TRAIN, reason="two optimizer steps", diagnosis="two-steps-per-minibatch"),
    Variant("train_own_optimizer_each_call", M, train_variant(
        before="optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)  # Adam's moments reset"),
            TRAIN, reason="an optimizer of its own", diagnosis="own-optimizer"),
    Variant("train_loss_summed_over_steps", M, train_variant(
        before="total = 0.0", record="float(loss.detach())",
        step="optimizer.step()\n        total = total + float(loss.detach())").replace(
        "    return losses", "    return [total] * len(losses)"), TRAIN, reason="expected the loss of step", diagnosis="wrong-loss-logged"),
    Variant("train_logs_a_running_mean_started_at_nan", M, train_variant(
        before="running = float('nan')  # no loss yet",
        step="optimizer.step()\n        running = 0.9 * running + 0.1 * float(loss.detach())",
        record="running"), TRAIN, reason="nan"),
    Variant("train_never_steps", M, train_variant(step="pass"), TRAIN, reason="did not change", diagnosis="parameters-unchanged"),
    Variant("train_gradients_never_cleared", M, train_variant().replace("optimizer.zero_grad()", "pass"), ("dagger_matches_reference",) + TRAIN,
            reason="never cleared", diagnosis="no-zero-grad"),
    Variant("train_loss_of_a_copy_of_the_policy", M, train_variant(
        loss="bc_loss(copy.deepcopy(policy), obs, act)").replace("import torch", "import copy\nimport torch"),
            TRAIN, reason="did not change", diagnosis="parameters-unchanged"),
    Variant("train_one_step_too_few", M,
            train_variant().replace("range(cfg.train_steps_per_iter)", "range(cfg.train_steps_per_iter - 1)"),
            TRAIN, reason="expected cfg.train_steps_per_iter", diagnosis="wrong-loss-count"),
    Variant("train_loss_logged_after_the_step", M, train_variant(record="float(bc_loss(policy, obs, act))"), TRAIN,
            reason="AFTER step", diagnosis="loss-logged-after-step"),
    Variant("train_overwrites_the_learning_rate", M, train_variant(
        before="for group in optimizer.param_groups:\n        group['lr'] = cfg.learning_rate  # the configured rate"),
            TRAIN, reason="settings", diagnosis="optimizer-settings-changed"),
    # ---------------------------------------------------------------- given a seed: the global RNGs are the caller's
    Variant("sample_reseeds_torch_with_the_seed", M, sample_variant().replace(
        "    obs, _ = env.reset(seed=seed)",
        "    if seed is not None:\n        torch.manual_seed(seed)  # reproducible actions too\n"
        "    obs, _ = env.reset(seed=seed)"), ONE, reason="reseeded torch's global RNG",
            diagnosis="reseeds-global-rng"),
    Variant("sample_reseeds_numpy_with_the_seed", M, sample_variant().replace(
        "    obs, _ = env.reset(seed=seed)",
        "    if seed is not None:\n        np.random.seed(seed)\n    obs, _ = env.reset(seed=seed)"), ONE,
            reason="reseeded numpy's global RNG", diagnosis="reseeds-global-rng"),
    Variant("train_reseeds_the_global_rng", M, train_variant(before="torch.manual_seed(0)  # reproducible training"),
            TRAIN, reason="reseeded torch's global RNG", diagnosis="reseeds-global-rng"),
    # ---------------------------------------------------------------- run_training_loop (DAgger's process)
    Variant("dagger_never_uses_learner_data", M, loop_variant(dagger="paths = list(demonstrations)"), DAGGER,
            reason="never rolled out the learner", diagnosis="learner-never-rolled-out"),
    Variant("dagger_rolls_out_the_expert", M, loop_variant(
        dagger="paths = dagger_relabel(expert, sample_trajectories(env, _ExpertAsPolicy(expert), cfg.batch_size, "
               "cfg.ep_len))"), DAGGER, reason="EXPERT's actions", diagnosis="expert-rollouts"),
    Variant("dagger_replaces_the_data", M, loop_variant(
        add="buffer = ReplayBuffer(cfg.max_replay_buffer_size)\n        buffer.add(paths)"), DAGGER,
            reason="AGGREGATED", diagnosis="data-replaced-not-aggregated"),
    Variant("dagger_adds_the_demonstrations_again", M, loop_variant(
        add="buffer.add(paths if itr == 0 else list(demonstrations) + paths)"), DAGGER, diagnosis="wrong-buffer-size"),
    Variant("dagger_single_rollout", M, loop_variant(
        dagger="paths = dagger_relabel(expert, [sample_trajectory(env, policy, cfg.ep_len)])"), DAGGER,
            reason="single rollout", diagnosis="single-rollout-per-iteration"),
    Variant("dagger_batch_size_and_ep_len_swapped", M, loop_variant(
        dagger="paths = dagger_relabel(expert, sample_trajectories(env, policy, cfg.ep_len, cfg.batch_size))"),
            DAGGER, reason="swapping", diagnosis="wrong-rollout-budget"),
    Variant("dagger_learner_actions_not_relabelled", M, loop_variant(
        dagger="paths = sample_trajectories(env, policy, cfg.batch_size, cfg.ep_len)"), DAGGER,
            reason="expert's labels", diagnosis="not-expert-labels"),
    Variant("dagger_rolls_out_the_initial_policy", M, loop_variant(
        dagger="paths = dagger_relabel(expert, sample_trajectories(env, first, cfg.batch_size, cfg.ep_len))")
            .replace("    log, env_steps = [], 0", "    log, env_steps = [], 0\n    first = copy.deepcopy(policy)")
            .replace("import numpy as np", "import copy"), DAGGER, reason="current learner", diagnosis="stale-learner"),
    Variant("dagger_trains_twice_per_iteration", M, loop_variant(
        add="buffer.add(paths)\n        train_policy(policy, optimizer, buffer, cfg, generator)"), DAGGER_REF,
            reason="train_policy once per iteration"),
    # A hand-written rollout that never samples: with the learner's std, its moves sit on the mean action.
    Variant("dagger_rolls_out_the_mean_action", M, loop_variant(dagger=MEAN_ACTION_ROLLOUTS).replace(
        "from torch.distributions import Independent, Normal",
        "from torch.distributions import Independent, Normal\nfrom rlkit.trajectory import Trajectory"), DAGGER,
            reason="mean action", diagnosis="mean-action-rollouts"),
]

CORRECT = [
    Variant("bc_loop_over_samples", M, """
        import torch
        def bc_loss(policy, observations, actions):
            terms = [policy(observations[i:i + 1]).log_prob(actions[i:i + 1])[0] for i in range(len(actions))]
            return -torch.stack(terms).sum() / len(terms)
        """, BC + ("bc_loss_gradient",)),
    Variant("bc_per_dimension_normals_summed", M, """
        import torch
        def bc_loss(policy, observations, actions):
            dist = policy(observations)
            if actions.dtype == torch.long:
                return -dist.log_prob(actions).mean()
            per_dimension = torch.distributions.Normal(dist.mean, dist.stddev).log_prob(actions)
            return -per_dimension.sum(dim=-1).mean()
        """, BC),
    Variant("bc_float64_inside", M, """
        import torch
        def bc_loss(policy, observations, actions):
            logp = policy(observations).log_prob(actions).to(torch.float64)
            return -(logp.sum() / logp.shape[0])
        """, BC + ("bc_loss_gradient",)),
    Variant("sample_numpy_buffers", M, """
        import numpy as np
        import torch
        from rlkit.trajectory import Trajectory

        def sample_trajectory(env, policy, max_length, seed=None):
            obs, _ = env.reset(seed=seed)
            obs_list, act_list, rew_list = [], [], []
            t, done = 0, False
            terminated = False
            while not done:
                with torch.no_grad():
                    a = policy(torch.from_numpy(np.asarray(obs, dtype=np.float32))[None]).sample()[0].numpy()
                step_action = int(a) if a.ndim == 0 else a
                next_obs, r, terminated, truncated, _ = env.step(step_action)
                obs_list.append(np.asarray(obs, dtype=np.float32)); act_list.append(a); rew_list.append(r)
                obs = next_obs
                t += 1
                done = terminated or truncated or t >= max_length
            return Trajectory(observations=torch.from_numpy(np.stack(obs_list)),
                              actions=torch.from_numpy(np.stack(act_list)),
                              rewards=torch.from_numpy(np.asarray(rew_list)),
                              terminated=bool(terminated))
        """, ROLL + DAGGER),
    Variant("sample_template_without_final_observation", M, sample_variant(), ROLL),
    Variant("relabel_dataclasses_replace", M, """
        import dataclasses
        import torch

        @torch.no_grad()
        def dagger_relabel(expert, trajectories):
            return [dataclasses.replace(t, actions=expert(t.observations)) for t in trajectories]
        """, RELABEL),
    Variant("relabel_labels_in_float64", M, relabel_variant("expert(obs).double()"), RELABEL),
    Variant("relabel_one_observation_at_a_time", M,
            relabel_variant("torch.stack([expert(o[None])[0] for o in obs])"), RELABEL),
    Variant("relabel_detached_labels", M, relabel_variant("expert(obs).detach()", decorator=""), RELABEL),
    Variant("train_template", M, train_variant(), TRAIN),
    Variant("train_clears_gradients_after_the_step", M, train_variant().replace("        optimizer.zero_grad()\n", "")
            .replace("        optimizer.step()", "        optimizer.step()\n        optimizer.zero_grad()  # for the next step"),
            TRAIN),
    Variant("train_float64_loss_item", M, train_variant(loss="-policy(obs).log_prob(act).double().mean()",
                                                        record="loss.item()"), TRAIN),
    Variant("train_zero_grad_keeps_tensors", M, train_variant(zero="zero_grad(set_to_none=False)",
                                                              record="float(loss)"), TRAIN),
    Variant("train_policy_zero_grad", M, train_variant().replace("optimizer.zero_grad()", "policy.zero_grad()"),
            TRAIN),
    Variant("train_indices_drawn_by_hand", M, train_variant(
        draw="index = torch.randint(len(buffer), (cfg.train_batch_size,), generator=generator)\n"
             "        obs, act = buffer.observations[index], buffer.actions[index]"), TRAIN),
    Variant("dagger_template", M, loop_variant(), DAGGER),
    # Sampling written other ways: each records independent draws of π.
    Variant("sample_normal_of_the_mean_and_stddev", M, with_gym(sample_variant(
        draw="dist = policy(o[None])\n"
             f"        a = torch.distributions.Normal(dist.mean, dist.stddev).sample()[0] if {BOX} else dist.sample()[0]"
    )), ROLL + DAGGER),
    Variant("sample_rsample_under_no_grad", M, sample_variant(
        draw="dist = policy(o[None])\n        a = (dist.rsample() if dist.has_rsample else dist.sample())[0]"),
            ROLL + DAGGER),
    Variant("sample_with_a_generator_of_its_own", M, with_gym(sample_variant(
        draw="dist = policy(o[None])\n"
             f"        if {BOX}:\n"
             "            a = torch.normal(dist.mean, dist.stddev, generator=_NOISE)[0]\n"
             "        else:\n"
             "            a = torch.multinomial(dist.probs, 1, generator=_NOISE)[0, 0]"))
            .replace("@torch.no_grad()", "_NOISE = torch.Generator().manual_seed(2024)  # one stream for every call\n\n"
                                         "@torch.no_grad()"), ROLL + DAGGER),
    Variant("sample_clips_only_what_the_env_receives", M, with_gym(sample_variant(
        stepped=f"{CLIPPED} if {BOX} else a")), ROLL + DAGGER),
    # Gaussian noise drawn with numpy: another random stream than torch's, so DAgger's data set must not depend
    # on how a correct sampler draws its noise.
    Variant("sample_gaussian_noise_from_numpy", M, sample_variant().replace(
        "a = policy(o[None]).sample()[0]",
        "dist = policy(o[None])\n"
        "        a = dist.sample()[0] if isinstance(env.action_space, gym.spaces.Discrete) else "
        "dist.mean[0] + dist.stddev[0] * torch.as_tensor(np.random.standard_normal(dist.mean.shape[-1]), "
        "dtype=torch.float32)").replace("import numpy as np", "import gymnasium as gym\nimport numpy as np"),
            ROLL + DAGGER),
    Variant("dagger_relabel_by_hand_one_path_at_a_time", M, loop_variant(
        dagger="paths = [dataclasses.replace(p, actions=expert(p.observations)) for p in "
               "sample_trajectories(env, policy, cfg.batch_size, cfg.ep_len)]",
        add="for p in paths:\n            buffer.add([p])").replace("import numpy as np", "import dataclasses"),
            DAGGER),
    # a seeded rollout may draw its actions from a seeded copy of the global RNG, leaving the caller's as it was
    Variant("sample_seeded_actions_in_a_forked_rng", M, sample_variant().replace(
        "    obs, _ = env.reset(seed=seed)",
        "    if seed is None:  # unseeded: fresh draws from the global RNG, which moves on\n"
        "        return _rollout(env, policy, max_length, seed)\n"
        "    with torch.random.fork_rng():\n"
        "        torch.manual_seed(seed)\n"
        "        return _rollout(env, policy, max_length, seed)\n\n\n"
        "def _rollout(env, policy, max_length, seed):\n"
        "    obs, _ = env.reset(seed=seed)"), ROLL),

]
