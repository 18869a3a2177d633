"""hw1, DAgger's process: ``run_training_loop`` (hw1/imitation.py) on a small task, graded by what it does.

The task's states depend on the actions (``autograder.child_tasks.DriftEnv``);
the judge builds the run and sends it as data. Public: env steps, buffer
growth, the demonstrations first, then the current learner's own sampled states
(``autograder.dagger_moves``), labelled by the expert, all fixed by the
configuration and checked here. Hidden: the parameters after every iteration
against the reference's ``train_policy`` trained here on the student's data set.
"""

from __future__ import annotations

import math

import torch
from hypothesis import example, note
from hypothesis import strategies as st

from autograder.compare import Mismatch, fmt, load_checked_parameters, within
from autograder.problem import grader_settings, problem
from autograder.problems.hw1_train_policy import (TRAIN_POLICY_EXAMPLE, TRAIN_STEP_HINT, build_train_policy_case,
                                                  check_train_run)
from autograder.properties import given
from autograder.returned import as_count
from autograder.strategies import seeded

MODULE = "hw1.imitation"
# The mistakes only this module names (autograder.diagnoses holds the grader's own ids).
DIAGNOSES = {
    "wrong-iteration-count": "the loop runs another number of iterations than cfg.n_iter",
    "iteration-0-rolls-out": "iteration 0 rolls out the learner (it trains on the demonstrations only)",
    "iteration-0-not-demonstrations": "iteration 0 does not add exactly the demonstrations to the buffer",
    "learner-never-rolled-out": "later iterations collect no env steps: the learner is never rolled out",
    "single-rollout-per-iteration": "each iteration collects one episode instead of cfg.batch_size steps",
    "wrong-rollout-budget": "each iteration collects another number of env steps than the batch size asks",
    "wrong-env-steps-logged": "the env_steps logged are not the learner's env steps so far",
    "data-not-added": "the buffer does not grow: the learner's relabelled data is never added",
    "data-replaced-not-aggregated": "the buffer is replaced at each iteration instead of aggregated",
    "demonstrations-added-again": "the demonstrations are added to the buffer again at later iterations",
    "wrong-buffer-size": "the buffer holds another number of pairs than the iterations so far added",
    "buffer-unreadable": "the given ReplayBuffer could not be read after an iteration (replaced or emptied)",
    "not-whole-episodes": "the data added at an iteration is not whole episodes in order",
    "wrong-resets": "the added episodes do not start from the env's next resets (another env, or reseeded)",
    "not-expert-labels": "the actions added are not the expert's labels of the added observations",
}

# run_training_loop on a small task whose states depend on the actions taken (autograder.child_tasks.DriftEnv:
# x ← x + 0.5·clip(a), o = [x, t]) with a linear expert a* = −x. Episodes end only at cfg.ep_len, so every count is
# known in advance: iteration i ≥ 1 collects ⌈batch_size / ep_len⌉ whole episodes of ep_len steps. The learner
# has a noticeable std (DAGGER_LOG_STD), so its rollouts are draws: each recorded move x → x' shows the action
# taken, â = 2(x' − x) (or only that it reached ±1 when clipped), and the judge tests those moves against the
# learner as it was after the previous iteration (check_learner_moves): a loop that rolls out the mean action,
# the expert, or an earlier learner fails with a false-failure probability bounded below. Because a correct
# sampler may draw its noise in any way (torch's RNG in another order, numpy's), the data set itself is never
# compared with a replay; the hidden problem trains the reference's train_policy on the student's own data set
# and compares the parameters after every iteration.
DAGGER_HINT = ("iteration 0 trains on the demonstrations only; every later iteration rolls out the CURRENT "
               "learner (not the expert) with sample_trajectories for at least cfg.batch_size env steps, episodes "
               "cut at cfg.ep_len, replaces the learner's actions by the expert's labels on exactly those "
               "observations (dagger_relabel), ADDS them to the buffer (D grows, nothing is thrown away) and "
               "trains; fix the unit problems (sample_trajectories, dagger_relabel, train_policy) first")
MOVES_HINTS = {
    "mean-action-rollouts": "DAgger labels the states the learner visits when it acts as the stochastic policy "
                            "π_θ(a|o) it is: roll it out with sample_trajectories, whose actions are sampled from π, "
                            "never its mean",
    "expert-rollouts": "roll out the LEARNER, not the expert: DAgger asks the expert to label the states the "
                       "learner visits, where its own mistakes take it",
    "stale-learner": "roll out the current learner, the policy as trained by the previous iteration (the very "
                     "policy object train_policy updates), not a copy kept from an earlier iteration",
}
DAGGER_EXPERT = ([[-1.0, 0.0]], [0.0])
DAGGER_LOG_STD = math.log(0.01)
DAGGER_PARAM_ATOL, DAGGER_PARAM_RTOL = 1e-3, 1e-3
DAGGER_EXAMPLE = {"ep_len": 4, "batch_size": 10, "n_iter": 3, "steps": 6, "train_batch_size": 4, "n_demos": 1,
                  "learning_rate": 2e-2, "seed": 1, "init_seed": 2, "stream_seed": 3}


@st.composite
def dagger_cases(draw) -> dict:
    ep_len = draw(st.integers(3, 6))
    batch_size = draw(st.integers(ep_len + 1, 3 * ep_len).filter(lambda b: b % ep_len != 0))
    return {"ep_len": ep_len, "batch_size": batch_size, "n_iter": draw(st.integers(2, 3)),
            "steps": draw(st.integers(3, 8)), "train_batch_size": draw(st.integers(2, ep_len)),
            "n_demos": draw(st.integers(1, 2)), "learning_rate": draw(st.sampled_from([5e-3, 2e-2])),
            "seed": draw(st.integers(0, 1000)), "init_seed": draw(st.integers(0, 1000)),
            "stream_seed": draw(st.integers(0, 1000))}


def _expert_labels(observations: torch.Tensor) -> torch.Tensor:
    from rlkit.scripted_envs import LinearExpert

    weight, bias = DAGGER_EXPERT
    return LinearExpert(torch.tensor(weight), torch.tensor(bias))(observations)


def build_dagger_case(case: dict) -> tuple:
    """(policy_spec, expert_weight, expert_bias, demonstrations, config, seed, stream_seed) for the dagger_loop task."""
    from autograder.child_tasks import DriftEnv, _parameters
    from rlkit.policies import GaussianMLPPolicy
    from rlkit.sampling import EnvPool, policy_actor
    from rlkit.scripted_envs import LinearExpert

    policy = seeded(case["init_seed"], lambda: GaussianMLPPolicy(2, 1, (8,), log_std=DAGGER_LOG_STD))
    spec = {"kind": "gaussian_mlp", "obs_dim": 2, "act_dim": 1, "n_actions": 0, "hidden": [8],
            "parameters": _parameters(policy)}
    weight, bias = DAGGER_EXPERT
    with EnvPool([DriftEnv()]) as pool:  # the expert's own episodes, from reset seeds no training run uses
        demos = pool.episodes(policy_actor(LinearExpert(torch.tensor(weight), torch.tensor(bias))),
                              range(50_000, 50_000 + case["n_demos"]), max_length=case["ep_len"])
    config = {"method": "dagger", "n_iter": case["n_iter"], "batch_size": case["batch_size"],
              "ep_len": case["ep_len"], "train_batch_size": case["train_batch_size"],
              "train_steps_per_iter": case["steps"], "learning_rate": case["learning_rate"], "eval_batch_size": 0,
              "n_demos": case["n_demos"], "hidden": (8,)}
    return spec, torch.tensor(weight), torch.tensor(bias), demos, config, case["seed"], case["stream_seed"]


def _episode_starts(case: dict, episodes: int) -> list[float]:
    """x_0 of the learner's episodes, in order: the env's stream after the run's seeded reset, continued by
    unseeded resets (as sample_trajectories resets)."""
    from autograder.child_tasks import DriftEnv

    env = DriftEnv(case["stream_seed"])
    env.reset(seed=case["seed"])
    return [float(env.reset()[0][0]) for _ in range(episodes)]


def _learner(spec: dict, params):
    """The learner with these parameters (the judge's own policy, checked parameters), as a function from
    observations to its (μ, σ) of the first action dimension, in float64."""
    from autograder.child_tasks import build_policy
    from autograder.draws import normal_parts

    policy = load_checked_parameters(build_policy(spec), params, DAGGER_HINT)

    def gaussian(observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            mu, sigma = normal_parts(policy(observations.to(torch.float32)))
        return mu[:, 0], sigma[:, 0]

    return gaussian


def check_dagger_process(got: dict, case: dict, spec: dict, demos: list) -> None:
    """DAgger's process, from what the run recorded at each iteration, against what the configuration fixes:
    env steps, buffer growth, the demonstrations at iteration 0, the learner's own states afterwards (each
    episode from the env's next reset, each move a draw of the policy as it was after the previous iteration:
    ``autograder.dagger_moves``), the expert's labels on them."""
    from autograder.dagger_moves import Moves, check_moves

    n_iter, ep_len, batch = case["n_iter"], case["ep_len"], case["batch_size"]
    its = got.get("iterations")
    if not isinstance(its, list) or len(its) != n_iter or not all(isinstance(r, dict) for r in its):
        k = len(its) if isinstance(its, list) else 0
        raise Mismatch(f"run_training_loop reported {k} iterations (on_iteration calls), "
                       f"expected cfg.n_iter = {n_iter}", diagnosis="wrong-iteration-count")
    demo_obs = torch.cat([d.observations for d in demos])
    demo_steps, per_iter = len(demo_obs), -(-batch // ep_len) * ep_len
    starts = _episode_starts(case, (n_iter - 1) * (per_iter // ep_len))
    previous_calls, previous_obs = 0, None
    initial = _learner(spec, spec["parameters"])
    learners, rollouts = [initial], []
    for i, it in enumerate(its):
        where = "iteration 0 (the demonstrations)" if i == 0 else f"DAgger iteration {i}"
        calls = as_count(it.get("env_calls"))
        made = None if calls is None else calls - previous_calls
        if i == 0 and made not in (None, 0):
            raise Mismatch(f"run_training_loop: iteration 0 took {made} env steps; it trains on the demonstrations "
                           "only (the learner's rollouts start at iteration 1)", diagnosis="iteration-0-rolls-out")
        if i > 0 and made is not None and made != per_iter:
            if made == 0:
                why = "it took no env step: it never rolled out the learner (the new data must come from the learner)"
            elif made == ep_len:
                why = (f"that is a single rollout of cfg.ep_len = {ep_len} steps: keep collecting whole episodes "
                       f"until at least cfg.batch_size = {batch} steps")
            elif made == -(-ep_len // batch) * batch:
                why = f"that is what swapping cfg.batch_size ({batch}) and cfg.ep_len ({ep_len}) gives"
            else:
                why = f"⌈{batch}/{ep_len}⌉ = {per_iter // ep_len} whole episodes of cfg.ep_len = {ep_len} steps"
            raise Mismatch(f"run_training_loop: {where} took {made} env steps, expected {per_iter}: {why}",
                           diagnosis=("learner-never-rolled-out" if made == 0 else "single-rollout-per-iteration"
                                      if made == ep_len else "wrong-rollout-budget"))
        previous_calls = calls if calls is not None else previous_calls
        env_steps = as_count(it.get("env_steps"))
        if env_steps != i * per_iter:
            raise Mismatch(f"run_training_loop: the log's env_steps after {where} is {it.get('env_steps')!r}, "
                           f"expected {i * per_iter} (the learner's env steps so far)", diagnosis="wrong-env-steps-logged")
        want_size = demo_steps + i * per_iter
        size = as_count(it.get("buffer_size"))
        if size != want_size:
            if i > 0 and size == per_iter:
                why, diagnosis = ("it holds only this iteration's data: the data set must be AGGREGATED (added to), "
                                  "not replaced", "data-replaced-not-aggregated")
            elif i > 0 and size == want_size - per_iter:
                why, diagnosis = ("it did not grow: add each iteration's relabelled rollouts to the buffer",
                                  "data-not-added")
            elif i > 0 and size == want_size - per_iter + demo_steps:
                why, diagnosis = ("it grew by the demonstrations again instead of the learner's relabelled rollouts",
                                  "demonstrations-added-again")
            else:
                why, diagnosis = (f"{demo_steps} demonstration steps, then {per_iter} more per DAgger iteration",
                                  "wrong-buffer-size")
            raise Mismatch(f"run_training_loop: the buffer holds {it.get('buffer_size')!r} pairs after {where}, "
                           f"expected {want_size}: {why}", diagnosis=diagnosis)
        obs, act = it.get("buffer_observations"), it.get("buffer_actions")
        if not (isinstance(obs, torch.Tensor) and isinstance(act, torch.Tensor) and obs.shape == (want_size, 2)
                and act.shape == (want_size, 1) and obs.is_floating_point() and act.is_floating_point()):
            raise Mismatch(f"run_training_loop: the buffer's contents after {where} could not be read (keep the given "
                           "ReplayBuffer, filled with buffer.add)", diagnosis="buffer-unreadable")
        obs, act = obs.to(torch.float64), act.to(torch.float64)
        if previous_obs is not None and not torch.equal(obs[: len(previous_obs)], previous_obs):
            raise Mismatch(f"run_training_loop: after {where} the buffer no longer starts with the data of the "
                           "earlier iterations: aggregate (add the new pairs after the old ones), never replace",
                           diagnosis="data-replaced-not-aggregated")
        start = 0 if i == 0 else want_size - per_iter
        new_obs = obs[start:]
        if i == 0:
            if not torch.allclose(new_obs, demo_obs.to(torch.float64), atol=1e-6):
                raise Mismatch("run_training_loop: iteration 0 must add exactly the demonstrations to the buffer",
                               diagnosis="iteration-0-not-demonstrations")
        else:
            t = new_obs[:, 1]
            if not torch.equal(t, torch.arange(per_iter, dtype=torch.float64).remainder(ep_len)):
                raise Mismatch(f"run_training_loop: the observations added at {where} are not whole episodes of "
                               f"cfg.ep_len = {ep_len} steps in order (their step counters are {fmt(t)})",
                               diagnosis="not-whole-episodes")
            first = int(start - demo_steps) // ep_len
            x0 = torch.tensor(starts[first: first + per_iter // ep_len], dtype=torch.float64)
            if not torch.allclose(new_obs[t == 0, 0], x0, atol=1e-6):
                raise Mismatch(f"run_training_loop: the episodes added at {where} do not start from the env's next "
                               f"resets (expected x_0 = {fmt(x0)}, got {fmt(new_obs[t == 0, 0])}): roll out the "
                               "learner in the given env with sample_trajectories", diagnosis="wrong-resets")
            learners.append(_learner(spec, its[i - 1].get("policy")))
            rollouts.append((Moves.of(new_obs), learners[i], initial, learners[i - 1]))
        labels = _expert_labels(new_obs.to(torch.float32)).to(torch.float64)
        if not torch.allclose(act[start:], labels, atol=1e-4):
            raise Mismatch(f"run_training_loop: the actions added at {where} are not the expert's labels of the "
                           "added observations" + ("" if i == 0 else " (relabel the learner's rollouts with "
                                                                     "dagger_relabel)"),
                           diagnosis="not-expert-labels")
        previous_obs = obs
    found = check_moves(rollouts, _expert_labels)
    if found is not None:
        raise Mismatch(f"run_training_loop: the observations added at DAgger iterations 1–{n_iter - 1} are not the "
                       f"current learner's sampled rollouts: {found.what}", MOVES_HINTS[found.diagnosis],
                       found.diagnosis)


def _reference_training(ctx, args: tuple, got: dict) -> list[dict]:
    """The parameters after each iteration when the reference's train_policy trains on the student's own data
    set, iteration by iteration: one policy, one Adam at cfg.learning_rate and one generator seeded with
    cfg.seed for the whole run, as the given run_training_loop builds them. (The data set itself is the
    student's draws: check_dagger_process has checked it.)"""
    from autograder.child_tasks import _parameters, build_buffer, build_policy
    from rlkit.imitation import ImitationConfig

    train = ctx.ref(MODULE, "train_policy")
    spec, config, seed = args[0], args[4], args[5]
    cfg = ImitationConfig(**config, seed=seed)
    policy = build_policy(spec)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
    generator = torch.Generator().manual_seed(cfg.seed)
    trained = []
    with torch.random.fork_rng(devices=[]):
        for it in got["iterations"]:
            train(policy, optimizer, build_buffer(it["buffer_observations"].to(torch.float32),
                                                  it["buffer_actions"].to(torch.float32)), cfg, generator)
            trained.append(_parameters(policy))
    return trained


def compare_dagger(got: dict, want: list[dict], spec: dict) -> None:
    """The student's parameters after every iteration against the reference's training on the same data."""
    from autograder.child_tasks import build_policy

    for i, (it, ref) in enumerate(zip(got["iterations"], want)):
        where = "iteration 0 (the demonstrations)" if i == 0 else f"DAgger iteration {i}"
        params = load_checked_parameters(build_policy(spec), it.get("policy"), DAGGER_HINT).state_dict()
        for name, w in ref.items():
            g, w64 = params[name].to(torch.float64), w.to(torch.float64)
            if not within(g, w64, DAGGER_PARAM_ATOL + DAGGER_PARAM_RTOL * w64.abs()):
                what = ("trained on the demonstrations only" if i == 0
                        else "trained on the aggregated data set (the demonstrations and every relabelled rollout)")
                raise Mismatch(f"run_training_loop: after {where} the policy's parameter {name} differs from the "
                               f"reference's training on your data set by up to {float((g - w64).abs().max()):.3g} "
                               f"(tolerance {DAGGER_PARAM_ATOL:g} + {DAGGER_PARAM_RTOL:g}·|θ|): the policy must be "
                               f"{what}, with train_policy once per iteration", diagnosis="differs-from-reference")


DAGGER_STUBS = [(MODULE, "bc_loss"), (MODULE, "sample_trajectory"), (MODULE, "sample_trajectories"),
                (MODULE, "dagger_relabel"), (MODULE, "train_policy"), (MODULE, "run_training_loop")]


def dagger_runs(ctx, check) -> None:
    run = ctx.task("dagger_loop", MODULE)

    @grader_settings(max_examples=4)
    @given(case=dagger_cases())
    @example(case=DAGGER_EXAMPLE)
    def prop(case):
        args = build_dagger_case(case)
        got = run(*args)
        if not isinstance(got, dict):
            raise Mismatch("the DAgger run returned no result", "did your code replace the given objects?", "no-result")
        note(f"n_iter={case['n_iter']}, batch_size={case['batch_size']}, ep_len={case['ep_len']}, "
             f"train_batch_size={case['train_batch_size']}, train_steps_per_iter={case['steps']}")
        check_dagger_process(got, case, args[0], args[3])
        check(got, args)

    prop()


DAGGER_SECONDS = 90


@problem("hw1", "dagger_process", points=3, hint=DAGGER_HINT, seconds=DAGGER_SECONDS, stubs=DAGGER_STUBS)
def check_dagger_process_problem(ctx):
    """DAgger's process: iteration 0 on the demonstrations, then the current learner's rollouts, relabelled, added."""
    dagger_runs(ctx, lambda got, args: None)


def _train_policy_first(ctx) -> None:
    """The student's train_policy held to its public step checks on the fixed small case, before the loop that
    calls it is compared with the reference's training: a train_policy that fails them makes every iteration
    differ, and they name its mistake, where the loop's comparison could only blame the loop."""
    args = build_train_policy_case(TRAIN_POLICY_EXAMPLE)
    try:
        check_train_run(TRAIN_POLICY_EXAMPLE, args, ctx.task("train_policy_call", MODULE)(*args))
    except Mismatch as err:
        raise Mismatch(f"run_training_loop trains with your train_policy, which fails its own checks "
                       f"(train_policy_steps): {err}", err.hint or TRAIN_STEP_HINT, err.diagnosis) from None


@problem("hw1", "dagger_matches_reference", points=2, needs_reference=True, hint=DAGGER_HINT,
         seconds=DAGGER_SECONDS, stubs=DAGGER_STUBS)
def check_dagger_matches_reference(ctx):
    """DAgger trains as the reference does: on its own data set, the reference's parameters after every iteration."""
    _train_policy_first(ctx)
    dagger_runs(ctx, lambda got, args: compare_dagger(got, _reference_training(ctx, args, got), args[0]))
