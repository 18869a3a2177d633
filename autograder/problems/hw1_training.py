"""hw1 integration (slow): BC and DAgger with the student's code train a policy on LunarLanderContinuous-v3.

The training runs in the sandboxed child with the student's own training loop.
The child sends back only the policy's parameters; the judge rebuilds the
policy with its own class and evaluates it (mean action, fixed reset seeds)
against the expert on the same seeds. DAgger's run first passes
hw1/dagger_process's checks. Measured on the reference solution under a loaded
2-core machine: see ``BC_SEEDS`` / ``DAGGER_SEEDS`` below.
"""

from __future__ import annotations

import functools
import math

from autograder.compare import Mismatch, load_checked_parameters
from autograder.problem import problem
from autograder.problems.hw1_dagger import DAGGER_SECONDS, dagger_runs
from autograder.problems.hw1_train_policy import TRAIN_POLICY_EXAMPLE, build_train_policy_case

MODULE = "hw1.imitation"
# The mistakes only this module names (autograder.diagnoses holds the grader's own ids).
DIAGNOSES = {
    "no-optimizer-step": "training never changes the policy: no optimizer step on the BC loss",
}

EVAL_EPISODES = 10
# DAGGER_TARGET separates DAgger from a loop that never uses the learner's data (the same iterations and
# gradient steps on the demonstration only), measured with bench/dagger_bar.py over training seeds 0–9 and the
# judge's evaluation: the reference 99–101% of the expert on every seed, the BC-only loop 70–89%. At the old
# 80%, 4 of those 10 BC-only runs passed.
BC_TARGET, DAGGER_TARGET = 0.30, 0.95
BC_SEEDS, DAGGER_SEEDS = (0, 1), (0, 1)
# Sent to the child as data (rlkit.imitation.ImitationConfig fields): nothing in the student's process decides them.
TRAINING_CONFIGS = {
    # BC: two generated demonstrations (~430 steps), 1000 gradient steps.
    "bc": dict(env="LunarLanderContinuous-v3", method="bc", n_demos=2, train_steps_per_iter=1000, eval_batch_size=0),
    # DAgger: one demonstration and only 300 gradient steps per iteration, where BC alone falls short;
    # iteration 0 + 5 rounds of 1000 learner steps relabelled by the expert.
    "dagger": dict(env="LunarLanderContinuous-v3", method="dagger", n_demos=1, n_iter=6, batch_size=1000,
                   train_steps_per_iter=300, eval_batch_size=0),
}
TRAIN_HINT = ("train_policy takes cfg.train_steps_per_iter Adam steps on minibatches from the buffer with your "
              "bc_loss; DAgger iterations ≥ 1 roll out the CURRENT policy (sample_trajectories with cfg.batch_size "
              "and cfg.ep_len), relabel with dagger_relabel, and add the result to the buffer. Fix the unit "
              "problems above first")


@functools.lru_cache(maxsize=1)
def expert_returns() -> tuple[float, ...]:
    from rlkit.imitation import LunarLanderExpert

    return tuple(judge_evaluation(LunarLanderExpert()))


def judge_evaluation(policy) -> list[float]:
    """Returns of ``EVAL_EPISODES`` greedy episodes (the mean action; the expert is simply called) on the fixed reset
    seeds, computed in the judge: the episodes side by side in a pool, one policy call per step for all of them
    (a third of the time of one episode after another, on the same seeds)."""
    from rlkit.imitation import EVAL_SEED, FAST_TASK, evaluate, make_env
    from rlkit.sampling import EnvPool

    with EnvPool.make(lambda: make_env(FAST_TASK), EVAL_EPISODES) as pool:
        return evaluate(pool, policy, EVAL_EPISODES, seed=EVAL_SEED)


def policy_from_parameters(params):
    """The judge's own GaussianMLPPolicy for LunarLanderContinuous, loaded with the child's parameters (checked)."""
    from rlkit.imitation import make_env, make_policy

    env = make_env("LunarLanderContinuous-v3")
    policy = make_policy(env)
    env.close()
    return load_checked_parameters(policy, params, TRAIN_HINT)


def judge_returns(params) -> list[float]:
    return judge_evaluation(policy_from_parameters(params))


def _train_and_judge(ctx, method: str, seeds, target: float) -> None:
    train = ctx.task("train_imitation", MODULE)
    expert = sum(expert_returns()) / EVAL_EPISODES
    bar = target * expert
    attempts = []
    for seed in seeds:
        reply = train(TRAINING_CONFIGS[method], seed)
        if not isinstance(reply, dict):
            raise Mismatch("the training run returned no result", "did your code replace the given training code?",
                           "no-result")
        returns = judge_returns(reply.get("policy"))
        mean = sum(returns) / len(returns)
        line = (f"training seed {seed}: {mean:.1f} average return over {EVAL_EPISODES} evaluation episodes "
                f"(min {min(returns):.0f}); expert {expert:.1f}, so {mean / expert:.0%} of expert")
        if method == "dagger" and reply.get("first_policy") is not None:
            first = judge_returns(reply["first_policy"])
            line += f"; after iteration 0 (BC on the demonstration): {sum(first) / len(first):.1f}"
        attempts.append(line)
        ctx.notes.append(line)
        if mean >= bar and not math.isnan(mean):
            return
    measured, diagnosis, cause = _train_policy_facts(ctx)
    raise Mismatch(f"{'BC' if method == 'bc' else 'DAgger'} with your hw1.imitation did not reach {target:.0%} of "
                   f"the expert's return ({bar:.1f}) on LunarLanderContinuous-v3 with any of {len(seeds)} training "
                   "seeds:\n  " + "\n  ".join(attempts) + (f"\n  {measured}" if measured else ""),
                   cause or TRAIN_HINT, diagnosis or "below-target")


NO_ZERO_GRAD_HINT = ("your train_policy never clears the gradients: backward() ADDS to .grad, so every step follows "
                     "the sum of all earlier gradients; clear them before each backward (the optimizer's zero_grad)")
NO_STEP_HINT = "your train_policy never takes an optimizer step: the policy does not learn"


def _train_policy_facts(ctx) -> tuple[str, str, str]:
    """What the student's train_policy did on the small fixed case, as the objects it was handed saw it
    (optimizer steps, zero_grad calls, minibatches): (words for a failed training run, and the diagnosis and
    hint of a likely cause when a count shows one, else ""). Never a verdict: the failed run is."""
    try:
        reply = ctx.task("train_policy_call", MODULE)(*build_train_policy_case(TRAIN_POLICY_EXAMPLE))
    except Exception:  # noqa: BLE001 - a crash here says nothing more than the failed run did
        return "", "", ""
    seen = reply.get("seen") if isinstance(reply, dict) else None
    if not isinstance(seen, dict):
        return "", "", ""
    steps = TRAIN_POLICY_EXAMPLE["steps"]
    recorded = seen.get("sample_sizes")
    sizes = [n for n in recorded if type(n) is int] if isinstance(recorded, list) else []  # sorted(set()) below
    generators = seen.get("sample_generators") if isinstance(seen.get("sample_generators"), list) else []
    parts = [f"{seen.get('optimizer_steps')} optimizer step(s)", f"{seen.get('zero_grads')} zero_grad call(s)",
             f"{len(sizes)} minibatch(es) drawn" + (f" of {sorted(set(sizes))} pairs" if sizes else "")]
    if generators and any(g != "given" for g in generators):
        parts.append("not all with the given generator")
    words = (f"measured on a small case of {steps} steps (train_batch_size {TRAIN_POLICY_EXAMPLE['train_batch_size']}"
             f"): your train_policy took " + ", ".join(parts))

    def none(count) -> bool:
        return type(count) is int and count == 0

    if none(seen.get("zero_grads")):
        return words, "no-zero-grad", NO_ZERO_GRAD_HINT
    if none(seen.get("optimizer_steps")):
        return words, "no-optimizer-step", NO_STEP_HINT
    return words, "", ""


TRAIN_STUBS = [(MODULE, "bc_loss"), (MODULE, "sample_trajectory"), (MODULE, "sample_trajectories"),
               (MODULE, "train_policy"), (MODULE, "run_training_loop")]


@problem("hw1", "bc_training", points=3, slow=True, seconds=300, hint=TRAIN_HINT, stubs=TRAIN_STUBS)
def check_bc_training(ctx):
    """BC with your code on LunarLanderContinuous-v3 (2 demonstrations) reaches ≥ 30% of the expert's return."""
    _train_and_judge(ctx, "bc", BC_SEEDS, BC_TARGET)


@problem("hw1", "dagger_training", points=4, slow=True, seconds=300, hint=TRAIN_HINT,
         stubs=TRAIN_STUBS + [(MODULE, "dagger_relabel")])
def check_dagger_training(ctx):
    """DAgger with your code on LunarLanderContinuous-v3 reaches ≥ 95% of the expert's return within 6 iterations."""
    # The outcome alone can be bought in the student's own process (e.g. given code patched to hand the loop
    # more demonstrations). So the same problem first checks that the loop IS DAgger, on the small task whose
    # data the judge builds and sends (the public dagger_process checks): no patch of the given code reaches it.
    # Under dagger_process's own limit: a loop that never ends there costs that, not this problem's 300 s.
    with ctx.limit(DAGGER_SECONDS, "the pre-check before training (hw1/dagger_process's checks)"):
        dagger_runs(ctx, lambda got, args: None)
    _train_and_judge(ctx, "dagger", DAGGER_SEEDS, DAGGER_TARGET)
